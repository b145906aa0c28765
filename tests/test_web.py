"""The web debugger (docs/serving.md, Web debugger): unit tests of its data, chart and session functions, and
browser tests that drive ``/web`` in headless Chromium.

The browser tests serve ``build_app()`` as ``metric-tracker serve`` does (the command sets
ENABLE_WEB_INTERFACE; that part is a unit test here) from a thread on a loopback port, once
for the module, plus one built with METRIC_TRACKER_DEBUG=1 for the debug panel. Chromium is
Debian's (``/usr/bin/chromium``); Playwright only drives it. A full investigation is saved to
``artifacts/debugger.png``; with ``UPDATE_DOCS_SCREENSHOT=1`` a smaller copy goes to
``docs/debugger.png`` for the README.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from evidence_calls import detection_calls

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis import GENERATOR_METHODS, REGISTRY, run_method
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.families import ENTITY_TYPES, FAMILIES
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS, config_for
from metric_tracker_rl.web import DEBUGGER_TITLE, data
from metric_tracker_rl.web.session import DebuggerSession

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "artifacts"
DOCS_SCREENSHOT = REPO / "docs" / "debugger.png"
STARTUP_TIMEOUT_S = 120.0
UI_TIMEOUT_MS = 30_000  # any single wait in the browser


@pytest.fixture(scope="module")
def easy():
    return build_episode(config_for("easy_single_spike"))


@pytest.fixture(scope="module")
def hard():
    return build_episode(config_for("hard_mixed_multi"))


# --- reset controls ----------------------------------------------------------------------


def test_task_picker_lists_named_tasks_then_custom() -> None:
    assert data.task_choices() == [*NAMED_TASKS, data.CUSTOM_TASK]
    headers, rows = data.task_table()
    assert headers[0] == "task_id" and [r[0] for r in rows] == list(NAMED_TASKS)
    assert [r[2] for r in rows] == [
        "2 anomalies, 2 rows",
        "3 anomalies, 7 rows",
        "4 anomalies, rows not given",
    ]


def test_reset_arguments_keep_a_named_tasks_plan() -> None:
    task = NAMED_TASKS["medium_mixed_pair"]
    shown = data.task_defaults(task.task_id)
    kwargs = data.reset_arguments(task.task_id, **shown)
    assert kwargs == {"task_id": task.task_id}  # the task's own values are not re-sent
    assert config_for(**kwargs).anomaly_plan == task.anomaly_plan
    changed = data.reset_arguments(task.task_id, **(shown | {"seed": 7}))
    assert changed == {"task_id": task.task_id, "seed": 7}
    assert config_for(**changed).anomaly_plan == task.anomaly_plan


def test_reset_arguments_for_a_custom_config() -> None:
    kwargs = data.reset_arguments(data.CUSTOM_TASK, 12.0, "funnel_break", "hard", "default", "4")
    assert kwargs == {"seed": 12, "scenario_family": "funnel_break", "difficulty": "hard", "anomaly_count": 4}
    assert data.reset_arguments(data.CUSTOM_TASK, None, "default", "default", "high", "default") == {
        "anomaly_density": "high"
    }
    with pytest.raises(ConfigError):
        config_for(**data.reset_arguments(data.CUSTOM_TASK, 1.5))


# --- method controls from the registry ---------------------------------------------------


def test_every_registry_argument_has_one_control() -> None:
    controls = data.all_argument_controls()
    names = [c.name for c in controls]
    assert len(names) == len(set(names))
    for name, spec in REGISTRY.items():
        assert [c.name for c in data.argument_controls(name)] == list(spec.arguments_schema()["properties"])
    kinds = {c.name: c.kind for c in controls}
    assert kinds["date"] == "date"
    assert kinds["entity_name"] == kinds["metric_name"] == "entity"
    assert kinds["metric_names"] == "entities"
    assert kinds["limit"] == "integer" and kinds["threshold_multiplier"] == "number"
    assert kinds["rows"] == kinds["generator_methods"] == "json"
    assert kinds["entity_type"] == "choice"  # an enum: a dropdown, not a JSON box


def test_an_optional_enum_is_a_dropdown_with_any(easy) -> None:
    (control,) = [c for c in data.argument_controls("list_suspicious_dates") if c.name == "entity_type"]
    assert control.choices == tuple(ENTITY_TYPES) and not control.required
    assert control.dropdown_choices() == [data.ANY_CHOICE, *ENTITY_TYPES]
    assert data.method_arguments("list_suspicious_dates", {control.key: data.ANY_CHOICE}) == {}
    args = data.method_arguments("list_suspicious_dates", {control.key: "funnel_step"})
    assert args == {"entity_type": "funnel_step"}
    result = run_method(easy, "list_suspicious_dates", args)["result"]
    signals = [s for d in result["dates"] for s in d["signals"]]
    assert signals and {s["entity_type"] for s in signals} == {"funnel_step"}


def test_entity_dropdowns_offer_what_the_method_accepts() -> None:
    assert data.entity_choices("compare_rate_to_median") == list(C.RATE_METRICS)
    assert data.entity_choices("compare_count_to_median") == list(C.EVENTS)
    assert data.entity_choices("get_funnel_break_rows") == list(C.FUNNEL_STEPS)
    assert data.entity_choices("get_median_filter_rows") == [e.entity_name for e in S.ENTITIES]


def _first_inputs(method_name: str, date: str) -> dict[str, Any]:
    """What the debugger's controls hold when a method is picked (first date, first entity)."""
    values: dict[str, Any] = {}
    for control in data.argument_controls(method_name):
        if control.kind == "date":
            values[control.key] = date
        elif control.kind == "entity":
            values[control.key] = data.entity_choices(method_name)[0] if control.required else None
        elif control.kind == "entities":
            values[control.key] = []
        elif control.kind == "choice":
            values[control.key] = control.dropdown_choices()[0]
        elif control.kind == "json":
            values[control.key] = data.json_example(method_name, control)
        else:  # number fields are text boxes showing the default
            values[control.key] = data.number_text(control)
    return values


@pytest.mark.parametrize("method_name", list(REGISTRY))
def test_every_method_runs_from_its_default_controls(easy, method_name: str) -> None:
    args = data.method_arguments(method_name, _first_inputs(method_name, easy.dates[0]))
    result = run_method(easy, method_name, args)
    assert "error" not in result, result


def test_method_arguments_convert_and_validate() -> None:
    keys = {c.name: c.key for c in data.all_argument_controls()}
    assert data.method_arguments("list_suspicious_dates", {keys["limit"]: 3.0}) == {"limit": 3}
    assert data.method_arguments("list_suspicious_dates", {}) == {}
    generator = data.method_arguments(
        "get_rate_spike_from_median_rows",
        {
            keys["metric_name"]: None,
            keys["metric_names"]: ["app_open_to_order_placed"],
            keys["threshold_multiplier"]: 3,
        },
    )
    assert generator == {"metric_names": ["app_open_to_order_placed"], "threshold_multiplier": 3.0}
    assert data.method_arguments("preview_submission", {keys["rows"]: '[{"date": "x"}]'}) == {
        "rows": [{"date": "x"}]
    }
    with pytest.raises(data.ArgumentError, match="rows: not valid JSON"):
        data.method_arguments("preview_submission", {keys["rows"]: "[{"})
    with pytest.raises(data.ArgumentError, match="whole number"):
        data.method_arguments("list_suspicious_dates", {keys["limit"]: 2.5})


def test_number_fields_are_parsed_with_messages_that_say_what_is_accepted() -> None:
    keys = {c.name: c.key for c in data.all_argument_controls()}
    limit, threshold = keys["limit"], keys["threshold_multiplier"]
    generator = "get_rate_spike_from_median_rows"
    assert data.method_arguments("list_suspicious_dates", {limit: " 3 "}) == {"limit": 3}
    assert data.method_arguments("list_suspicious_dates", {limit: ""}) == {}  # empty: the default
    assert data.method_arguments(generator, {threshold: "2.5"}) == {"threshold_multiplier": 2.5}
    accepted = "enter a whole number from 1 to 28 (empty: the default 5)"
    refused = {
        "abc": f"limit: 'abc' is not a number; {accepted}",
        "2.5": f"limit: '2.5' is not a whole number; {accepted}",
        "0": f"limit: 0 is out of range; {accepted}",
        "29": f"limit: 29 is out of range; {accepted}",
    }
    for typed, message in refused.items():
        with pytest.raises(data.ArgumentError) as caught:
            data.method_arguments("list_suspicious_dates", {limit: typed})
        assert str(caught.value) == message
    for typed in ("x", "nan", "inf", "-1", "101"):
        with pytest.raises(data.ArgumentError, match=r"threshold_multiplier: .*enter a number from 0 to 100"):
            data.method_arguments(generator, {threshold: typed})


# --- results as tables; verdicts and hints ---------------------------------------------


def test_result_tables_are_readable(easy) -> None:
    date = easy.dates[10]
    suspicious = run_method(easy, "list_suspicious_dates", {"limit": 4})["result"]
    headers, rows = data.result_table(suspicious)
    assert headers[:4] == ["date", "weekday", "score", "top_metric"] and len(rows) == 4

    assessment = run_method(
        easy, "compare_rate_to_median", {"date": date, "entity_name": "app_open_to_order_placed"}
    )
    headers, rows = data.result_table(assessment["result"])
    assert len(rows) == 1 and {"anomaly_type", "baseline_value", "threshold.value"} <= set(headers)
    assert headers[:3] == ["date", "anomaly_type", "entity_name"]  # the verdict stays in view

    hourly = run_method(easy, "hourly_rows_for_date", {"date": date})["result"]
    headers, rows = data.result_table(hourly)  # the verdicts, not the 24 hourly counts
    assert headers[:2] == ["date", "anomaly_type"] and len(rows) == len(hourly["assessments"])

    day = run_method(easy, "rows_for_date", {"date": date})["result"]
    headers, rows = data.result_table(day)
    assert headers == ["group", "metric", "value", "median"]
    assert ["counts", "app_opens", day["counts"]["app_opens"], day["median_counts"]["app_opens"]] in rows

    overview = run_method(easy, "task_overview", {})["result"]
    headers, rows = data.result_table(overview)
    assert "anomaly_type" in headers and len(rows) == 7  # the families

    raw = run_method(easy, "show_raw_data", {"limit": 2})["result"]
    assert data.result_rows(raw) == [] and data.date_marks("show_raw_data", raw) == {}  # data, no rows


def test_only_a_detection_methods_verdict_flags_a_date(easy) -> None:
    detection_methods = {
        "compare_rate_to_median",
        "compare_count_to_median",
        "detect_funnel_break",
        "check_impossible_counts",
        "hourly_rows_for_date",
    }
    assert detection_methods == data.DETECTION_METHODS
    truth = easy.expected_rows[0]
    flagged = run_method(
        easy, "compare_rate_to_median", {"date": truth.date, "entity_name": truth.entity_name}
    )["result"]
    assert data.result_rows(flagged) == [truth.model_dump()]  # exactly the submission fields
    marks = data.date_marks("compare_rate_to_median", flagged)
    (mark,) = marks[truth.date]
    assert mark.kind == "flagged" and mark.label == "flagged by compare_rate_to_median"
    assert mark.reason == f"{truth.anomaly_type}: {truth.entity_name}"

    normal_day = next(d for d in easy.dates if d not in {r.date for r in easy.expected_rows})
    normal = run_method(
        easy, "compare_rate_to_median", {"date": normal_day, "entity_name": truth.entity_name}
    )["result"]
    assert data.result_rows(normal) == [] and data.date_marks("compare_rate_to_median", normal) == {}
    for method_name in ("detect_funnel_break", "check_impossible_counts", "hourly_rows_for_date"):
        normal = run_method(easy, method_name, {"date": normal_day})["result"]
        assert all(a["anomaly_type"] == "normal" for a in normal["assessments"])
        assert data.date_marks(method_name, normal) == {}

    # A ranking is a hint, never a verdict, whatever it ranks first.
    suspicious = run_method(easy, "list_suspicious_dates", {"limit": 3})["result"]
    hints = data.date_marks("list_suspicious_dates", suspicious)
    assert list(hints) == [d["date"] for d in suspicious["dates"]]
    assert {m.kind for ms in hints.values() for m in ms} == {"hint"}
    assert {m.label for ms in hints.values() for m in ms} == {"ranked unusual (hint)"}
    assert data.flagged_only(hints) == {}
    merged = data.merge_marks(hints, data.date_marks("list_suspicious_dates", suspicious))
    assert merged == dict(sorted(hints.items()))  # no duplicated marks

    # A generator's threshold rows can be submitted, but they are hints too.
    generated = run_method(easy, "get_rate_spike_from_median_rows", {"threshold_multiplier": 3.0})["result"]
    assert data.result_rows(generated) == generated["rows"] and generated["rows"]
    rows_marks = data.date_marks("get_rate_spike_from_median_rows", generated)
    assert set(rows_marks) == {r["date"] for r in generated["rows"]}
    assert {m.label for ms in rows_marks.values() for m in ms} == {"generator row (hint)"}

    both = data.merge_marks(hints, marks)
    assert list(data.flagged_only(both)) == [truth.date]


# --- chart series ------------------------------------------------------------------------


def test_daily_series_match_the_public_methods(hard) -> None:
    series = data.daily_series(hard)
    assert series.dates == list(hard.dates)
    for day in (0, 13, 27):
        record = run_method(hard, "rows_for_date", {"date": hard.dates[day]})["result"]
        for event in C.EVENTS:
            assert series.counts[event][day] == record["counts"][event]
        for metric in C.RATE_METRICS:
            assert series.rates[metric][day] == pytest.approx(record["rates_pct"][metric])
    for metric in C.RATE_METRICS:
        median = run_method(hard, "get_metric_median", {"metric_name": metric})["result"]["median"]
        assert series.rate_medians[metric] == median
        low, high = series.rate_band[metric]
        assert high - median == pytest.approx(C.RATE_THRESHOLD_PP[metric])
        assert median - low == pytest.approx(C.RATE_THRESHOLD_PP[metric])


def test_hourly_profile_matches_hourly_rows(hard) -> None:
    for date in hard.dates[::9]:
        profile = data.hourly_profile(hard, date)
        result = run_method(hard, "hourly_rows_for_date", {"date": date})["result"]
        assert profile.counts == [row["app_opens"] for row in result["hourly_rows"]]
        assert len(profile.median) == C.HOURS
        mix = result["assessments"][0]
        assert profile.daytime_share == pytest.approx(mix["observed_value"], abs=0.01)
        assert profile.median_daytime_share == pytest.approx(mix["baseline_value"], abs=0.01)
    orders = data.hourly_profile(hard, hard.dates[3], "orders_placed")
    assert sum(orders.counts) == int(hard.values[3, S.COUNT_COLS[3]])


def test_funnel_shape_is_the_days_counts_against_the_median(easy) -> None:
    date = easy.dates[5]
    shape = data.funnel_shape(easy, date)
    record = run_method(easy, "rows_for_date", {"date": date})["result"]
    assert shape.counts == [record["counts"][e] for e in C.EVENTS]
    assert shape.median == pytest.approx([record["median_counts"][e] for e in C.EVENTS])
    assert shape.step_rates[0] is None and shape.median_step_rates[0] is None
    for i, metric in enumerate(C.ADJACENT_RATE_METRICS, start=1):
        assert shape.step_rates[i] == pytest.approx(record["rates_pct"][metric], abs=0.01)
    assert np.all(np.diff(shape.median) <= 0)  # the median funnel narrows step by step


def test_charts_mark_verdicts_and_hints_differently(easy) -> None:
    charts = pytest.importorskip("metric_tracker_rl.web.charts")
    series = data.daily_series(easy)
    hinted, flagged = easy.dates[4], easy.dates[9]
    hint = data.DateMark("hint", "list_suspicious_dates", "ranked #1: app_opens up (z 4.0)")
    verdict = data.DateMark("flagged", "compare_rate_to_median", "rate_spike_from_median: x")
    marks = {hinted: [hint], flagged: [verdict, hint]}
    daily = charts.daily_counts_figure(series, marks)
    assert [s.fillcolor for s in daily.layout.shapes] == [charts.HINT_COLOR, charts.FLAG_COLOR]
    markers = {t.name: t for t in daily.data[len(C.EVENTS) :]}
    assert list(markers) == ["flagged by compare_rate_to_median", "ranked unusual (hint)"]
    assert list(markers["flagged by compare_rate_to_median"].x) == [flagged]
    assert list(markers["ranked unusual (hint)"].x) == [hinted, flagged]
    hint_marker = markers["ranked unusual (hint)"]
    verdict_marker = markers["flagged by compare_rate_to_median"]
    assert hint_marker.marker.symbol != verdict_marker.marker.symbol
    assert hint_marker.marker.color != verdict_marker.marker.color
    assert len(charts.daily_counts_figure(series, {}).layout.shapes) == 0
    rates = charts.rates_figure(series, marks)
    assert len(rates.layout.shapes) == 2 * 2  # each marked date in both subplot columns
    assert [a.text for a in rates.layout.annotations] == list(C.RATE_METRICS)

    hint_only = charts.hourly_figure(data.hourly_profile(easy, hinted), marks[hinted]).layout.title.text
    assert "ranked unusual (hint)" in hint_only and "flagged" not in hint_only
    confirmed = charts.hourly_figure(data.hourly_profile(easy, flagged), marks[flagged]).layout.title.text
    assert "flagged by compare_rate_to_median: rate_spike_from_median: x" in confirmed
    assert "flagged" not in charts.hourly_figure(data.hourly_profile(easy, flagged)).layout.title.text
    funnel = charts.funnel_figure(data.funnel_shape(easy, easy.dates[4]))
    assert list(funnel.data[0].x) == list(C.EVENTS)


CLEAN_TICK = re.compile(r"^[125]0*[kM]?$")  # 1, 2, 5 x 10^k, as 500, 1k, 20k, 1M


def test_the_daily_log_axis_shows_only_clean_ticks(easy, hard) -> None:
    charts = pytest.importorskip("metric_tracker_rl.web.charts")
    assert charts.log_ticks(1700, 17000) == (
        [1000.0, 2000.0, 5000.0, 10000.0, 20000.0],
        ["1k", "2k", "5k", "10k", "20k"],
    )
    assert charts.log_ticks(40, 900)[1] == ["20", "50", "100", "200", "500", "1k"]
    assert charts.log_ticks(300_000, 1_500_000)[1] == ["200k", "500k", "1M", "2M"]
    for episode in (easy, hard):
        series = data.daily_series(episode)
        axis = charts.daily_counts_figure(series, {}).layout.yaxis
        assert axis.type == "log" and axis.tickmode == "array"
        assert all(CLEAN_TICK.match(t) for t in axis.ticktext), axis.ticktext
        assert list(axis.tickvals) == sorted(axis.tickvals)
        low = min(min(v) for v in series.counts.values())
        high = max(max(v) for v in series.counts.values())
        assert sum(low <= v <= high for v in axis.tickvals) >= 2  # enough labels to read a value


# --- feedback ----------------------------------------------------------------------------


def test_breakdown_table_adds_up_to_the_score(easy) -> None:
    session = DebuggerSession(debug=False)
    session.reset(task_id="easy_single_spike")
    confirmed = easy.expected_rows  # the generator also writes rows that no call confirmed
    for method, args in detection_calls(row.model_dump() for row in confirmed):
        assert session.run_method(method, args).status == "analysis"
    session.generators = [{"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 3.0}]
    observation = session.submit([{"date": "not a date"}])
    assert observation.status == "graded"
    breakdown = observation.reward_breakdown
    assert breakdown["matched_rows"] == len(confirmed) and breakdown["unsupported_rows"] > 0
    assert breakdown["score"] > 0  # not clamped: the points below are the whole score
    headers, rows = data.breakdown_table(breakdown)
    points = [r[headers.index("points")] for r in rows if r[0] in ("component", "penalty")]
    assert sum(points) == pytest.approx(breakdown["score"], abs=1e-3)
    names = {r[1] for r in rows}
    assert names >= {"precision", "recall", "invalid_row_penalty", "missing_rows", "unsupported_rows"}
    text = data.feedback_markdown(observation)
    assert f"Score {observation.reward:.4f}" in text and "row 0: invalid" in text
    assert f"{len(confirmed)} of 2 expected rows reported with evidence" in text
    assert f"{breakdown['unsupported_rows']} unsupported (no credit" in text
    assert ": unsupported: no earlier compare_rate_to_median call" in text  # each one named
    assert "**Submissions** 1/3" in data.budget_line(observation)


def test_a_preview_after_the_budget_is_spent_says_why() -> None:
    session = DebuggerSession(debug=False)
    session.reset(task_id="easy_single_spike")
    shown = data.preview_markdown(session.preview([{"date": "not a date"}]))
    assert shown.startswith("**Preview:** 1 row(s), 0 valid, 1 invalid") and "\n- " in shown
    session.run_method("get_rate_spike_from_median_rows", {"threshold_multiplier": 0.0})  # spends most
    for _ in range(session.observation.budget["max_steps"]):  # analysis stops at the report's unit
        if session.run_method("list_dates", {}).status == "error":
            break
    refused = session.preview([])
    assert refused.status == "error" and "left for analysis" in refused.message and not refused.done
    assert refused.submission_preview == {}
    assert data.preview_markdown(refused) == f"**No preview (error):** {refused.message}"
    assert session.submit([]).done  # the report spends the unit kept for it
    finished = session.preview([])
    assert finished.submission_preview == {}
    assert data.preview_markdown(finished) == f"**No preview (finished):** {finished.message}"


def test_rows_typed_by_hand_are_parsed() -> None:
    headers = list(ROW_FIELDS)
    typed = [
        ["2026-03-10", "event_count", "app_opens", "absolute_spike_in_event_count", "compare_count_to_median"]
        + ["100", "150.5", "50.5", "high"],
        [None, "", " ", None, None, None, None, None, None],
        ["2026-03-11", "conversion_rate", "x", "y", "z", "n/a", 1.0, 2, "low"],
    ]
    rows = data.rows_from_table(typed, headers)
    assert len(rows) == 2
    assert rows[0]["baseline_value"] == 100.0 and rows[0]["observed_value"] == 150.5
    assert rows[1]["baseline_value"] == "n/a"  # left for the grader to report


# --- one tab's session -------------------------------------------------------------------


def test_sessions_are_separate_episodes_with_budgets() -> None:
    first, second = DebuggerSession(debug=False), DebuggerSession(debug=False)
    first.reset(task_id="easy_single_spike")
    hard = second.reset(task_id="hard_mixed_multi")
    line = data.budget_line(hard)
    assert "**Rows to find** not given (this difficulty hides it)" in line and "**Submissions** 0/1" in line
    observation = first.run_method("list_suspicious_dates", {"limit": 3})
    assert observation.budget["steps_used"] == 2 and len(first.marks) == 3
    assert data.flagged_only(first.marks) == {}  # a ranking marks hints, not verdicts
    assert second.marks == {} and second.env.state.step_count == 0
    assert first.episode is build_episode(config_for("easy_single_spike"))

    first.generators = [{"method_name": GENERATOR_METHODS[0], "threshold_multiplier": 2.0}]
    first.generated_rows()  # computed locally: no step
    assert first.env.state.step_count == 1
    preview = first.preview([])
    assert preview.status == "analysis" and preview.budget["steps_used"] == 3
    assert first.debug_snapshot() is None


def test_the_method_picker_opens_on_the_method_the_status_line_recommends() -> None:
    from metric_tracker_rl.web import app

    observation = DebuggerSession(debug=False).reset()
    assert f"Start with {app.FIRST_METHOD}" in observation.message
    assert app.FIRST_METHOD in REGISTRY


def test_a_bad_reset_keeps_the_episode() -> None:
    session = DebuggerSession(debug=False)
    session.reset(task_id="medium_mixed_pair")
    episode = session.episode
    with pytest.raises(ConfigError):
        session.reset(seed=-1)
    assert session.episode is episode and session.observation.task_id == "medium_mixed_pair"


def test_debug_snapshot_only_in_debug_mode() -> None:
    session = DebuggerSession(debug=True)
    session.reset(task_id="easy_single_spike")
    snapshot = session.debug_snapshot()
    assert snapshot is not None and len(snapshot["expected_payload"]) == 2


# --- the serve command --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "preset", "expected"),
    [([], None, "1"), (["--no-web"], None, "0"), (["--web"], "0", "1"), ([], "false", "false")],
)
def test_serve_mounts_the_debugger_unless_disabled(monkeypatch, argv, preset, expected) -> None:
    from typer.testing import CliRunner

    from metric_tracker_rl import cli, serving

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serving, "run", lambda **kwargs: calls.append(kwargs))
    if preset is None:
        monkeypatch.delenv("ENABLE_WEB_INTERFACE", raising=False)
    else:
        monkeypatch.setenv("ENABLE_WEB_INTERFACE", preset)
    result = CliRunner().invoke(cli.app, ["serve", "--port", "8123", *argv])
    assert result.exit_code == 0, result.output
    assert os.environ["ENABLE_WEB_INTERFACE"] == expected and calls[0]["port"] == 8123


# --- browser tests -----------------------------------------------------------------------


@contextlib.contextmanager
def _served(app: Any) -> Iterator[str]:
    """Serve an ASGI app from a thread on a loopback port the socket picked itself."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the debugger's server did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _build_app(debug: bool) -> Any:
    """``build_app()`` as ``metric-tracker serve`` runs it: the command sets ENABLE_WEB_INTERFACE
    (see test_serve_mounts_the_debugger_unless_disabled); the operator may set the debug flag.
    Both are read while the app is built, then restored for the rest of the test session."""
    from metric_tracker_rl.serving import build_app

    wanted = {"ENABLE_WEB_INTERFACE": "1", "METRIC_TRACKER_DEBUG": "1" if debug else None}
    saved = {k: os.environ.get(k) for k in wanted}
    try:
        for key, value in wanted.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return build_app()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def web_url() -> Iterator[str]:
    """The server with the debugger mounted at /web, standard mode."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with _served(_build_app(debug=False)) as url:
        yield url


@pytest.fixture(scope="module")
def debug_web_url() -> Iterator[str]:
    """The same server started with METRIC_TRACKER_DEBUG=1."""
    with _served(_build_app(debug=True)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(web_url: str):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def browser_page(browser, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A page in a browser context of its own (a ``width`` x ``height`` window, the UI's
    timeout), the context closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser):
    with browser_page(browser, 1560, 1000) as page:
        yield page


def _text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_text(page, selector: str, text: str) -> None:
    """Wait until the element shows ``text`` (Gradio updates asynchronously)."""
    page.wait_for_function(
        "([selector, text]) => !!document.querySelector(selector)?.innerText.includes(text)",
        arg=[selector, text],
        timeout=UI_TIMEOUT_MS,
    )


def choose(page, elem_id: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown with this elem_id."""
    page.click(f"#{elem_id} input")
    page.locator("[role=option]", has_text=option).first.click()


def open_debugger(page, url: str) -> None:
    page.goto(f"{url}/web/")
    wait_text(page, "#status-bar", "units left")


def save_docs_screenshot(source: Path, target: Path, width: int = 1200) -> None:
    """A smaller copy for the README: scaled down, 256-colour palette."""
    from PIL import Image

    with Image.open(source) as image:
        height = round(image.height * width / image.width)
        small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def chart_title(page, elem_id: str) -> str:
    page.wait_for_selector(f"#{elem_id} .js-plotly-plot .gtitle")
    return page.locator(f"#{elem_id} .gtitle").first.text_content() or ""


def wait_chart_title(page, elem_id: str, text: str) -> str:
    page.wait_for_function(
        "([id, text]) => (document.querySelector(`#${id} .gtitle`)?.textContent || '').includes(text)",
        arg=[elem_id, text],
    )
    return chart_title(page, elem_id)


def assert_page_fits_the_window(page) -> None:
    """Nothing spills sideways: the document is no wider than the window."""
    scroll_width, window_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= window_width, f"the page is {scroll_width}px wide in a {window_width}px window"


# Each visible table header: how many lines its text takes, and whether its cell clips it.
HEADER_LINES_JS = """() => Array.from(document.querySelectorAll('th.header-cell .header'))
  .filter(span => span.offsetParent !== null && span.textContent.trim())
  .map(span => {
    const range = document.createRange();
    range.selectNodeContents(span);
    const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    const cell = span.closest('th');
    return [span.textContent.trim(), tops.size, range.getBoundingClientRect().width <= cell.clientWidth + 1];
  })"""


def assert_headers_keep_whole_words(page) -> None:
    headers = page.evaluate(HEADER_LINES_JS)
    assert headers
    broken = [(text, lines, fits) for text, lines, fits in headers if lines != 1 or not fits]
    assert not broken, f"headers broken over lines or clipped: {broken}"


# Where the result table's verdict cell (first row, anomaly_type) is, against its scroll box.
VERDICT_CELL_JS = """() => {
  const table = document.querySelector('#result-table');
  const header = table.querySelector('th.header-cell[title="anomaly_type"]');
  const cell = header && table.querySelector(`[data-testid="cell-0-${header.dataset.heading}"]`);
  if (!cell) return null;
  const box = cell.closest('.virtual-table-viewport').getBoundingClientRect();
  const r = cell.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {text: cell.innerText.trim(), left: r.left, right: r.right, box_left: box.left,
          box_right: box.right, window: window.innerWidth, on_top: !!hit && cell.contains(hit)};
}"""


def assert_verdict_in_view(page) -> str:
    """The first row's anomaly_type is inside the window and its table's box, not covered, once
    the page is scrolled down to the table (the table's own sideways scroll stays where it is)."""
    page.locator("#result-table").scroll_into_view_if_needed()
    cell = page.evaluate(VERDICT_CELL_JS)
    assert cell is not None, "the result table has no anomaly_type cell"
    assert cell["box_left"] - 1 <= cell["left"] and cell["right"] <= cell["box_right"] + 1, cell
    assert cell["left"] >= 0 and cell["right"] <= cell["window"] and cell["on_top"], cell
    return cell["text"]


def daily_axis_ticks(page) -> list[tuple[float, str]]:
    """The daily chart's y tick labels with their height on screen, bottom first."""
    page.wait_for_selector("#chart-daily .ytick text")
    ticks = page.evaluate(
        """() => Array.from(document.querySelectorAll('#chart-daily .ytick text'))
          .map(t => [t.getBoundingClientRect().top, t.textContent])"""
    )
    return sorted(((-top, text) for top, text in ticks), key=lambda tick: tick[0])


def tick_value(text: str) -> float:
    scale = {"k": 1e3, "M": 1e6}.get(text[-1:], 1.0)
    return float(text.rstrip("kM")) * scale


pytestmark_browser = pytest.mark.timeout(150)
pytestmark = pytest.mark.filterwarnings(  # raised inside Gradio's queue under pandas 3
    "ignore:.*no_silent_downcasting:Warning", "ignore:The copy keyword is deprecated:Warning"
)


@pytestmark_browser
def test_full_investigation(page, web_url: str, capfd) -> None:
    truth = next(  # the test's oracle: a rate anomaly of the task
        r
        for r in build_episode(config_for("medium_mixed_pair")).expected_rows
        if r.entity_type == "conversion_rate"
    )
    open_debugger(page, web_url)

    # Reset a named task.
    units = MetricTrackerRlEnvironment().reset(task_id="medium_mixed_pair").budget["max_steps"]
    choose(page, "task-picker", "medium_mixed_pair")
    page.wait_for_function("() => document.querySelector('#reset-seed textarea').value === '2002'")
    page.click("#reset-button")
    wait_text(page, "#status-bar", "medium_mixed_pair")
    wait_text(page, "#status-bar", f"Budget {units} of {units} units left")
    wait_text(page, "#episode-overview", "There are 7 anomaly rows to find, from 3 incidents")

    # The daily counts' log axis reads 2k, 5k, 10k, 20k: clean values, rising (not Plotly's
    # minor labels "3, 2, 10k, 9, ...").
    ticks = daily_axis_ticks(page)
    assert len(ticks) >= 3 and all(CLEAN_TICK.match(text) for _, text in ticks), ticks
    values = [tick_value(text) for _, text in ticks]
    assert values == sorted(set(values)), ticks

    # Discovery: list_suspicious_dates over the conversion rates (an enum argument: a dropdown
    # that starts at "(any)"). Its dates are hints in the charts, not verdicts.
    choose(page, "method-picker", "list_suspicious_dates")
    page.locator("#arg-entity_type").wait_for(state="visible")
    assert page.locator("#arg-entity_type input").input_value() == "(any)"
    choose(page, "arg-entity_type", "conversion_rate")
    page.click("#run-method")
    wait_text(page, "#status-bar", f"Budget {units - 2} of {units} units left")
    wait_text(page, "#result-table", "top_metric")
    ranked = re.findall(r"\d{4}-\d{2}-\d{2}", _text(page, "#result-table"))
    assert ranked and "conversion_rate" in _text(page, "#result-table")
    assert "event_count" not in _text(page, "#result-table")  # only the type asked for
    wait_text(page, "#chart-daily", "ranked unusual (hint)")
    assert "flagged" not in _text(page, "#chart-daily")
    choose(page, "chart-date", ranked[0])
    hourly = wait_chart_title(page, "chart-hourly", f"on {ranked[0]}")
    assert "ranked unusual (hint)" in hourly and "flagged" not in hourly

    # Targeted: compare_rate_to_median confirms the anomaly; its row goes to the submission.
    choose(page, "method-picker", "compare_rate_to_median")
    page.locator("#arg-date").wait_for(state="visible")
    choose(page, "arg-date", truth.date)
    choose(page, "arg-entity_name", truth.entity_name)
    page.click("#run-method")
    wait_text(page, "#status-bar", f"Budget {units - 3} of {units} units left")
    wait_text(page, "#result-table", truth.anomaly_type)
    assert assert_verdict_in_view(page) == truth.anomaly_type
    assert "1 row(s) can be added" in _text(page, "#run-message")
    wait_text(page, "#chart-daily", "flagged by compare_rate_to_median")
    page.click("#add-result-rows")
    wait_text(page, "#hand-rows", truth.entity_name)

    # Every chart renders; hourly and funnel follow the date of the last method call.
    assert chart_title(page, "chart-daily") == "Daily counts per event"
    assert chart_title(page, "chart-rates").startswith("Conversion rates")
    hourly = wait_chart_title(page, "chart-hourly", truth.date)
    assert f"Hourly app_opens on {truth.date}" in hourly
    assert f"flagged by compare_rate_to_median: {truth.anomaly_type}: {truth.entity_name}" in hourly
    assert chart_title(page, "chart-funnel").startswith(f"Funnel on {truth.date}")
    choose(page, "chart-event", "orders_placed")
    page.wait_for_function(
        "() => (document.querySelector('#chart-hourly .gtitle')?.textContent || '').includes('orders_placed')"
    )

    # Submission: the typed row plus a generator; preview, submit, read the score.
    choose(page, "gen-method", "get_absolute_spike_in_event_count_rows")
    page.fill("#gen-threshold textarea", "2.0")  # on this task: one row, an event-count spike
    page.click("#add-generator")
    wait_text(page, "#generators-table", "get_absolute_spike_in_event_count_rows")
    wait_text(page, "#generated-rows", "compare_count_to_median")  # the rows it will send
    page.click("#preview-button")
    wait_text(page, "#feedback", "Preview:")
    wait_text(page, "#status-bar", f"Budget {units - 4} of {units} units left")
    page.click("#submit-button")
    wait_text(page, "#feedback", "Score")
    score = float(re.search(r"Score (\d\.\d{4})", _text(page, "#feedback")).group(1))
    assert 0.0 < score <= 1.0
    wait_text(page, "#status-bar", "Submissions 1/3")
    breakdown = _text(page, "#reward-breakdown")
    assert "precision" in breakdown and "extra_row_penalty" in breakdown
    assert page.locator("#debug-panel").count() == 0
    assert_page_fits_the_window(page)
    assert_headers_keep_whole_words(page)
    assert "Traceback" not in capfd.readouterr().err

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "debugger.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        save_docs_screenshot(shot, DOCS_SCREENSHOT)


@pytestmark_browser
def test_landing_page_and_one_episode_per_tab(browser, web_url: str) -> None:
    response = httpx.get(f"{web_url}/", follow_redirects=False, timeout=10)
    assert response.headers["location"].rstrip("/") == "/web"
    page_html = httpx.get(f"{web_url}/web/", timeout=10).text
    script = re.search(r"\./(assets/index-[\w-]+\.js)", page_html).group(1)
    asset = httpx.get(f"{web_url}/web/{script}", timeout=10)
    assert asset.status_code == 200, (
        f"/web/{script}: {asset.status_code} (the ASGI middleware must pass GETs through)"
    )
    contexts = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        for page in (first, second):
            page.set_default_timeout(UI_TIMEOUT_MS)
            open_debugger(page, web_url)
        # The debugger is the landing view: named tasks at once, the first one loaded.
        assert "metric_tracker_rl debugger" in first.title()
        table = _text(first, "#task-table")
        assert all(task_id in table for task_id in NAMED_TASKS)
        assert "3 anomalies, 7 rows" in table and "4 anomalies, rows not given" in table
        assert "easy_single_spike" in _text(first, "#status-bar")
        # The first step the status line recommends is the method the picker opens on.
        assert "Start with task_overview" in _text(first, "#status-bar")
        assert "task_overview" in first.locator("#method-picker input").input_value()
        assert "Playground" not in first.content()  # not OpenEnv's generic tab
        assert first.locator("#debug-panel").count() == 0  # standard mode: no hidden truth
        # Each tab is its own episode.
        first.click("#run-method")  # task_overview, 1 unit
        wait_text(first, "#status-bar", "Budget 17 of 18 units left")
        wait_text(first, "#result-table", "anomaly_type")
        assert "Budget 18 of 18 units left" in _text(second, "#status-bar")
        # Agent sessions are served alongside.
        reset = httpx.post(f"{web_url}/reset", json={"task_id": "hard_mixed_multi"}, timeout=10)
        assert reset.status_code == 200 and reset.json()["observation"]["task_id"] == "hard_mixed_multi"
    finally:
        for context in contexts:
            context.close()


@pytestmark_browser
def test_debug_panel_in_debug_mode(browser, debug_web_url: str) -> None:
    with browser_page(browser, height=1000) as page:
        open_debugger(page, debug_web_url)
        assert page.locator("#debug-panel").count() == 1
        page.click("#debug-panel button")  # open the accordion
        wait_text(page, "#debug-expected", "rate_spike_from_median")
        assert "decoy_of" in _text(page, "#debug-schedule")


# The result table's first header cells, against the box the table scrolls in.
FIRST_COLUMNS_JS = """(count) => {
  const table = document.querySelector('#result-table');
  const box = table.querySelector('.virtual-table-viewport').getBoundingClientRect();
  return Array.from(table.querySelectorAll('th.header-cell')).slice(0, count).map(th => {
    const r = th.getBoundingClientRect();
    return [th.innerText.trim(), r.left >= box.left - 1 && r.right <= box.right + 1];
  });
}"""


@pytestmark_browser
def test_a_wide_result_shows_its_first_three_columns_whole_at_1400px(browser, web_url: str) -> None:
    with browser_page(browser) as page:
        open_debugger(page, web_url)
        page.click("#run-method")  # task_overview: one row per family, many columns
        page.wait_for_selector("#result-table [data-testid=cell-0-0]")
        columns = page.evaluate(FIRST_COLUMNS_JS, 3)
        assert len(columns) == 3 and all(whole for _, whole in columns), columns
        assert_page_fits_the_window(page)


@pytestmark_browser
def test_the_page_asks_nothing_outside_the_server_and_has_an_icon(browser, web_url: str) -> None:
    """Offline, the page is whole: every request goes to the server (no web fonts), none fails."""
    requested: list[str] = []
    refused: list[str] = []
    with browser_page(browser) as page:
        page.on("request", lambda request: requested.append(request.url))
        page.on("response", lambda response: response.status >= 400 and refused.append(response.url))
        open_debugger(page, web_url)
        page.goto(f"{web_url}/favicon.ico")
    outside = [url for url in requested if not url.startswith((web_url, "data:", "blob:"))]
    assert outside == [] and refused == [], (outside, refused)
    icon = httpx.get(f"{web_url}/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_server_answers_while_the_debugger_is_built_and_web_waits_for_it() -> None:
    """/health and the API answer during the build; a visit to /web waits for it."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from metric_tracker_rl.web import deferred

    building, release = threading.Event(), threading.Event()

    def slow_build() -> Any:
        building.set()
        assert release.wait(60)
        return deferred.build_debugger_app()

    app = FastAPI()
    app.get("/health")(lambda: {"status": "healthy"})
    deferred.install(app, build=slow_build)
    with TestClient(app) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/web/"
        visit: dict[str, Any] = {}
        visitor = threading.Thread(target=lambda: visit.update(page=client.get("/web/")))
        visitor.start()  # the first visit starts the build (a server starts it once it answers)
        assert building.wait(30)
        assert client.get("/health").json() == {"status": "healthy"}
        visitor.join(timeout=0.5)
        assert visitor.is_alive() and not visit  # waiting for the build
        release.set()
        visitor.join(timeout=120)
        assert visit["page"].status_code == 200 and DEBUGGER_TITLE in visit["page"].text


@pytestmark_browser
@pytest.mark.parametrize(
    ("width", "method_name"), [(1400, "compare_rate_to_median"), (800, "detect_funnel_break")]
)
def test_targeted_results_fit_the_window(browser, web_url: str, width: int, method_name: str) -> None:
    """A wide result table scrolls inside its own box: the page keeps the window's width,
    headers keep whole words and the verdict column stays in view."""
    with browser_page(browser, width) as page:
        open_debugger(page, web_url)
        assert_page_fits_the_window(page)
        choose(page, "method-picker", method_name)
        page.locator("#arg-date").wait_for(state="visible")
        page.click("#run-method")
        wait_text(page, "#result-table", "threshold.rule")
        page.wait_for_selector("#result-table [data-testid=cell-0-0]")
        assert_page_fits_the_window(page)
        assert_headers_keep_whole_words(page)
        verdict = assert_verdict_in_view(page)
        assert verdict == "normal" or verdict in {f.anomaly_type for f in FAMILIES}


@pytestmark_browser
def test_bad_numbers_are_said_by_name(page, web_url: str, capfd) -> None:
    """A typo in a number field is refused with the field's name and what it accepts: no
    default run in its place, no red Error badges, no traceback in the server's log."""
    open_debugger(page, web_url)
    capfd.readouterr()
    choose(page, "method-picker", "list_suspicious_dates")
    page.locator("#arg-limit").wait_for(state="visible")
    for typed, said in (("abc", "limit: 'abc' is not a number"), ("0", "limit: 0 is out of range")):
        page.fill("#arg-limit textarea", typed)
        page.click("#run-method")
        wait_text(page, "#run-message", said)
        assert "enter a whole number from 1 to 28" in _text(page, "#run-message")
    page.fill("#gen-threshold textarea", "lots")
    page.click("#add-generator")
    wait_text(page, "#feedback", "threshold_multiplier: 'lots' is not a number; enter a number from 0 to 100")
    page.fill("#reset-seed textarea", "abc")
    page.click("#reset-button")
    wait_text(page, "#status-bar", "Reset refused: seed must be a non-negative integer, got 'abc'")
    assert "Budget 18 of 18 units left" in _text(page, "#status-bar")  # nothing was run
    assert page.locator("[data-testid=status-tracker] .error").count() == 0
    assert "Traceback" not in capfd.readouterr().err
