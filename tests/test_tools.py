"""The tool catalog (start_episode, the registry's methods, submit_report) and its calls."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from typing import Any

import jsonschema
import pytest
from openai_strict import as_strict_model_sends, strict_errors

from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeStore
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS, TASK_SPLITS
from metric_tracker_rl.tools import (
    CATALOG_FIELDS,
    EpisodeTools,
    ToolResult,
    tool_catalog,
)

TASK = "hard_mixed_multi"
CATALOG = {tool.name: tool for tool in tool_catalog()}


def tools(task_id: str | None = TASK) -> EpisodeTools:
    session = MetricTrackerRlEnvironment().tools
    if task_id is not None:
        assert session.call("start_episode", {"task_id": task_id}).observation.status == "ready"
    return session


def test_the_catalog_is_start_episode_the_registry_and_submit_report() -> None:
    assert list(CATALOG) == ["start_episode", *REGISTRY, "submit_report"]
    for name, spec in REGISTRY.items():
        assert CATALOG[name].description == f"{spec.description} {spec.cost_text()}"
        assert CATALOG[name].input_schema == spec.input_schema()
    start = CATALOG["start_episode"].description
    assert all(task in start for task in NAMED_TASKS) and all(split in start for split in TASK_SPLITS)
    assert all(field in CATALOG["submit_report"].description for field in ROW_FIELDS)


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_input_schema_is_strict_and_valid_json_schema_2020_12(name: str) -> None:
    schema = CATALOG[name].input_schema
    assert strict_errors(schema) == []
    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(schema, allow_nan=False)
    function = CATALOG[name].openai()["function"]
    assert function["strict"] is True and function["parameters"] is schema


# Arguments a model could send, by tool (optional ones left out; a strict model sends them as null).
EXAMPLES: dict[str, dict[str, Any]] = {
    "start_episode": {"task_id": TASK},
    "rows_for_date": {"date": "2026-03-20"},
    "hourly_rows_for_date": {"date": "2026-03-20"},
    "compare_rate_to_median": {"date": "2026-03-20", "entity_name": "app_open_to_menu_open"},
    "compare_count_to_median": {"date": "2026-03-20", "entity_name": "app_opens"},
    "detect_funnel_break": {"date": "2026-03-20"},
    "check_impossible_counts": {"date": "2026-03-20"},
    "preview_submission": {"rows": []},
    "get_metric_median": {"metric_name": "app_opens"},
    "get_metric_std_dev_from_median": {"metric_name": "app_opens"},
    "payload_generator": {"generator_methods": [{"method_name": "get_median_filter_rows"}]},
    "submit_report": {"payload_generators": [{"method_name": "get_funnel_break_rows"}]},
}


@pytest.mark.parametrize("name", list(CATALOG))
def test_a_strict_models_arguments_mean_the_same_as_omitted_ones(name: str) -> None:
    given = EXAMPLES.get(name, {})
    strict = as_strict_model_sends(given, CATALOG[name].input_schema)
    jsonschema.validate(strict, CATALOG[name].input_schema)
    omitted, nulled = tools().call(name, given), tools().call(name, strict)
    assert not omitted.is_error, omitted.message
    assert nulled.structured() == omitted.structured()


def test_a_result_is_the_observation_without_catalogs_a_summary_and_its_json() -> None:
    session = tools(None)
    start = session.call("start_episode", {"task_id": TASK})
    assert set(CATALOG_FIELDS) <= set(start.full()) and not set(CATALOG_FIELDS) & set(start.structured())
    assert (
        start.summary().startswith("Episode ready.")
        and f"{TASK}: an unknown number of anomaly rows to find" in start.summary()
    )
    assert json.loads(start.text()) == start.structured()
    step = session.call("list_dates", {})
    assert "steps_used 1" in step.summary() and not step.is_error


@pytest.mark.parametrize(
    ("name", "arguments", "text", "steps"),
    [
        ("list_dates", [1, 2], "must be an object", 0),
        ("drop_database", {}, "unknown tool", 0),
        ("start_episode", {"episode_id": "x"}, "unknown reset arguments ['episode_id']", 0),
        ("start_episode", {"difficulty": "impossible"}, "unknown difficulty", 0),
        ("submit_report", {"rows": []}, "unknown fields ['rows']", 0),
        ("rows_for_date", {"date": "1999-01-01"}, "unknown date", 1),
        ("submit_report", {"classifications": "everything"}, "malformed action", 1),
    ],
)
def test_a_bad_call_is_an_error_result(name: str, arguments: Any, text: str, steps: int) -> None:
    session = tools()
    result = session.call(name, arguments)
    assert result.is_error and text in result.message and text in result.summary()
    assert session.session.state.step_count == steps
    assert session.session.state.task_id == TASK  # the episode lives on


def test_a_malformed_row_is_graded_as_an_invalid_row_not_refused() -> None:
    result = tools().call(
        "submit_report", {"classifications": [{"date": "someday"}], "payload_generators": None}
    )
    assert not result.is_error and result.observation.status == "graded"
    assert result.observation.reward_breakdown["invalid_rows"] == 1


def test_calls_before_start_episode_explain_what_to_do() -> None:
    result = tools(None).call("task_overview", {})
    assert result.is_error and "reset" in result.message


def test_importing_the_environment_client_or_tools_builds_no_mcp_server() -> None:
    code = (
        "import sys, metric_tracker_rl.environment, metric_tracker_rl.client, metric_tracker_rl.tools;"
        "print(sorted(m for m in sys.modules if m.startswith('metric_tracker_rl.mcp.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# --- what MCP hosts read: titles, annotations, output schemas, the handle ------------------------


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_tool_has_a_title_annotations_and_an_output_schema(name: str) -> None:
    tool = CATALOG[name]
    assert tool.title and tool.title[0].isupper() and "_" not in tool.title
    analysis = name in REGISTRY  # read-only, so idempotent; start_episode and submit_report change things
    assert tool.annotations == {
        "readOnlyHint": analysis,
        "destructiveHint": False,
        "idempotentHint": analysis,
        "openWorldHint": False,
    }
    for schema in (tool.output_schema, tool.dialect_output_schema):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["required"] == ["status", "message"]
    assert not set(CATALOG_FIELDS) & set(tool.output_schema["properties"])
    assert set(CATALOG_FIELDS) <= set(tool.dialect_output_schema["properties"])
    assert "episode_id" in tool.output_schema["properties"]


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_episode_tool_takes_the_handle_over_mcp(name: str) -> None:
    tool = CATALOG[name]
    schema = tool.mcp_input_schema
    assert strict_errors(schema) == []
    if name == "start_episode":
        assert schema == tool.input_schema  # the server mints the handle
        return
    assert schema["properties"] == {
        **tool.input_schema["properties"],
        "episode_id": schema["properties"]["episode_id"],
    }
    assert schema["required"] == [*tool.input_schema["required"], "episode_id"]
    assert {"type": "null"} in schema["properties"]["episode_id"]["anyOf"]


def test_every_result_follows_its_tools_output_schema() -> None:
    """A whole episode with every tool, each also with a bad argument, then the finished
    episode, no episode and an unknown handle: every structured result validates against its
    tool's output schema, and every whole observation (OpenEnv's dialect) against the dialect's."""
    episodes = EpisodeStore(partial(MetricTrackerRlEnvironment, max_steps=10_000))
    session = MetricTrackerRlEnvironment(episodes=episodes).tools
    results: list[tuple[str, ToolResult, bool]] = []  # (tool, result, expected error)

    def call(name: str, arguments: dict[str, Any], error: bool = False) -> ToolResult:
        result = session.call(name, arguments)
        results.append((name, result, error))
        return result

    handle = call("start_episode", {"task_id": TASK}).structured()["episode_id"]
    for name in REGISTRY:
        call(name, EXAMPLES.get(name, {}))
        call(name, {**EXAMPLES.get(name, {}), "episode_id": handle})
        call(name, {"bogus": 1}, error=True)
    call("start_episode", {"bogus": 1}, error=True)
    call("submit_report", {"bogus": 1}, error=True)
    call("submit_report", {"payload_generators": [{"method_name": "nope"}]}, error=True)
    call("submit_report", {"classifications": [{"date": "someday"}], "episode_id": handle})
    while not call("submit_report", {"classifications": []}).observation.done:
        pass
    call("list_dates", {})  # finished
    call("list_dates", {"episode_id": "A" * 32}, error=True)
    session = MetricTrackerRlEnvironment(episodes=episodes).tools
    call("task_overview", {}, error=True)  # no episode
    call("submit_report", {}, error=True)

    assert {name for name, _, _ in results} == set(CATALOG)
    statuses = set()
    for name, result, error in results:
        assert result.is_error is error, (name, result.message)
        jsonschema.validate(result.structured(), CATALOG[name].output_schema)
        jsonschema.validate(result.full(), CATALOG[name].dialect_output_schema)
        statuses.add(result.structured()["status"])
    assert statuses == {"ready", "analysis", "error", "graded", "finished"}


def test_descriptions_read_cleanly_without_doubled_punctuation() -> None:
    import re

    for tool in CATALOG.values():
        assert not re.search(r"[.;:,]\s*[.;:,]", tool.description), (tool.name, tool.description)


def test_after_an_episode_ends_a_tool_names_the_tool_that_starts_the_next() -> None:
    session = tools("easy_single_spike")
    for _ in range(3):  # three empty submissions end the episode
        session.call("submit_report", {"classifications": []})
    after = session.call("task_overview", {})
    assert after.observation.status == "finished"
    assert "start_episode" in after.observation.message
