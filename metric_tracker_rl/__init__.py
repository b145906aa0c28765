"""metric_tracker_rl: an OpenEnv benchmark for investigating product-funnel anomalies.

The engine (generator, analysis methods, grader) imports without OpenEnv; the
environment and wire types load OpenEnv on first use, without its web interface
(see ``openenv_shim``): Gradio is imported only when the web debugger is built.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from metric_tracker_rl import openenv_shim

openenv_shim.install()

__version__ = "0.1.0"

_LAZY = {
    "MetricTrackerRlEnvironment": "metric_tracker_rl.environment",
    "MetricTrackerRlAction": "metric_tracker_rl.models",
    "MetricTrackerRlObservation": "metric_tracker_rl.models",
    "MetricTrackerRlState": "metric_tracker_rl.models",
    "ConfigError": "metric_tracker_rl.config",
    "AnomalyRow": "metric_tracker_rl.rows",
    "NAMED_TASKS": "metric_tracker_rl.tasks",
    "EVAL_SPLIT": "metric_tracker_rl.tasks",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metric_tracker_rl' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
