"""What a reset and a submission take, defined once as pydantic models.

``ResetArgs`` names every reset argument with its allowed values, ``SubmitArgs`` the two
parts of a submission, ``HandleArgs`` the handle every episode tool takes over MCP. The
tool schemas (MCP, OpenAI), the client's argument check, the environment's list of reset
arguments and the web debugger's reset choices derive from them. Values are still
validated where they are used (``config.resolve_config`` with its precise ``ConfigError``
messages, the grader for rows), so a malformed row is reported as an invalid row, not
refused here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis.methods import GeneratorSpec, PayloadGeneratorArgs
from metric_tracker_rl.config import (
    INJECTABLE_METRICS,
    INJECTION_METHODS,
    MAX_INJECTIONS,
    MAX_STDDEV_FACTOR,
    ConfigError,
)
from metric_tracker_rl.families import SCENARIO_FAMILIES
from metric_tracker_rl.rows import RowObject
from metric_tracker_rl.schemas import model_schema
from metric_tracker_rl.tasks import EVAL_SEED_BASE, NAMED_TASKS, TASK_SPLITS

# A generator spec as a submission carries it (checked when the submission is graded).
GeneratorObject = Annotated[dict[str, Any], WithJsonSchema(GeneratorSpec.model_json_schema())]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InjectionArgs(_Arguments):
    """One explicit reset-time anomaly: shift metrics by ``stddev_factor`` std-from-median."""

    method_name: Literal[INJECTION_METHODS]  # type: ignore[valid-type]
    metric_name: Literal[INJECTABLE_METRICS] | None = Field(  # type: ignore[valid-type]
        default=None, description="The metric to shift (or give metric_names)"
    )
    metric_names: list[Literal[INJECTABLE_METRICS]] | None = Field(  # type: ignore[valid-type]
        default=None, description="The metrics to shift (or give metric_name)"
    )
    date: dt.date | None = Field(default=None, description="The day to shift (or give dates)")
    dates: list[dt.date] | None = Field(default=None, description="The days to shift (or give date)")
    stddev_factor: float = Field(
        gt=0, le=MAX_STDDEV_FACTOR, description="Size of the shift in std_from_median"
    )
    direction: Literal["up", "down"]


class ResetArgs(_Arguments):
    """Start an episode: a named task, a Task API split entry, or a procedural config.

    With no argument the first named task is played; explicit arguments override a task's.
    """

    task_id: Literal[tuple(NAMED_TASKS)] | None = Field(  # type: ignore[valid-type]
        default=None, description="A named task with a fixed config; other arguments override it"
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        description=f"Seed of a procedural episode, below 2**63 (training: below {EVAL_SEED_BASE})",
    )
    scenario_family: Literal[SCENARIO_FAMILIES] | None = Field(  # type: ignore[valid-type]
        default=None, description="mixed (all seven families) or a single anomaly family"
    )
    difficulty: Literal[C.DIFFICULTIES] | None = Field(  # type: ignore[valid-type]
        default=None, description="Noise and separation of the anomalies from it"
    )
    anomaly_density: Literal[tuple(C.ANOMALY_DENSITY_COUNTS)] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="How many anomalies: "
        + ", ".join(f"{name} {count}" for name, count in C.ANOMALY_DENSITY_COUNTS.items()),
    )
    anomaly_count: int | None = Field(
        default=None,
        ge=C.MIN_ANOMALY_COUNT,
        le=C.MAX_ANOMALY_COUNT,
        description="Exactly this many anomalies (instead of anomaly_density)",
    )
    anomalies: list[InjectionArgs] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INJECTIONS,
        description="Explicit injections instead of seeded anomalies",
    )
    end_date: dt.date | None = Field(
        default=None,
        description=f"Last day of the {C.NUM_DAYS}-day window (default {C.DEFAULT_END_DATE.isoformat()})",
    )
    split: Literal[tuple(TASK_SPLITS)] | None = Field(  # type: ignore[valid-type]
        default=None, description="A Task API split; pick its task with index"
    )
    index: int | None = Field(default=None, ge=0, description="Position of the task in split")

    @classmethod
    def choices(cls, name: str) -> tuple[Any, ...]:
        """The values one argument allows: its enumeration, or its integer range."""
        options = [
            p for p in model_schema(cls)["properties"][name].get("anyOf", []) if p.get("type") != "null"
        ]
        (option,) = options
        if "enum" in option:
            return tuple(option["enum"])
        return tuple(range(option["minimum"], option["maximum"] + 1))


class SubmitArgs(_Arguments):
    """A graded submission: hand-written rows and/or generator specs, graded together."""

    classifications: list[RowObject] | None = Field(
        default=None,
        max_length=C.MAX_SUBMISSION_ROWS,
        description="Anomaly rows in the submission schema, values copied from the analysis results",
    )
    payload_generators: list[GeneratorObject] | None = Field(
        default=None,
        max_length=PayloadGeneratorArgs.model_fields["generator_methods"].metadata[-1].max_length,
        description="get_*_rows generator specs: the server builds their rows and grades them with "
        "the classifications (a hand-written row replaces a generated row with the same key)",
    )


class HandleArgs(_Arguments):
    """What every episode tool takes besides its own arguments, over MCP: the episode's handle."""

    episode_id: str | None = Field(
        default=None,
        description="The handle start_episode answered, to play without a session (each call may be a "
        "request of its own); null for the episode this session started last",
    )


RESET_ARGUMENTS: tuple[str, ...] = tuple(ResetArgs.model_fields)
SUBMIT_ARGUMENTS: tuple[str, ...] = tuple(SubmitArgs.model_fields)
# OpenEnv's own reset argument (the id ``state`` reports), which the environment, its HTTP and
# WebSocket API and its client take beside ``ResetArgs``; the MCP tool start_episode does not.
OPENENV_RESET_ARGUMENTS: tuple[str, ...] = ("episode_id",)


def check_reset_arguments(names: Iterable[str], *, openenv: bool = False) -> None:
    """Raise ``ConfigError`` if any of ``names`` is not a reset argument (``openenv``: OpenEnv's
    own arguments are allowed too, and named in the message)."""
    allowed = RESET_ARGUMENTS + (OPENENV_RESET_ARGUMENTS if openenv else ())
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown reset arguments {unknown}; allowed: {list(allowed)}")
