"""The LLM agent through the real ``openai`` client against a scripted local server
(tests/fake_openai.py): it solves the named tasks, survives malformed replies and API
failures with a graded episode, sends the registry's tool schemas, and drives
inference.py and ``metric-tracker eval --agent llm``."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
from fake_openai import FakeOpenAI
from openai_strict import strict_errors

from metric_tracker_rl.agents import AGENTS
from metric_tracker_rl.agents.llm import (
    MAX_TEXT_REPLIES,
    SUBMIT_TOOL,
    EndpointError,
    LLMAgent,
    LLMConfigError,
    StepEvent,
    agent_tools,
    settings_from_env,
)
from metric_tracker_rl.agents.turns import DEFAULT_MAX_RESULT_CHARS, ToolTurns, compact_json, json_text
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.analysis.methods import GeneratorSpec
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[1]
TASK_IDS = ("easy_single_spike", "medium_mixed_pair", "hard_mixed_multi")
ENDPOINT_VARS = ("API_BASE_URL", "MODEL_NAME", "HF_TOKEN", "OPENAI_API_KEY", "ENV_URL")
MODEL = "fake-model"
API_KEY = "test-key"

START_RE = re.compile(r"\[START\] task=(\S+) env=metric_tracker_rl model=(\S+)")
STEP_RE = re.compile(
    r"\[STEP\] step=(\d+) action=(\S+) reward=(\d+\.\d{2}) done=(true|false) error=(null|\S.*)"
)
END_RE = re.compile(
    r"\[END\] success=(true|false) steps=(\d+) score=(\d+\.\d{2}) rewards=((?:\d+\.\d{2})(?:,\d+\.\d{2})*)?"
)
SCORE_RE = re.compile(r"(\S+) score: (\d+\.\d{4})")
AVERAGE_RE = re.compile(r"average score: (\d+\.\d{4}) \((\d+) tasks\)")


def make_agent(fake: FakeOpenAI, **kwargs: Any) -> LLMAgent:
    return LLMAgent(base_url=fake.base_url, model=MODEL, api_key=API_KEY, **kwargs)


def play(
    fake: FakeOpenAI, task_id: str = "easy_single_spike", env: Any = None, **kwargs: Any
) -> tuple[MetricTrackerRlObservation, list[StepEvent]]:
    events: list[StepEvent] = []
    agent = make_agent(fake, on_step=events.append, **kwargs)
    final = agent.play(env or MetricTrackerRlEnvironment(), {"task_id": task_id})
    return final, events


def tool_contents(fake: FakeOpenAI) -> list[str]:
    """The tool results the agent sent back, as the last request holds them."""
    return [m["content"] for m in fake.requests[-1]["messages"] if m["role"] == "tool"]


def endpoint_env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
    env.update(API_BASE_URL=fake.base_url, MODEL_NAME=MODEL, HF_TOKEN=API_KEY, **extra)
    return env


# --- solving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_solving_policy_reaches_the_top_score(task_id: str) -> None:
    env = MetricTrackerRlEnvironment()
    with FakeOpenAI() as fake:
        final, events = play(fake, task_id, env)
    assert final.status == "graded" and final.done
    assert final.reward >= 0.99
    assert [e.step for e in events] == list(range(1, len(events) + 1))
    assert env.state.step_count == len(events) <= env.max_steps
    assert events[0].action.startswith("list_suspicious_dates(limit=28")  # the solver's first call
    assert events[-1].action.startswith(f"{SUBMIT_TOOL}(classifications=")
    assert events[-1].reward == final.reward and events[-1].done
    assert all(e.error is None and not e.done for e in events[:-1])
    # confirmations arrive as parallel tool calls in one reply
    assert any(len(m.get("tool_calls") or []) > 1 for m in fake.requests[-1]["messages"])


def test_requests_carry_the_registry_tools_and_deterministic_parameters() -> None:
    with FakeOpenAI() as fake:
        play(fake)
    assert fake.requests
    for body in fake.requests:
        assert body["tools"] == agent_tools()
        assert all(tool["function"]["strict"] is True for tool in body["tools"])
        assert body["model"] == MODEL
        assert body["temperature"] == 0
        assert body["seed"] == 0
        assert body["tool_choice"] == "auto"
    names = [tool["function"]["name"] for tool in fake.requests[0]["tools"]]
    assert names == [*REGISTRY, SUBMIT_TOOL]
    assert {h["authorization"] for h in fake.headers} == {f"Bearer {API_KEY}"}
    first = fake.requests[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user"]
    assert "task_overview" in first[0]["content"]
    assert "There are 2 anomaly rows to find" in first[1]["content"]


def test_submit_report_schema_is_derived_from_the_row_and_generator_models() -> None:
    submit = agent_tools()[-1]["function"]
    assert submit["name"] == SUBMIT_TOOL and submit["strict"] is True
    properties = submit["parameters"]["properties"]
    rows, null = properties["classifications"]["anyOf"]
    assert null == {"type": "null"}
    row = rows["items"]
    assert list(row["properties"]) == row["required"] == list(ROW_FIELDS)
    generators, _ = properties["payload_generators"]["anyOf"]
    assert set(generators["items"]["properties"]) == set(GeneratorSpec.model_fields)
    assert "title" not in json.dumps(submit)
    assert strict_errors(submit["parameters"]) == []


def test_the_fake_endpoint_refuses_a_tool_that_strict_mode_refuses() -> None:
    """As the real API does: a lenient schema marked strict is a 400, so the tests above fail
    if the agent's schemas stop being strict."""
    lenient = {**agent_tools()[0], "function": {**agent_tools()[0]["function"], "strict": True}}
    lenient["function"]["parameters"] = REGISTRY["list_suspicious_dates"].arguments_schema()
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError, match="every property must be required"):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[lenient]
            )


def test_the_agent_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        with FakeOpenAI() as fake:
            final, events = play(fake, "hard_mixed_multi")
        runs.append((final.model_dump_json(), events, json.dumps(fake.requests, sort_keys=True)))
    assert runs[0] == runs[1]


# --- robustness ------------------------------------------------------------------------------


def test_malformed_tool_calls_get_error_messages_and_the_episode_recovers() -> None:
    faults = ["bad_json", "not_object", "unknown_tool", "missing_args", "no_tool_call", "bad_submit"]
    with FakeOpenAI(faults=faults) as fake:
        final, events = play(fake)
        contents = tool_contents(fake)
        messages = fake.requests[-1]["messages"]
    assert final.status == "graded" and final.reward >= 0.99
    errors = [json.loads(c)["error"] for c in contents if "error" in json.loads(c)]
    expected = [
        "arguments are not valid JSON",
        "arguments must be a JSON object",
        "unknown tool 'drop_database'",
        "bad arguments for 'compare_rate_to_median'",
        "classifications must be a list of objects",
    ]
    assert len(errors) == len(expected)
    assert all(text in error for text, error in zip(expected, errors, strict=True))
    assert any(m["role"] == "user" and "No tool call received" in m["content"] for m in messages)
    # only the call that reached the environment cost a step (its error is reported)
    assert [e.error is not None for e in events].count(True) == 1


def test_a_server_that_rejects_seed_is_asked_again_without_it() -> None:
    with FakeOpenAI(accept_seed=False) as fake:
        final, _ = play(fake)
    assert final.reward >= 0.99
    assert "seed" in fake.requests[0]
    assert all("seed" not in body for body in fake.requests[1:])


def test_one_server_error_is_retried_by_the_client() -> None:
    with FakeOpenAI(faults=["http_500"]) as fake:
        final, _ = play(fake)
    assert final.reward >= 0.99
    assert len(fake.requests) >= 2


@pytest.mark.parametrize(
    ("faults", "options"),
    [
        (["http_500"] * 3, {"max_retries": 0}),
        (["slow"], {"max_retries": 0, "timeout": 0.5}),
    ],
    ids=["server-error", "timeout"],
)
def test_an_endpoint_that_fails_after_its_retries_raises_endpoint_error(
    faults: list[str], options: dict[str, Any]
) -> None:
    """An endpoint failure is no score of the model's: the episode is not graded as empty."""
    env = MetricTrackerRlEnvironment()
    with FakeOpenAI(faults=faults) as fake:
        started = time.monotonic()
        with pytest.raises(EndpointError, match="failed after its retries"):
            play(fake, env=env, **options)
        assert time.monotonic() - started < 3.0
        assert len(fake.requests) == 1  # no second request once the endpoint failed
    assert env.state.step_count == 0


def test_a_refused_request_ends_the_episode_with_a_graded_report() -> None:
    with FakeOpenAI(faults=["http_400"]) as fake:
        final, events = play(fake, max_retries=0)
        assert len(fake.requests) == 1
    assert final.status == "graded" and final.reward == 0.0
    assert [e.action for e in events] == [f"{SUBMIT_TOOL}(classifications=0,payload_generators=0)"]


def test_a_model_that_never_calls_tools_is_nudged_then_graded() -> None:
    with FakeOpenAI(policy="text") as fake:
        final, events = play(fake)
        requests = fake.requests
    assert final.status == "graded" and final.reward == 0.0
    assert len(events) == 1
    # the first reply, MAX_TEXT_REPLIES nudged replies, then one forced submit_report request
    assert len(requests) == MAX_TEXT_REPLIES + 2
    assert requests[-1]["tool_choice"] == {"type": "function", "function": {"name": SUBMIT_TOOL}}


def test_rounds_are_bounded_and_the_model_is_asked_to_submit_at_the_end() -> None:
    with FakeOpenAI(policy="loop") as fake:
        final, events = play(fake, max_rounds=5)
        requests = fake.requests
    assert len(requests) == 6
    assert requests[-1]["tool_choice"] == {"type": "function", "function": {"name": SUBMIT_TOOL}}
    assert [e.action for e in events] == ["list_dates()"] * 5 + [
        f"{SUBMIT_TOOL}(classifications=0,payload_generators=0)"
    ]
    assert final.status == "graded"


def test_the_step_budget_keeps_a_step_for_the_submission() -> None:
    env = MetricTrackerRlEnvironment(max_steps=4)
    with FakeOpenAI(policy="loop") as fake:
        final, events = play(fake, env=env)
    assert env.state.step_count == len(events) == 4
    assert events[-1].action.startswith(SUBMIT_TOOL)
    assert final.status == "graded" and final.done


# --- pieces ------------------------------------------------------------------------------------


def test_compact_json_cuts_long_lists_and_stays_valid_json() -> None:
    small = {"result": {"rows": [1, 2, 3]}}
    assert compact_json(small, 100) == '{"result":{"rows":[1,2,3]}}'
    big = {"result": {"rows": [{"date": f"2026-03-{d:02d}", "value": d} for d in range(1, 29)] * 20}}
    text = compact_json(big, 2000)
    data = json.loads(text)
    assert len(text) <= 2000
    shown = len(data["result"]["rows"])
    assert 0 < shown < 560
    assert data["truncated"]["lists"] == {"result.rows": f"{shown} of 560 items shown"}
    assert data["result"]["rows"] == big["result"]["rows"][:shown]


def test_settings_come_from_the_environment() -> None:
    with pytest.raises(LLMConfigError, match="API_BASE_URL, MODEL_NAME, HF_TOKEN or OPENAI_API_KEY"):
        settings_from_env({})
    base = {"API_BASE_URL": "http://x/v1", "MODEL_NAME": "m"}
    assert settings_from_env({**base, "OPENAI_API_KEY": "o"})["api_key"] == "o"
    assert settings_from_env({**base, "HF_TOKEN": "h", "OPENAI_API_KEY": "o"})["api_key"] == "h"
    with pytest.raises(LLMConfigError, match="MODEL_NAME"):
        settings_from_env({"API_BASE_URL": "http://x/v1", "HF_TOKEN": "h", "MODEL_NAME": " "})


def test_the_registry_builds_the_llm_agent_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        for key, value in endpoint_env(fake).items():
            if key in ENDPOINT_VARS:
                monkeypatch.setenv(key, value)
        agent = AGENTS["llm"]()
        final = agent.play(MetricTrackerRlEnvironment(), {"task_id": "medium_mixed_pair"})
    assert agent.model == MODEL
    assert final.reward >= 0.99


# --- inference.py --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inference_under_test", REPO / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_evaluation_output(stdout: str, tasks: tuple[str, ...]) -> list[float]:
    """Every line has one of the documented formats, in order; returns the task scores."""
    lines = stdout.splitlines()
    scores = []
    position = 0
    for task_id in tasks:
        start = START_RE.fullmatch(lines[position])
        assert start and start.groups() == (task_id, MODEL), lines[position]
        position += 1
        steps = []
        while match := STEP_RE.fullmatch(lines[position]):
            steps.append(match)
            position += 1
        assert [int(m.group(1)) for m in steps] == list(range(1, len(steps) + 1))
        assert steps and all(m.group(4) == "false" for m in steps[:-1])
        end = END_RE.fullmatch(lines[position])
        assert end, lines[position]
        success, count, score, rewards = end.groups()
        assert int(count) == len(steps)
        assert rewards.split(",") == [m.group(3) for m in steps]
        assert score == steps[-1].group(3)
        assert success == str(float(score) >= 0.5).lower()
        human = SCORE_RE.fullmatch(lines[position + 1])
        assert human and human.group(1) == task_id, lines[position + 1]
        assert f"{float(human.group(2)):.2f}" == score
        scores.append(float(human.group(2)))
        position += 2
    average = AVERAGE_RE.fullmatch(lines[position])
    assert average, lines[position]
    assert float(average.group(1)) == pytest.approx(sum(scores) / len(scores), abs=1e-4)
    assert int(average.group(2)) == len(tasks)
    assert position == len(lines) - 1
    return scores


def test_inference_reports_missing_settings(
    inference: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ENDPOINT_VARS:
        monkeypatch.delenv(key, raising=False)
    assert inference.main(["--env-file", str(tmp_path / "absent")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "API_BASE_URL, MODEL_NAME, HF_TOKEN or OPENAI_API_KEY" in captured.err


def test_inference_prints_end_lines_when_the_endpoint_fails(
    inference: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAI(faults=["http_500"] * 40) as fake:
        for key, value in endpoint_env(fake).items():
            if key in ENDPOINT_VARS:
                monkeypatch.setenv(key, value)
        code = inference.main(["--env-file", str(tmp_path / "absent"), "--task", "easy_single_spike"])
    assert code == 1  # an episode could not be played
    assert capsys.readouterr().out.splitlines() == [
        f"[START] task=easy_single_spike env=metric_tracker_rl model={MODEL}",
        "[END] success=false steps=0 score=0.00 rewards=",
        "easy_single_spike score: 0.0000",
        "average score: 0.0000 (1 tasks)",
    ]


@contextlib.contextmanager
def environment_server() -> Iterator[str]:
    """The OpenEnv server in a thread, on a free loopback port."""
    import uvicorn

    from metric_tracker_rl.serving import build_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(build_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("environment server did not become healthy")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_inference_plays_against_a_server_url(
    inference: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with environment_server() as env_url, FakeOpenAI() as fake:
        for key, value in endpoint_env(fake, ENV_URL=env_url).items():
            if key in ENDPOINT_VARS:
                monkeypatch.setenv(key, value)
        code = inference.main(["--env-file", str(tmp_path / "absent"), "--task", "hard_mixed_multi"])
    assert code == 0
    assert check_evaluation_output(capsys.readouterr().out, ("hard_mixed_multi",)) == [1.0]


# --- subprocesses: inference.py and the command line ----------------------------------------


@pytest.fixture(scope="module")
def subprocess_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``inference.py`` (settings from an env file only) and ``metric-tracker eval --agent llm``
    (settings from the environment), started together against one fake endpoint."""
    tmp_path = tmp_path_factory.mktemp("llm")
    script = Path(sys.executable).parent / "metric-tracker"
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "metric_tracker_rl.cli"]
    with FakeOpenAI() as fake:
        env_file = tmp_path / ".env.inference"
        env_file.write_text(
            "# endpoint for the test\n"
            f"export API_BASE_URL={fake.base_url}\n"
            f'MODEL_NAME="{MODEL}"\n'
            f"HF_TOKEN='{API_KEY}'  \n"
            "OPENAI_API_KEY=  # unused\n",
            encoding="utf-8",
        )
        bare = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
        commands = {
            "inference": ([sys.executable, "inference.py", "--env-file", str(env_file)], bare),
            "cli": ([*cli, "eval", "--agent", "llm", "--task", "easy_single_spike"], endpoint_env(fake)),
        }
        procs = {
            name: subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for name, (command, env) in commands.items()
        }
        try:
            runs: dict[str, Any] = {name: proc.communicate(timeout=110) for name, proc in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
        runs["codes"] = {name: proc.returncode for name, proc in procs.items()}
        runs["models"] = {body["model"] for body in fake.requests}
        runs["authorizations"] = {h["authorization"] for h in fake.headers}
    yield runs


def test_inference_script_prints_the_evaluation_lines(subprocess_runs: dict[str, Any]) -> None:
    stdout, stderr = subprocess_runs["inference"]
    assert subprocess_runs["codes"]["inference"] == 0, stderr[-3000:]
    assert check_evaluation_output(stdout, TASK_IDS) == [1.0, 1.0, 1.0]
    assert subprocess_runs["models"] == {MODEL}
    assert subprocess_runs["authorizations"] == {f"Bearer {API_KEY}"}


def test_metric_tracker_eval_runs_the_llm_agent(subprocess_runs: dict[str, Any]) -> None:
    stdout, stderr = subprocess_runs["cli"]
    assert subprocess_runs["codes"]["cli"] == 0, stderr[-3000:]
    assert "| llm | 1.000 | 1.000 |" in stdout


@pytest.mark.parametrize("seed", range(6))
def test_every_analysis_result_fits_a_tool_turn_whole(seed: int) -> None:
    """No call is charged for rows a tool turn would cut: every method's largest result (the
    whole ranking, every raw row, a day's hours, a generator at its lowest threshold) fits
    DEFAULT_MAX_RESULT_CHARS. preview_submission is priced flat, whatever it echoes."""
    env = MetricTrackerRlEnvironment(max_steps=10_000)
    first = env.reset(seed=seed, difficulty=("easy", "medium", "hard")[seed % 3], anomaly_density="high")
    date = first.config["start_date"]
    largest = {
        "list_suspicious_dates": {"limit": 28},
        "show_raw_data": {"limit": 28},
        "hourly_rows_for_date": {"date": date},
        "rows_for_date": {"date": date},
        "check_impossible_counts": {"date": date},
        "detect_funnel_break": {"date": date},
        "get_median_filter_rows": {"threshold_multiplier": 0.0},
        "payload_generator": {
            "generator_methods": [{"method_name": "get_median_filter_rows", "threshold_multiplier": 0.0}]
        },
        "task_overview": {},
        "list_entities": {},
        "list_dates": {},
    }
    turns = ToolTurns(env, first)
    for method, arguments in largest.items():
        reply = json.loads(turns.answer(method, json.dumps(arguments)))
        assert "result" in reply and "truncated" not in reply, method
        assert len(json_text(reply)) <= DEFAULT_MAX_RESULT_CHARS, method


def test_a_cut_result_names_only_arguments_its_method_takes() -> None:
    big = {
        "result": {"dates": [{"date": f"2026-03-{d:02d}", "signals": list(range(40))} for d in range(1, 29)]}
    }
    ranking = json.loads(compact_json(big, 2000, "list_suspicious_dates"))["truncated"]["hint"]
    assert "a smaller limit" in ranking and "metric_name" not in ranking and "threshold" not in ranking
    generator = json.loads(compact_json(big, 2000, "get_median_filter_rows"))["truncated"]["hint"]
    assert "metric_name or metric_names" in generator and "a higher threshold_multiplier" in generator
    assert "limit" not in generator
    plain = json.loads(compact_json(big, 2000, "task_overview"))["truncated"]["hint"]
    assert "Narrow" not in plain
