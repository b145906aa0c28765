"""Real servers for the integration tests in ``tests/test_server.py``.

``server_url``: ``server.app:app`` (the seed's way to start it) in a subprocess on a free
loopback port, debug off, default session limit, no web UI. Its start-up is dominated by importing
openenv (which imports gradio), so the process is launched as soon as pytest finds a test file
that uses it (``test_server.py``, ``test_mcp.py``, ...), while pytest is still importing test
modules, and the two overlap.

``small_server_url``: an in-thread server built with ``build_app(max_sessions=2)``.

``limited_server_url``: ``server.app:app`` in a subprocess with two sessions at most and MCP
sessions that expire after one idle second (launched when pytest finds ``test_mcp.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import SERVER_ENV_DROP  # not inherited by the servers: debug off, default limits, ...

from metric_tracker_rl.environment import DEBUG_ENV_VAR
from metric_tracker_rl.limits import IDLE_TIMEOUT_ENV_VAR, MAX_SESSIONS_ENV_VAR

REPO = Path(__file__).resolve().parents[1]
LIMITED_SERVER_ENV = {MAX_SESSIONS_ENV_VAR: "2", IDLE_TIMEOUT_ENV_VAR: "1"}
STARTUP_TIMEOUT_S = 150.0

# Binds port 0 itself (no race for a free port), prints it, then serves server.app:app.
_LAUNCHER = """
import socket, uvicorn
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(512)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config("server.app:app", log_level="warning")).run(sockets=[sock])
"""

_main_server: dict[str, Any] = {}
_limited_server: dict[str, Any] = {}


def _launch(server: dict[str, Any], extra_env: dict[str, str] | None = None) -> None:
    if server:
        return
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_DROP} | (extra_env or {})
    fd, log = tempfile.mkstemp(prefix="metric_tracker_server_", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=fd
    )
    os.close(fd)
    server.update(proc=proc, log=Path(log))


def _launch_main_server() -> None:
    _launch(_main_server)


def _stop(server: dict[str, Any]) -> None:
    proc = server.pop("proc", None)
    log = server.pop("log", None)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc is not None and proc.stdout is not None:
        proc.stdout.close()
    if log is not None:
        log.unlink(missing_ok=True)


def _stop_main_server() -> None:
    _stop(_main_server)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    # pytest also offers the siblings of a file named on the command line: start only when
    # the test file itself (or a directory holding it) was asked for.
    asked = any(parent.session.isinitpath(p) for p in (file_path, *file_path.parents))
    if (
        file_path.name in ("test_server.py", "test_mcp.py", "test_episodes.py", "test_mcp_inspector.py")
        and asked
    ):
        _launch_main_server()
    if file_path.name == "test_mcp.py" and asked:
        _launch(_limited_server, LIMITED_SERVER_ENV)


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_main_server()
    _stop(_limited_server)


def _serve(server: dict[str, Any]) -> str:
    """The URL of a launched server, once it is healthy."""
    proc: subprocess.Popen[bytes] = server["proc"]
    log: Path = server["log"]
    if "url" not in server:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            pytest.fail(f"server launcher printed no port ({line!r}):\n{log.read_text()}")
        server["url"] = f"http://127.0.0.1:{int(line)}"
    wait_healthy(server["url"], lambda: proc.poll() is None, log.read_text, STARTUP_TIMEOUT_S)
    return server["url"]


def wait_healthy(url: str, alive: Callable[[], bool], describe: Callable[[], str], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            pytest.fail(f"server exited during start-up:\n{describe()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"server at {url} not healthy after {timeout}s:\n{describe()}")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    _launch_main_server()
    try:
        yield _serve(_main_server)
    finally:
        _stop_main_server()


@pytest.fixture(scope="session")
def limited_server_url() -> Iterator[str]:
    """A server process with two sessions at most and MCP sessions idle-expiring after 1 s."""
    _launch(_limited_server, LIMITED_SERVER_ENV)
    try:
        yield _serve(_limited_server)
    finally:
        _stop(_limited_server)


@pytest.fixture(scope="session")
def small_server_url() -> Iterator[str]:
    """An in-thread server that allows only two concurrent sessions (debug off)."""
    import uvicorn

    from metric_tracker_rl.serving import build_app

    saved = os.environ.pop(DEBUG_ENV_VAR, None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(build_app(max_sessions=2), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_healthy(url, thread.is_alive, lambda: "the server thread died", 30.0)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        if saved is not None:
            os.environ[DEBUG_ENV_VAR] = saved
