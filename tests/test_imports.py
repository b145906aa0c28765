"""Importing the engine, the client, the agents, inference.py or a CLI command's modules
stays light: no Gradio (OpenEnv's web interface) and no training stack. The times are
measured by bench/imports.py, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("gradio", "torch", "transformers", "trl", "datasets", "inspect_ai")
LIGHT_IMPORTS = (
    "import metric_tracker_rl.environment",
    "import metric_tracker_rl.client",
    "import metric_tracker_rl.agents",
    "import metric_tracker_rl.evaluation",
    "import metric_tracker_rl.export",
    "import metric_tracker_rl.mcp.server",
    "import metric_tracker_rl.serving",
    "import inference",
    "import metric_tracker_rl.integrations.trl",
    "import metric_tracker_rl.integrations.dataset",
    "import metric_tracker_rl.cli",
    "from metric_tracker_rl import MetricTrackerRlEnvironment; MetricTrackerRlEnvironment().reset()",
)


def loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("statement", LIGHT_IMPORTS)
def test_no_heavy_module_is_imported(statement):
    assert loaded_after(statement) == dict.fromkeys(HEAVY, False)


def test_openenv_as_published_still_works_after_the_engine():
    """The shim only postpones OpenEnv's package __init__: the first attribute asked runs it."""
    code = (
        "import metric_tracker_rl.environment\n"
        "from metric_tracker_rl import openenv_shim\n"
        "assert openenv_shim.is_waiting('openenv.core.env_server')\n"
        "from openenv.core import GenericEnvClient, MCPToolClient, EnvClient\n"
        "from openenv.core.env_server import create_app, Environment\n"
        "from openenv.core.rubrics import Rubric, LLMJudge\n"
        "import openenv.core\n"
        "assert 'create_app' in openenv.core.__all__ and not openenv_shim.is_waiting('openenv.core')\n"
        "from metric_tracker_rl.environment import MetricTrackerRlEnvironment\n"
        "assert issubclass(MetricTrackerRlEnvironment, Environment)\n"
    )
    assert loaded_after(code)["gradio"]  # OpenEnv's own __init__ ran, web interface and all


def test_openenv_imported_first_is_left_alone():
    code = (
        "import openenv.core\n"
        "import metric_tracker_rl.environment\n"
        "from metric_tracker_rl import openenv_shim\n"
        "assert not openenv_shim.is_waiting('openenv.core')\n"
    )
    loaded_after(code)


@pytest.mark.parametrize("statement", LIGHT_IMPORTS[:-1])
def test_numba_loads_with_the_first_episode_not_on_import(statement):
    code = f"{statement}\nimport sys\nprint('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split()[-1] == "False"
