"""The tools an agent plays with: ``start_episode``, one per analysis method, ``submit_report``.

One catalog, derived from ``ResetArgs``, the method registry and ``SubmitArgs``: the MCP
servers (the standard protocol and OpenEnv's dialect) and the OpenAI agent all read it.
Input schemas are in the strict form of tool calling (see ``schemas.strict_schema``), and
descriptions carry each method's cost from the registry. For MCP hosts each tool also has
a title, annotations (the analysis tools read and are idempotent; ``start_episode`` and
``submit_report`` change the episode; none destroys anything or reaches outside the
server), an output schema that its ``structuredContent`` follows, and, for the episode
tools, the ``episode_id`` argument (``HandleArgs``). ``EpisodeTools`` runs one call
against an environment session and shapes the result; it never raises for bad input.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pydantic import BaseModel

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.arguments import (
    SUBMIT_ARGUMENTS,
    HandleArgs,
    ResetArgs,
    SubmitArgs,
    check_reset_arguments,
)
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.episodes import EpisodeLimitError
from metric_tracker_rl.evidence import EVIDENCE_RULE
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.models import MetricTrackerRlObservation
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


# What each tool's result can say (the environment's statuses): a reset is ready; a step
# runs, grades or finds the episode finished; any call can be an error.
RESULT_STATUSES = {
    "start": ("ready", "error"),
    "analysis": ("analysis", "error", "finished"),
    "submit": ("graded", "error", "finished"),
}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]  # the tool's own arguments (OpenAI, TRL, Inspect)
    kind: str  # start, analysis or submit: a key of RESULT_STATUSES
    title: str
    annotations: dict[str, bool]  # MCP's tool annotations, by their wire names
    output_schema: dict[str, Any]  # what structuredContent follows (the observation without catalogs)
    dialect_output_schema: dict[str, Any]  # what OpenEnv's dialect answers (the whole observation)
    mcp_input_schema: dict[str, Any]  # input_schema and, for an episode tool, episode_id

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
        f"{t.task_id} ({t.difficulty}, {t.size_text()}): {t.description.rstrip('.')}"
        for t in NAMED_TASKS.values()
    )
    splits = ", ".join(f"{name} ({len(configs)} tasks)" for name, configs in TASK_SPLITS.items())
    return (
        f"Start (or restart) an episode: {C.NUM_DAYS} days of synthetic product-funnel metrics "
        f"({' -> '.join(C.EVENTS)}; daily and hourly counts, conversion rates) with hidden, seeded "
        f"anomalies to find. Give a task_id, a split and index, or a procedural config (seed, "
        f"scenario_family, difficulty, anomaly_density or anomaly_count); with no argument the first "
        f"named task is played. Named tasks: {tasks}. Splits: {splits}. The result gives the number "
        "of anomaly rows to find (null where the difficulty hides it) and the episode's budget "
        "(steps for tool calls, graded submissions); each analysis tool states its cost. "
        "Investigate with the analysis tools, then call "
        f"{SUBMIT_REPORT}."
    )


def _submit_report_description() -> str:
    detectors = ", ".join(dict.fromkeys(f.detection_method for f in FAMILIES))
    return (
        "Submit the anomaly report for grading; uses one of the episode's graded submissions. A row is "
        f"one anomaly of one entity on one day: {', '.join(ROW_FIELDS)} (delta_value = observed_value "
        f"- baseline_value). {EVIDENCE_RULE} A supported row's fields are graded against its detection "
        "answer; the score in [0, 1] rewards exactly right rows and penalizes unsupported, duplicate "
        "and invalid rows. Copy rows from the non-normal assessments of the detection methods "
        f"({detectors}); payload_generators make the server format rows, which count only where "
        "confirmed. The episode ends at a perfect score, when the submissions are used or when the "
        "budget is spent."
    )


def _tool(name: str, description: str, input_schema: dict[str, Any]) -> Tool:
    kind = "start" if name == START_EPISODE else "submit" if name == SUBMIT_REPORT else "analysis"
    read_only = kind == "analysis"  # reads the episode's data (and spends budget); neither starts nor grades
    return Tool(
        name=name,
        description=description,
        input_schema=input_schema,
        kind=kind,
        title=name.replace("_", " ").capitalize(),
        annotations={
            "readOnlyHint": read_only,
            "destructiveHint": False,
            "idempotentHint": read_only,  # a new episode, a graded submission: each call counts
            "openWorldHint": False,
        },
        output_schema=_output_schema(name, kind),
        dialect_output_schema=_output_schema(name, kind, catalogs=True),
        mcp_input_schema=input_schema if kind == "start" else _with_handle(input_schema),
    )


@cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model_schema(model)


def _with_handle(schema: dict[str, Any]) -> dict[str, Any]:
    handle = strict_schema(copy.deepcopy(_schema_of(HandleArgs)))
    return {
        **schema,
        "properties": {**schema["properties"], **handle["properties"]},
        "required": [*schema["required"], *handle["required"]],
    }


def _output_schema(name: str, kind: str, catalogs: bool = False) -> dict[str, Any]:
    """The observation's schema as a tool's result: without the catalogs (unless
    ``catalogs``), ``status`` from the tool's statuses, ``analysis_result`` from its method."""
    schema = copy.deepcopy(_schema_of(MetricTrackerRlObservation))
    properties = dict(schema["properties"])
    if not catalogs:
        properties = {k: v for k, v in properties.items() if k not in CATALOG_FIELDS}
    properties["status"] = {**properties["status"], "enum": list(RESULT_STATUSES[kind])}
    properties["analysis_result"] = _analysis_result_schema(name) if kind == "analysis" else {"type": "null"}
    description = "The observation after the call" + ("." if catalogs else ", without the catalog fields.")
    return {**schema, "description": description, "properties": properties, "required": ["status", "message"]}


def _analysis_result_schema(name: str) -> dict[str, Any]:
    """A method's call: its result and cost, or its error (with the arguments it takes); none
    once the episode is finished or when there is no episode."""
    method, cost = {"const": name}, {"type": "integer", "minimum": 0}
    answered = {"method": method, "result": {"type": "object"}, "cost": cost}
    refused = {"method": method, "error": {"type": "string"}, "cost": cost, "arguments": {"type": "object"}}
    return {
        "anyOf": [
            _closed(answered, list(answered)),
            _closed(refused, ["method", "error", "cost"]),
            {"type": "null"},
        ]
    }


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


@cache
def tool_catalog() -> tuple[Tool, ...]:
    """Every tool in order: ``start_episode``, the registry's methods, ``submit_report``."""
    return (
        _tool(START_EPISODE, _start_episode_description(), strict_schema(model_schema(ResetArgs))),
        *(_tool(s.name, f"{s.description} {s.cost_text()}", s.input_schema()) for s in REGISTRY.values()),
        _tool(SUBMIT_REPORT, _submit_report_description(), strict_schema(model_schema(SubmitArgs))),
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
            rows = "an unknown number of" if obs.expected_row_count is None else obs.expected_row_count
            parts.append(f"Task {obs.task_id or '(procedural)'}: {rows} anomaly rows to find.")
        if obs.budget:
            parts.append("Budget: " + ", ".join(f"{k} {v}" for k, v in obs.budget.items()) + ".")
        if obs.done:
            parts.append(f"Episode finished; reward {obs.reward}.")
        return " ".join(parts)

    def text(self) -> str:
        """The structured content as compact JSON, for hosts that show only text."""
        return json.dumps(self.structured(), separators=(",", ":"), ensure_ascii=False)


class EpisodeTools:
    """The tools of one environment session. ``call`` never raises for bad input.

    With ``keep_episodes`` (an environment with a store of kept episodes), ``start_episode``
    keeps its episode and answers its handle; the episode tools take ``episode_id`` (absent
    or null: the session's episode) and pass it on in the action.
    """

    def __init__(self, session: Session, keep_episodes: bool = False) -> None:
        self.session = session
        self.keep_episodes = keep_episodes

    def call(self, name: str, arguments: Any) -> ToolResult:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return _error(f"arguments of {name!r} must be an object, got {type(arguments).__name__}")
        if name == START_EPISODE:
            return self._start(arguments)
        handle = {"episode_id": arguments["episode_id"]} if arguments.get("episode_id") is not None else {}
        arguments = {k: v for k, v in arguments.items() if k != "episode_id"}
        if name == SUBMIT_REPORT:
            return self._submit(arguments, handle)
        if name not in REGISTRY:
            return _error(f"unknown tool {name!r}; available: {tool_names()}")
        # A dict, not an action: the environment routes it by its handle and reports a bad one.
        return _result(self.session.step({"analysis_method": name, "analysis_args": arguments, **handle}))

    def _start(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            check_reset_arguments(arguments)
            config = {k: v for k, v in arguments.items() if v is not None}
            if self.keep_episodes:
                config["keep_episode"] = True
            return _result(self.session.reset(**config))
        except (ConfigError, EpisodeLimitError) as err:
            return _error(str(err))

    def _submit(self, arguments: dict[str, Any], handle: dict[str, Any]) -> ToolResult:
        unknown = sorted(set(arguments) - set(SUBMIT_ARGUMENTS))
        if unknown:
            return _error(f"unknown fields {unknown}; {SUBMIT_REPORT} takes {list(SUBMIT_ARGUMENTS)}")
        # A dict, not an action: a malformed submission is the environment's to report.
        return _result(self.session.step({**{k: v for k, v in arguments.items() if v is not None}, **handle}))


def _result(observation: MetricTrackerRlObservation) -> ToolResult:
    return ToolResult(observation, observation.status == "error", observation.message)


def _error(message: str) -> ToolResult:
    return ToolResult(None, True, message)


__all__ = [
    "CATALOG_FIELDS",
    "RESULT_STATUSES",
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
