"""Read-only analysis methods and the one registry they are defined in."""

from functools import cache

from metric_tracker_rl.analysis import methods as _methods  # noqa: F401  (registers methods)
from metric_tracker_rl.analysis.methods import (
    GENERATOR_METHODS,
    build_payload,
    conversion_metric_definitions,
    parse_generator_specs,
    payload_hits,
)
from metric_tracker_rl.analysis.registry import (
    REGISTRY,
    MethodError,
    MethodSpec,
    assessments_of,
    parse_arguments,
    run_method,
)


@cache
def _catalog() -> tuple[dict, ...]:
    return tuple(spec.describe() for spec in REGISTRY.values())


def available_methods() -> list[dict]:
    """Every method with its description, kind and JSON-schema arguments (built once)."""
    return list(_catalog())


__all__ = [
    "GENERATOR_METHODS",
    "REGISTRY",
    "MethodError",
    "MethodSpec",
    "assessments_of",
    "available_methods",
    "build_payload",
    "conversion_metric_definitions",
    "parse_arguments",
    "parse_generator_specs",
    "payload_hits",
    "run_method",
]
