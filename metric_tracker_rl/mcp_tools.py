"""MCP tools for one environment session, generated from the method registry.

Tools: ``start_episode`` (reset), one tool per analysis method (same name, same argument
schema as the registry) and ``submit_report`` (a graded submission). Every tool returns
the resulting observation as JSON; bad arguments come back as an error observation,
never as an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastmcp import FastMCP
from fastmcp.tools import FunctionTool

from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.models import MetricTrackerRlAction

if TYPE_CHECKING:
    from metric_tracker_rl.environment import MetricTrackerRlEnvironment

START_EPISODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "task_id": {"type": "string", "description": "A named task (see available_tasks)"},
        "seed": {"type": "integer", "minimum": 0},
        "scenario_family": {"type": "string", "description": "mixed or one anomaly family"},
        "difficulty": {"type": "string", "enum": ["easy", "medium", "hard"]},
        "anomaly_density": {"type": "string", "enum": ["low", "medium", "high"]},
        "anomaly_count": {"type": "integer", "minimum": 1, "maximum": 12},
        "anomalies": {"type": "array", "items": {"type": "object"}},
    },
    "required": [],
}

SUBMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "classifications": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Rows in the submission schema",
        },
        "payload_generators": {
            "type": "array",
            "items": {"type": "object"},
            "description": "[{method_name, metric_name?, metric_names?, threshold_multiplier}]",
        },
    },
    "required": [],
}


def _observation_json(observation: Any) -> dict[str, Any]:
    return observation.model_dump(mode="json")


def build_mcp_server(env: MetricTrackerRlEnvironment) -> FastMCP:
    """A FastMCP server whose tools drive ``env``."""
    server = FastMCP("metric_tracker_rl")

    def start_episode(**config: Any) -> dict[str, Any]:
        try:
            return _observation_json(env.reset(**config))
        except ConfigError as err:
            return {"status": "error", "message": str(err)}

    def submit_report(**fields: Any) -> dict[str, Any]:
        unknown = sorted(set(fields) - {"classifications", "payload_generators"})
        if unknown:
            return {"status": "error", "message": f"unknown fields {unknown}"}
        return _observation_json(env.step(fields))

    server.add_tool(
        FunctionTool(
            name="start_episode",
            description="Start (or restart) an episode: a task_id, or a procedural config.",
            parameters=START_EPISODE_SCHEMA,
            fn=start_episode,
        )
    )
    for spec in REGISTRY.values():
        server.add_tool(
            FunctionTool(
                name=spec.name,
                description=spec.description,
                parameters=spec.arguments_schema(),
                fn=_method_tool(env, spec.name),
            )
        )
    server.add_tool(
        FunctionTool(
            name="submit_report",
            description=(
                "Submit rows for grading: classifications and/or payload_generators (graded together). "
                "Uses one of the episode's submissions."
            ),
            parameters=SUBMIT_SCHEMA,
            fn=submit_report,
        )
    )
    return server


def _method_tool(env: MetricTrackerRlEnvironment, name: str):
    def call(**arguments: Any) -> dict[str, Any]:
        action = MetricTrackerRlAction(analysis_method=name, analysis_args=arguments)
        return _observation_json(env.step(action))

    return call
