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

from metric_tracker_rl import constants as C
from metric_tracker_rl.rows import describe_validation_error
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
    cost: int  # budget units charged per call
    cost_per_row: int = 0  # plus this much per row the call returns (generators, raw rows)

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


def method(name: str, kind: MethodKind, args_model: type[BaseModel], *, cost: int, cost_per_row: int = 0):
    """Register a method with its price; its docstring's first paragraph is its public description."""

    def register(function: Callable[[Episode, Any], Any]) -> Callable[[Episode, Any], Any]:
        if name in REGISTRY:
            raise RuntimeError(f"analysis method {name!r} registered twice")
        description = " ".join((function.__doc__ or "").strip().split("\n\n")[0].split())
        if cost_per_row:
            description += (
                f" At most {C.MAX_ROWS_PER_CALL} rows a call, in order, and no more than the budget "
                "left pays for; `truncated` says when rows were left out."
            )
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


def run_method(episode: Episode, name: Any, args: Any, budget_left: int | None = None) -> dict[str, Any]:
    """Run one method within a budget; never raises.

    Returns ``{"method", "result", "cost"}`` or ``{"method", "error", "cost", ...}``. A call
    the budget cannot pay for is refused. Methods priced per row show at most
    ``MAX_ROWS_PER_CALL`` rows, and no more than the budget left pays for; ``truncated``
    says when rows were left out.
    """
    if not isinstance(name, str):
        return _error(None, f"analysis_method must be a string, got {name!r}")
    spec = REGISTRY.get(name)
    try:
        parsed = parse_arguments(name, args)
        assert spec is not None
        if budget_left is not None and budget_left < spec.cost:
            raise MethodError(
                f"{name} costs {spec.cost} budget unit{'s' if spec.cost != 1 else ''} but only "
                f"{budget_left} {'is' if budget_left == 1 else 'are'} left for analysis (the last "
                f"{C.SUBMISSION_COST} is kept for the report); the call was refused: call a cheaper "
                "method or submit the report"
            )
        result = spec.function(episode, parsed)
    except MethodError as err:
        return _error(name, str(err))
    cost = spec.cost
    if spec.cost_per_row:
        result, shown = _cap_rows(result, spec, budget_left)
        cost += spec.cost_per_row * shown
    return {"method": name, "result": result, "cost": cost}


def assessments_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The assessments a detection ("targeted") method answered: one (compare_*) or a list."""
    return result.get("assessments", [result])


def _cap_rows(
    result: dict[str, Any], spec: MethodSpec, budget_left: int | None
) -> tuple[dict[str, Any], int]:
    rows = result["rows"]
    limits = {"the per-call limit": C.MAX_ROWS_PER_CALL}
    if budget_left is not None:
        limits["the budget left"] = (budget_left - spec.cost) // spec.cost_per_row
    reason, limit = min(limits.items(), key=lambda item: item[1])
    shown = min(len(rows), limit)
    capped = {**result, "rows": rows[:shown], "row_count": shown, "matching_rows": len(rows)}
    capped["truncated"] = shown < len(rows)
    if capped["truncated"]:
        capped["note"] = (
            f"{shown} of {len(rows)} rows shown ({reason}); narrow the call (metric_name, a higher "
            "threshold_multiplier) to see others"
        )
    return capped, shown


def _error(name: str | None, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"method": name, "error": message, "cost": C.ERROR_COST}
    if name in REGISTRY:
        error["arguments"] = REGISTRY[name].arguments_schema()
    return error
