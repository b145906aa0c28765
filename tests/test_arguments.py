"""ResetArgs and SubmitArgs: the one definition of what a reset and a submission take."""

from __future__ import annotations

import pytest

from metric_tracker_rl.arguments import RESET_ARGUMENTS, ResetArgs, SubmitArgs
from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.tasks import NAMED_TASKS, TASK_SPLITS
from metric_tracker_rl.web.data import DEFAULT_CHOICE, reset_choices


def test_every_task_config_is_a_valid_reset_args() -> None:
    for task in NAMED_TASKS.values():
        ResetArgs.model_validate({"task_id": task.task_id, **task.reset_arguments()})
    for split, configs in TASK_SPLITS.items():
        for index, config in enumerate(configs):
            ResetArgs.model_validate({"split": split, "index": index, **config})


@pytest.mark.parametrize("name", ["task_id", "scenario_family", "difficulty", "anomaly_density", "split"])
def test_every_value_reset_args_offers_is_one_the_environment_takes(name: str) -> None:
    for value in ResetArgs.choices(name):
        extra = {"index": 0} if name == "split" else {}
        MetricTrackerRlEnvironment().reset(**{name: value, **extra})


def test_the_integer_ranges_are_the_environments() -> None:
    counts = ResetArgs.choices("anomaly_count")
    env = MetricTrackerRlEnvironment()
    for count in (counts[0], counts[-1]):
        assert env.reset(anomaly_count=count).expected_row_count >= 1
    for count in (counts[0] - 1, counts[-1] + 1):
        with pytest.raises(ConfigError, match="anomaly_count"):
            env.reset(anomaly_count=count)


def test_submit_args_are_the_two_parts_of_a_submission() -> None:
    assert list(SubmitArgs.model_fields) == ["classifications", "payload_generators"]


def test_the_client_takes_every_reset_argument_by_name_and_refuses_others() -> None:
    client = MetricTrackerRlEnv(base_url="http://127.0.0.1:9")  # never connected
    with pytest.raises(TypeError, match="unknown reset arguments \\['tsak_id'\\]"):
        client.reset(tsak_id="easy_single_spike")
    assert "end_date" in RESET_ARGUMENTS and "split" in RESET_ARGUMENTS and "index" in RESET_ARGUMENTS


def test_the_web_reset_choices_are_reset_args_choices() -> None:
    choices = reset_choices()
    for name, options in choices.items():
        assert options == [DEFAULT_CHOICE, *(str(v) for v in ResetArgs.choices(name))]
