"""The agent interface: given an environment handle and a reset config, play one episode
and return the final observation. The same agents run in process and against a server."""

from __future__ import annotations

from typing import Any, Protocol

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


def analysis(env: EnvHandle, method: str, **args: Any) -> dict[str, Any]:
    """Run one analysis method and return its result (raises on an error result)."""
    obs = env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))
    result = obs.analysis_result or {}
    if "error" in result:
        raise RuntimeError(f"{method} failed: {result['error']}")
    return result["result"]
