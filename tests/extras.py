"""Tests of the optional extras (``train``, ``inspect``): skipped where the extra is not
installed, unless METRIC_TRACKER_REQUIRE_EXTRAS=1 (CI sets it), where a missing extra fails."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRE_VAR = "METRIC_TRACKER_REQUIRE_EXTRAS"


def need(module: str, extra: str) -> ModuleType:
    """Import ``module`` of an extra, or skip the test module (fail under REQUIRE_VAR=1)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get(REQUIRE_VAR) == "1":
            raise
        pytest.skip(f"needs the {extra!r} extra: uv sync --extra {extra}", allow_module_level=True)
        raise  # unreachable: skip raises
