"""MCP end to end: the official MCP Python SDK client against real server processes.

The client (``mcp`` 2.3, pinned in ``tests/mcp_sdk_client``) runs in its own environment,
as an MCP host's would: ``drive.py`` plays the operations these tests plan and prints
what the server answered. It plays over streamable HTTP (``server_url``: ``server.app:app``
in a subprocess) and over stdio (``metric-tracker mcp``, spawned by the SDK). Idle expiry
and the session limit are checked with plain HTTP against ``limited_server_url`` (two
sessions, one idle second). OpenEnv's own clients keep playing through its dialect.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openenv.core.generic_client import GenericEnvClient
from openenv.core.mcp_client import MCPToolClient
from solver_calls import solver_calls

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeStore
from metric_tracker_rl.mcp.server import EPISODE_URI, PROMPT_NAME, TASK_URI
from metric_tracker_rl.tasks import NAMED_TASKS
from metric_tracker_rl.tools import CATALOG_FIELDS, tool_catalog

CATALOG = {tool.name: tool for tool in tool_catalog()}

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
SDK_PROJECT = REPO / "tests" / "mcp_sdk_client"
PROTOCOL_VERSION = "2025-11-25"
TASK = "hard_mixed_multi"  # four incidents, eleven rows; the row count hidden, one report
TASK_ROWS = 11
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def drive(plan: dict[str, Any], timeout: float = 240.0) -> dict[str, Any]:
    """Run ``drive.py`` with the official SDK; return what it printed (each session's
    handshake and results, or each stateless call's result)."""
    uv = shutil.which("uv")
    assert uv is not None, "uv runs the SDK client's own environment (see README: Set-up)"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run(
        [
            uv,
            "run",
            "--quiet",
            "--locked",
            "--project",
            str(SDK_PROJECT),
            "python",
            str(SDK_PROJECT / "drive.py"),
        ],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def over_http(url: str, api: str, *sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return drive({"transport": "http", "url": f"{url}/mcp", "api": api, "sessions": list(sessions)})[
        "sessions"
    ]


def over_stdio(api: str, *sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    command = str(Path(sys.executable).parent / "metric-tracker")
    return drive(
        {
            "transport": "stdio",
            "command": command,
            "args": ["mcp"],
            "cwd": str(REPO),
            "api": api,
            "sessions": list(sessions),
        }
    )["sessions"]


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"op": "call", "name": name, "arguments": arguments}


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "ok" in result, result
    return result["ok"]


def listed_catalog() -> list[dict[str, Any]]:
    """The tool catalog as MCP's tools/list sends it (wire names, nothing left out)."""
    return [
        {
            "name": t.name,
            "title": t.title,
            "description": t.description,
            "inputSchema": t.mcp_input_schema,
            "outputSchema": t.output_schema,
            "annotations": t.annotations,
        }
        for t in tool_catalog()
    ]


def tool_result(result: dict[str, Any], name: str, error: bool = False) -> dict[str, Any]:
    """A CallToolResult's structured content, after checking its shape and, for a tool of the
    catalog, that it follows the tool's output schema."""
    answer = ok(result)
    assert answer.get("isError", False) is error, answer
    summary, text = answer["content"]
    assert summary["type"] == text["type"] == "text"
    assert json.loads(text["text"]) == answer["structuredContent"]
    assert not set(CATALOG_FIELDS) & set(answer["structuredContent"])
    if name in CATALOG:
        jsonschema.validate(answer["structuredContent"], CATALOG[name].output_schema)
    return answer["structuredContent"]


def solver_steps(task_id: str) -> list[dict[str, Any]]:
    """The reference solver's calls after start_episode: its analysis calls and its report."""
    return [call(name, **arguments) for name, arguments in solver_calls(task_id)[1:]]


def episode_plan(task_id: str) -> list[dict[str, Any]]:
    return [
        {"op": "list_tools"},
        {"op": "list_prompts"},
        {"op": "get_prompt", "name": PROMPT_NAME, "arguments": {"task_id": task_id}},
        {"op": "list_resources"},
        {"op": "read_resource", "uri": TASK_URI.format(task_id=task_id)},
        call("start_episode", task_id=task_id),
        call("task_overview"),
        call("rows_for_date", date=5),  # a bad call: an error result, the session lives on
        call("list_suspicious_dates", limit=None),  # null: the default
        *solver_steps(task_id),
        {"op": "read_resource", "uri": EPISODE_URI},
    ]


def check_episode(session: dict[str, Any], task_id: str) -> None:
    assert session["protocol_version"] == PROTOCOL_VERSION
    assert session["server_name"] == "metric_tracker_rl"
    (tools, prompts, prompt, resources, task_text, start, overview, bad, suspicious) = session["results"][:9]
    *analysis, graded, episode = session["results"][9:]
    detections = []
    for (name, _), result in zip(solver_calls(task_id)[1:-1], analysis, strict=True):
        detections.append(tool_result(result, name))
        assert detections[-1]["status"] == "analysis"
    assert ok(tools)["tools"] == listed_catalog()
    assert [p["name"] for p in ok(prompts)["prompts"]] == [PROMPT_NAME]
    prompt_text = ok(prompt)["messages"][0]["content"]["text"]
    assert f"task_id={task_id!r}" in prompt_text
    assert (
        "null where the difficulty hides it" in prompt_text
        and "the first report is the only one" in prompt_text
    )
    uris = [r["uri"] for r in ok(resources)["resources"]]
    assert uris == [*(TASK_URI.format(task_id=t) for t in NAMED_TASKS), EPISODE_URI]
    described = ok(task_text)["contents"][0]["text"]
    assert NAMED_TASKS[task_id].description in described
    assert "- to find: 4 anomalies, rows not given" in described

    # The row count is hidden: null on start and in the overview, the report the one submission.
    ready = tool_result(start, "start_episode")
    assert (ready["status"], ready["task_id"], ready["expected_row_count"]) == ("ready", task_id, None)
    assert (ready["config"]["anomaly_count"], ready["budget"]["max_submissions"]) == (4, 1)
    assert f"{task_id}: an unknown number of anomaly rows to find" in ok(start)["content"][0]["text"]
    assert tool_result(overview, "task_overview")["analysis_result"]["result"]["expected_row_count"] is None
    error = tool_result(bad, "rows_for_date", error=True)
    assert error["status"] == "error" and "date" in error["message"]
    assert error["message"] in ok(bad)["content"][0]["text"]
    assert len(tool_result(suspicious, "list_suspicious_dates")["analysis_result"]["result"]["dates"]) == 5
    final = tool_result(graded, "submit_report")
    assert (final["status"], final["reward"], final["done"]) == ("graded", 1.0, True)
    assert final["correct_row_count"] == TASK_ROWS and final["reward_breakdown"]["unsupported_rows"] == 0
    assert final["budget"]["submissions_used"] == final["budget"]["max_submissions"] == 1
    spent = (
        REGISTRY["task_overview"].cost
        + C.ERROR_COST
        + REGISTRY["list_suspicious_dates"].cost
        + sum(d["analysis_result"]["cost"] for d in detections)
        + C.SUBMISSION_COST
    )
    assert final["budget"]["steps_used"] == spent
    assert final["budget"]["analysis_steps_left"] == final["budget"]["max_steps"] - spent - C.SUBMISSION_COST
    state = json.loads(ok(episode)["contents"][0]["text"])
    assert (state["task_id"], state["done"], state["last_score"], state["submissions_used"]) == (
        task_id,
        True,
        1.0,
        1,
    )


# --- full episodes with the official SDK ------------------------------------------------------


@pytest.mark.parametrize("api", ["session", "client"])
def test_sdk_plays_an_episode_to_1_over_streamable_http(server_url: str, api: str) -> None:
    (session,) = over_http(server_url, api, episode_plan(TASK))
    check_episode(session, TASK)


@pytest.mark.parametrize("api", ["session", "client"])
def test_sdk_plays_an_episode_to_1_over_stdio(api: str) -> None:
    (session,) = over_stdio(api, episode_plan(TASK))
    check_episode(session, TASK)


# --- sessions ---------------------------------------------------------------------------------


def isolation_plan(i: int) -> list[dict[str, Any]]:
    """A session of its own: its own config, interleaved with 31 others."""
    config = {"seed": 100 + i, "difficulty": ("easy", "medium", "hard")[i % 3], "anomaly_count": 1 + i % 12}
    return [
        call("start_episode", **config),
        call("list_dates"),
        call("list_suspicious_dates", limit=1 + i % 5),
        call("rows_for_date", date="2026-03-0" + str(4 + i % 6)),
        call("get_median_filter_rows", metric_name="app_opens", threshold_multiplier=2.0 + i / 10),
        call("submit_report", classifications=[]),
    ]


def test_sdk_client_without_a_session_plays_an_episode_to_1_with_handles(server_url: str) -> None:
    """Each call in an MCP session of its own (opened, used once, closed): the episode lives on
    through its handle alone."""
    plan = [
        {**call(name, **arguments), "arguments": {**arguments, "episode_id": "$episode_id"}}
        for name, arguments in solver_calls(TASK)[1:]
    ]
    plan.insert(0, call("start_episode", task_id=TASK))
    results = drive({"transport": "http", "url": f"{server_url}/mcp", "api": "session", "stateless": plan})
    results = results["stateless"]
    handle = tool_result(results[0], "start_episode")["episode_id"]
    assert isinstance(handle, str) and len(handle) == 32
    for op, result in zip(plan, results, strict=True):
        assert tool_result(result, op["name"])["episode_id"] == handle
    final = tool_result(results[-1], "submit_report")
    assert (final["status"], final["reward"], final["done"], final["correct_row_count"]) == (
        "graded",
        1.0,
        True,
        NAMED_TASKS[TASK].anomaly_rows,
    )
    session_ids = [sid for result in results for sid in result["session_ids"]]
    assert all(len(result["session_ids"]) == 1 for result in results)
    assert len(set(session_ids)) == len(plan)  # no session was used twice


def test_32_concurrent_sessions_stay_isolated(server_url: str) -> None:
    plans = [isolation_plan(i) for i in range(32)]
    sessions = over_http(server_url, "session", *plans)
    handles = set()
    for plan, session in zip(plans, sessions, strict=True):
        # Each session answers exactly what a fresh environment of its own answers, with the
        # handle of the episode it started.
        local = MetricTrackerRlEnvironment().tools
        handle = tool_result(session["results"][0], "start_episode")["episode_id"]
        handles.add(handle)
        for op, result in zip(plan, session["results"], strict=True):
            expected = local.call(op["name"], op["arguments"]).structured()
            assert tool_result(result, op["name"]) == {**expected, "episode_id": handle}
    assert len(handles) == 32
    finals = [s["results"][-1]["ok"]["structuredContent"] for s in sessions]
    assert {(f["status"], f["budget"]["submissions_used"]) for f in finals} == {("graded", 1)}
    assert len({f["budget"]["steps_used"] for f in finals}) > 1  # the sessions spent their own budgets


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    # (tool, arguments, text in the error message)
    ("compare_rate_to_median", {"date": "2026-03-10"}, "entity_name"),
    ("rows_for_date", {"date": None}, "date"),
    ("task_overview", {"verbose": True}, "verbose"),
    ("detect_funnel_break", {"date": "1999-12-31"}, "unknown date"),
    ("compare_count_to_median", {"date": "2026-03-10", "entity_name": "nope"}, "entity_name"),
    ("get_median_filter_rows", {"threshold_multiplier": -1}, "threshold_multiplier"),
    ("payload_generator", {"generator_methods": []}, "generator_methods"),
    ("start_episode", {"task_id": "nope"}, "unknown task_id"),
    ("start_episode", {"seed": -5}, "seed"),
    ("start_episode", {"debug": True}, "debug"),
    ("submit_report", {"rows": []}, "unknown fields"),
    ("submit_report", {"payload_generators": [{"method_name": "nope"}]}, "generator"),
    ("no_such_tool", {}, "unknown tool"),
]


def test_bad_tool_arguments_are_error_results_and_the_session_lives_on(server_url: str) -> None:
    plan = [call("start_episode", task_id="medium_mixed_pair")]
    for tool, arguments, _ in BAD_CALLS:
        plan += [call(tool, **arguments), call("list_dates")]
    (session,) = over_http(server_url, "session", plan)
    results = session["results"]
    assert tool_result(results[0], "start_episode")["status"] == "ready"
    for k, (tool, _, text) in enumerate(BAD_CALLS):
        error = tool_result(results[1 + 2 * k], tool, error=True)
        after = tool_result(results[2 + 2 * k], "list_dates")
        assert text in error["message"], (tool, error)
        assert after["status"] == "analysis" and after["task_id"] == "medium_mixed_pair"
        assert after["budget"]["submissions_used"] == 0


def initialize(http: httpx.Client) -> httpx.Response:
    return http.post(
        "/mcp",
        headers=MCP_HEADERS,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "pytest", "version": "0"},
            },
        },
    )


def in_session(http: httpx.Client, session_id: str, message: dict[str, Any]) -> httpx.Response:
    headers = {**MCP_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL_VERSION}
    return http.post("/mcp", headers=headers, json={"jsonrpc": "2.0", **message})


def test_idle_sessions_expire_and_free_their_place(limited_server_url: str) -> None:
    with httpx.Client(base_url=limited_server_url, timeout=20) as http:
        opened = [initialize(http) for _ in range(2)]
        assert [r.status_code for r in opened] == [200, 200]
        ids = [r.headers["mcp-session-id"] for r in opened]
        full = initialize(http)
        assert full.status_code == 503 and "sessions" in full.json()["error"]["message"]
        for session_id in ids:
            assert in_session(http, session_id, {"method": "notifications/initialized"}).status_code == 202
        start = {"id": 2, "method": "tools/call", "params": {"name": "start_episode", "arguments": {}}}
        reply = in_session(http, ids[0], start)
        assert reply.json()["result"]["structuredContent"]["status"] == "ready"
        # Untouched for an idle second, both sessions close and free their places (polling
        # with initialize: a refused initialize opens nothing and touches no session).
        admitted, deadline = 0, time.monotonic() + 20
        while admitted < 2:
            assert time.monotonic() < deadline, "idle sessions did not expire"
            status = initialize(http).status_code
            assert status in (200, 503)
            admitted += status == 200
            time.sleep(0.2)
        for session_id in ids:
            assert in_session(http, session_id, {"id": 3, "method": "ping"}).status_code == 404


# --- OpenEnv's own clients and dialect still play ------------------------------------------------


def test_openenv_mcp_tool_client_plays_an_episode(server_url: str) -> None:
    with MCPToolClient(base_url=server_url).sync() as env:
        names = [tool.name for tool in env.list_tools()]
        assert names == [tool.name for tool in tool_catalog()]
        assert env.call_tool("start_episode", task_id=TASK)["status"] == "ready"
        assert env.call_tool("rows_for_date", date=5)["status"] == "error"
        for name, arguments in solver_calls(TASK)[1:]:
            final = env.call_tool(name, **arguments)
    assert (final["status"], final["reward"], final["done"]) == ("graded", 1.0, True)
    assert set(CATALOG_FIELDS) <= set(final)  # the dialect keeps returning whole observations


def test_openenv_dialect_server_carries_titles_annotations_and_output_schemas() -> None:
    """The dialect's FastMCP server, listed and called over MCP itself (FastMCP's client in
    memory): the catalog's metadata, whole observations that follow the dialect's output
    schemas, and the handle. (OpenEnv 0.10's own tools/list sends name, description and
    input schema only.)"""
    from fastmcp import Client

    environment = MetricTrackerRlEnvironment(episodes=EpisodeStore(MetricTrackerRlEnvironment))

    async def play() -> tuple[list[Any], Any, Any]:
        async with Client(environment.mcp_server) as client:
            tools = await client.list_tools()
            start = await client.call_tool("start_episode", {"task_id": TASK})
            handle = start.structured_content["episode_id"]
            bad = await client.call_tool("rows_for_date", {"date": "x", "episode_id": handle})
            return tools, start, bad

    tools, start, bad = asyncio.run(play())
    assert [
        (t.name, t.title, t.annotations.model_dump(exclude_none=True), t.inputSchema, t.outputSchema)
        for t in tools
    ] == [
        (t.name, t.title, t.annotations, t.mcp_input_schema, t.dialect_output_schema) for t in tool_catalog()
    ]
    for name, result in (("start_episode", start), ("rows_for_date", bad)):
        jsonschema.validate(result.structured_content, CATALOG[name].dialect_output_schema)
    assert bad.structured_content["status"] == "error"
    assert bad.structured_content["episode_id"] == start.structured_content["episode_id"]


def test_openenv_generic_client_plays_an_episode(server_url: str) -> None:
    with GenericEnvClient(base_url=server_url).sync() as env:
        first = env.reset(task_id=TASK)
        assert first.observation["expected_row_count"] is None  # hidden on hard
        assert first.observation["config"]["anomaly_count"] == 4
        dates = env.step({"analysis_method": "list_dates", "analysis_args": {}})
        assert dates.observation["status"] == "analysis"
        for name, arguments in solver_calls(TASK)[1:-1]:
            env.step({"analysis_method": name, "analysis_args": arguments})
        final = env.step(solver_calls(TASK)[-1][1])
    assert (final.reward, final.done) == (1.0, True)


def test_a_request_in_openenv_dialect_still_gets_openenv_answers(server_url: str) -> None:
    """Without a session header or an initialize, /mcp is OpenEnv's, even for a standard client's
    ``server/discover`` probe (an error, after which the SDK uses initialize)."""
    with httpx.Client(base_url=server_url, timeout=20) as http:
        listed = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        assert [t["name"] for t in listed.json()["result"]["tools"]] == [t.name for t in tool_catalog()]
        probe = http.post(
            "/mcp", headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": 2, "method": "server/discover"}
        )
        assert probe.json()["error"]["code"] == -32601
        stream = http.get("/mcp", headers={"accept": "text/event-stream"})
        assert stream.status_code in (400, 404)  # the standard protocol's: no session given


def test_docs_mcp_host_configurations_name_the_real_commands() -> None:
    from metric_tracker_rl.cli import command_names
    from metric_tracker_rl.limits import DEFAULT_IDLE_TIMEOUT, IDLE_TIMEOUT_ENV_VAR

    text = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    section = text[text.index("## Use it from an MCP host") :].split("\n## ", 1)[0]
    configs = [json.loads(block.split("```", 1)[0]) for block in section.split("```json\n")[1:]]
    servers = [c["mcpServers"]["metric-tracker"] for c in configs]
    assert {s.get("url") for s in servers} == {None, "http://localhost:8000/mcp"}
    stdio = ["run", "--directory", "/path/to/metric_tracker_rl", "metric-tracker", "mcp"]
    assert sum(s.get("args") == stdio for s in servers) == 2
    assert "claude mcp add --transport http metric-tracker http://localhost:8000/mcp" in section
    assert "uv run --directory /path/to/metric_tracker_rl metric-tracker mcp" in section
    assert {"mcp", "serve"} <= set(command_names())
    assert f"default {DEFAULT_IDLE_TIMEOUT:.0f}, or `{IDLE_TIMEOUT_ENV_VAR}`" in section


def test_the_docs_name_the_protocol_revisions_the_server_speaks() -> None:
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS

    text = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    section = text[text.index("**Protocol revisions.**") :].split("\n\n", 1)[0]
    *older, last = SUPPORTED_PROTOCOL_VERSIONS
    assert f"speaks the revisions {', '.join(older)} and {last}" in " ".join(section.split())
    assert last == PROTOCOL_VERSION  # what the SDK 2.x client negotiates in the tests


def test_a_client_ending_its_session_leaves_no_error_in_the_server_log(server_url: str) -> None:
    """The SDK 2.x client ends its session (DELETE) while its GET stream is open: the server
    logs no error and no traceback for it."""
    from conftest import _main_server

    log: Path = _main_server["log"]
    before = len(log.read_text())
    [session] = over_http(
        server_url, "session", [{"op": "call", "name": "start_episode", "arguments": {"task_id": TASK}}]
    )
    assert session["results"][0]["ok"]["structuredContent"]["status"] == "ready"
    time.sleep(1.0)  # the server closes the session's streams after answering the DELETE
    logged = log.read_text()[before:]
    assert "standalone SSE writer" not in logged and "Traceback" not in logged, logged
