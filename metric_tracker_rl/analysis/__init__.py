"""Read-only analysis methods and the one registry they are defined in."""

from metric_tracker_rl.analysis import methods as _methods  # noqa: F401  (registers methods)
from metric_tracker_rl.analysis.methods import (
    GENERATOR_METHODS,
    build_payload,
    conversion_metric_definitions,
    parse_generator_specs,
)
from metric_tracker_rl.analysis.registry import (
    REGISTRY,
    MethodError,
    MethodSpec,
    parse_arguments,
    run_method,
)


def available_methods() -> list[dict]:
    """Every method with its description, kind and JSON-schema arguments."""
    return [spec.describe() for spec in REGISTRY.values()]


def tool_schemas() -> list[dict]:
    """OpenAI function-calling tool schemas, one per method."""
    return [spec.tool_schema() for spec in REGISTRY.values()]


__all__ = [
    "GENERATOR_METHODS",
    "REGISTRY",
    "MethodError",
    "MethodSpec",
    "available_methods",
    "build_payload",
    "conversion_metric_definitions",
    "parse_arguments",
    "parse_generator_specs",
    "run_method",
    "tool_schemas",
]
