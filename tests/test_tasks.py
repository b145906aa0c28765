"""Named tasks (docs/task.md, Tasks) and the fixed evaluation split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from metric_tracker_rl import constants as C
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.families import SCENARIO_FAMILIES
from metric_tracker_rl.tasks import EVAL_SEED_BASE, EVAL_SPLIT, NAMED_TASKS, config_for

HOUR_LEVEL_FAMILIES = {"funnel_break", "hourly_traffic_mix_shift", "instrumentation_data_quality_issue"}


def task_rows(task_id: str):
    config = config_for(task_id)
    return config, build_episode(config).expected_rows


def test_the_three_named_tasks_exist():
    assert {"easy_single_spike", "medium_mixed_pair", "hard_mixed_multi"} <= set(NAMED_TASKS)


def test_easy_single_spike():
    config, rows = task_rows("easy_single_spike")
    assert config.task_id == "easy_single_spike"
    assert config.difficulty == "easy"
    assert len(rows) == 2
    assert {r.anomaly_type for r in rows} == {"rate_spike_from_median"}
    assert {r.entity_type for r in rows} == {"conversion_rate"}
    assert all(r.delta_value > 0 for r in rows)


def test_medium_mixed_pair():
    config, rows = task_rows("medium_mixed_pair")
    assert config.difficulty == "medium"
    assert config.anomaly_count == 3, "three anomalies"
    entity_types = {r.entity_type for r in rows}
    assert {"event_count", "conversion_rate"} <= entity_types
    assert all(r.anomaly_type.startswith(("rate_", "absolute_")) for r in rows), "count and rate signals only"
    assert "cascade" in config.incident_shapes, "one shows in several statistics"


def test_hard_mixed_multi():
    config, rows = task_rows("hard_mixed_multi")
    episode = build_episode(config)
    assert config.difficulty == "hard"
    assert config.anomaly_count == 4, "four anomalies"
    assert len({i.anomaly_type for i in episode.incidents}) == 4, "from four families"
    types = {r.anomaly_type for r in rows}
    assert types & HOUR_LEVEL_FAMILIES
    assert len(rows) > 4, "incidents show in several statistics"
    assert len({i.day for i in episode.incidents}) == 3, "two incidents share a date"
    assert episode.shown_row_count() is None, "the row count is not given"
    assert C.MARGIN["hard"] < C.MARGIN["medium"] < C.MARGIN["easy"], "weaker separation"


@pytest.mark.parametrize("task_id", sorted(NAMED_TASKS))
def test_task_description_matches_its_episode(task_id):
    task = NAMED_TASKS[task_id]
    config, rows = task_rows(task_id)
    assert task.anomaly_rows == len(rows)
    assert task.describe()["anomalies"] == config.anomaly_count == len(task.anomaly_plan)
    shown = task.describe()["anomaly_rows"]
    assert shown == (None if config.difficulty in C.HIDDEN_ROW_COUNT else len(rows))
    assert task.describe()["difficulty"] == config.difficulty
    assert config_for(task_id) == config, "a named task is a fixed config"


def test_task_overrides():
    # Changing only the seed keeps the task's family plan.
    reseeded = config_for("hard_mixed_multi", seed=77)
    assert reseeded.seed == 77
    assert reseeded.anomaly_plan == NAMED_TASKS["hard_mixed_multi"].anomaly_plan
    assert reseeded.task_id == "hard_mixed_multi"
    # Changing the size drops the fixed plan; the count decides the number of incidents.
    resized = config_for("easy_single_spike", anomaly_count=4)
    assert resized.anomaly_count == 4
    assert len(build_episode(resized).expected_rows) == 4
    assert {r.anomaly_type for r in build_episode(resized).expected_rows} == {"rate_spike_from_median"}


def test_config_without_task_is_procedural():
    config = config_for(seed=5, scenario_family="funnel_break", difficulty="hard", anomaly_count=2)
    assert config.task_id is None
    incidents = build_episode(config).incidents
    assert [i.anomaly_type for i in incidents] == ["funnel_break", "funnel_break"]


# --- evaluation split -------------------------------------------------------------------


def test_eval_split_size_and_seed_range():
    assert len(EVAL_SPLIT) >= 50
    assert all(isinstance(c["seed"], int) and c["seed"] >= EVAL_SEED_BASE for c in EVAL_SPLIT)
    assert all(task.seed < EVAL_SEED_BASE for task in NAMED_TASKS.values())


def test_eval_split_covers_every_family_and_difficulty():
    assert {c["scenario_family"] for c in EVAL_SPLIT} == set(SCENARIO_FAMILIES)
    assert {c["difficulty"] for c in EVAL_SPLIT} == set(C.DIFFICULTIES)
    per_difficulty = Counter(c["difficulty"] for c in EVAL_SPLIT)
    assert min(per_difficulty.values()) >= 10


def test_eval_split_has_no_duplicates():
    encoded = [json.dumps(c, sort_keys=True) for c in EVAL_SPLIT]
    assert len(set(encoded)) == len(encoded)
    seeds = [c["seed"] for c in EVAL_SPLIT]
    assert len(set(seeds)) == len(seeds)


def test_every_eval_config_generates():
    for raw in EVAL_SPLIT:
        config = config_for(**raw)
        episode = build_episode(config)
        assert len(episode.incidents) == config.anomaly_count, raw
        assert len(episode.expected_rows) == sum(len(i.rows) for i in episode.incidents), raw
        if config.scenario_family != "mixed":
            assert {i.anomaly_type for i in episode.incidents} == {config.scenario_family}, raw
