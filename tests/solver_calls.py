"""The reference solver's episode as tool calls, for clients that replay it over the wire.

The solver plays in process against a recording handle; an episode is deterministic, so a
client that sends the same calls to a server gets the same answers and the same 1.0.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from metric_tracker_rl.agents import SolverAgent
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tools import START_EPISODE, SUBMIT_REPORT

Call = tuple[str, dict[str, Any]]  # (tool name, arguments)


def tool_call(action: MetricTrackerRlAction) -> Call:
    """The MCP tool call that does what ``action`` does."""
    if action.analysis_method is not None:
        return action.analysis_method, dict(action.analysis_args)
    arguments: dict[str, Any] = {"classifications": action.classifications}
    if action.payload_generators:
        arguments["payload_generators"] = action.payload_generators
    return SUBMIT_REPORT, arguments


class _Recorder:
    """An agent's environment handle that notes every call as a tool call."""

    def __init__(self, max_steps: int | None = None) -> None:
        self.environment = MetricTrackerRlEnvironment(max_steps=max_steps)
        self.calls: list[Call] = []

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        self.calls.append((START_EPISODE, dict(config)))
        return self.environment.reset(**config)

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        self.calls.append(tool_call(action))
        return self.environment.step(action)


def solver_play(
    config: dict[str, Any], max_steps: int | None = None
) -> tuple[tuple[Call, ...], MetricTrackerRlObservation]:
    """The reference solver's episode for reset arguments ``config`` (and a step budget, by
    default the episode's own): its calls, ``start_episode`` first, and its final observation."""
    recorder = _Recorder(max_steps)
    final = SolverAgent().play(recorder, config)
    return tuple(recorder.calls), final


@cache
def solver_calls(task_id: str) -> tuple[Call, ...]:
    """``start_episode``, the solver's analysis calls, its ``submit_report`` (scoring 1.0)."""
    calls, final = solver_play({"task_id": task_id})
    assert final.reward == 1.0, final.message
    return calls
