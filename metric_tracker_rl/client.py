"""Typed OpenEnv client: one WebSocket session per client, one episode at a time.

with MetricTrackerRlEnv(base_url="http://localhost:8000").sync() as env:
    result = env.reset(task_id="hard_mixed_multi")
    result = env.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates"))
"""

from __future__ import annotations

from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from metric_tracker_rl.arguments import OPENENV_RESET_ARGUMENTS, RESET_ARGUMENTS
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """Client for a metric_tracker_rl server (``.sync()`` for synchronous use)."""

    def reset(self, task_id: str | None = None, **config: Any) -> Any:
        """Start an episode. ``config`` takes the other ``ResetArgs`` (seed, scenario_family,
        difficulty, anomaly_density, anomaly_count, anomalies, end_date, split, index) and
        OpenEnv's episode_id; arguments left at None are not sent (server defaults apply).
        An unknown name is a ``TypeError`` here; values are checked by the server."""
        allowed = [*RESET_ARGUMENTS, *OPENENV_RESET_ARGUMENTS]
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise TypeError(f"unknown reset arguments {unknown}; allowed: {allowed}")
        config = {"task_id": task_id, **config}
        return super().reset(**{k: v for k, v in config.items() if v is not None})

    def _step_payload(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        return action.model_dump(exclude_defaults=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MetricTrackerRlObservation]:
        data = dict(payload.get("observation", {}))
        data["reward"] = payload.get("reward")
        data["done"] = payload.get("done", False)
        observation = MetricTrackerRlObservation.model_validate(data)
        return StepResult(
            observation=observation,
            reward=payload.get("reward"),
            done=payload.get("done", False),
            metadata=payload.get("metadata"),
        )

    def _parse_state(self, payload: dict[str, Any]) -> MetricTrackerRlState:
        return MetricTrackerRlState.model_validate(payload)
