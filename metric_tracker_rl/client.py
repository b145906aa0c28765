"""Typed OpenEnv client: one WebSocket session per client, one episode at a time.

with MetricTrackerRlEnv(base_url="http://localhost:8000").sync() as env:
    result = env.reset(task_id="hard_mixed_multi")
    result = env.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates"))
"""

from __future__ import annotations

from typing import Any

from openenv.core import EnvClient
from openenv.core.client_types import StepResult

from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """Client for a metric_tracker_rl server (``.sync()`` for synchronous use)."""

    def reset(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        scenario_family: str | None = None,
        difficulty: str | None = None,
        anomaly_density: str | None = None,
        anomaly_count: int | None = None,
        anomalies: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start an episode; arguments left at None are not sent (server defaults apply)."""
        config = {
            "task_id": task_id,
            "seed": seed,
            "scenario_family": scenario_family,
            "difficulty": difficulty,
            "anomaly_density": anomaly_density,
            "anomaly_count": anomaly_count,
            "anomalies": anomalies,
            **kwargs,
        }
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
