"""The web debugger (SPEC §8): unit tests of its data, chart and session functions, and
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

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis import GENERATOR_METHODS, REGISTRY, run_method
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS, config_for
from metric_tracker_rl.web import data
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
    assert [r[2] for r in rows] == [2, 3, 4]


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
        elif control.kind == "json":
            values[control.key] = data.json_example(method_name, control)
        else:
            values[control.key] = control.default
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


# --- results as tables, flagged dates ----------------------------------------------------


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

    day = run_method(easy, "rows_for_date", {"date": date})["result"]
    headers, rows = data.result_table(day)
    assert headers == ["group", "metric", "value", "median"]
    assert ["counts", "app_opens", day["counts"]["app_opens"], day["median_counts"]["app_opens"]] in rows

    overview = run_method(easy, "task_overview", {})["result"]
    headers, rows = data.result_table(overview)
    assert "anomaly_type" in headers and len(rows) == 7  # the families


def test_result_rows_and_flagged_dates(easy) -> None:
    generated = run_method(easy, "get_rate_spike_from_median_rows", {"threshold_multiplier": 3.0})["result"]
    assert data.result_rows(generated) == generated["rows"] and generated["rows"]
    flags = data.flagged_dates("get_rate_spike_from_median_rows", generated)
    assert set(flags) == {r["date"] for r in generated["rows"]}

    truth = easy.expected_rows[0]
    flagged = run_method(
        easy, "compare_rate_to_median", {"date": truth.date, "entity_name": truth.entity_name}
    )
    rows = data.result_rows(flagged["result"])
    assert rows == [truth.model_dump()]  # exactly the submission fields, threshold dropped
    normal_day = next(d for d in easy.dates if d not in {r.date for r in easy.expected_rows})
    normal = run_method(
        easy, "compare_rate_to_median", {"date": normal_day, "entity_name": truth.entity_name}
    )
    assert data.result_rows(normal["result"]) == []

    suspicious = run_method(easy, "list_suspicious_dates", {"limit": 3})["result"]
    marks = data.flagged_dates("list_suspicious_dates", suspicious)
    assert list(marks) == [d["date"] for d in suspicious["dates"]]
    merged = data.merge_flags(marks, data.flagged_dates("list_suspicious_dates", suspicious))
    assert merged == dict(sorted(marks.items()))  # no duplicated reasons


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


def test_charts_build_and_shade_flagged_dates(easy) -> None:
    charts = pytest.importorskip("metric_tracker_rl.web.charts")
    series = data.daily_series(easy)
    flags = {easy.dates[4]: ["suspicious"], easy.dates[9]: ["rate_spike_from_median: x"]}
    daily = charts.daily_counts_figure(series, flags)
    assert len(daily.layout.shapes) == 2
    assert [t.name for t in daily.data][-1] == "flagged by a detector"
    assert len(charts.daily_counts_figure(series, {}).layout.shapes) == 0
    rates = charts.rates_figure(series, flags)
    assert len(rates.layout.shapes) == 2 * 2  # each flagged date in both subplot columns
    assert [a.text for a in rates.layout.annotations] == list(C.RATE_METRICS)
    hourly = charts.hourly_figure(data.hourly_profile(easy, easy.dates[4]), flags[easy.dates[4]])
    assert "flagged" in hourly.layout.title.text
    funnel = charts.funnel_figure(data.funnel_shape(easy, easy.dates[4]))
    assert list(funnel.data[0].x) == list(C.EVENTS)


# --- feedback ----------------------------------------------------------------------------


def test_breakdown_table_adds_up_to_the_score() -> None:
    session = DebuggerSession(debug=False)
    session.reset(task_id="easy_single_spike")
    session.generators = [{"method_name": "get_rate_spike_from_median_rows", "threshold_multiplier": 3.0}]
    observation = session.submit([{"date": "not a date"}])
    assert observation.status == "graded"
    headers, rows = data.breakdown_table(observation.reward_breakdown)
    points = [r[headers.index("points")] for r in rows if r[0] in ("component", "penalty")]
    assert sum(points) == pytest.approx(observation.reward_breakdown["score"], abs=1e-3)
    assert {r[1] for r in rows} >= {"precision", "recall", "invalid_row_penalty", "missing_rows"}
    text = data.feedback_markdown(observation)
    assert f"Score {observation.reward:.4f}" in text and "row 0: invalid" in text
    assert f"{observation.reward_breakdown['matched_rows']} of 2 expected rows matched" in text
    assert "**Submissions** 1/3" in data.budget_line(observation)


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
    second.reset(task_id="hard_mixed_multi")
    observation = first.run_method("list_suspicious_dates", {"limit": 3})
    assert observation.budget["steps_used"] == 2 and len(first.flags) == 3
    assert second.flags == {} and second.env.state.step_count == 0
    assert first.episode is build_episode(config_for("easy_single_spike"))

    first.generators = [{"method_name": GENERATOR_METHODS[0], "threshold_multiplier": 2.0}]
    first.generated_rows()  # computed locally: no step
    assert first.env.state.step_count == 1
    preview = first.preview([])
    assert preview.status == "analysis" and preview.budget["steps_used"] == 3
    assert first.debug_snapshot() is None


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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1560, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


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


pytestmark_browser = pytest.mark.timeout(150)
pytestmark = pytest.mark.filterwarnings(  # raised inside Gradio's queue under pandas 3
    "ignore:.*no_silent_downcasting:Warning", "ignore:The copy keyword is deprecated:Warning"
)


@pytestmark_browser
def test_full_investigation(page, web_url: str) -> None:
    truth = next(  # the test's oracle: a rate anomaly of the task
        r
        for r in build_episode(config_for("medium_mixed_pair")).expected_rows
        if r.entity_type == "conversion_rate"
    )
    open_debugger(page, web_url)

    # Reset a named task.
    choose(page, "task-picker", "medium_mixed_pair")
    page.wait_for_function("() => document.querySelector('#reset-seed input').value === '2002'")
    page.click("#reset-button")
    wait_text(page, "#status-bar", "medium_mixed_pair")
    wait_text(page, "#episode-overview", "There are 3 anomaly rows")

    # Discovery: list_suspicious_dates (the default method); its dates are flagged in the charts.
    page.click("#run-method")
    wait_text(page, "#status-bar", "Budget 25 of 27 units left")
    wait_text(page, "#result-table", "top_metric")
    assert re.search(r"\d{4}-\d{2}-\d{2}", _text(page, "#result-table"))
    page.wait_for_function(
        "() => document.querySelector('#chart-daily').innerText.includes('flagged by a detector')"
    )

    # Targeted: compare_rate_to_median confirms the anomaly; its row goes to the submission.
    choose(page, "method-picker", "compare_rate_to_median")
    page.locator("#arg-date").wait_for(state="visible")
    choose(page, "arg-date", truth.date)
    choose(page, "arg-entity_name", truth.entity_name)
    page.click("#run-method")
    wait_text(page, "#status-bar", "Budget 24 of 27 units left")
    wait_text(page, "#result-table", truth.anomaly_type)
    assert "1 row(s) can be added" in _text(page, "#run-message")
    page.click("#add-result-rows")
    wait_text(page, "#hand-rows", truth.entity_name)

    # Every chart renders; hourly and funnel follow the date of the last method call.
    assert chart_title(page, "chart-daily") == "Daily counts per event"
    assert chart_title(page, "chart-rates").startswith("Conversion rates")
    page.wait_for_function(
        "(d) => (document.querySelector('#chart-hourly .gtitle')?.textContent || '').includes(d)",
        arg=truth.date,
    )
    assert f"Hourly app_opens on {truth.date}" in chart_title(page, "chart-hourly")
    assert chart_title(page, "chart-funnel").startswith(f"Funnel on {truth.date}")
    choose(page, "chart-event", "orders_placed")
    page.wait_for_function(
        "() => (document.querySelector('#chart-hourly .gtitle')?.textContent || '').includes('orders_placed')"
    )

    # Submission: the typed row plus a generator; preview, submit, read the score.
    choose(page, "gen-method", "get_absolute_spike_in_event_count_rows")
    page.fill("#gen-threshold input", "2.5")
    page.click("#add-generator")
    wait_text(page, "#generators-table", "get_absolute_spike_in_event_count_rows")
    wait_text(page, "#generated-rows", "compare_count_to_median")  # the rows it will send
    page.click("#preview-button")
    wait_text(page, "#feedback", "Preview:")
    wait_text(page, "#status-bar", "Budget 23 of 27 units left")
    page.click("#submit-button")
    wait_text(page, "#feedback", "Score")
    score = float(re.search(r"Score (\d\.\d{4})", _text(page, "#feedback")).group(1))
    assert 0.0 < score <= 1.0
    wait_text(page, "#status-bar", "Submissions 1/3")
    breakdown = _text(page, "#reward-breakdown")
    assert "precision" in breakdown and "extra_row_penalty" in breakdown
    assert page.locator("#debug-panel").count() == 0

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
        assert "easy_single_spike" in _text(first, "#status-bar")
        assert "Playground" not in first.content()  # not OpenEnv's generic tab
        assert first.locator("#debug-panel").count() == 0  # standard mode: no hidden truth
        # Each tab is its own episode.
        first.click("#run-method")
        wait_text(first, "#status-bar", "Budget 16 of 18 units left")
        assert "Budget 18 of 18 units left" in _text(second, "#status-bar")
        # Agent sessions are served alongside.
        reset = httpx.post(f"{web_url}/reset", json={"task_id": "hard_mixed_multi"}, timeout=10)
        assert reset.status_code == 200 and reset.json()["observation"]["task_id"] == "hard_mixed_multi"
    finally:
        for context in contexts:
            context.close()


@pytestmark_browser
def test_debug_panel_in_debug_mode(browser, debug_web_url: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        open_debugger(page, debug_web_url)
        assert page.locator("#debug-panel").count() == 1
        page.click("#debug-panel button")  # open the accordion
        wait_text(page, "#debug-expected", "rate_spike_from_median")
        assert "decoy_of" in _text(page, "#debug-schedule")
    finally:
        context.close()
