"""The verifiers environment (integrations/verifiers) against a real server.

The package has an environment of its own (verifiers 0.4 needs mcp 2; this project has
mcp<2), which ``uv`` builds from its lock, as tests/test_mcp.py does for the MCP SDK client.
``verifiers_eval.py`` runs there: it builds the environment with ``load_environment`` and
runs the ``vf-eval`` entry point on the named tasks, two rollouts each, over a pool of
servers (the test server under two names, and one that is down). The model is the fake
OpenAI-compatible endpoint replaying the reference solver's tool calls; verifiers' own
harness program, interception server and per-rollout tool servers play everything else.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from metric_tracker_rl.constants import DIFFICULTIES
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.integrations.dataset import solver_conversation
from metric_tracker_rl.tasks import CELLS, EVAL_SPLIT, NAMED_TASKS
from metric_tracker_rl.tools import episode_tools

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
INTEGRATION = REPO / "integrations" / "verifiers"
ROLLOUTS = 1
API_KEY_VAR = "METRIC_TRACKER_FAKE_API_KEY"


@cache
def solver_calls(task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The reference solver's tool calls on a task (they score 1.0)."""
    messages, score = solver_conversation({"task_id": task_id})
    assert score == 1.0
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for message in messages
        for call in message["tool_calls"] or []
    ]


BAD_CALL = ("rows_for_date", {"date": "2026-02-30"})  # answered with an error; the episode goes on


def script(task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """What the model plays: the solver's calls, after a bad one on the first task."""
    calls = solver_calls(task_id)
    return [BAD_CALL, *calls] if task_id == next(iter(NAMED_TASKS)) else calls


def closed_port_url() -> str:
    """A URL where no server listens (a port that was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def played(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    uv = shutil.which("uv")
    assert uv is not None, "uv builds the integration's environment (see README)"
    port = server_url.rsplit(":", 1)[1]
    pool = [server_url, f"http://localhost:{port}", closed_port_url()]
    folder = tmp_path_factory.mktemp("verifiers")
    replays = {f'"task_id":"{task_id}"': script(task_id) for task_id in NAMED_TASKS}
    with FakeOpenAI(policy="replay", replays=replays) as fake:
        plan = {
            "pool": pool,
            "model_url": fake.base_url,
            "api_key_var": API_KEY_VAR,
            "rollouts": ROLLOUTS,
            "output_dir": str(folder),
            "facts": str(folder / "facts.json"),
        }
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {API_KEY_VAR: "test-key"}
        command = [uv, "run", "--quiet", "--locked", "--project", str(INTEGRATION), "python"]
        done = subprocess.run(
            [*command, "tests/verifiers_eval.py"],
            input=json.dumps(plan),
            capture_output=True,
            text=True,
            timeout=280,
            cwd=REPO,
            env=env,
        )
        requests = list(fake.requests)
    assert done.returncode == 0, done.stderr[-5000:]
    traces = (folder / "run" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return {
        "pool": pool,
        "facts": json.loads((folder / "facts.json").read_text(encoding="utf-8")),
        "episodes": [json.loads(line) for line in traces],
        "requests": requests,
    }


def test_load_environment_builds_tasks_from_the_server(played: dict[str, Any]) -> None:
    facts, pool = played["facts"], played["pool"]
    assert facts["environment"] == "MetricTrackerEnv"
    assert (facts["harness"], facts["runtime"], facts["max_turns"]) == ("null", "subprocess", 40)
    assert [task["key"] for task in facts["named"]] == list(NAMED_TASKS)
    for task in facts["named"]:
        first = MetricTrackerRlEnvironment().reset(task_id=task["id"])
        assert task["reset"] == {"task_id": task["id"]}
        assert task["prompt"].startswith(first.instruction)
        assert f'"expected_row_count":{json.dumps(first.expected_row_count)}' in task["prompt"]
        assert task["difficulty"] == first.config["difficulty"]
        assert task["base_urls"] == pool
        assert "submit_report" in task["system_prompt"]
    hard = [config for config in EVAL_SPLIT if config["difficulty"] == "hard"]
    assert [task["reset"] for task in facts["eval_hard"]] == hard
    assert {task["difficulty"] for task in facts["eval_hard"]} == {"hard"}
    medium = [cell for cell in CELLS if cell[1] == "medium"]
    assert not facts["train_bounded"]
    assert facts["train"] == [
        {"seed": 10_000 + k, "scenario_family": f, "difficulty": d, "anomaly_density": n}
        for k, (f, d, n) in enumerate(medium[:4])
    ]
    assert "unknown split 'test'" in facts["unknown_split"] and "'train'" in facts["unknown_split"]
    expected_difficulties = f"expected one of {list(DIFFICULTIES)}"
    assert f"unknown difficulty 'extreme'; {expected_difficulties}" in facts["unknown_difficulty"]
    assert "base_url must be a server URL" in facts["no_server"]


def test_vf_eval_replays_the_solver_to_reward_one(played: dict[str, Any]) -> None:
    episodes = played["episodes"]
    assert sorted(e["task"]["key"] for e in episodes) == sorted(list(NAMED_TASKS) * ROLLOUTS)
    for episode in episodes:
        assert episode["ok"] and not episode["errors"], episode["errors"]
        (trace,) = episode["traces"]
        assert trace["rewards"] == {"episode_reward": {"score": 1.0, "weight": 1.0}}
        assert trace["stop_condition"] == "episode_over"  # the episode ended at a perfect score
        metrics = trace["metrics"]  # the grader's parts
        rows = NAMED_TASKS[episode["task"]["key"]].anomaly_rows
        assert metrics["score"] == metrics["recall"] == metrics["numeric_values"] == 1.0
        assert metrics["matched_rows"] == metrics["expected_rows"] == metrics["exact_rows"] == rows
        assert metrics["extra_rows"] == metrics["invalid_rows"] == 0
        assert metrics["tool_calls"] == len(script(episode["task"]["key"]))
        assert metrics["submissions_used"] == 1 and metrics["steps_used"] > 0
        results = [n["message"]["content"] for n in trace["nodes"] if n["message"]["role"] == "tool"]
        # The submission ended the episode, so no model turn reads its answer; the others it read.
        assert len(results) == metrics["tool_calls"] - 1
        observations = [json.loads(result) for result in results]
        assert all(o["status"] == "analysis" for o in observations if o["status"] != "error")
        if script(episode["task"]["key"])[0] == BAD_CALL:  # the server's error, as the model reads it
            assert observations[0]["status"] == "error" and "2026-02-30" in observations[0]["message"]


def test_the_model_gets_the_server_catalog_without_start_episode(played: dict[str, Any]) -> None:
    requests = played["requests"]
    assert requests and all(body["stream"] is True for body in requests)
    catalog = episode_tools()
    for body in requests:
        tools = [tool["function"] for tool in body["tools"]]
        assert [t["name"] for t in tools] == [t.name for t in catalog]
        assert [t["description"] for t in tools] == [t.description for t in catalog]
        for tool, expected in zip(tools, catalog, strict=True):
            schema = tool["parameters"]
            assert set(schema.get("required", [])) == set(expected.input_schema["required"])
            for name, prop in schema["properties"].items():  # as listed, plus pydantic's titles
                listed = expected.input_schema["properties"][name]
                assert {k: v for k, v in prop.items() if k != "title"} == listed


def test_rollouts_take_turns_on_the_servers_that_answer(played: dict[str, Any]) -> None:
    live, other, down = played["pool"]
    used = [e["traces"][0]["info"]["server_url"] for e in played["episodes"]]
    assert set(used) == {live, other}
    assert down not in used
