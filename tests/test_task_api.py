"""OpenEnv Task API: splits of reset configs, and reset(split=..., index=...)."""

from __future__ import annotations

import pytest

from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS


@pytest.fixture(scope="module")
def env() -> MetricTrackerRlEnvironment:
    return MetricTrackerRlEnvironment()


def test_splits_list_the_named_tasks_and_the_eval_split(env):
    assert env.list_splits() == [{"name": "named", "type": "validation"}, {"name": "eval", "type": "test"}]
    assert env.num_tasks("named") == len(NAMED_TASKS)
    assert env.num_tasks("eval") == len(EVAL_SPLIT)
    assert [t["id"] for t in env.list_tasks("named")] == list(NAMED_TASKS)
    assert env.get_task("eval", 3)["reset"] == EVAL_SPLIT[3]
    assert [t["index"] for t in env.get_task_range("eval", 70, None)] == [70, 71]


@pytest.mark.parametrize(
    "split, index", [("nope", 0), ("eval", len(EVAL_SPLIT)), ("eval", -1), ("named", "1")]
)
def test_unknown_split_or_index_is_an_index_error(env, split, index):
    with pytest.raises(IndexError):
        env.get_task(split, index)


def test_reset_by_split_and_index_plays_that_config(env):
    by_index = env.reset(split="eval", index=7)
    direct = MetricTrackerRlEnvironment().reset(**EVAL_SPLIT[7])
    assert by_index.config == direct.config
    assert env.reset(split="named", index=2).task_id == "hard_mixed_multi"


def test_reset_with_a_bad_index_is_a_config_error(env):
    with pytest.raises(ConfigError, match="out of range"):
        env.reset(split="eval", index=999)
