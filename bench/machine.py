"""What the benchmarks ran on: platform, Python, CPUs, load and package versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine(
    packages: tuple[str, ...] = ("numpy", "pydantic", "openenv", "metric-tracker-rl"),
) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **{name: _version(name) for name in packages},
    }
