"""The analysis-method registry and the methods themselves (docs/task.md, Analysis methods).

Method results are checked against values recomputed here from the public raw data
(daily counts, hourly rows), never against the package's own statistics code.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import analysis, episode, tasks
from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import methods
from metric_tracker_rl.analysis.registry import method as register_method
from metric_tracker_rl.families import ENTITY_TYPES, FAMILIES, FAMILY_BY_TYPE, SCENARIO_FAMILIES
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.schemas import strict_schema

SPEC_METHODS = (
    "task_overview",
    "list_dates",
    "list_entities",
    "rows_for_date",
    "hourly_rows_for_date",
    "compare_rate_to_median",
    "compare_count_to_median",
    "detect_funnel_break",
    "check_impossible_counts",
    "list_suspicious_dates",
    "preview_submission",
    "show_raw_data",
    "get_metric_median",
    "get_metric_std_dev_from_median",
    "get_rows_with_abs_diff_from_median_gt",
    "get_median_filter_rows",
    "get_rate_drop_from_median_rows",
    "get_rate_spike_from_median_rows",
    "get_absolute_drop_in_event_count_rows",
    "get_absolute_spike_in_event_count_rows",
    "get_funnel_break_rows",
    "get_hourly_traffic_mix_shift_rows",
    "get_instrumentation_data_quality_issue_rows",
    "payload_generator",
)

# Episodes whose truth spans every kind of family: the three named tasks plus two
# procedural configs (one per hour-level family).
EPISODE_CONFIGS = {
    "hard_mixed_multi": lambda: tasks.config_for("hard_mixed_multi"),
    "medium_mixed_pair": lambda: tasks.config_for("medium_mixed_pair"),
    "easy_single_spike": lambda: tasks.config_for("easy_single_spike"),
    "mixed_high_medium": lambda: tasks.config_for(
        seed=41, scenario_family="mixed", difficulty="medium", anomaly_density="high"
    ),
    "data_quality_hard": lambda: tasks.config_for(
        seed=42, scenario_family="instrumentation_data_quality_issue", difficulty="hard"
    ),
}


def _episode(name: str) -> episode.Episode:
    return episode.build_episode(EPISODE_CONFIGS[name]())


@pytest.fixture(scope="module")
def hard() -> episode.Episode:
    return _episode("hard_mixed_multi")


def run(ep: episode.Episode, name: Any, args: Any = None) -> dict[str, Any]:
    out = analysis.run_method(ep, name, args)
    assert "error" not in out, out
    return out["result"]


def full(ep: episode.Episode, name: str, args: Any = None) -> dict[str, Any]:
    """A method's whole result, before the per-call row limit and the budget apply."""
    return analysis.REGISTRY[name].function(ep, analysis.parse_arguments(name, args))


def error_of(ep: episode.Episode, name: Any, args: Any = None) -> str:
    out = analysis.run_method(ep, name, args)
    assert "result" not in out, out
    assert isinstance(out["error"], str) and out["error"]
    return out["error"]


# --- independent recomputation from public raw data -------------------------------------

EVENTS = C.EVENTS


class Table:
    """Every entity's daily statistic, recomputed from hourly_rows_for_date."""

    def __init__(self, ep: episode.Episode) -> None:
        self.dates = [d["date"] for d in run(ep, "list_dates")["dates"]]
        hourly = np.array(
            [
                [
                    [row[e] for e in EVENTS]
                    for row in run(ep, "hourly_rows_for_date", {"date": d})["hourly_rows"]
                ]
                for d in self.dates
            ],
            dtype=np.float64,
        )
        self.hourly = hourly
        daily = hourly.sum(axis=1)
        self.values: dict[str, np.ndarray] = {}
        self.base: dict[str, float] = {}
        self.kind: dict[str, str] = {}
        for i, e in enumerate(EVENTS):
            self._add(e, "count", daily[:, i])
        for name, (num, den) in C.CONVERSION_METRICS.items():
            self._add(name, "rate", 100.0 * daily[:, num] / daily[:, den])
        for step, (name, rate_name) in enumerate(zip(C.FUNNEL_STEPS, C.ADJACENT_RATE_METRICS, strict=True)):
            up, down = hourly[:, :, step], hourly[:, :, step + 1]
            bad = (hourly[:, :, 1:] > hourly[:, :, :-1]).any(axis=2) | (up <= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bad, np.inf, 100.0 * down / up)
            self._add(name, "funnel", ratio.min(axis=1), base=float(np.median(self.values[rate_name])))
        daytime = hourly[:, list(C.DAYTIME_HOURS), 0].sum(axis=1)
        self._add(C.HOURLY_MIX_ENTITY, "mix", 100.0 * daytime / daily[:, 0])
        for step, name in enumerate(C.DATA_QUALITY_PAIRS):
            excess = np.maximum(hourly[:, :, step + 1] - hourly[:, :, step], 0).sum(axis=1)
            self._add(name, "quality", excess, base=0.0)

    def _add(self, name: str, kind: str, values: np.ndarray, base: float | None = None) -> None:
        self.values[name] = values
        self.base[name] = float(np.median(values)) if base is None else base
        self.kind[name] = kind

    def std(self, name: str) -> float:
        return math.sqrt(float(np.mean((self.values[name] - self.base[name]) ** 2)))


@pytest.fixture(scope="module")
def hard_table(hard: episode.Episode) -> Table:
    return Table(hard)


# --- 1. the registry --------------------------------------------------------------------


def test_every_spec_method_is_registered_exactly_once():
    assert sorted(analysis.REGISTRY) == sorted(SPEC_METHODS)
    assert len(analysis.REGISTRY) == len(SPEC_METHODS) == len(set(SPEC_METHODS))
    for name, spec in analysis.REGISTRY.items():
        assert spec.name == name
        assert spec.description, f"{name} has no description"


def test_registering_a_name_twice_is_refused():
    before = dict(analysis.REGISTRY)
    with pytest.raises(RuntimeError, match="registered twice"):
        register_method("task_overview", "overview", methods.NoArgs, cost=1)(lambda ep, args: {})
    assert before == analysis.REGISTRY


def test_available_methods_are_derived_from_the_registry():
    names = list(analysis.REGISTRY)
    listed = analysis.available_methods()
    assert [m["name"] for m in listed] == names
    for entry in listed:
        spec = analysis.REGISTRY[entry["name"]]
        assert entry["kind"] == spec.kind
        assert entry["description"] == spec.description
        assert entry["cost"] == spec.cost and entry["cost_per_row"] == spec.cost_per_row
        assert entry["arguments"] == spec.arguments_schema()
        assert spec.input_schema() == strict_schema(spec.arguments_schema())


def _walk_keys(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk_keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_keys(value)


def test_argument_schemas_are_self_contained_json_schemas():
    jsonschema = pytest.importorskip("jsonschema")
    for spec in analysis.REGISTRY.values():
        schema = spec.arguments_schema()
        assert schema["type"] == "object"
        assert isinstance(schema["properties"], dict)
        assert set(schema["required"]) <= set(schema["properties"])
        keys = set(_walk_keys(schema))
        assert "$ref" not in keys and "$defs" not in keys and "title" not in keys, spec.name
        jsonschema.Draft202012Validator.check_schema(schema)
        json.dumps(schema, allow_nan=False)


def test_required_arguments_match_the_spec_signatures():
    required = {name: spec.arguments_schema()["required"] for name, spec in analysis.REGISTRY.items()}
    assert required["rows_for_date"] == ["date"]
    assert sorted(required["compare_rate_to_median"]) == ["date", "entity_name"]
    assert sorted(required["compare_count_to_median"]) == ["date", "entity_name"]
    assert required["payload_generator"] == ["generator_methods"]
    assert required["list_suspicious_dates"] == []
    assert required["task_overview"] == []


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("list_suspicious_dates", {"limit": None}),
        ("get_median_filter_rows", {"metric_name": None, "metric_names": None, "threshold_multiplier": None}),
        (
            "payload_generator",
            {"generator_methods": [{"method_name": "get_median_filter_rows", "threshold_multiplier": None}]},
        ),
    ],
)
def test_null_for_an_optional_argument_means_its_default(hard, name, args):
    """Strict tool calls send every argument; null stands for "not given"."""

    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_nulls(v) for v in value]
        return value

    given = analysis.run_method(hard, name, args)
    assert "error" not in given, given
    assert given == analysis.run_method(hard, name, without_nulls(args))


def test_null_for_a_required_argument_is_an_error(hard):
    assert "date" in error_of(hard, "rows_for_date", {"date": None})


def test_generator_methods_are_the_registered_generators():
    generators = [n for n, s in analysis.REGISTRY.items() if s.kind == "generator"]
    assert list(analysis.GENERATOR_METHODS) == generators
    assert "payload_generator" not in analysis.GENERATOR_METHODS
    expected = {f.generator_method for f in FAMILIES} | {
        "get_rows_with_abs_diff_from_median_gt",
        "get_median_filter_rows",
    }
    assert set(generators) == expected


# --- 2. bad calls -----------------------------------------------------------------------


def test_unknown_method(hard):
    message = error_of(hard, "no_such_method", {})
    assert "unknown analysis method 'no_such_method'" in message
    assert "task_overview" in message  # lists what is available


@pytest.mark.parametrize("name", [5, None, ["task_overview"], {"m": 1}, 1.5])
def test_non_string_method_name(hard, name):
    assert "analysis_method must be a string" in error_of(hard, name, {})


def test_missing_argument(hard):
    message = error_of(hard, "rows_for_date", {})
    assert "date" in message and "required" in message.lower()
    message = error_of(hard, "compare_rate_to_median", {"date": hard.dates[0]})
    assert "entity_name" in message and "required" in message.lower()


def test_error_carries_the_argument_schema(hard):
    out = analysis.run_method(hard, "rows_for_date", {})
    assert out["method"] == "rows_for_date"
    assert out["arguments"] == analysis.REGISTRY["rows_for_date"].arguments_schema()


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("list_suspicious_dates", {"limit": "5"}, "limit"),
        ("show_raw_data", {"limit": "5"}, "limit"),
        ("show_raw_data", {"limit": 2.5}, "limit"),
        ("show_raw_data", {"limit": True}, "limit"),
        ("rows_for_date", {"date": 5}, "date"),
        ("hourly_rows_for_date", {"date": None}, "date"),
        ("get_metric_median", {"metric_name": ["app_opens"]}, "metric_name"),
        ("get_rate_drop_from_median_rows", {"threshold_multiplier": "2"}, "threshold_multiplier"),
        ("get_rate_drop_from_median_rows", {"metric_names": "app_open_to_menu_open"}, "metric_names"),
        ("preview_submission", {"rows": "not a list"}, "rows"),
        ("payload_generator", {"generator_methods": {"method_name": "x"}}, "generator_methods"),
    ],
)
def test_wrong_argument_type(hard, name, args, field):
    message = error_of(hard, name, args)
    assert f"bad arguments for {name!r}" in message
    assert field in message


@pytest.mark.parametrize("date", ["2020-01-01", "2026-02-30", "yesterday", "", "2026-04-01"])
def test_unknown_date(hard, date):
    for name, extra in [
        ("rows_for_date", {}),
        ("hourly_rows_for_date", {}),
        ("detect_funnel_break", {}),
        ("check_impossible_counts", {}),
        ("compare_rate_to_median", {"entity_name": "app_open_to_menu_open"}),
        ("compare_count_to_median", {"entity_name": "app_opens"}),
    ]:
        message = error_of(hard, name, {"date": date, **extra})
        assert f"unknown date {date!r}" in message
        assert hard.dates[0] in message and hard.dates[-1] in message


@pytest.mark.parametrize(
    ("name", "entity", "allowed"),
    [
        ("compare_rate_to_median", "nope", C.RATE_METRICS),
        ("compare_rate_to_median", "app_opens", C.RATE_METRICS),
        ("compare_rate_to_median", C.FUNNEL_STEPS[0], C.RATE_METRICS),
        ("compare_count_to_median", "app_open_to_menu_open", C.EVENTS),
        ("compare_count_to_median", "APP_OPENS", C.EVENTS),
    ],
)
def test_unknown_or_wrong_kind_of_entity(hard, name, entity, allowed):
    message = error_of(hard, name, {"date": hard.dates[3], "entity_name": entity})
    assert f"unknown entity_name {entity!r}" in message
    for allowed_name in allowed:
        assert allowed_name in message


def test_unknown_metric_for_statistics_and_generators(hard):
    assert "unknown entity_name 'nope'" in error_of(hard, "get_metric_median", {"metric_name": "nope"})
    assert "unknown entity_name 'nope'" in error_of(
        hard, "get_metric_std_dev_from_median", {"metric_name": "nope"}
    )
    # a generator only accepts entities of its own family
    message = error_of(hard, "get_rate_drop_from_median_rows", {"metric_name": "app_opens"})
    assert "unknown entity_name 'app_opens'" in message
    message = error_of(hard, "get_funnel_break_rows", {"metric_names": [C.FUNNEL_STEPS[0], "app_opens"]})
    assert "unknown entity_name 'app_opens'" in message
    message = error_of(
        hard,
        "get_rate_drop_from_median_rows",
        {"metric_name": "app_open_to_menu_open", "metric_names": ["app_open_to_menu_open"]},
    )
    assert "not both" in message


@pytest.mark.parametrize("name", ["list_suspicious_dates", "show_raw_data"])
@pytest.mark.parametrize("limit", [0, 29, -1, 10**9])
def test_out_of_range_limit(hard, name, limit):
    message = error_of(hard, name, {"limit": limit})
    assert "limit" in message
    assert "greater than or equal to 1" in message or "less than or equal to 28" in message


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), float("-inf"), -0.5, -1, 1e9, 1e308])
def test_bad_threshold_multiplier(hard, threshold):
    for name in ("get_rate_drop_from_median_rows", "get_median_filter_rows"):
        message = error_of(hard, name, {"threshold_multiplier": threshold})
        assert "threshold_multiplier" in message
    message = error_of(
        hard,
        "payload_generator",
        {"generator_methods": [{"method_name": "get_median_filter_rows", "threshold_multiplier": threshold}]},
    )
    assert "threshold_multiplier" in message


def test_extra_unknown_argument(hard):
    message = error_of(hard, "rows_for_date", {"date": hard.dates[0], "verbose": True})
    assert "verbose" in message and "Extra inputs are not permitted" in message
    message = error_of(hard, "task_overview", {"x": 1})
    assert "x" in message and "Extra inputs are not permitted" in message


@pytest.mark.parametrize("args", [[], ["date"], "2026-03-10", 5, 1.5, True])
def test_non_dict_arguments(hard, args):
    assert "must be an object" in error_of(hard, "rows_for_date", args)


def test_none_arguments_mean_no_arguments(hard):
    assert run(hard, "list_dates", None)["dates"][0]["date"] == hard.dates[0]


def test_payload_generator_rejects_non_generators(hard):
    for bad in ("payload_generator", "task_overview", "nope"):
        message = error_of(
            hard,
            "payload_generator",
            {"generator_methods": [{"method_name": bad, "threshold_multiplier": 2}]},
        )
        assert f"unknown generator method {bad!r}" in message
    assert "generator_methods" in error_of(hard, "payload_generator", {"generator_methods": []})
    assert "method_name" in error_of(hard, "payload_generator", {"generator_methods": [{}]})


# hypothesis: arbitrary JSON-like arguments never make a method raise

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_ARG_NAMES = (
    "date",
    "entity_name",
    "limit",
    "rows",
    "metric_name",
    "metric_names",
    "threshold_multiplier",
    "generator_methods",
    "method_name",
)


def _plausible(ep: episode.Episode) -> dict[str, st.SearchStrategy]:
    """Per argument name: well-formed values (in and out of range, known and unknown names)."""
    names = [e.entity_name for e in methods.S.ENTITIES]
    threshold = st.floats(min_value=-1, max_value=120) | st.integers(min_value=-2, max_value=120)
    row = st.fixed_dictionaries(
        {},
        optional={
            field: st.sampled_from([*ep.dates, *names, "low", "high", "funnel_break", "bogus"])
            | st.floats(min_value=-1e3, max_value=1e5)
            | _scalars
            for field in ROW_FIELDS
        },
    )
    spec = st.fixed_dictionaries(
        {"method_name": st.sampled_from([*analysis.GENERATOR_METHODS, "payload_generator", "x"])},
        optional={
            "threshold_multiplier": threshold | _scalars,
            "metric_name": st.sampled_from(names) | _scalars,
            "metric_names": st.lists(st.sampled_from(names), max_size=3) | _json,
        },
    )
    good = {
        "date": st.sampled_from(ep.dates),
        "entity_name": st.sampled_from(names),
        "limit": st.integers(min_value=-2, max_value=30),
        "rows": st.lists(row | st.sampled_from([r.model_dump() for r in ep.expected_rows]), max_size=5),
        "metric_name": st.sampled_from(names),
        "metric_names": st.lists(st.sampled_from(names), max_size=4),
        "threshold_multiplier": threshold,
        "generator_methods": st.lists(spec, min_size=0, max_size=3),
        "method_name": st.sampled_from(analysis.GENERATOR_METHODS),
        "entity_type": st.sampled_from([*ENTITY_TYPES, None, "nope"]),
    }
    return good


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_run_method_never_raises_on_arbitrary_arguments(data):
    hard = _episode("hard_mixed_multi")
    # mostly registered names with their own (well-formed or garbage) arguments
    if data.draw(st.sampled_from([True] * 4 + [False]), label="registered name"):
        name = data.draw(st.sampled_from(list(analysis.REGISTRY)), label="method")
    else:
        name = data.draw(_json | st.text(max_size=20), label="method")
    spec = analysis.REGISTRY.get(name) if isinstance(name, str) else None
    schema = spec.arguments_schema() if spec else {"properties": {}, "required": []}
    plausible = _plausible(hard)
    shape = data.draw(st.sampled_from(["own"] * 5 + ["own, garbage values", "any", "json"]), label="shape")
    if shape.startswith("own"):
        values = {k: _json for k in plausible} if shape != "own" else plausible
        strategy = st.fixed_dictionaries(
            {k: values[k] for k in schema["required"]},
            optional={k: values[k] for k in schema["properties"] if k not in schema["required"]},
        )
    elif shape == "any":
        strategy = st.dictionaries(st.sampled_from(_ARG_NAMES) | st.text(max_size=6), _json, max_size=4)
    else:
        strategy = _json
    args = data.draw(strategy, label="args")
    out = analysis.run_method(hard, name, args)
    assert isinstance(out, dict)
    assert ("result" in out) != ("error" in out), out
    if "error" in out:
        assert isinstance(out["error"], str) and out["error"]
    json.dumps(out, allow_nan=False)  # every answer is plain JSON


# --- 3. method semantics ------------------------------------------------------------------

TYPES_BY_METHOD = {
    "compare_rate_to_median": {"rate_drop_from_median", "rate_spike_from_median"},
    "compare_count_to_median": {"absolute_drop_in_event_count", "absolute_spike_in_event_count"},
    "detect_funnel_break": {"funnel_break"},
    "hourly_rows_for_date": {"hourly_traffic_mix_shift"},
    "check_impossible_counts": {"instrumentation_data_quality_issue"},
}


def _all_assessments(ep: episode.Episode) -> list[dict[str, Any]]:
    out = []
    for date in ep.dates:
        for metric in C.RATE_METRICS:
            out.append(run(ep, "compare_rate_to_median", {"date": date, "entity_name": metric}))
        for event in C.EVENTS:
            out.append(run(ep, "compare_count_to_median", {"date": date, "entity_name": event}))
        for name in ("detect_funnel_break", "hourly_rows_for_date", "check_impossible_counts"):
            out.extend(run(ep, name, {"date": date})["assessments"])
    return out


def _check_assessment(item: dict[str, Any]) -> None:
    method = item["detection_method"]
    assert set(item) - {"threshold", "hours"} == set(ROW_FIELDS)
    assert item["anomaly_type"] in TYPES_BY_METHOD[method] | {"normal"}, item
    if item["anomaly_type"] == "normal":
        assert item["severity"] is None
    else:
        assert item["severity"] in C.SEVERITY_LEVELS
    for field in ("baseline_value", "observed_value", "delta_value"):
        value = item[field]
        assert isinstance(value, float) and math.isfinite(value)
        assert value == round(value, C.ROUND_DIGITS)
    assert item["delta_value"] == round(item["observed_value"] - item["baseline_value"], C.ROUND_DIGITS)
    threshold = item["threshold"]
    assert set(threshold) == {"value", "unit", "rule"}
    flagged = item["anomaly_type"] != "normal"
    delta, base = item["delta_value"], item["baseline_value"]
    tol = 1e-3
    if method == "compare_rate_to_median":
        assert threshold["value"] == C.RATE_THRESHOLD_PP[item["entity_name"]]
        assert (
            (abs(delta) > threshold["value"] - tol) if flagged else (abs(delta) <= threshold["value"] + tol)
        )
        if flagged:
            assert item["anomaly_type"] == (
                "rate_spike_from_median" if delta > 0 else "rate_drop_from_median"
            )
    elif method == "compare_count_to_median":
        assert threshold["value"] == C.COUNT_THRESHOLD_RELATIVE
        relative = abs(delta) / base
        assert (relative > 0.22 - 1e-6) if flagged else (relative <= 0.22 + 1e-6)
        if flagged:
            expected_type = "absolute_spike_in_event_count" if delta > 0 else "absolute_drop_in_event_count"
            assert item["anomaly_type"] == expected_type
    elif method == "detect_funnel_break":
        assert threshold["value"] == C.FUNNEL_BREAK_RELATIVE_DROP
        limit = (1 - C.FUNNEL_BREAK_RELATIVE_DROP) * base
        assert (item["observed_value"] < limit + tol) if flagged else (item["observed_value"] >= limit - tol)
    elif method == "hourly_rows_for_date":
        assert threshold["value"] == C.HOURLY_MIX_THRESHOLD_PP
        assert (abs(delta) > 5.0 - tol) if flagged else (abs(delta) <= 5.0 + tol)
    else:
        assert base == 0.0
        assert flagged == (item["observed_value"] > 0)
        assert bool(item["hours"]) == flagged


@pytest.mark.parametrize("config_name", list(EPISODE_CONFIGS))
def test_targeted_assessments_follow_the_public_rules_and_match_the_truth(config_name):
    ep = _episode(config_name)
    flagged = {}
    for item in _all_assessments(ep):
        _check_assessment(item)
        if item["anomaly_type"] != "normal":
            row = {k: v for k, v in item.items() if k in ROW_FIELDS}
            flagged[f"{row['date']}|{row['entity_type']}|{row['entity_name']}"] = row
    expected = {row.key: row.model_dump() for row in ep.expected_rows}
    assert expected, "a task without anomalies tests nothing"
    # the hidden truth is exactly what the public detectors flag, with the same values
    assert flagged == expected


def test_targeted_observed_values_match_the_raw_data(hard, hard_table):
    t = hard_table
    for day, date in enumerate(t.dates):
        daily = run(hard, "rows_for_date", {"date": date})
        assert daily["counts"] == {e: int(v) for e, v in zip(EVENTS, t.hourly[day].sum(axis=0), strict=True)}
        for metric in C.RATE_METRICS:
            item = run(hard, "compare_rate_to_median", {"date": date, "entity_name": metric})
            assert item["observed_value"] == pytest.approx(t.values[metric][day], abs=1e-4)
            assert item["baseline_value"] == pytest.approx(t.base[metric], abs=1e-4)
            assert daily["rates_pct"][metric] == pytest.approx(t.values[metric][day], abs=1e-4)
        for item in run(hard, "detect_funnel_break", {"date": date})["assessments"]:
            assert item["observed_value"] == pytest.approx(t.values[item["entity_name"]][day], abs=1e-4)
            assert item["baseline_value"] == pytest.approx(t.base[item["entity_name"]], abs=1e-4)
        (mix,) = run(hard, "hourly_rows_for_date", {"date": date})["assessments"]
        assert mix["observed_value"] == pytest.approx(t.values[C.HOURLY_MIX_ENTITY][day], abs=1e-4)
        for step, item in enumerate(run(hard, "check_impossible_counts", {"date": date})["assessments"]):
            assert item["observed_value"] == t.values[item["entity_name"]][day]
            hours = np.flatnonzero(t.hourly[day, :, step + 1] > t.hourly[day, :, step]).tolist()
            assert item["hours"] == hours


def test_hourly_rows_sum_to_the_daily_row(hard):
    for date in hard.dates[:5]:
        hourly = run(hard, "hourly_rows_for_date", {"date": date})["hourly_rows"]
        assert [h["hour"] for h in hourly] == list(range(24))
        daily = run(hard, "rows_for_date", {"date": date})["counts"]
        for event in EVENTS:
            assert sum(h[event] for h in hourly) == daily[event]


def test_show_raw_data_and_list_dates(hard):
    dates = run(hard, "list_dates")["dates"]
    assert [d["date"] for d in dates] == list(hard.dates) and len(dates) == C.NUM_DAYS
    for limit in (1, 7, 28):
        rows = full(hard, "show_raw_data", {"limit": limit})["rows"]
        assert [r["date"] for r in rows] == list(hard.dates[:limit])
        shown = run(hard, "show_raw_data", {"limit": limit})
        assert shown["rows"] == rows[: C.MAX_ROWS_PER_CALL]
        assert shown["truncated"] == (limit > C.MAX_ROWS_PER_CALL)
    assert len(run(hard, "show_raw_data")["rows"]) == 3


def test_list_suspicious_dates(hard):
    for limit in (1, 5, 28):
        ranked = run(hard, "list_suspicious_dates", {"limit": limit})["dates"]
        assert len(ranked) == limit
        scores = [d["score"] for d in ranked]
        assert scores == sorted(scores, reverse=True)
        assert len({d["date"] for d in ranked}) == limit
    for item in run(hard, "list_suspicious_dates", {"limit": 28})["dates"]:
        signals = item["signals"]
        assert 1 <= len(signals) <= methods.SIGNALS_PER_DATE
        assert item["top_metric"] == signals[0]["entity_name"] and item["score"] == signals[0]["score"]
        assert [s["score"] for s in signals] == sorted((s["score"] for s in signals), reverse=True)
        for signal in signals:
            assert set(signal) == {"entity_type", "entity_name", "direction", "score"}
            assert signal["direction"] in ("up", "down") and signal["score"] == round(signal["score"], 1)


@pytest.mark.parametrize("entity_type", ENTITY_TYPES)
def test_list_suspicious_dates_ranks_one_entity_type(hard, entity_type):
    ranked = run(hard, "list_suspicious_dates", {"limit": 28, "entity_type": entity_type})["dates"]
    assert len(ranked) == 28
    assert [d["score"] for d in ranked] == sorted((d["score"] for d in ranked), reverse=True)
    assert all(s["entity_type"] == entity_type for item in ranked for s in item["signals"])
    cols = [e.index for e in methods.S.ENTITIES if e.entity_type == entity_type]
    for item in ranked:
        day = hard.date_index[item["date"]]
        assert item["score"] == round(float(hard.unusualness[day, cols].max()), 1)


def test_a_statistic_that_takes_few_values_does_not_crowd_the_ranking():
    """The lowest hourly step rate of small night hours moves in steps (9/11, 5/6, ...): on
    a day nothing moved, one step from the median is no 4-sigma signal, thanks to the scale
    floor (without it, 13 quiet days of these 40 episodes rank as such)."""
    loud = 0
    for seed in range(40):
        family = SCENARIO_FAMILIES[seed % len(SCENARIO_FAMILIES)]
        ep = episode.build_episode(
            tasks.config_for(seed=329_113_816 + seed, scenario_family=family, difficulty="medium")
        )
        moved = {int(d) for d in np.nonzero(ep.flagged)[0]} | {d.day for d in ep.decoys}
        quiet = [day for day in range(len(ep.dates)) if day not in moved]
        loud += int((ep.unusualness[quiet][:, methods.S.FUNNEL_COLS].max(axis=1) > 4.0).sum())
    assert loud == 0


def test_discovery_is_a_hint_not_a_verdict():
    """Across many episodes, the top-ranked signals hold decoys as well as anomalies: the
    ranking alone does not say which dates are anomalous."""
    decoys_on_top = anomalies_on_top = 0
    for seed in range(12):
        ep = episode.build_episode(tasks.config_for(seed=300 + seed, difficulty="hard"))
        truth = {(r.date, r.entity_name) for r in ep.expected_rows}
        decoy_days = {ep.dates[d.day] for d in ep.decoys}
        limit = min(len({r.date for r in ep.expected_rows}) + len(decoy_days), C.NUM_DAYS)
        top = run(ep, "list_suspicious_dates", {"limit": limit})["dates"]
        decoys_on_top += sum(item["date"] in decoy_days for item in top)
        anomalies_on_top += sum((item["date"], item["top_metric"]) in truth for item in top)
    assert decoys_on_top > 0.3 * (decoys_on_top + anomalies_on_top)
    assert anomalies_on_top > 0


def test_task_overview_reveals_counts_not_rows(hard):
    overview = run(hard, "task_overview")
    assert overview["expected_row_count"] is None  # hard hides it
    assert overview["config"]["anomaly_count"] == len(hard.incidents)
    medium = episode.build_episode(tasks.config_for("medium_mixed_pair"))
    assert run(medium, "task_overview")["expected_row_count"] == len(medium.expected_rows)
    assert len(overview["families"]) == 7
    assert overview["row_schema"] == list(ROW_FIELDS)
    text = json.dumps(overview)
    for row in hard.expected_rows:
        assert row.key not in text


@pytest.mark.parametrize(
    "metric", ["app_opens", "orders_placed", "app_open_to_menu_open", "app_open_to_payment_successful"]
)
def test_median_and_std_dev_from_median_recomputed_from_raw_daily_rows(hard, metric):
    raw = full(hard, "show_raw_data", {"limit": C.NUM_DAYS})["rows"]
    counts = np.array([[r["counts"][e] for e in EVENTS] for r in raw], dtype=float)
    if metric in C.EVENTS:
        x = counts[:, EVENTS.index(metric)]
    else:
        num, den = C.CONVERSION_METRICS[metric]
        x = 100.0 * counts[:, num] / counts[:, den]
    median = float(np.median(x))
    std = math.sqrt(float(np.mean((x - median) ** 2)))
    assert std > 0
    got = run(hard, "get_metric_std_dev_from_median", {"metric_name": metric})
    assert got["median"] == pytest.approx(median, abs=1e-4)
    assert got["std_dev_from_median"] == pytest.approx(std, abs=1e-4)
    assert run(hard, "get_metric_median", {"metric_name": metric})["median"] == got["median"]


def test_std_dev_from_median_for_every_entity(hard, hard_table):
    for name in hard_table.values:
        got = run(hard, "get_metric_std_dev_from_median", {"metric_name": name})
        assert got["median"] == pytest.approx(hard_table.base[name], abs=1e-4), name
        assert got["std_dev_from_median"] == pytest.approx(hard_table.std(name), abs=1e-4), name


# generator name -> (statistic kinds, direction, fixed anomaly_type or None)
GENERATOR_RULES = {
    **{f.generator_method: ((f.statistic,), f.direction, f.anomaly_type) for f in FAMILIES},
    "get_rows_with_abs_diff_from_median_gt": (("count", "rate"), "both", None),
    "get_median_filter_rows": (("count", "rate", "funnel", "mix", "quality"), "both", None),
}
_TYPE_BY_SIGN = {
    "count": ("absolute_drop_in_event_count", "absolute_spike_in_event_count"),
    "rate": ("rate_drop_from_median", "rate_spike_from_median"),
    "funnel": ("funnel_break", None),
    "mix": ("hourly_traffic_mix_shift", "hourly_traffic_mix_shift"),
    "quality": (None, "instrumentation_data_quality_issue"),
}


def _expected_generator_rows(table: Table, generator: str, k: float) -> dict[str, str]:
    kinds, direction, fixed_type = GENERATOR_RULES[generator]
    out = {}
    for name, values in table.values.items():
        kind = table.kind[name]
        if kind not in kinds:
            continue
        delta = values - table.base[name]
        limit = k * table.std(name)
        for day, d in enumerate(delta):
            hit = {"up": d > limit, "down": d < -limit, "both": abs(d) > limit}[direction]
            anomaly_type = fixed_type or _TYPE_BY_SIGN[kind][int(d > 0)]
            if hit and anomaly_type:
                out[f"{table.dates[day]}|{name}"] = anomaly_type
    return out


def test_generators_cover_every_registered_generator():
    assert set(GENERATOR_RULES) == set(analysis.GENERATOR_METHODS)


@pytest.mark.parametrize("generator", sorted(GENERATOR_RULES))
@pytest.mark.parametrize("k", [1.0, 1.5, 2.0, 3.0])
def test_generator_rows_are_exactly_those_beyond_k_std(hard, hard_table, generator, k):
    result = full(hard, generator, {"threshold_multiplier": k})
    rows = result["rows"]
    assert result["row_count"] == len(rows)
    shown = analysis.run_method(hard, generator, {"threshold_multiplier": k})
    assert shown["result"]["rows"] == rows[: C.MAX_ROWS_PER_CALL]
    assert shown["result"]["matching_rows"] == len(rows)
    assert shown["cost"] == 1 + C.GENERATOR_ROW_COST * len(shown["result"]["rows"])
    got = {f"{r['date']}|{r['entity_name']}": r["anomaly_type"] for r in rows}
    assert len(got) == len(rows), "a generator returned the same (date, entity) twice"
    assert got == _expected_generator_rows(hard_table, generator, k)
    for r in rows:
        assert list(r) == list(ROW_FIELDS)
        assert r["delta_value"] == round(r["observed_value"] - r["baseline_value"], C.ROUND_DIGITS)
        std = hard_table.std(r["entity_name"])
        assert abs(r["delta_value"]) > k * std - 1e-3


def test_rate_generator_recomputed_independently_for_one_metric(hard):
    metric = "app_open_to_payment_successful"
    raw = full(hard, "show_raw_data", {"limit": C.NUM_DAYS})["rows"]
    num, den = C.CONVERSION_METRICS[metric]
    x = np.array([100.0 * r["counts"][EVENTS[num]] / r["counts"][EVENTS[den]] for r in raw])
    median = float(np.median(x))
    std = math.sqrt(float(np.mean((x - median) ** 2)))
    for k in (1.0, 1.5, 2.0):
        drops = full(
            hard, "get_rate_drop_from_median_rows", {"metric_name": metric, "threshold_multiplier": k}
        )
        spikes = full(
            hard, "get_rate_spike_from_median_rows", {"metric_names": [metric], "threshold_multiplier": k}
        )
        either = full(
            hard, "get_rows_with_abs_diff_from_median_gt", {"metric_name": metric, "threshold_multiplier": k}
        )
        want_drop = [hard.dates[i] for i in np.flatnonzero(x - median < -k * std)]
        want_spike = [hard.dates[i] for i in np.flatnonzero(x - median > k * std)]
        assert [r["date"] for r in drops["rows"]] == want_drop
        assert [r["date"] for r in spikes["rows"]] == want_spike
        assert sorted(r["date"] for r in either["rows"]) == sorted(want_drop + want_spike)
        assert {r["entity_name"] for r in either["rows"]} <= {metric}
        for r in either["rows"]:
            want = "rate_drop_from_median" if r["date"] in want_drop else "rate_spike_from_median"
            assert r["anomaly_type"] == want
            assert r["detection_method"] == "compare_rate_to_median"
            assert r["entity_type"] == "conversion_rate"


def test_the_lowest_threshold_over_submits_and_a_huge_one_returns_nothing(hard):
    lowest = {"threshold_multiplier": C.MIN_THRESHOLD_MULTIPLIER}
    many = full(hard, "get_median_filter_rows", lowest)["row_count"]
    assert many > 10 * len(hard.expected_rows)
    shown = run(hard, "get_median_filter_rows", lowest)
    assert shown["row_count"] == C.MAX_ROWS_PER_CALL and shown["matching_rows"] == many
    assert shown["truncated"] and "rows shown" in shown["note"]
    for generator in analysis.GENERATOR_METHODS:
        assert run(hard, generator, {"threshold_multiplier": 100})["rows"] == [], generator


@pytest.mark.parametrize(
    "generator", ["get_median_filter_rows", "get_funnel_break_rows", "payload_generator"]
)
def test_a_threshold_below_the_floor_is_refused(hard, generator):
    low = {"threshold_multiplier": C.MIN_THRESHOLD_MULTIPLIER - 0.5}
    args = {"generator_methods": [{"method_name": "get_funnel_break_rows", **low}]}
    out = analysis.run_method(hard, generator, args if generator == "payload_generator" else low)
    assert "error" in out and "threshold_multiplier" in out["error"] and out["cost"] == C.ERROR_COST


def test_empty_metric_names_select_nothing(hard):
    assert (
        run(hard, "get_median_filter_rows", {"metric_names": [], "threshold_multiplier": 1.0})["rows"] == []
    )


def test_payload_generator_merges_and_deduplicates(hard):
    first = {"method_name": "get_rate_drop_from_median_rows", "threshold_multiplier": 1.5}
    second = {"method_name": "get_rows_with_abs_diff_from_median_gt", "threshold_multiplier": 1.5}
    third = {"method_name": "get_rate_drop_from_median_rows", "threshold_multiplier": 1.0}
    rows_1 = full(hard, first["method_name"], {"threshold_multiplier": 1.5})["rows"]
    rows_2 = full(hard, second["method_name"], {"threshold_multiplier": 1.5})["rows"]
    rows_3 = full(hard, third["method_name"], {"threshold_multiplier": 1.0})["rows"]
    merged = full(hard, "payload_generator", {"generator_methods": [first, second, third, first]})

    def key(r):
        return f"{r['date']}|{r['entity_type']}|{r['entity_name']}"

    keys = [key(r) for r in merged["rows"]]
    assert merged["row_count"] == len(keys)
    assert len(keys) == len(set(keys)), "payload_generator returned duplicate keys"
    assert set(keys) == {key(r) for r in rows_1 + rows_2 + rows_3}
    assert merged["rows"][: len(rows_1)] == rows_1  # the first spec's rows come first, unchanged
    assert len(rows_2) > 0 and len(set(keys)) < len(rows_1) + len(rows_2) + len(rows_3)
    # the environment's builder gives the same rows
    specs = analysis.parse_generator_specs([first, second, third])
    assert analysis.build_payload(hard, specs) == merged["rows"]


def test_payload_generator_with_metric_filters(hard):
    spec = {
        "method_name": "get_median_filter_rows",
        "metric_names": ["app_opens", C.HOURLY_MIX_ENTITY],
        "threshold_multiplier": 1.0,
    }
    rows = full(hard, "payload_generator", {"generator_methods": [spec]})["rows"]
    assert rows and {r["entity_name"] for r in rows} == {"app_opens", C.HOURLY_MIX_ENTITY}


# --- costs ---------------------------------------------------------------------------------

# What a call reveals sets its price: one (date, entity) 1 unit, a date's worth of a family 3,
# the ranking 2, the overview views 1, generator rows 2 each on top of 1.
EXPECTED_COSTS = {
    "task_overview": 1,
    "list_dates": 1,
    "list_entities": 1,
    "rows_for_date": 3,
    "hourly_rows_for_date": 3,
    "compare_rate_to_median": 1,
    "compare_count_to_median": 1,
    "detect_funnel_break": 3,
    "check_impossible_counts": 3,
    "list_suspicious_dates": 2,
    "show_raw_data": 1,
    "preview_submission": 1,
    "get_metric_median": 1,
    "get_metric_std_dev_from_median": 1,
}


def test_every_method_has_its_price():
    for name, spec in analysis.REGISTRY.items():
        if spec.kind == "generator" or name == "payload_generator":
            assert (spec.cost, spec.cost_per_row) == (1, C.GENERATOR_ROW_COST), name
        elif name == "show_raw_data":
            assert (spec.cost, spec.cost_per_row) == (1, 2)
        else:
            assert (spec.cost, spec.cost_per_row) == (EXPECTED_COSTS[name], 0), name
    assert {*EXPECTED_COSTS, *analysis.GENERATOR_METHODS, "payload_generator"} == set(analysis.REGISTRY)
    listed = {m["name"]: (m["cost"], m["cost_per_row"]) for m in analysis.available_methods()}
    assert listed == {n: (s.cost, s.cost_per_row) for n, s in analysis.REGISTRY.items()}


def test_a_date_level_view_costs_more_than_one_targeted_check():
    reg = analysis.REGISTRY
    single = reg["compare_rate_to_median"].cost
    for name in ("rows_for_date", "hourly_rows_for_date", "detect_funnel_break", "check_impossible_counts"):
        assert reg[name].cost > single
    assert reg["get_median_filter_rows"].cost + reg["get_median_filter_rows"].cost_per_row > single


def test_calls_are_charged_their_cost_and_refused_beyond_the_budget(hard):
    assert (
        analysis.run_method(hard, "detect_funnel_break", {"date": hard.dates[0]}, budget_left=3)["cost"] == 3
    )
    refused = analysis.run_method(hard, "detect_funnel_break", {"date": hard.dates[0]}, budget_left=2)
    assert "error" in refused and "costs 3 budget units but only 2 are left" in refused["error"]
    assert refused["cost"] == C.ERROR_COST and "result" not in refused
    assert analysis.run_method(hard, "no_such_method", {}, budget_left=5)["cost"] == C.ERROR_COST


def test_generator_rows_shown_are_what_the_budget_pays_for(hard):
    args = {"threshold_multiplier": 1.0}
    everything = full(hard, "get_median_filter_rows", args)["rows"]
    for left in (1, 2, 3, 6, 7):
        out = analysis.run_method(hard, "get_median_filter_rows", args, budget_left=left)
        affordable = (left - 1) // C.GENERATOR_ROW_COST
        assert out["result"]["rows"] == everything[:affordable]
        assert out["cost"] == 1 + C.GENERATOR_ROW_COST * affordable <= left
        assert out["result"]["truncated"] and "budget left" in out["result"]["note"]


def test_preview_submission_checks_without_grading(hard):
    good = hard.expected_rows[0].model_dump()
    bad = {**good, "severity": "huge"}
    result = run(hard, "preview_submission", {"rows": [good, good, bad]})
    assert result == {
        "rows": 3,
        "valid_rows": 1,
        "invalid_rows": 1,
        "duplicate_rows": 1,
        "issues": result["issues"],
    }
    assert len(result["issues"]) == 2
    assert "score" not in json.dumps(result)


def test_the_payload_generator_path_reaches_confirmed_rows():
    """For most expected rows, the family's generator restricted to the row's entity, at some
    threshold, shows exactly that row within the per-call limit: a confirmed finding can be
    submitted as a payload generator."""
    reached = total = 0
    for seed in range(24):
        family = SCENARIO_FAMILIES[seed % len(SCENARIO_FAMILIES)]
        difficulty = ("medium", "hard")[seed % 2]
        config = tasks.config_for(seed=600 + seed, scenario_family=family, difficulty=difficulty)
        ep = episode.build_episode(config)
        for row in ep.expected_rows:
            total += 1
            generator = analysis.REGISTRY[FAMILY_BY_TYPE[row.anomaly_type].generator_method]
            for k in np.arange(0.0, 10.0, 0.25):
                args = methods.GeneratorArgs(metric_name=row.entity_name, threshold_multiplier=float(k))
                rows = generator.function(ep, args)["rows"]
                if len(rows) <= C.MAX_ROWS_PER_CALL and row.model_dump() in rows:
                    reached += 1
                    break
    assert reached >= 0.9 * total
