"""The scripted payload-generator baseline: one generator at threshold 2.0, chosen by
difficulty (easy: absolute count spikes; medium and hard: the broad median filter)."""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation

THRESHOLD = 2.0
GENERATOR_BY_DIFFICULTY = {
    "easy": "get_absolute_spike_in_event_count_rows",
    "medium": "get_median_filter_rows",
    "hard": "get_median_filter_rows",
}


class ScriptedAgent:
    name = "scripted"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        method = GENERATOR_BY_DIFFICULTY[first.config["difficulty"]]
        spec = {"method_name": method, "threshold_multiplier": THRESHOLD}
        return env.step(MetricTrackerRlAction(payload_generators=[spec]))
