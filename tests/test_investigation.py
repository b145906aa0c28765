"""Investigation must pay: no single blind generator call earns a good score.

An agent that submits one ``get_*_rows`` generator at one threshold, without looking at
the data, must stay well below what a real investigation reaches.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from metric_tracker_rl import analysis, episode, grading, tasks
from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import methods
from metric_tracker_rl.families import SCENARIO_FAMILIES

GENERATORS = tuple(g for g in methods.GENERATOR_METHODS if g != "payload_generator")
THRESHOLDS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
SEEDS = (500, 501)
MEAN_LIMIT = 0.6
HARD_TASK_LIMIT = 0.7


def blind_score(ep: episode.Episode, generator: str, threshold: float) -> float:
    specs = [methods.GeneratorSpec(method_name=generator, threshold_multiplier=threshold)]
    rows = analysis.build_payload(ep, specs)
    return grading.grade_submission(rows, ep.expected_rows, ep.dates).score


@pytest.fixture(scope="module")
def broad_episodes() -> list[episode.Episode]:
    configs = itertools.product(SCENARIO_FAMILIES, C.DIFFICULTIES, SEEDS)
    return [
        episode.build_episode(tasks.config_for(seed=seed, scenario_family=family, difficulty=difficulty))
        for family, difficulty, seed in configs
    ]


def test_the_config_set_is_broad(broad_episodes):
    assert len(SCENARIO_FAMILIES) == 8
    assert len(broad_episodes) == 8 * 3 * 2
    assert all(ep.expected_rows for ep in broad_episodes)
    assert len(GENERATORS) == 9


def test_no_single_generator_scores_well_on_average(broad_episodes):
    means = {
        (generator, threshold): float(
            np.mean([blind_score(ep, generator, threshold) for ep in broad_episodes])
        )
        for generator in GENERATORS
        for threshold in THRESHOLDS
    }
    (best_generator, best_threshold), best = max(means.items(), key=lambda item: item[1])
    assert best <= MEAN_LIMIT, (
        f"submitting only {best_generator}(threshold_multiplier={best_threshold}) scores {best:.3f} "
        f"on average over {len(broad_episodes)} episodes (limit {MEAN_LIMIT})"
    )


def test_no_single_generator_call_scores_well_on_the_hard_task():
    ep = episode.build_episode(tasks.config_for("hard_mixed_multi"))
    scores = {(g, k): blind_score(ep, g, k) for g in GENERATORS for k in THRESHOLDS}
    (best_generator, best_threshold), best = max(scores.items(), key=lambda item: item[1])
    assert best <= HARD_TASK_LIMIT, (
        f"on hard_mixed_multi, submitting only {best_generator}(threshold_multiplier={best_threshold}) "
        f"scores {best:.3f} (limit {HARD_TASK_LIMIT})"
    )
