"""Investigation must pay: recipes that skip the investigation stay under fixed bounds,
and the reference investigator's score rises with its budget.

The configs are training configs of every difficulty, scenario family and density, and the
named tasks with the evaluation split; ``bench/validity.py`` runs the same recipes on more
configs and prints the table the README shows.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import pytest

from metric_tracker_rl import constants as C
from metric_tracker_rl import tasks
from metric_tracker_rl.agents import AGENTS, SHORTCUT_CEILING, WITHOUT_EVIDENCE
from metric_tracker_rl.agents.shortcuts import ExplorerAgent
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.families import SCENARIO_FAMILIES

SEED_BASE = 700_000
CONFIGS = [
    {"seed": SEED_BASE + i, "scenario_family": family, "difficulty": difficulty, "anomaly_density": density}
    for i, (family, difficulty, density) in enumerate(
        itertools.product(SCENARIO_FAMILIES, ("medium", "hard"), tuple(C.ANOMALY_DENSITY_COUNTS))
    )
]
HARD = [c for c in CONFIGS if c["difficulty"] == "hard"]
EASY = [
    {
        "seed": SEED_BASE + 100 + i,
        "scenario_family": family,
        "difficulty": "easy",
        "anomaly_density": "medium",
    }
    for i, family in enumerate(SCENARIO_FAMILIES)
]
NAMED_AND_EVAL = [{"task_id": t} for t in tasks.NAMED_TASKS] + [dict(c) for c in tasks.EVAL_SPLIT]


def difficulty_of(config: dict[str, Any]) -> str:
    return tasks.NAMED_TASKS[config["task_id"]].difficulty if "task_id" in config else config["difficulty"]


def play(agent: str | Any, config: dict[str, Any], max_steps: int | None = None):
    player = AGENTS[agent]() if isinstance(agent, str) else agent
    return player.play(MetricTrackerRlEnvironment(max_steps=max_steps), dict(config))


def mean_score(agent: str | Any, configs: list[dict[str, Any]], max_steps: int | None = None) -> float:
    return statistics.fmean(float(play(agent, config, max_steps).reward or 0.0) for config in configs)


def test_the_config_set_is_broad():
    assert len(CONFIGS) == 8 * 2 * 3
    assert {c["scenario_family"] for c in CONFIGS} == set(SCENARIO_FAMILIES)


# --- only evidence earns credit ------------------------------------------------------------


@pytest.mark.parametrize("agent", WITHOUT_EVIDENCE)
def test_recipes_that_never_call_a_detection_method_score_at_most_0_3_on_every_difficulty(agent):
    """Generators calibrated into the public rule, per-field feedback probes, daily views plus
    the thresholds, rankings, blind payloads: on training and evaluation configs alike."""
    for configs in (EASY + CONFIGS, NAMED_AND_EVAL):
        by_difficulty: dict[str, list[float]] = {}
        for config in configs:
            final = play(agent, config)
            by_difficulty.setdefault(difficulty_of(config), []).append(float(final.reward or 0.0))
        for difficulty, scores in by_difficulty.items():
            assert statistics.fmean(scores) <= SHORTCUT_CEILING, (difficulty, statistics.fmean(scores))


@pytest.mark.parametrize("agent", ["calibrated_scan", "dump_and_filter", "detector_scan", "explorer"])
def test_no_call_spends_the_unit_the_report_needs(agent):
    """Recipes that spend the budget to its end still get their report graded."""
    for config in HARD:
        final = play(agent, config)
        assert final.status == "graded" and final.budget["submissions_used"] >= 1, config


@pytest.mark.parametrize("agent", ["date_scan", "detector_scan"])
def test_exhaustive_per_date_scans_score_at_most_0_7_on_hard(agent):
    assert mean_score(agent, HARD) <= 0.7


# --- hard means hard: a literal checklist stays well below an analyst who reasons ------------


def test_the_literal_playbook_stays_well_below_the_reference_solver():
    """The briefing followed as a checklist (one row a date, the ranking's order, no sweep of
    related statistics): at most 0.8 on medium and 0.6 on hard, on training and evaluation
    configs."""
    for configs in (CONFIGS, [c for c in NAMED_AND_EVAL if difficulty_of(c) != "easy"]):
        by_difficulty: dict[str, list[float]] = {}
        for config in configs:
            by_difficulty.setdefault(difficulty_of(config), []).append(
                float(play("playbook", config).reward or 0.0)
            )
        assert statistics.fmean(by_difficulty["medium"]) <= 0.8
        assert statistics.fmean(by_difficulty["hard"]) <= 0.6


def test_groups_of_the_stochastic_playbook_have_reward_variance():
    """8 rollouts of the checklist taking dates from a softmax over the ranking: at most 30 % of
    medium and hard configs give every rollout the same reward (a GRPO group that teaches
    nothing). Easy may saturate: it is the start of a curriculum."""
    flat = 0
    for config in CONFIGS:
        rewards = {float(play(AGENTS["playbook_stochastic"](seed=k), config).reward or 0.0) for k in range(8)}
        flat += len(rewards) == 1
    assert flat <= 0.3 * len(CONFIGS)


# --- the honest investigator ------------------------------------------------------------------


def test_the_solver_score_rises_with_its_budget():
    ladder = [mean_score("solver", CONFIGS, budget) for budget in (4, 8, 16)]
    default = mean_score("solver", CONFIGS)
    assert ladder[0] <= 0.45
    assert ladder[0] < ladder[1] < ladder[2] < default
    assert default >= 0.95


def test_the_solver_reaches_the_top_on_the_named_tasks_and_the_evaluation_split():
    assert mean_score("solver", NAMED_AND_EVAL) >= 0.95
    for task_id in tasks.NAMED_TASKS:
        assert mean_score("solver", [{"task_id": task_id}]) == 1.0


def test_the_solver_copes_with_crowded_windows():
    """Explicit anomaly counts up to the maximum, in one family (up to 12 of 28 days on one
    entity of the hourly mix, the median itself moved) or mixed: still at the top."""
    crowded = [
        {"seed": 800_000 + i, "scenario_family": family, "difficulty": difficulty, "anomaly_count": count}
        for i, (family, difficulty, count) in enumerate(
            itertools.product(SCENARIO_FAMILIES, ("medium", "hard"), (9, C.MAX_ANOMALY_COUNT))
        )
    ]
    assert mean_score("solver", crowded) >= 0.95


def test_rollout_groups_of_an_explorer_have_reward_variance():
    """A GRPO group with one reward for every rollout teaches nothing: at most 30 % of
    8-rollout groups of a stochastic explorer are flat."""
    flat = 0
    for config in CONFIGS:
        scores = {
            float(ExplorerAgent(seed=k).play(MetricTrackerRlEnvironment(), dict(config)).reward or 0.0)
            for k in range(8)
        }
        flat += len(scores) == 1
    assert flat <= 0.3 * len(CONFIGS)
