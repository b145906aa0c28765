"""The one registry of analysis methods.

Each method is registered once with its name, description, kind and a typed argument
model. ``available_methods``, the OpenAI/MCP tool schemas and the web debugger's controls
are all derived from ``REGISTRY``; ``run_method`` is the single way to call a method and
never raises: bad calls come back as an error object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from metric_tracker_rl.grading import describe_validation_error
from metric_tracker_rl.schemas import model_schema, strict_schema

if TYPE_CHECKING:
    from metric_tracker_rl.episode import Episode

MethodKind = Literal["overview", "discovery", "targeted", "statistic", "generator", "submission"]


class MethodError(ValueError):
    """A method call that cannot be answered (unknown date, entity, ...)."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    kind: MethodKind
    args_model: type[BaseModel]
    function: Callable[[Episode, Any], Any]
    cost: int = 1  # budget units charged per call
    cost_per_row: int = 0  # plus this much per row the call returns (generators)

    def cost_text(self) -> str:
        """The price of a call in words, for descriptions and tool schemas."""
        units = f"{self.cost} budget unit{'s' if self.cost != 1 else ''}"
        if self.cost_per_row:
            units += f" + {self.cost_per_row} per row returned"
        return f"Cost: {units}."

    def arguments_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments, self-contained (no $defs references), with defaults."""
        return model_schema(self.args_model)

    def input_schema(self) -> dict[str, Any]:
        """The arguments in the strict form of tool calling (MCP and OpenAI tools)."""
        return strict_schema(self.arguments_schema())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "cost": self.cost,
            "cost_per_row": self.cost_per_row,
            "arguments": self.arguments_schema(),
        }


REGISTRY: dict[str, MethodSpec] = {}


def method(name: str, kind: MethodKind, args_model: type[BaseModel], cost: int = 1, cost_per_row: int = 0):
    """Register a method with its price; its docstring's first paragraph is its public description."""

    def register(function: Callable[[Episode, Any], Any]) -> Callable[[Episode, Any], Any]:
        if name in REGISTRY:
            raise RuntimeError(f"analysis method {name!r} registered twice")
        description = " ".join((function.__doc__ or "").strip().split("\n\n")[0].split())
        REGISTRY[name] = MethodSpec(name, description, kind, args_model, function, cost, cost_per_row)
        return function

    return register


def parse_arguments(name: str, args: Any) -> BaseModel:
    """Validate arguments for a method; raises MethodError with a precise message."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise MethodError(f"unknown analysis method {name!r}; available: {sorted(REGISTRY)}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise MethodError(f"analysis_args for {name!r} must be an object, got {type(args).__name__}")
    try:
        return spec.args_model.model_validate(args)
    except ValidationError as err:
        raise MethodError(f"bad arguments for {name!r}: {describe_validation_error(err)}") from None


def run_method(episode: Episode, name: Any, args: Any) -> dict[str, Any]:
    """Run one method. Returns ``{"method", "result"}`` or ``{"method", "error", ...}``."""
    if not isinstance(name, str):
        return {"method": None, "error": f"analysis_method must be a string, got {name!r}"}
    try:
        parsed = parse_arguments(name, args)
        result = REGISTRY[name].function(episode, parsed)
    except MethodError as err:
        error: dict[str, Any] = {"method": name, "error": str(err)}
        if name in REGISTRY:
            error["arguments"] = REGISTRY[name].arguments_schema()
        return error
    return {"method": name, "result": result}
