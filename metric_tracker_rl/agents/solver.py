"""The reference solver: proves every episode is solvable with public methods alone.

Broad discovery (every deviation, from the broadest generator at multiplier 0), the
public threshold rules from ``task_overview`` to pick candidates, targeted confirmation
of each candidate with its family's detection method, then a minimal submission of the
confirmed assessments. It stays within the step and submission budgets.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl.agents.base import EnvHandle, analysis
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS


def beyond_public_threshold(row: dict[str, Any], threshold: float) -> bool:
    """The canonical rule of the row's entity type, as task_overview publishes it."""
    delta = row["observed_value"] - row["baseline_value"]
    kind = row["entity_type"]
    if kind == "event_count":
        return abs(delta) > threshold * abs(row["baseline_value"])
    if kind == "funnel_step":
        return row["observed_value"] < (1.0 - threshold) * row["baseline_value"]
    if kind == "data_quality":
        return row["observed_value"] > 0
    return abs(delta) > threshold  # conversion_rate (points), hourly_mix (share points)


class SolverAgent:
    name = "solver"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        budget = first.budget["max_steps"]
        thresholds = analysis(env, "task_overview")["thresholds"]
        everything = analysis(env, "get_median_filter_rows", threshold_multiplier=0.0)["rows"]
        candidates = [r for r in everything if beyond_public_threshold(r, thresholds[r["entity_name"]])]
        confirmed = []
        steps_left = budget - 3  # two analysis calls so far, one submission to come
        for row in candidates:
            if steps_left <= 0:
                confirmed.append(row)
                continue
            steps_left -= 1
            found = self._confirm(env, row)
            if found is not None:
                confirmed.append(found)
        rows = [{k: r[k] for k in ROW_FIELDS} for r in confirmed]
        return env.step(MetricTrackerRlAction(classifications=rows))

    @staticmethod
    def _confirm(env: EnvHandle, row: dict[str, Any]) -> dict[str, Any] | None:
        method = row["detection_method"]
        if method in ("compare_rate_to_median", "compare_count_to_median"):
            answers = [analysis(env, method, date=row["date"], entity_name=row["entity_name"])]
        else:
            answers = analysis(env, method, date=row["date"])["assessments"]
        for answer in answers:
            if answer["entity_name"] == row["entity_name"] and answer["anomaly_type"] != "normal":
                return answer
        return None
