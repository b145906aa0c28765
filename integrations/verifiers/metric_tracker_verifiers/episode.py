"""What a rollout carries: its task's data (on the trace) and its state (shared by the task
and the tool server while the rollout runs)."""

from __future__ import annotations

from typing import Any

import verifiers.v1 as vf
from pydantic import Field


class EpisodeData(vf.TaskData):
    """One task: the server's reset arguments for it, and the servers that can play it."""

    reset: dict[str, Any]
    """What ``start_episode`` is called with (a named task, or a procedural config)."""
    base_urls: list[str]
    """The metric_tracker_rl servers (replicas) a rollout may play on."""
    difficulty: str
    scenario_family: str


class EpisodeState(vf.State):
    """One rollout's episode, as the tool server reports it after each call."""

    server_url: str = ""
    """The replica this rollout plays on (chosen when the rollout starts)."""
    budget: dict[str, int] = Field(default_factory=dict)
    """``steps_used``, ``steps_left``, ``max_steps``, ``submissions_used``, ``max_submissions``."""
    tool_calls: int = 0
    reward: float | None = None
    """The episode's reward: the last graded score (None until a submission is graded)."""
    reward_breakdown: dict[str, Any] = Field(default_factory=dict)
    """The grader's components, penalties and counts for that submission."""
    done: bool = False
    error: str | None = None
    """Why the episode could not be played (a server that went away), not the model's doing."""

    def record(self, observation: dict[str, Any]) -> None:
        """Take what counts from an observation the server answered a call with."""
        self.tool_calls += 1
        self.budget = observation.get("budget") or self.budget
        if observation.get("status") == "graded" or observation.get("done"):
            self.reward = observation.get("reward")
            self.reward_breakdown = observation.get("reward_breakdown") or self.reward_breakdown
        self.done = bool(observation.get("done"))
