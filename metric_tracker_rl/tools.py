"""The tools an agent plays with: ``start_episode``, one per analysis method, ``submit_report``.

One catalog, derived from ``ResetArgs``, the method registry and ``SubmitArgs``: the MCP
servers (the standard protocol and OpenEnv's dialect) and the OpenAI agent all read it.
Input schemas are in the strict form of tool calling (see ``schemas.strict_schema``), and
descriptions carry each method's cost from the registry. ``EpisodeTools`` runs one call
against an environment session and shapes the result; it never raises for bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.arguments import SUBMIT_ARGUMENTS, ResetArgs, SubmitArgs, check_reset_arguments
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.schemas import model_schema, strict_schema
from metric_tracker_rl.tasks import NAMED_TASKS, TASK_SPLITS

START_EPISODE = "start_episode"
SUBMIT_REPORT = "submit_report"
# Observation fields that describe the benchmark rather than the call: sent once, on reset.
CATALOG_FIELDS = (
    "available_methods",
    "available_synthetic_generator_methods",
    "available_tasks",
    "conversion_metric_definitions",
)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        """The tool as an OpenAI function for strict function calling."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema,
                "strict": True,
            },
        }


def _start_episode_description() -> str:
    tasks = "; ".join(
        f"{t.task_id} ({t.difficulty}, {t.describe()['anomaly_rows']} rows): {t.description.rstrip('.')}"
        for t in NAMED_TASKS.values()
    )
    splits = ", ".join(f"{name} ({len(configs)} tasks)" for name, configs in TASK_SPLITS.items())
    return (
        f"Start (or restart) an episode: {C.NUM_DAYS} days of synthetic product-funnel metrics "
        f"({' -> '.join(C.EVENTS)}; daily and hourly counts, conversion rates) with hidden, seeded "
        f"anomalies to find. Give a task_id, a split and index, or a procedural config (seed, "
        f"scenario_family, difficulty, anomaly_density or anomaly_count); with no argument the first "
        f"named task is played. Named tasks: {tasks}. Splits: {splits}. The result gives the number "
        "of anomaly rows to find and the episode's budget (steps for tool calls, graded submissions); "
        "each analysis tool states its cost. Investigate with the analysis tools, then call "
        f"{SUBMIT_REPORT}."
    )


def _submit_report_description() -> str:
    detectors = ", ".join(dict.fromkeys(f.detection_method for f in FAMILIES))
    return (
        "Submit the anomaly report for grading; uses one of the episode's graded submissions. A row is "
        f"one anomaly of one entity on one day: {', '.join(ROW_FIELDS)} (delta_value = observed_value "
        "- baseline_value). Rows are matched to the hidden rows on date|entity_type|entity_name; the "
        "score in [0, 1] rewards matched rows with correct fields and penalizes extra, duplicate and "
        "invalid rows, so submit only confirmed anomalies. Copy rows from the non-normal assessments "
        f"of the detection methods ({detectors}), or name payload_generators and the server builds "
        "the rows. The episode ends at a perfect score or when the budget is spent."
    )


@cache
def tool_catalog() -> tuple[Tool, ...]:
    """Every tool in order: ``start_episode``, the registry's methods, ``submit_report``."""
    return (
        Tool(START_EPISODE, _start_episode_description(), strict_schema(model_schema(ResetArgs))),
        *(Tool(s.name, f"{s.description} {s.cost_text()}", s.input_schema()) for s in REGISTRY.values()),
        Tool(SUBMIT_REPORT, _submit_report_description(), strict_schema(model_schema(SubmitArgs))),
    )


def tool_names() -> list[str]:
    return [tool.name for tool in tool_catalog()]


def episode_tools() -> tuple[Tool, ...]:
    """The tools of an episode a harness has started: the registry's methods, ``submit_report``."""
    return tuple(tool for tool in tool_catalog() if tool.name != START_EPISODE)


# --- calls ---------------------------------------------------------------------------


class Session(Protocol):
    """What the tools drive: one environment (or a client of one)."""

    def reset(self, **config: Any) -> MetricTrackerRlObservation: ...

    def step(self, action: Any) -> MetricTrackerRlObservation: ...


@dataclass(frozen=True)
class ToolResult:
    """One call's outcome: the observation (when there is one) and the error flag."""

    observation: MetricTrackerRlObservation | None
    is_error: bool
    message: str

    def full(self) -> dict[str, Any]:
        """The whole observation as JSON (OpenEnv's dialect returns this)."""
        if self.observation is None:
            return {"status": "error", "message": self.message}
        return self.observation.model_dump(mode="json")

    def structured(self) -> dict[str, Any]:
        """The observation without the catalogs: what the standard protocol returns."""
        return {k: v for k, v in self.full().items() if k not in CATALOG_FIELDS}

    def summary(self) -> str:
        """One or two sentences: the message, the rows to find on reset, the budget."""
        obs = self.observation
        if obs is None:
            return self.message
        parts = [obs.message if obs.message.endswith(".") else f"{obs.message}."]
        if obs.status == "ready":
            parts.append(
                f"Task {obs.task_id or '(procedural)'}: {obs.expected_row_count} anomaly rows to find."
            )
        if obs.budget:
            parts.append("Budget: " + ", ".join(f"{k} {v}" for k, v in obs.budget.items()) + ".")
        if obs.done:
            parts.append(f"Episode finished; reward {obs.reward}.")
        return " ".join(parts)

    def text(self) -> str:
        """The structured content as compact JSON, for hosts that show only text."""
        return json.dumps(self.structured(), separators=(",", ":"), ensure_ascii=False)


class EpisodeTools:
    """The tools of one environment session. ``call`` never raises for bad input."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def call(self, name: str, arguments: Any) -> ToolResult:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return _error(f"arguments of {name!r} must be an object, got {type(arguments).__name__}")
        if name == START_EPISODE:
            return self._start(arguments)
        if name == SUBMIT_REPORT:
            return self._submit(arguments)
        if name not in REGISTRY:
            return _error(f"unknown tool {name!r}; available: {tool_names()}")
        return _result(
            self.session.step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments))
        )

    def _start(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            check_reset_arguments(arguments)
            return _result(self.session.reset(**{k: v for k, v in arguments.items() if v is not None}))
        except ConfigError as err:
            return _error(str(err))

    def _submit(self, arguments: dict[str, Any]) -> ToolResult:
        unknown = sorted(set(arguments) - set(SUBMIT_ARGUMENTS))
        if unknown:
            return _error(f"unknown fields {unknown}; {SUBMIT_REPORT} takes {list(SUBMIT_ARGUMENTS)}")
        # A dict, not an action: a malformed submission is the environment's to report.
        return _result(self.session.step({k: v for k, v in arguments.items() if v is not None}))


def _result(observation: MetricTrackerRlObservation) -> ToolResult:
    return ToolResult(observation, observation.status == "error", observation.message)


def _error(message: str) -> ToolResult:
    return ToolResult(None, True, message)


__all__ = [
    "CATALOG_FIELDS",
    "START_EPISODE",
    "SUBMIT_REPORT",
    "EpisodeTools",
    "ResetArgs",
    "SubmitArgs",
    "Tool",
    "ToolResult",
    "episode_tools",
    "tool_catalog",
    "tool_names",
]
