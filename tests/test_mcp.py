"""MCP end to end: the official MCP Python SDK client against real server processes.

The client (``mcp`` 2.3, pinned in ``tests/mcp_sdk_client``) runs in its own environment,
as an MCP host's would: ``drive.py`` plays the operations these tests plan and prints
what the server answered. It plays over streamable HTTP (``server_url``: ``server.app:app``
in a subprocess) and over stdio (``metric-tracker mcp``, spawned by the SDK). Idle expiry
and the session limit are checked with plain HTTP against ``limited_server_url`` (two
sessions, one idle second). OpenEnv's own clients keep playing through its dialect.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openenv.core.generic_client import GenericEnvClient
from openenv.core.mcp_client import MCPToolClient

from metric_tracker_rl.agents import SolverAgent
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.mcp.server import EPISODE_URI, PROMPT_NAME, TASK_URI
from metric_tracker_rl.tasks import NAMED_TASKS
from metric_tracker_rl.tools import CATALOG_FIELDS, tool_catalog

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
SDK_PROJECT = REPO / "tests" / "mcp_sdk_client"
PROTOCOL_VERSION = "2025-11-25"
TASK = "hard_mixed_multi"
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def drive(plan: dict[str, Any], timeout: float = 240.0) -> list[dict[str, Any]]:
    """Run ``drive.py`` with the official SDK; return each session's handshake and results."""
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
    return json.loads(done.stdout)["sessions"]


def over_http(url: str, api: str, *sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return drive({"transport": "http", "url": f"{url}/mcp", "api": api, "sessions": list(sessions)})


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
    )


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"op": "call", "name": name, "arguments": arguments}


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "ok" in result, result
    return result["ok"]


def tool_result(result: dict[str, Any], error: bool = False) -> dict[str, Any]:
    """A CallToolResult's structured content, after checking its shape."""
    answer = ok(result)
    assert answer.get("isError", False) is error, answer
    summary, text = answer["content"]
    assert summary["type"] == text["type"] == "text"
    assert json.loads(text["text"]) == answer["structuredContent"]
    assert not set(CATALOG_FIELDS) & set(answer["structuredContent"])
    return answer["structuredContent"]


@cache
def solver_rows(task_id: str) -> list[dict[str, Any]]:
    """The rows the reference solver submits for a task (they score 1.0)."""
    final = SolverAgent().play(MetricTrackerRlEnvironment(), {"task_id": task_id})
    assert final.reward == 1.0
    return final.submitted_rows


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
        call("submit_report", classifications=solver_rows(task_id), payload_generators=None),
        {"op": "read_resource", "uri": EPISODE_URI},
    ]


def check_episode(session: dict[str, Any], task_id: str) -> None:
    assert session["protocol_version"] == PROTOCOL_VERSION
    assert session["server_name"] == "metric_tracker_rl"
    (tools, prompts, prompt, resources, task_text, start, overview, bad, suspicious, graded, episode) = (
        session["results"]
    )
    listed = ok(tools)["tools"]
    assert [(t["name"], t["description"], t["inputSchema"]) for t in listed] == [
        (t.name, t.description, t.input_schema) for t in tool_catalog()
    ]
    assert [p["name"] for p in ok(prompts)["prompts"]] == [PROMPT_NAME]
    assert f"task_id={task_id!r}" in ok(prompt)["messages"][0]["content"]["text"]
    uris = [r["uri"] for r in ok(resources)["resources"]]
    assert uris == [*(TASK_URI.format(task_id=t) for t in NAMED_TASKS), EPISODE_URI]
    assert NAMED_TASKS[task_id].description in ok(task_text)["contents"][0]["text"]

    ready = tool_result(start)
    assert (ready["status"], ready["task_id"], ready["expected_row_count"]) == ("ready", task_id, 4)
    assert f"{task_id}: 4 anomaly rows to find" in ok(start)["content"][0]["text"]
    assert tool_result(overview)["analysis_result"]["result"]["expected_row_count"] == 4
    error = tool_result(bad, error=True)
    assert error["status"] == "error" and "date" in error["message"]
    assert error["message"] in ok(bad)["content"][0]["text"]
    assert len(tool_result(suspicious)["analysis_result"]["result"]["dates"]) == 5
    final = tool_result(graded)
    assert (final["status"], final["reward"], final["done"]) == ("graded", 1.0, True)
    assert final["correct_row_count"] == 4
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


def test_32_concurrent_sessions_stay_isolated(server_url: str) -> None:
    plans = [isolation_plan(i) for i in range(32)]
    sessions = over_http(server_url, "session", *plans)
    for plan, session in zip(plans, sessions, strict=True):
        # Each session answers exactly what a fresh environment of its own answers.
        local = MetricTrackerRlEnvironment().tools
        for op, result in zip(plan, session["results"], strict=True):
            expected = local.call(op["name"], op["arguments"])
            assert tool_result(result) == expected.structured()
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
    assert tool_result(results[0])["status"] == "ready"
    for k, (tool, _, text) in enumerate(BAD_CALLS):
        error, after = tool_result(results[1 + 2 * k], error=True), tool_result(results[2 + 2 * k])
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
        final = env.call_tool("submit_report", classifications=solver_rows(TASK))
    assert (final["status"], final["reward"], final["done"]) == ("graded", 1.0, True)
    assert set(CATALOG_FIELDS) <= set(final)  # the dialect keeps returning whole observations


def test_openenv_generic_client_plays_an_episode(server_url: str) -> None:
    with GenericEnvClient(base_url=server_url).sync() as env:
        first = env.reset(task_id=TASK)
        assert first.observation["expected_row_count"] == 4
        dates = env.step({"analysis_method": "list_dates", "analysis_args": {}})
        assert dates.observation["status"] == "analysis"
        final = env.step({"classifications": solver_rows(TASK)})
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
    from metric_tracker_rl.mcp.http import DEFAULT_IDLE_TIMEOUT, IDLE_TIMEOUT_ENV_VAR

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
