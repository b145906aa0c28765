"""What the compiled kernels (Numba) cost: install size, import time, the first compile
after an install, and the load from Numba's cache in every later process.

Each figure comes from fresh interpreters, so nothing is shared with this process:

- install size: the files Numba and llvmlite install, next to a plain install's (the
  project and what it requires without extras: what ``metric-tracker serve`` installs);
- ``import numba``: wall seconds in a fresh interpreter, median of ``--repeat``;
- first compile: ``generator.warm_up()`` (one episode) in a fresh interpreter with an
  empty cache folder (``NUMBA_CACHE_DIR``), as after an install; ``--compiles`` runs;
- cached load: the same call again in fresh interpreters, on that filled cache, median
  of ``--repeat``; the cache's size on disk;
- time to the first episode served: ``metric-tracker serve`` (web debugger on) started with an
  empty cache, as after an install (``--compiles`` runs), and with the filled one (median of
  ``--repeat``): seconds from the start to the first healthy ``/health``, and from there to
  the answer of the first ``POST /reset`` (``hard_mixed_multi``).

    uv run python bench/kernel_costs.py        # writes bench/results/kernel_costs.json
    uv run python bench/kernel_costs.py --repeat 3 --compiles 1 --json /tmp/kernel_costs.json

Another checkout's figures, in the same session: ``PYTHONPATH=/path/to/checkout uv run python
bench/kernel_costs.py`` (its fresh interpreters import that checkout's package).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from machine import machine  # bench/machine.py (the script's folder is on sys.path)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from serve import free_port  # bench/serve.py

import metric_tracker_rl

ROOT = Path(__file__).resolve().parents[1]
# The checkout whose package this process imports (this one, or PYTHONPATH's): the fresh
# interpreters start there, so that they import the same package.
CHECKOUT = Path(metric_tracker_rl.__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "kernel_costs.json"
COMPILED = ("numba", "llvmlite")
# Seconds for the statement, from a fresh interpreter; the first line printed is the figure.
IMPORT_NUMBA = "import time\nt = time.perf_counter()\nimport numba\nprint(time.perf_counter() - t)"
WARM_UP = (
    "import time\nt = time.perf_counter()\n"
    "from metric_tracker_rl.generator import warm_up\nwarm_up()\nprint(time.perf_counter() - t)"
)


def distribution_bytes(name: str) -> int:
    """Bytes of the files a distribution installed (its RECORD), as they are on disk."""
    total = 0
    for file in metadata.distribution(name).files or ():
        path = Path(file.locate())
        if path.is_file():
            total += path.stat().st_size
    return total


def served_install() -> set[str]:
    """The distributions a plain install of the project brings (no extras, no dev tools):
    what ``uv run metric-tracker serve`` installs."""
    wanted, seen = ["metric-tracker-rl"], set()
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return seen


def timed(statement: str, cache_dir: str | None = None) -> float:
    """Seconds the statement reports, run in a fresh interpreter (with this Numba cache folder)."""
    env = dict(os.environ) if cache_dir is None else {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    done = subprocess.run(
        [sys.executable, "-c", statement], capture_output=True, text=True, cwd=CHECKOUT, env=env, check=True
    )
    return float(done.stdout.split()[0])


FIRST_RESET = {"task_id": "hard_mixed_multi"}
SERVE_TIMEOUT_S = 900.0  # a first reset that waits for a compile on a slow machine


def first_episode_served(cache_dir: str) -> dict[str, float]:
    """Seconds from starting ``metric-tracker serve`` (web debugger on, this Numba cache folder)
    to its first healthy ``/health``, and from there to the answer of the first reset."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "ENABLE_WEB_INTERFACE": "1"}
    command = [sys.executable, "-m", "metric_tracker_rl.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(
        command, cwd=CHECKOUT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if server.poll() is not None or time.perf_counter() - started > SERVE_TIMEOUT_S:
                raise RuntimeError("the server did not become healthy")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        healthy = time.perf_counter()
        httpx.post(f"{url}/reset", json=FIRST_RESET, timeout=SERVE_TIMEOUT_S).raise_for_status()
        answered = time.perf_counter()
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "health_s": round(healthy - started, 2),
        "first_reset_after_health_s": round(answered - healthy, 2),
    }


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def measure(repeat: int, compiles: int) -> dict[str, Any]:
    sizes = {name: distribution_bytes(name) for name in COMPILED}
    imports = [timed(IMPORT_NUMBA) for _ in range(repeat)]
    compile_runs: list[float] = []
    loads: list[float] = []
    served_fresh: list[dict[str, float]] = []
    served_cached: list[dict[str, float]] = []
    cache_bytes = 0
    for _ in range(compiles):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as empty:
            served_fresh.append(first_episode_served(empty))
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
            compile_runs.append(timed(WARM_UP, cache_dir))
            loads += [timed(WARM_UP, cache_dir) for _ in range(repeat)]
            cache_bytes = folder_bytes(Path(cache_dir))
            served_cached += [first_episode_served(cache_dir) for _ in range(repeat)]
    return {
        "install_mb": {name: round(size / 2**20, 1) for name, size in sizes.items()},
        "install_mb_compiled_total": round(sum(sizes.values()) / 2**20, 1),
        "install_mb_served": round(sum(distribution_bytes(name) for name in served_install()) / 2**20, 1),
        "import_numba_s": round(statistics.median(imports), 3),
        "first_compile_s": [round(seconds, 2) for seconds in compile_runs],
        "cached_load_s": round(statistics.median(loads), 3),
        "cache_mb": round(cache_bytes / 2**20, 2),
        "first_episode_served_fresh": served_fresh,
        "first_episode_served_cached": {
            key: round(statistics.median(run[key] for run in served_cached), 2) for key in served_cached[0]
        },
        "repeat": repeat,
    }


def print_report(report: dict[str, Any]) -> None:
    info = report["machine"]
    print(f"{info['platform']} | Python {info['python']} | numba {info['numba']} | {info['cpu_count']} CPUs")
    print(f"sum(range(10**6)) in {info['python_loop_ms']} ms (the machine's speed)")
    costs = report["costs"]
    parts = ", ".join(f"{name} {mb} MB" for name, mb in costs["install_mb"].items())
    print(
        f"install size: {costs['install_mb_compiled_total']} MB ({parts}) "
        f"of {costs['install_mb_served']} MB for a plain install (no extras)"
    )
    print(f"import numba: {costs['import_numba_s']} s (median)")
    runs = ", ".join(f"{seconds} s" for seconds in costs["first_compile_s"])
    print(f"first compile after an install (warm_up, empty cache): {runs}")
    load, cache = costs["cached_load_s"], costs["cache_mb"]
    print(f"cached load in a new process (warm_up): {load} s (median); cache {cache} MB")
    for label, runs in (
        ("after an install (empty cache)", costs["first_episode_served_fresh"]),
        ("with the cache (median)", [costs["first_episode_served_cached"]]),
    ):
        figures = ", ".join(
            f"/health {run['health_s']} s after the start, the first reset "
            f"{run['first_reset_after_health_s']} s later"
            for run in runs
        )
        print(f"metric-tracker serve, first episode {label}: {figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per timed figure")
    parser.add_argument("--compiles", type=int, default=1, help="first compiles, each into an empty cache")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.compiles < 1:
        parser.error("--repeat and --compiles must be at least 1")
    report = {
        "machine": machine(packages=("numpy", "numba", "llvmlite", "metric-tracker-rl")),
        "costs": measure(args.repeat, args.compiles),
    }
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
