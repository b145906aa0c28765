"""Servers and nginx that the scaling tests start themselves, on loopback.

Each ``metric-tracker serve`` process binds a port the system chooses (``--port 0``) and says
which in its log; nginx gets a free port and ``deploy/nginx.conf`` with the replicas' ports in
its upstream blocks. Every process runs in a process group of its own and is stopped through
that group's id (a worker, or a compile the server started, goes with it), never by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from metric_tracker_rl.environment import DEBUG_ENV_VAR
from metric_tracker_rl.limits import IDLE_TIMEOUT_ENV_VAR, MAX_SESSIONS_ENV_VAR
from metric_tracker_rl.records import RECORDS_ENV_VAR

REPO = Path(__file__).resolve().parents[1]
NGINX_CONF = REPO / "deploy" / "nginx.conf"
STARTUP_TIMEOUT_S = 150.0
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
REPLICA_LINE = re.compile(r"^(\s*)server replica:8000( [^;]*)?;$", re.MULTILINE)
# What a server the tests start (here and in conftest.py) must not inherit from the test run:
# debug off, default limits, records of its own, no /web UI (OpenEnv's variable, which
# serving.WEB_ENV_VAR names: importing serving here would import OpenEnv at collection).
SERVER_ENV_DROP = (
    DEBUG_ENV_VAR,
    MAX_SESSIONS_ENV_VAR,
    IDLE_TIMEOUT_ENV_VAR,
    RECORDS_ENV_VAR,
    "ENABLE_WEB_INTERFACE",
)


def _stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop a process started with ``start_new_session=True``, and its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):  # what the group may still hold (a worker)
        os.killpg(process.pid, signal.SIGKILL)


class Served:
    """One ``metric-tracker serve`` process on 127.0.0.1, its log in a file."""

    def __init__(self, log: Path, *options: str) -> None:
        self.log = log
        self.options = options
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> Served:
        """Start the process (again on its port, once it has one); ``wait`` for it to answer."""
        env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_DROP}
        command = [sys.executable, "-m", "metric_tracker_rl.cli", "serve", "--host", "127.0.0.1"]
        self._started_at = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.options],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    def wait(self) -> Served:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.text()}"
            found = LISTENING.search(self.text()[self._started_at :])
            if found:
                self.port = int(found.group(1))
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return self
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer in {STARTUP_TIMEOUT_S:.0f} s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Gone at once, as a crashed machine: SIGKILL, no goodbye to its clients."""
        assert self.process is not None
        _stop_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nginx_config(replica_ports: list[int], port: int, folder: Path) -> str:
    """``deploy/nginx.conf`` for replicas on these loopback ports, listening on ``port``."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    text, upstreams = REPLICA_LINE.subn(
        lambda line: "\n".join(f"{line[1]}server 127.0.0.1:{p}{line[2] or ''};" for p in replica_ports), text
    )
    text, listens = re.subn(r"listen 8000;", f"listen 127.0.0.1:{port};", text)
    assert (upstreams, listens) == (2, 1), "deploy/nginx.conf: two upstream blocks of replicas, one listen"
    if os.geteuid() != 0:  # the compiled-in temporary folders are root's
        paths = "".join(
            f"    {kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        text = text.replace("http {\n", "http {\n" + paths, 1)
    return text


class Nginx:
    """nginx in the foreground with ``deploy/nginx.conf`` in front of the replicas."""

    def __init__(self, replica_ports: list[int], folder: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(binary).exists(), "nginx is missing: apt-get install nginx (.ci/run installs it)"
        self.port = free_port()
        self.folder = folder
        config = folder / "nginx.conf"
        config.write_text(nginx_config(replica_ports, self.port, folder), encoding="utf-8")
        self.log = folder / "nginx.log"
        with self.log.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "-c",
                    str(config),
                    "-p",
                    str(folder),
                    "-e",
                    str(self.log),
                    "-g",
                    f"daemon off; pid {folder / 'nginx.pid'};",
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"nginx exited:\n{self.log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/nginx-health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"nginx did not answer:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop_group(self.process)
