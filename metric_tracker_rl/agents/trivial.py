"""Trivial agents: the floor of the benchmark."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.families import ENTITY_NAMES_BY_TYPE, FAMILIES
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation


class EmptyAgent:
    """Submits nothing."""

    name = "empty"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        env.reset(**config)
        return env.step(MetricTrackerRlAction())


class MassAgent:
    """Every payload generator at the lowest threshold accepted: everything that deviates."""

    name = "mass"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        generators = [
            {"method_name": name, "threshold_multiplier": C.MIN_THRESHOLD_MULTIPLIER}
            for name in first.available_synthetic_generator_methods
            if name != "payload_generator"
        ]
        return env.step(MetricTrackerRlAction(payload_generators=generators))


class RandomAgent:
    """Well-formed random rows (as many as expected), seeded by the config."""

    name = "random"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        seed = int(first.config.get("seed") or 0)
        rng = np.random.default_rng([seed, 17])
        start = dt.date.fromisoformat(first.config["start_date"])
        rows = []
        for _ in range(max(first.expected_row_count or int(first.config["anomaly_count"]), 1)):
            family = FAMILIES[int(rng.integers(len(FAMILIES)))]
            names = ENTITY_NAMES_BY_TYPE[family.entity_type]
            baseline = float(np.round(rng.uniform(0, 100), 4))
            observed = float(np.round(rng.uniform(0, 100), 4))
            rows.append(
                {
                    "date": (start + dt.timedelta(days=int(rng.integers(C.NUM_DAYS)))).isoformat(),
                    "entity_type": family.entity_type,
                    "entity_name": names[int(rng.integers(len(names)))],
                    "anomaly_type": family.anomaly_type,
                    "detection_method": family.detection_method,
                    "baseline_value": baseline,
                    "observed_value": observed,
                    "delta_value": round(observed - baseline, 4),
                    "severity": C.SEVERITY_LEVELS[int(rng.integers(len(C.SEVERITY_LEVELS)))],
                }
            )
        return env.step(MetricTrackerRlAction(classifications=rows))
