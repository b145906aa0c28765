"""The Inspect AI task: its command line with Inspect's mock model, a replayed episode
scored by its reward, and OpenEnv's Inspect harness running the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from extras import REQUIRE_VAR, need

need("inspect_ai", "inspect")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, get_model  # noqa: E402

from metric_tracker_rl.integrations.dataset import solver_conversation  # noqa: E402
from metric_tracker_rl.integrations.inspect_task import metric_tracker  # noqa: E402
from metric_tracker_rl.tasks import NAMED_TASKS  # noqa: E402
from metric_tracker_rl.tools import tool_catalog  # noqa: E402

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[1]
TASK_FILE = "metric_tracker_rl/integrations/inspect_task.py"


@pytest.fixture(scope="module", autouse=True)
def token_counts() -> None:
    """Inspect's mock model counts tokens with tiktoken's o200k_base (scripts/tiktoken_cache.py)."""
    import tiktoken

    try:
        tiktoken.get_encoding("o200k_base")
    except Exception as err:
        if os.environ.get(REQUIRE_VAR) == "1":
            raise
        pytest.skip(
            f"tiktoken's o200k_base is not cached ({type(err).__name__}): run scripts/tiktoken_cache.py"
        )


def test_the_command_line_runs_with_the_mock_model(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "inspect_ai", "eval", TASK_FILE, "--model", "mockllm/model"]
    done = subprocess.run(
        [*command, "--limit", "2", "--log-dir", str(tmp_path), "--display", "plain"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (log_file,) = tmp_path.glob("*.eval")
    log = read_eval_log(str(log_file))
    assert log.status == "success" and len(log.samples) == 2
    assert [s.id for s in log.samples] == ["eval-000", "eval-001"]
    for sample in log.samples:  # the mock model never calls a tool: nothing graded
        assert sample.scores["episode_reward"].value == 0.0
        assert sample.messages[0].role == "system" and "anomaly rows to find" in sample.messages[1].text


def test_a_replayed_solver_episode_scores_its_reward(tmp_path: Path) -> None:
    task_id = next(iter(NAMED_TASKS))
    messages, score = solver_conversation({"task_id": task_id})
    properties = {t.name: t.input_schema["properties"] for t in tool_catalog()}

    def strict(name: str, arguments: dict) -> dict:  # the schemas are strict: every argument, null or set
        return {arg: arguments.get(arg) for arg in properties[name]}

    outputs = [
        ModelOutput.for_tool_call(
            "mockllm/model",
            call["function"]["name"],
            strict(call["function"]["name"], json.loads(call["function"]["arguments"])),
        )
        for message in messages
        for call in message["tool_calls"] or []
    ]
    outputs.append(ModelOutput.from_content("mockllm/model", messages[-1]["content"]))
    model = get_model("mockllm/model", custom_outputs=outputs)
    (log,) = inspect_eval(
        metric_tracker(split="named"), model=model, limit=1, log_dir=str(tmp_path), display="none"
    )
    assert log.status == "success"
    (sample,) = log.samples
    assert sample.scores["episode_reward"].value == score == 1.0
    assert sample.scores["episode_reward"].metadata["reward_breakdown"]["matched_rows"] > 0
    tool_results = [m.text for m in sample.messages if m.role == "tool"]
    assert tool_results == [m["content"] for m in messages if m["role"] == "tool"]


def test_openenv_inspect_harness_runs_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openenv.core.evals.inspect_harness import InspectAIHarness

    monkeypatch.chdir(REPO)
    scores = InspectAIHarness(log_dir=str(tmp_path)).run(
        harness_version="",
        library_versions={},
        dataset=TASK_FILE,
        eval_parameters={"model": "mockllm/model", "task_args": {"split": "named"}, "max_samples": 3},
    )
    assert scores == {"mean": 0.0, "stderr": 0.0}
