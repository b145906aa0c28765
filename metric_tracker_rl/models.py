"""Wire types: the action an agent sends and the observation it gets back (docs/task.md,
Actions and observations).

Field names are kept from the earlier system so existing agents work unchanged. Rows
arrive as plain objects so that one malformed row is reported, not the whole action.
"""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field, SkipValidation

from metric_tracker_rl.rows import AnomalyRow

__all__ = [
    "AnomalyRow",
    "MetricTrackerRlAction",
    "MetricTrackerRlObservation",
    "MetricTrackerRlState",
]


class MetricTrackerRlAction(Action):
    """Either run one read-only analysis method, or submit rows for grading.

    With ``analysis_method`` set, the method runs and nothing is graded. Without it, the
    action is a submission: ``classifications`` plus the rows the server builds from
    ``payload_generators`` are graded together. ``episode_id`` addresses an episode the
    server keeps (see ``metric_tracker_rl.episodes``) instead of the session's own.
    """

    episode_id: str | None = Field(
        default=None,
        max_length=64,
        description="The handle of a kept episode (from reset with keep_episode, or the MCP start_episode); "
        "the action acts on that episode, from any connection",
    )

    analysis_method: str | None = Field(default=None, description="Name of an analysis method")
    analysis_args: dict[str, Any] = Field(default_factory=dict, description="Its arguments")
    classifications: list[dict[str, Any]] = Field(
        default_factory=list, description="Rows to grade, in the submission schema"
    )
    payload_generators: list[dict[str, Any]] = Field(
        default_factory=list,
        description="[{method_name, metric_name?, metric_names?, threshold_multiplier}]: the "
        "server builds these rows and grades them with the classifications",
    )


class MetricTrackerRlObservation(Observation):
    """What the agent sees. Catalog fields are filled on reset and left empty on steps."""

    # The containers are built by the server (catalogs, results, rows, scores): they are
    # not validated again on the way out (SkipValidation keeps their schemas).

    task_id: str | None = None
    episode_id: str | None = Field(
        default=None,
        description="The handle of a kept episode, to pass with every later action or tool call; "
        "null when the episode lives only in this session",
    )
    instruction: str = ""
    status: str = Field(default="ready", description="ready | analysis | error | graded | finished")
    message: str = ""
    config: SkipValidation[dict[str, Any]] = Field(default_factory=dict)
    available_methods: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    available_synthetic_generator_methods: SkipValidation[list[str]] = Field(default_factory=list)
    available_tasks: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    conversion_metric_definitions: SkipValidation[dict[str, str]] = Field(default_factory=dict)
    applied_synthetic_generators: SkipValidation[list[dict[str, Any]]] = Field(
        default_factory=list, description="Explicit reset-time injections (anomalies=[...]) as applied"
    )
    analysis_result: SkipValidation[dict[str, Any] | None] = None
    generated_rows: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    submitted_rows: SkipValidation[list[dict[str, Any]]] = Field(default_factory=list)
    submission_preview: SkipValidation[dict[str, Any]] = Field(default_factory=dict)
    submission_issues: SkipValidation[list[str]] = Field(default_factory=list)
    reward_breakdown: SkipValidation[dict[str, Any]] = Field(default_factory=dict)
    expected_row_count: int | None = Field(
        default=0, description="How many rows the truth holds; null where the difficulty hides it"
    )
    correct_row_count: int = 0
    budget: SkipValidation[dict[str, int]] = Field(
        default_factory=dict,
        description="steps_used, max_steps, submissions_used, max_submissions",
    )


class MetricTrackerRlState(State):
    """Server-side episode state (no hidden answers)."""

    task_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    submissions_used: int = 0
    last_score: float | None = None
    done: bool = False
