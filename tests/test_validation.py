"""openenv.yaml's ``validation:`` manifest: everything it declares is true, and OpenEnv's
validator passes every check it can run without Docker (static; the runtime graders
against a local server through a test provider; ``openenv validate --url``)."""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import sys
import threading
import time
import tomllib
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn
import yaml
from openenv.validation import Level, ProviderCapability, run_validation
from openenv.validation.manifest import ExecutionDeclaration
from openenv.validation.providers import ExecResult, ProviderError
from openenv.validation.runner import source_digest
from openenv.validation.runtime.contracts import LaunchSpec, load_runtime_plan
from typer.testing import CliRunner

from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.serving import build_app
from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
MANIFEST = yaml.safe_load((ROOT / "openenv.yaml").read_text(encoding="utf-8"))
VALIDATION = MANIFEST["validation"]
CAPABILITIES = VALIDATION["capabilities"]

# What the validator reads and hashes: the package, not caches or results. It is validated
# from a copy because it refuses a tree that changes while it runs (other test files write
# .hypothesis/, editors write sources).
PACKAGE_FILES = ("openenv.yaml", "pyproject.toml", "uv.lock", "README.md", "Dockerfile", ".dockerignore")
PACKAGE_DIRS = ("metric_tracker_rl", "server", "scripts", "validation")

# Checks that run here and must pass; every other local check SKIPs with a stated reason.
RUNTIME_PASSES = {
    "static.manifest",
    "runtime.startup",
    "runtime.reward_well_formed",
    "runtime.observation_schema",
    "runtime.state_contract",
}


def _script(name: str) -> ModuleType:
    """Import one of scripts/*.py (they import their shared helper by bare name)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """The app (serving.build_app) under uvicorn in a thread, on a free loopback port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(build_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the local server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class LocalRunningSubject:
    """``RunningSubject`` for LocalServer; no exec (the provider does not declare EXEC)."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.base_url = server.base_url

    def inspect(self) -> dict:
        return {"provider": "local-thread", "base_url": self.base_url}

    def logs(self, max_bytes: int = 65536) -> str:
        return ""

    def exec(self, argv: list[str], timeout_s: float) -> ExecResult:
        raise ProviderError("the local test provider cannot exec")

    def stop(self) -> None:
        self.server.stop()


class LocalServerProvider:
    """A validation provider for tests, standing in for Docker-local.

    ``build`` builds nothing (the image reference is the source digest) and ``start``
    serves the app in a thread. It enforces no sandbox: it lacks NETWORK_POLICY, so
    ``runtime.network_policy`` SKIPs; the declared no-network mode is accepted only so
    the runner proceeds to the protocol checks.
    """

    name = "local-thread"
    capabilities = frozenset({ProviderCapability.IMAGE_BUILD})
    supported_network_modes = frozenset({"public", "no-network"})

    def build(self, root: Path, execution: ExecutionDeclaration) -> str:
        return "sha256:" + source_digest(root)

    def start(self, spec: LaunchSpec) -> LocalRunningSubject:
        return LocalRunningSubject(LocalServer().start())


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """A copy of the package as the validator sees it."""
    copy = tmp_path_factory.mktemp("package")
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, copy / name)
    for name in PACKAGE_DIRS:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture(scope="module")
def server():
    local = LocalServer().start()
    yield local
    local.stop()


# --- the validator -----------------------------------------------------------------------


# openenv's collector opens its WebSocket without a context manager (its own deprecation).
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
def test_runtime_graders_pass_against_a_local_server(package):
    report = run_validation(package, max_level=Level.SEMANTIC, provider=LocalServerProvider())
    statuses = {r.check_id: r.status.value for r in report.results}
    evidence = {r.check_id: r.evidence for r in report.results}
    assert {c for c, s in statuses.items() if s == "pass"} == RUNTIME_PASSES, evidence
    assert set(statuses.values()) == {"pass", "skip"}, evidence
    assert evidence["runtime.network_policy"] == ["missing provider capabilities: network_policy"]
    assert report.verdict.value == "warn"  # skips make a WARN; no check fails


def test_cli_static_validation_passes_and_skips_the_build(package):
    from openenv.cli.__main__ import app as openenv_cli

    result = CliRunner().invoke(openenv_cli, ["validate", str(package), "--skip-build"])
    assert result.exit_code == 0, result.output
    assert "PASS  static.manifest" in result.output
    assert "--skip-build: build-dependent runtime checks skipped" in result.output
    assert "FAIL" not in result.output and "ERROR" not in result.output
    assert "Verdict: WARN" in result.output


def test_cli_url_validation_passes(server):
    from openenv.cli.__main__ import app as openenv_cli

    result = CliRunner().invoke(openenv_cli, ["validate", "--url", server.base_url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True
    assert {c["id"] for c in report["criteria"]} >= {
        "health_endpoint",
        "metadata_endpoint",
        "schema_endpoint",
        "mcp_endpoint",
        "mode_endpoint_consistency",
    }
    assert all(c["passed"] for c in report["criteria"])


# --- the declarations are true -----------------------------------------------------------


def test_name_version_and_description_are_the_served_metadata(server):
    metadata = httpx.get(f"{server.base_url}/metadata", timeout=10).json()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert MANIFEST["version"] == project["version"]
    assert {key: MANIFEST[key] for key in ("name", "version", "description")} == {
        key: metadata[key] for key in ("name", "version", "description")
    }


def test_declared_tools_are_the_mcp_tools_list(server):
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    tools = httpx.post(f"{server.base_url}/mcp", json=request, timeout=10).json()["result"]["tools"]
    assert CAPABILITIES["declared_tools"] == [tool["name"] for tool in tools]
    assert CAPABILITIES["declared_tools"] == ["start_episode", *REGISTRY, "submit_report"]


def test_declared_task_count_is_the_named_tasks_and_the_evaluation_split():
    assert CAPABILITIES["declared_task_count"] == {"named": len(NAMED_TASKS), "eval": len(EVAL_SPLIT)}


def test_oracle_script_reaches_the_maximum_on_every_task():
    report = _script("oracle").run_oracle(None, "all")
    assert report["summary"]["count"] == len(NAMED_TASKS) + len(EVAL_SPLIT)
    assert report["summary"]["passed"], report["summary"]
    assert CAPABILITIES["oracle"] == {"form": "script", "location": "scripts/oracle.py"}


def test_oracle_script_reaches_the_maximum_over_the_server(server):
    report = _script("oracle").run_oracle(server.base_url, "named")
    assert report["summary"]["passed"], report


def test_canaries_replay_and_stay_below_the_floor_margin():
    canaries = _script("canaries")
    report = canaries.run_canaries(None, ROOT / CAPABILITIES["canaries"])
    assert report["summary"]["passed"], [c for c in report["canaries"] if c["problems"]]
    assert {c["agent"] for c in report["canaries"]} == {"empty", "mass", "random"}


def test_shipped_recordings_are_current_and_small():
    files = _script("record_canaries").expected_files()
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run scripts/record_canaries.py"
    assert sum(len(text.encode()) for text in files.values()) < 100_000


def test_the_recordings_check_says_so_when_they_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script("record_canaries").main(["--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("current: 4 files") and "validation/runtime.json" in out


def test_runtime_probe_plan_is_valid_and_solves_its_episode():
    execution = ExecutionDeclaration.model_validate(VALIDATION["execution"])
    plan = load_runtime_plan(ROOT, execution)
    env = MetricTrackerRlEnvironment()
    env.reset(seed=plan.reset.seed, episode_id=plan.reset.episode_id, **plan.reset.options)
    observations = [env.step(MetricTrackerRlAction.model_validate(action)) for action in plan.actions]
    assert observations[0].status == "error" and observations[0].reward == 0.0
    assert observations[-1].reward == 1.0 and observations[-1].done
    assert env.state.episode_id == plan.reset.episode_id
    assert env.state.step_count == len(plan.actions)


def test_dockerfile_serves_the_declared_port_with_the_server_script():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["server"] == "server.app:main"
    assert f'CMD ["server", "--host", "0.0.0.0", "--port", "{MANIFEST["port"]}"]' in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    assert MANIFEST["app"] == "server.app:app"


def test_serving_installs_no_dev_tools():
    """`uv run metric-tracker serve` on a fresh machine installs the default groups only:
    none of the test and lint tools, which come with `--group dev`."""
    import shutil
    import subprocess

    uv = shutil.which("uv")
    assert uv is not None, "uv installs and runs the project (README: Set-up)"

    def exported(*groups: str) -> set[str]:
        out = subprocess.run(
            [uv, "export", "--locked", "--no-hashes", "--format", "requirements-txt", *groups],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        return {line.split("==")[0].strip().lower() for line in out.splitlines() if "==" in line}

    dev_tools = {"playwright", "ruff", "schemathesis", "pytest", "hypothesis"}
    assert not exported() & dev_tools
    assert exported("--group", "dev") >= dev_tools
