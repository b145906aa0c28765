"""What the benchmarks ran on: platform, Python, CPUs, load and package versions."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from typing import Any


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def python_loop_ms(repeat: int = 5) -> float:
    """The machine's speed today: milliseconds for ``sum(range(10**6))``, best of
    ``repeat``. Figures from runs whose reference differs are not comparable (shared
    machines move by 2x and more from one day to the next)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - start)
    return round(best * 1e3, 2)


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
        "python_loop_ms": python_loop_ms(),
        **{name: _version(name) for name in packages},
    }
