"""The kernels run as plain Python are the compiled kernels' own functions and give the same
bytes on every named task, every evaluation config and injected configs; a server serves its
first episodes on that path while the compiled kernels load (or compile, after an install, in
a separate process), and says once which path is in use."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from metric_tracker_rl import kernel_paths, kernels
from metric_tracker_rl import statistics as S
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.generator import generate
from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS, config_for

REPO = Path(__file__).resolve().parents[1]


def _injection(metric: str, dates: list[str], factor: float, direction: str) -> dict[str, Any]:
    return {
        "method_name": "metric_stddev_shift",
        "metric_names": [metric],
        "dates": dates,
        "stddev_factor": factor,
        "direction": direction,
    }


INJECTED = [
    {"seed": 7, "anomalies": [_injection("orders_placed", ["2026-03-20"], 10.0, "down")]},
    {"seed": 3, "anomalies": [_injection("app_opens", ["2026-03-10", "2026-03-24"], 12.0, "up")]},
    {
        "seed": 11,
        "difficulty": "hard",
        "anomalies": [_injection("app_open_to_menu_open", ["2026-03-15"], 9.0, "up")],
    },
    {
        "seed": 5,
        "difficulty": "easy",
        "anomalies": [
            _injection("order_placed_to_payment_successful", ["2026-03-08"], 8.0, "down"),
            _injection("menu_opens", ["2026-03-29"], 11.0, "down"),
        ],
    },
]
CONFIGS = (
    [config_for(task_id) for task_id in NAMED_TASKS]
    + [config_for(**config) for config in EVAL_SPLIT]
    + [config_for(seed=seed, difficulty=d) for seed in (17, 123456) for d in ("easy", "medium", "hard")]
    + [config_for(**config) for config in INJECTED]
)


def _generated(config: Any) -> list[Any]:
    try:
        data = generate(config)
    except ConfigError as err:  # an injection no draw can keep clear of a threshold: the same error
        return [str(err)]
    return [
        (value.dtype.str, value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value
        for value in (getattr(data, field.name) for field in dataclasses.fields(data))
    ]


def test_the_plain_python_kernels_are_the_compiled_kernels_own_functions() -> None:
    plain = kernel_paths.plain_python()
    compiled = [name for name, value in vars(kernels).items() if hasattr(value, "py_func")]
    assert len(compiled) > 30
    for name in compiled:
        function = getattr(plain, name).__wrapped__
        assert function.__code__ is getattr(kernels, name).py_func.__code__
        # ... calling one another, not the compiled dispatchers:
        assert function.__globals__["generate_episode"] is plain.generate_episode.__wrapped__


def test_plain_python_kernels_generate_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel_paths.current() is kernels
    compiled = [_generated(config) for config in CONFIGS]
    monkeypatch.setattr(kernel_paths, "current", kernel_paths.plain_python)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as quiet as the compiled kernels
        plain = [_generated(config) for config in CONFIGS]
    assert len(CONFIGS) > 80
    for config, expected, got in zip(CONFIGS, compiled, plain, strict=True):
        assert got == expected, config


def test_plain_python_statistics_are_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 60, size=(5, 28, 24)).astype(np.float64)  # zeros and impossible counts
    expected = S.event_values(counts)
    monkeypatch.setattr(kernel_paths, "current", kernel_paths.plain_python)
    assert S.event_values(counts).tobytes() == expected.tobytes()


# --- a server on a fresh install --------------------------------------------------------------

HEALTH_WITHIN_S = 2.0  # from the process's start
RESET_WITHIN_S = 1.0  # from the first healthy /health


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _metric_tracker() -> list[str]:
    script = Path(sys.executable).parent / "metric-tracker"
    return [str(script)] if script.exists() else [sys.executable, "-m", "metric_tracker_rl.cli"]


def _in_process(config: dict[str, Any]) -> dict[str, Any]:
    """A reset's observation as ``POST /reset`` carries it, played in process (compiled)."""
    from metric_tracker_rl.environment import MetricTrackerRlEnvironment

    observation = MetricTrackerRlEnvironment().reset(**config).model_dump(mode="json")
    return {k: v for k, v in observation.items() if k not in ("reward", "done")}


def test_a_fresh_install_serves_at_once_on_the_plain_path_until_compiled(tmp_path: Path) -> None:
    """``metric-tracker serve`` with the web debugger and an empty Numba cache: /health within
    2 s of the start, the first reset within 1 s of that, in the same bytes as in process; the
    kernels compile in a separate process, then serve every later episode; the log says so
    once each."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("ENABLE_WEB_INTERFACE", "METRIC_TRACKER_DEBUG")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        started = time.monotonic()
        server = subprocess.Popen(
            [*_metric_tracker(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        healthy = None
        while healthy is None and time.monotonic() - started < HEALTH_WITHIN_S:
            try:
                if httpx.get(f"{url}/health", timeout=HEALTH_WITHIN_S).status_code == 200:
                    healthy = time.monotonic()
            except httpx.HTTPError:
                time.sleep(0.02)
        assert healthy is not None, f"no /health within {HEALTH_WITHIN_S} s:\n{log.read_text()}"
        first = httpx.post(f"{url}/reset", json={"task_id": "hard_mixed_multi"}, timeout=RESET_WITHIN_S)
        assert first.json()["observation"] == _in_process({"task_id": "hard_mixed_multi"})

        deadline = time.monotonic() + 600
        while "the compiled kernels are ready (" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        config = {"seed": 4242, "difficulty": "hard", "anomaly_density": "high"}  # not cached yet
        later = httpx.post(f"{url}/reset", json=config, timeout=30)
        assert later.json()["observation"] == _in_process(config)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert text.count(kernel_paths.PLAIN_NOTICE) == 1, text
    ready = re.findall(r"the compiled kernels are ready \((.*?) in [\d.]+ s\)", text)
    assert ready == ["compiled in a separate process, then loaded"], text
    assert text.count(kernels.COMPILE_NOTICE) <= 1
    assert "building the web debugger at /web in the background" in text
    assert any(Path(env["NUMBA_CACHE_DIR"]).rglob("*.nbi")), "the compile process cached nothing"
