"""The TRL environment and the training datasets, without TRL: tools, replays, bytes."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.cli import run
from metric_tracker_rl.integrations.dataset import (
    TRAIN_SEED_BASE,
    USER_PROMPT,
    prompt_messages,
    solver_conversation,
    train_configs,
    write_dataset,
)
from metric_tracker_rl.integrations.trl import MetricTrackerToolEnv, tool_names, trl_tool_schemas
from metric_tracker_rl.tasks import EVAL_SEED_BASE, EVAL_SPLIT, NAMED_TASKS

pytestmark = pytest.mark.timeout(300)


def tools_as_trl_sees_them(env: MetricTrackerToolEnv) -> list[str]:
    """TRL's discovery: public functions of the class, except reset and get_reward."""
    return [
        name
        for name, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]


def replay(env: MetricTrackerToolEnv, messages: list[dict]) -> list[tuple[str, str]]:
    """Play a conversation's tool calls; (recorded result, the environment's result) pairs."""
    pairs = []
    for turn, answer in zip(messages, messages[1:], strict=False):
        for call in turn.get("tool_calls") or []:
            function = call["function"]
            arguments = function["arguments"]
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            pairs.append((answer["content"], getattr(env, function["name"])(**arguments)))
    return pairs


def test_the_tools_are_the_registry_methods_and_submit_report_on_a_fresh_instance() -> None:
    env = MetricTrackerToolEnv()  # no reset: TRL introspects first
    assert sorted(tools_as_trl_sees_them(env)) == sorted([*REGISTRY, "submit_report"]) == sorted(tool_names())
    assert [s["function"]["name"] for s in trl_tool_schemas()] == sorted(tool_names())
    assert env.get_reward() == 0.0
    assert json.loads(env.task_overview()) == {"error": "no episode: call reset() first"}


def test_signatures_are_real() -> None:
    signature = inspect.signature(MetricTrackerToolEnv.compare_rate_to_median)
    assert list(signature.parameters) == ["self", "date", "entity_name"]
    assert all(p.default is inspect.Parameter.empty for p in list(signature.parameters.values())[1:])
    optional = inspect.signature(MetricTrackerToolEnv.list_suspicious_dates).parameters
    assert optional["limit"].default is None and optional["entity_type"].default is None
    assert "Args:\n    date:" in MetricTrackerToolEnv.compare_rate_to_median.__doc__
    env = MetricTrackerToolEnv()
    env.reset(task_id="easy_single_spike")
    with pytest.raises(TypeError):  # a bad call raises, as TRL expects (it reports the error)
        env.compare_rate_to_median(date="2026-03-20", unknown=1)
    positional = json.loads(env.compare_rate_to_median("2026-03-20", "app_open_to_menu_open"))
    assert "result" in positional


def test_reset_takes_a_dataset_row_and_appends_to_its_prompt() -> None:
    env = MetricTrackerToolEnv()
    row = {"prompt": prompt_messages(), **train_configs(1)[0], "label": "x", "task_id": None}
    briefing = env.reset(**row)
    assert briefing.startswith("\n\n") and "anomaly rows to find" in briefing
    assert env.turns is not None and env.turns.first.config["seed"] == TRAIN_SEED_BASE
    assert not env.reset(task_id="hard_mixed_multi").startswith("\n")
    assert env.turns.first.task_id == "hard_mixed_multi" and env.resets == 2
    env.reset(split="eval", index=3)
    assert env.turns.first.config["seed"] == EVAL_SPLIT[3]["seed"]


@pytest.mark.parametrize("task_id", list(NAMED_TASKS))
def test_the_solver_conversation_replays_to_its_score(task_id: str) -> None:
    messages, score = solver_conversation({"task_id": task_id})
    assert score == 1.0
    assert [m["role"] for m in messages[:3]] == ["system", "user", "assistant"]
    assert messages[1]["content"].startswith(USER_PROMPT)
    env = MetricTrackerToolEnv()
    assert env.reset(task_id=task_id, prompt=prompt_messages()) == messages[1]["content"][len(USER_PROMPT) :]
    pairs = replay(env, messages)
    assert [recorded for recorded, _ in pairs] == [played for _, played in pairs]
    assert env.get_reward() == 1.0
    assert env.reward_breakdown["score"] == 1.0


def test_a_server_plays_the_same_episode(server_url: str) -> None:
    messages, _ = solver_conversation({"task_id": "medium_mixed_pair"})
    with MetricTrackerToolEnv(server_url) as env:
        env.reset(task_id="medium_mixed_pair")
        pairs = replay(env, messages)
        assert env.get_reward() == 1.0
    assert [recorded for recorded, _ in pairs] == [played for _, played in pairs]


def test_bad_tool_input_is_an_error_result_and_the_episode_goes_on() -> None:
    env = MetricTrackerToolEnv()
    env.reset(task_id="easy_single_spike")
    assert "error" in json.loads(env.rows_for_date(date="not a date"))
    graded = json.loads(env.submit_report(classifications=[{"date": float("nan")}]))
    assert graded["score"] == 0.0 and graded["reward_breakdown"]["invalid_rows"] == 1
    assert "result" in json.loads(env.task_overview())


def test_training_configs_cover_every_cell_below_the_evaluation_seeds() -> None:
    configs = train_configs(2)
    assert len(configs) == 2 * len(EVAL_SPLIT)
    cells = {(c["scenario_family"], c["difficulty"], c["anomaly_density"]) for c in configs}
    assert cells == {(c["scenario_family"], c["difficulty"], c["anomaly_density"]) for c in EVAL_SPLIT}
    seeds = [c["seed"] for c in configs]
    assert len(set(seeds)) == len(seeds) and max(seeds) < EVAL_SEED_BASE
    assert min(seeds) > max(t.seed for t in NAMED_TASKS.values())


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_dataset_command_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    assert run(["dataset", str(tmp_path / "a"), "--per-cell", "1"]) == 0
    write_dataset(tmp_path / "b", per_cell=1)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert set(digests(tmp_path / "a")) == {
        "README.md",
        "prompts/train.parquet",
        "prompts/test.parquet",
        "sft/train.parquet",
    }
    sft = pq.read_table(tmp_path / "a" / "sft" / "train.parquet").to_pylist()
    prompts = pq.read_table(tmp_path / "a" / "prompts" / "test.parquet").to_pylist()
    assert len(prompts) == len(EVAL_SPLIT) and prompts[0]["prompt"] == prompt_messages()
    assert 0 < len(sft) <= len(EVAL_SPLIT)
    assert json.loads(sft[0]["tools"]) == trl_tool_schemas()
    last = sft[0]["messages"][-1]
    assert last["role"] == "assistant" and "score 1.0" in last["content"]
    assert run(["dataset", str(tmp_path / "a" / "README.md")]) == 2  # a file, not a directory
