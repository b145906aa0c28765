"""The agent interface: given an environment handle and a reset config, play one episode
and return the final observation. The same agents run in process and against a server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from metric_tracker_rl import constants as C
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation


class EnvHandle(Protocol):
    """What an agent needs: reset and step, both returning an observation."""

    def reset(self, **config: Any) -> MetricTrackerRlObservation: ...

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation: ...


class Agent(Protocol):
    name: str

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation: ...


class ClientHandle:
    """Adapts a synchronous ``MetricTrackerRlEnv`` client (StepResult) to ``EnvHandle``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        return self.client.reset(**config).observation

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        return self.client.step(action).observation


def analysis_left(budget: Mapping[str, Any], steps_left: int | None = None) -> int:
    """Units analysis may still spend: the budget's ``analysis_steps_left``, or where it is
    missing, the steps left (``steps_left``, else the budget's ``max_steps - steps_used``) less
    the report's unit (``C.SUBMISSION_COST``), as the environment counts them."""
    if "analysis_steps_left" in budget:
        return int(budget["analysis_steps_left"])
    if steps_left is None:
        steps_left = int(budget["max_steps"]) - int(budget["steps_used"])
    return max(steps_left - C.SUBMISSION_COST, 0)


def analysis(env: EnvHandle, method: str, **args: Any) -> dict[str, Any]:
    """Run one analysis method and return its result (raises on an error result)."""
    obs = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))
    result = obs.analysis_result or {}
    if "error" in result:
        raise RuntimeError(f"{method} failed: {result['error']}")
    return result["result"]
