"""Server benchmark: start-up, HTTP and WebSocket latency, concurrent sessions, memory, sizes.

    uv run python bench/serve.py [--json PATH] [--quick]

Spawns the server the seed's way (``python -m uvicorn server.app:app``) on a free
loopback port and measures, against that real process:

1. start-to-healthy seconds (spawn -> first 200 from GET /health) next to the floor,
   the wall time of ``python -c "import openenv.core.env_server.http_server"``;
2. HTTP GET /health, POST /step and POST /reset latency over one keep-alive client;
3. WebSocket episodes with the typed client (reset + 10 analysis steps + 1 submission);
4. 64 and 256 concurrent WebSocket sessions playing that episode: throughput and errors;
5. the server's peak RSS (VmHWM from /proc);
6. response sizes: a typical step (compare_rate_to_median) and reset, WebSocket and HTTP.

Prints a table with targets and the earlier system's figures and writes JSON. A missed
target, or a phase that fails, is reported; it never fails the run. Everything stays
on 127.0.0.1, every loop is bounded and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from machine import machine  # bench/machine.py (the script's folder is on sys.path)
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect as ws_connect

from metric_tracker_rl.client import MetricTrackerRlEnv
from metric_tracker_rl.models import MetricTrackerRlAction

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "serve.json"
HOST = "127.0.0.1"
TASK_ID = "hard_mixed_multi"
FLOOR_IMPORT = "import openenv.core.env_server.http_server"
FLOOR_IMPORT_ONLY = FLOOR_IMPORT + "; import os; os._exit(0)"  # no interpreter shutdown
DEFAULT_APP = "server.app:app"
HEALTHY_TIMEOUT_S = 180.0  # a start that takes longer is reported as failed
POLL_INTERVAL_S = 0.005
MESSAGE_TIMEOUT_S = 120.0  # per WebSocket reply, also under load
PHASE_TIMEOUT_S = 600.0  # per concurrency run
SETTLE_S = 1.0  # between concurrency runs, so closed sessions leave the server's count
HTTP_WARMUP = 20
WS_WARMUP = 2
SUBMISSION = [{"method_name": "get_median_filter_rows", "threshold_multiplier": 2.0}]
TYPICAL_STEP = "compare_rate_to_median"

FULL = {
    "start_repeats": 5,  # bytecode cached (after one untimed warm-up of each command)
    "start_repeats_as_is": 2,  # environment as is (only when it has no bytecode cache)
    "http_requests": 500,
    "http_resets": 100,
    "ws_episodes": 30,
    "sessions": (64, 256),
    "episodes_per_session": 2,
}
QUICK = {
    "start_repeats": 1,
    "start_repeats_as_is": 0,
    "http_requests": 100,
    "http_resets": 20,
    "ws_episodes": 5,
    "sessions": (64, 256),
    "episodes_per_session": 1,
}

EARLIER_START = "6.9-8.0 s"


# --- small helpers ------------------------------------------------------------------------


def bytecode_info() -> dict[str, Any]:
    """Whether the interpreter here would reuse compiled bytecode between starts."""
    import openenv.core.env_server as env_server

    package_dir = Path(env_server.__file__).parent
    return {
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX"),
        "openenv_env_server_has___pycache__": (package_dir / "__pycache__").is_dir(),
    }


def env_has_bytecode_cache(info: dict[str, Any]) -> bool:
    if info["PYTHONPYCACHEPREFIX"]:
        return not info["PYTHONDONTWRITEBYTECODE"]
    return info["openenv_env_server_has___pycache__"] or not info["PYTHONDONTWRITEBYTECODE"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(samples_ns: list[int]) -> dict[str, Any]:
    if not samples_ns:
        return {"n": 0}
    ms = [s / 1e6 for s in samples_ns]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 4),
        "p95_ms": round(pct(ms, 95), 4),
        "p99_ms": round(pct(ms, 99), 4),
        "min_ms": round(min(ms), 4),
        "max_ms": round(max(ms), 4),
    }


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a process, from /proc."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class RssSampler:
    """Samples the server's VmRSS every 50 ms in a thread (the kernel's VmHWM is the peak)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kb = max(self.max_kb, proc_status(self.pid).get("VmRSS", 0))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# --- server process -----------------------------------------------------------------------


class Server:
    """``python -m uvicorn server.app:app`` on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, app: str = DEFAULT_APP) -> None:
        self.env = env
        self.app = app
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Spawn and wait for GET /health == 200; return seconds from spawn to healthy."""
        command = [
            sys.executable, "-m", "uvicorn", self.app, "--host", HOST, "--port", str(self.port),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            start = time.perf_counter()
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = start + HEALTHY_TIMEOUT_S
        # Poll with a bare connect (cheap: the poller must not take CPU from the starting server
        # on a busy machine); uvicorn listens only once the app is imported and started up.
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(2.0)
                listening = probe.connect_ex((HOST, self.port)) == 0
            if listening:
                try:
                    if httpx.get(f"{self.base_url}/health", timeout=5.0).status_code == 200:
                        return time.perf_counter() - start
                except httpx.TransportError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}; see {self.log_path}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"server not healthy after {HEALTHY_TIMEOUT_S:.0f} s")
            time.sleep(POLL_INTERVAL_S)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def measure_floor(env: dict[str, str], code: str = FLOOR_IMPORT) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -c CODE`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # cumulative over waited-for children
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, stderr = child.communicate(timeout=HEALTHY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise RuntimeError(f"floor import failed: {stderr.decode()[-500:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def measure_start(env: dict[str, str], log_path: Path, app: str) -> tuple[float, float | None]:
    """Wall seconds to healthy, and the server's CPU seconds at that moment."""
    server = Server(env, log_path, app)
    try:
        wall = server.start()
        return wall, proc_cpu_s(server.pid)
    finally:
        server.stop()


def start_phase(
    label: str, env: dict[str, str], repeats: int, warmup: bool, log_path: Path, app: str, import_only: bool
) -> dict[str, Any]:
    """Floor and start-to-healthy, interleaved so that machine load drifts hit both alike.

    The floor is the brief's ``python -c "import ..."``, which also pays for interpreter
    shutdown; ``import_only`` adds a floor that ends with ``os._exit(0)`` right after the
    import, which is what a server that never exits is really compared with.
    """
    if warmup:  # fills the bytecode cache; not timed
        measure_floor(env)
        measure_start(env, log_path, app)
    runs: dict[str, list[tuple[float, float | None]]] = {"floor": [], "floor_import_only": [], "start": []}
    for _ in range(repeats):
        runs["floor"].append(measure_floor(env))
        if import_only:
            runs["floor_import_only"].append(measure_floor(env, FLOOR_IMPORT_ONLY))
        runs["start"].append(measure_start(env, log_path, app))
    out: dict[str, Any] = {"label": label, "repeats": repeats}
    for name, samples in runs.items():
        if not samples:
            continue
        walls = [w for w, _ in samples]
        cpus = [c for _, c in samples if c is not None]
        out[f"{name}_s"] = [round(w, 3) for w in walls]
        out[f"{name}_cpu_s"] = [round(c, 3) for c in cpus]
        out[f"{name}_median_s"] = round(statistics.median(walls), 3)
        out[f"{name}_cpu_median_s"] = round(statistics.median(cpus), 3) if cpus else None
    start = out["start_median_s"]
    out["ratio_median"] = round(start / out["floor_median_s"], 3)
    out["ratio_min"] = round(min(out["start_s"]) / min(out["floor_s"]), 3)
    if out["start_cpu_median_s"] and out["floor_cpu_median_s"]:
        out["ratio_cpu"] = round(out["start_cpu_median_s"] / out["floor_cpu_median_s"], 3)
    if import_only:
        out["ratio_import_only"] = round(start / out["floor_import_only_median_s"], 3)
        if out["start_cpu_median_s"] and out["floor_import_only_cpu_median_s"]:
            out["ratio_import_only_cpu"] = round(
                out["start_cpu_median_s"] / out["floor_import_only_cpu_median_s"], 3
            )
    return out


# --- episode plan -------------------------------------------------------------------------


def episode_plan(date: str) -> list[MetricTrackerRlAction]:
    """Ten analysis steps of a plausible investigation, then one submission."""
    analysis = [
        ("task_overview", {}),
        ("list_dates", {}),
        ("list_entities", {}),
        ("list_suspicious_dates", {"limit": 5}),
        ("rows_for_date", {"date": date}),
        (TYPICAL_STEP, {"date": date, "entity_name": "app_open_to_menu_open"}),
        ("compare_count_to_median", {"date": date, "entity_name": "app_opens"}),
        ("detect_funnel_break", {"date": date}),
        ("get_metric_median", {"metric_name": "app_open_to_menu_open"}),
        ("get_median_filter_rows", {"threshold_multiplier": 2.0}),
    ]
    plan = [MetricTrackerRlAction(analysis_method=name, analysis_args=args) for name, args in analysis]
    plan.append(MetricTrackerRlAction(payload_generators=SUBMISSION))
    return plan


def expected_status(action: MetricTrackerRlAction) -> str:
    return "analysis" if action.analysis_method else "graded"


def action_label(action: MetricTrackerRlAction) -> str:
    return action.analysis_method or "submission"


class Tally:
    """Latencies and errors of one batch of episodes."""

    def __init__(self) -> None:
        self.reset_ns: list[int] = []
        self.step_ns: list[int] = []  # analysis steps
        self.submit_ns: list[int] = []
        self.episode_ns: list[int] = []
        self.connect_ns: list[int] = []
        self.per_method_ns: dict[str, list[int]] = {}
        self.errors: Counter[str] = Counter()
        self.error_examples: list[str] = []
        self.episodes_ok = 0
        self.steps_done = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{kind}: {detail[:300]}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "connect": summary_ms(self.connect_ns),
            "reset": summary_ms(self.reset_ns),
            "analysis_step": summary_ms(self.step_ns),
            "submission": summary_ms(self.submit_ns),
            "episode": summary_ms(self.episode_ns),
            "per_method": {k: summary_ms(v) for k, v in self.per_method_ns.items()},
            "episodes_ok": self.episodes_ok,
            "steps_done": self.steps_done,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "error_examples": self.error_examples,
        }


async def play_episode(client: MetricTrackerRlEnv, plan: list[MetricTrackerRlAction], tally: Tally) -> None:
    """reset + the plan on a connected client; an exception ends the episode (counted once)."""
    clock = time.perf_counter_ns
    try:
        begin = clock()
        result = await client.reset(task_id=TASK_ID)
        tally.reset_ns.append(clock() - begin)
        if result.observation.status != "ready":
            tally.error("reset status", f"{result.observation.status}: {result.observation.message}")
        ok = True
        for action in plan:
            t0 = clock()
            result = await client.step(action)
            elapsed = clock() - t0
            tally.steps_done += 1
            label = action_label(action)
            tally.per_method_ns.setdefault(label, []).append(elapsed)
            (tally.step_ns if action.analysis_method else tally.submit_ns).append(elapsed)
            if result.observation.status != expected_status(action):
                ok = False
                tally.error(f"{label} status", f"{result.observation.status}: {result.observation.message}")
        tally.episode_ns.append(clock() - begin)
        tally.episodes_ok += ok
    except Exception as err:  # noqa: BLE001 - every failure is a counted error
        tally.error(type(err).__name__, str(err))


# --- phases -------------------------------------------------------------------------------


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client on a plain socket: next to httpx, it shows how much
    of a request's time is the client's own."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @staticmethod
    def request(method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        return (head + "\r\n").encode() + payload

    def send(self, request: bytes) -> int:
        """Send one request, read the whole response; return the status code."""
        self.sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k.lower() == b"content-length"
        )
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            body += chunk
        return int(lines[0].split()[1])

    def close(self) -> None:
        self.sock.close()


def timed_calls(
    call: Callable[[], int], repeat: int, name: str, errors: Counter[str], pid: int
) -> dict[str, Any]:
    """Warm up, then time ``repeat`` calls; also the server's CPU per call."""
    for _ in range(HTTP_WARMUP):
        call()
    samples = []
    with gc_paused():
        cpu_before = proc_cpu_s(pid)
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            status = call()
            samples.append(time.perf_counter_ns() - t0)
            if status != 200:
                errors[f"{name} HTTP {status}"] += 1
        cpu_after = proc_cpu_s(pid)
    out = summary_ms(samples)
    if cpu_before is not None and cpu_after is not None:
        out["server_cpu_ms_per_call"] = round(1000 * (cpu_after - cpu_before) / repeat, 3)
    return out


def http_phase(
    base_url: str, port: int, pid: int, n: int, n_resets: int, rate_args: dict[str, Any]
) -> dict[str, Any]:
    """Sequential requests over one keep-alive httpx client, and over a raw socket."""
    out: dict[str, Any] = {}
    errors: Counter[str] = Counter()
    step_body = {"action": {"analysis_method": "list_dates"}}
    reset_body = {"task_id": TASK_ID}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        out["health"] = timed_calls(lambda: client.get("/health").status_code, n, "health", errors, pid)
        out["step"] = timed_calls(
            lambda: client.post("/step", json=step_body).status_code, n, "step", errors, pid
        )
        out["reset"] = timed_calls(
            lambda: client.post("/reset", json=reset_body).status_code, n_resets, "reset", errors, pid
        )
        step = client.post("/step", json=step_body).json()
        out["step_status"] = step["observation"]["status"]
        out["step_message"] = step["observation"]["message"]
        rate = client.post(
            "/step", json={"action": {"analysis_method": TYPICAL_STEP, "analysis_args": rate_args}}
        )
        out["typical_step_bytes"] = len(rate.content)
        out["typical_step_status"] = rate.json()["observation"]["status"]
        out["reset_bytes"] = len(client.post("/reset", json=reset_body).content)
    raw = RawHttp(port)
    try:
        health, step_request = RawHttp.request("GET", "/health"), RawHttp.request("POST", "/step", step_body)
        out["raw_health"] = timed_calls(lambda: raw.send(health), n, "raw health", errors, pid)
        out["raw_step"] = timed_calls(lambda: raw.send(step_request), n, "raw step", errors, pid)
    finally:
        raw.close()
    out["errors"] = sum(errors.values())
    out["errors_by_kind"] = dict(errors)
    return out


async def size_phase(base_url: str) -> dict[str, Any]:
    """Raw WebSocket frames (UTF-8 bytes) of reset and of every step of the episode."""
    url = base_url.replace("http://", "ws://") + "/ws"
    async with ws_connect(url, max_size=2**26, proxy=None) as ws:

        async def send(message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            await ws.send(json.dumps(message))
            raw = await asyncio.wait_for(ws.recv(), MESSAGE_TIMEOUT_S)
            data = raw.encode() if isinstance(raw, str) else raw
            return len(data), json.loads(data)

        reset_bytes, _ = await send({"type": "reset", "data": {"task_id": TASK_ID}})
        _, overview = await send(
            {
                "type": "step",
                "data": {"analysis_method": "list_suspicious_dates", "analysis_args": {"limit": 5}},
            }
        )
        date = overview["data"]["observation"]["analysis_result"]["result"]["dates"][0]["date"]
        await send({"type": "reset", "data": {"task_id": TASK_ID}})
        per_step: dict[str, int] = {}
        typical_frame: dict[str, Any] = {}
        for action in episode_plan(date):
            size, frame = await send({"type": "step", "data": action.model_dump(exclude_defaults=True)})
            per_step[action_label(action)] = size
            if action.analysis_method == TYPICAL_STEP:
                typical_frame = frame
        await ws.send(json.dumps({"type": "close"}))
    observation = typical_frame.get("data", {}).get("observation", {})
    # Bytes spent on fields left at their empty default (the wire always carries them).
    empty = {k: v for k, v in observation.items() if v in (None, "", [], {}, 0)}
    analysis_sizes = [v for k, v in per_step.items() if k != "submission"]
    return {
        "date": date,
        "reset_bytes": reset_bytes,
        "typical_step_bytes": per_step[TYPICAL_STEP],
        "typical_step_status": observation.get("status"),
        "typical_step_empty_field_bytes": len(json.dumps(empty, separators=(",", ":"))),
        "analysis_step_bytes_median": statistics.median(analysis_sizes),
        "per_step_bytes": per_step,
    }


async def ws_sequential_phase(base_url: str, pid: int, episodes: int, date: str) -> dict[str, Any]:
    """One fresh typed client per episode, one episode at a time."""
    plan = episode_plan(date)
    for _ in range(WS_WARMUP):
        async with MetricTrackerRlEnv(base_url=base_url, message_timeout_s=MESSAGE_TIMEOUT_S) as client:
            await play_episode(client, plan, Tally())
    tally = Tally()
    with gc_paused():
        cpu_before = proc_cpu_s(pid)
        for _ in range(episodes):
            client = MetricTrackerRlEnv(base_url=base_url, message_timeout_s=MESSAGE_TIMEOUT_S)
            try:
                t0 = time.perf_counter_ns()
                await client.connect()
                tally.connect_ns.append(time.perf_counter_ns() - t0)
                await play_episode(client, plan, tally)
            except Exception as err:  # noqa: BLE001
                tally.error(type(err).__name__, str(err))
            finally:
                with contextlib.suppress(Exception):
                    await client.close()
        cpu_after = proc_cpu_s(pid)
    out = tally.as_dict()
    if cpu_before is not None and cpu_after is not None and tally.steps_done:
        # per message: the steps plus one reset per episode (connect and close included)
        messages = tally.steps_done + len(tally.reset_ns)
        out["server_cpu_ms_per_message"] = round(1000 * (cpu_after - cpu_before) / messages, 3)
    return out


async def concurrency_phase(
    base_url: str, pid: int, sessions: int, episodes_per_session: int, date: str
) -> dict[str, Any]:
    """Open ``sessions`` WebSocket sessions at once, then all play their episodes together."""
    plan = episode_plan(date)
    tally = Tally()
    clients = [
        MetricTrackerRlEnv(base_url=base_url, message_timeout_s=MESSAGE_TIMEOUT_S, connect_timeout_s=60.0)
        for _ in range(sessions)
    ]

    async def connect(client: MetricTrackerRlEnv) -> bool:
        t0 = time.perf_counter_ns()
        try:
            await client.connect()
        except Exception as err:  # noqa: BLE001
            tally.error(f"connect {type(err).__name__}", str(err))
            return False
        tally.connect_ns.append(time.perf_counter_ns() - t0)
        return True

    async def play(client: MetricTrackerRlEnv) -> None:
        for _ in range(episodes_per_session):
            await play_episode(client, plan, tally)

    t0 = time.perf_counter()
    connected = await asyncio.wait_for(asyncio.gather(*(connect(c) for c in clients)), PHASE_TIMEOUT_S)
    connect_wall = time.perf_counter() - t0
    live = [c for c, ok in zip(clients, connected, strict=True) if ok]

    cpu_before = proc_cpu_s(pid)
    t1 = time.perf_counter()
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(*(play(c) for c in live)), PHASE_TIMEOUT_S)
    except TimeoutError:
        timed_out = True
        tally.error("phase timeout", f"not done after {PHASE_TIMEOUT_S:.0f} s")
    wall = time.perf_counter() - t1
    cpu_after = proc_cpu_s(pid)
    rss_kb = proc_status(pid).get("VmRSS")

    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    out = tally.as_dict()
    episodes = tally.episodes_ok
    steps = tally.steps_done
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    out.update(
        {
            "sessions": sessions,
            "sessions_connected": len(live),
            "episodes_per_session": episodes_per_session,
            "episodes_attempted": sessions * episodes_per_session,
            "connect_wall_s": round(connect_wall, 3),
            "wall_s": round(wall, 3),
            "timed_out": timed_out,
            "episodes_per_s": round(episodes / wall, 2) if wall else None,
            "steps_per_s": round(steps / wall, 1) if wall else None,
            "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
            "server_cpu_ms_per_step": (
                None if server_cpu is None or not steps else round(1000 * server_cpu / (steps + episodes), 3)
            ),
            "server_rss_mb_after": None if rss_kb is None else round(rss_kb / 1024, 1),
        }
    )
    return out


# --- report -------------------------------------------------------------------------------


def build_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per printed figure: name, figure, p95, target, earlier, pass/miss."""
    rows: list[dict[str, Any]] = []
    phases = report["phases"]

    def add(
        name: str, figure: str, p95: str = "", target: str = "", earlier: str = "", met: bool | None = None
    ):
        rows.append(
            {"name": name, "figure": figure, "p95": p95, "target": target, "earlier": earlier, "met": met}
        )

    def failed(name: str, phase: dict[str, Any]) -> None:
        add(name, f"failed: {phase['error'].splitlines()[0][:60]}")

    for key in ("start", "start_as_is"):
        start = phases.get(key)
        if start is None:
            continue
        tag = "" if key == "start" else " (env as is)"
        if "error" in start:
            failed(f"start-to-healthy{tag}", start)
            continue
        cpu = start.get("start_cpu_median_s")
        add(
            f"start-to-healthy{tag}, n={start['repeats']}",
            f"{start['start_median_s']:.2f} s",
            "" if cpu is None else f"CPU {cpu:.2f} s",
            earlier=EARLIER_START,
        )
        add(
            f"import floor{tag}",
            f"{start['floor_median_s']:.2f} s",
            f"CPU {start['floor_cpu_median_s']:.2f} s",
        )
        ratio = start["ratio_median"]
        note = f"min {start['ratio_min']:.2f}x"
        if "ratio_cpu" in start:
            note += f", CPU {start['ratio_cpu']:.2f}x"
        add(f"start / floor{tag}", f"{ratio:.2f}x", note, "<= 1.25x", "", ratio <= 1.25)
        if "ratio_import_only" in start:
            only = start["ratio_import_only"]
            add(
                "start / import-only floor (no interpreter exit)",
                f"{only:.2f}x",
                f"floor {start['floor_import_only_median_s']:.2f} s"
                + (
                    f", CPU {start['ratio_import_only_cpu']:.2f}x" if "ratio_import_only_cpu" in start else ""
                ),
                "<= 1.25x",
                "",
                only <= 1.25,
            )

    http = phases.get("http", {})
    if "error" in http:
        failed("HTTP", http)
    elif http:

        def cpu(figures: dict[str, Any]) -> str:
            value = figures.get("server_cpu_ms_per_call")
            return "" if value is None else f" (server CPU {value:.2f})"

        h, s, r = http["health"], http["step"], http["reset"]
        add("HTTP GET /health, httpx", f"{h['p50_ms']:.2f} ms", f"{h['p95_ms']:.2f} ms{cpu(h)}")
        add(
            "HTTP POST /step (list_dates), httpx",
            f"{s['p50_ms']:.2f} ms",
            f"{s['p95_ms']:.2f} ms{cpu(s)}",
            "<= 2 ms",
            "8.0 ms",
            s["p50_ms"] <= 2.0,
        )
        rh, rs = http["raw_health"], http["raw_step"]
        add("HTTP GET /health, raw socket", f"{rh['p50_ms']:.2f} ms", f"{rh['p95_ms']:.2f} ms{cpu(rh)}")
        add(
            "HTTP POST /step (list_dates), raw socket",
            f"{rs['p50_ms']:.2f} ms",
            f"{rs['p95_ms']:.2f} ms{cpu(rs)}",
            "<= 2 ms",
            "8.0 ms",
            rs["p50_ms"] <= 2.0,
        )
        add(
            "HTTP POST /reset (hard_mixed_multi), httpx",
            f"{r['p50_ms']:.2f} ms",
            f"{r['p95_ms']:.2f} ms{cpu(r)}",
        )
        if http["errors"]:
            add("HTTP non-200 responses", str(http["errors"]), met=False)

    ws = phases.get("ws_sequential", {})
    if "error" in ws:
        failed("WebSocket episodes", ws)
    elif ws:
        step = ws["analysis_step"]
        add(
            "WS connect (typed client)",
            f"{ws['connect']['p50_ms']:.2f} ms",
            f"{ws['connect']['p95_ms']:.2f} ms",
        )
        add("WS reset", f"{ws['reset']['p50_ms']:.2f} ms", f"{ws['reset']['p95_ms']:.2f} ms")
        server_cpu = ws.get("server_cpu_ms_per_message")
        add(
            "WS analysis step",
            f"{step['p50_ms']:.2f} ms",
            f"{step['p95_ms']:.2f} ms"
            + ("" if server_cpu is None else f" (server CPU/msg {server_cpu:.2f})"),
            earlier="0.74 ms",
        )
        add("WS submission", f"{ws['submission']['p50_ms']:.2f} ms", f"{ws['submission']['p95_ms']:.2f} ms")
        add(
            f"WS episode (reset+10+1), n={ws['episode']['n']}",
            f"{ws['episode']['p50_ms']:.1f} ms", f"{ws['episode']['p95_ms']:.1f} ms",
        )  # fmt: skip
        if ws["errors"]:
            add("WS episode errors", str(ws["errors"]), met=False)

    for run in phases.get("concurrency", []):
        n = run["sessions"]
        if "error" in run:
            failed(f"{n} sessions", run)
            continue
        errors = run["errors"]
        is_target = n >= 256
        add(
            f"{n} sessions x {run['episodes_per_session']} episodes: errors",
            f"{errors} ({run['episodes_ok']}/{run['episodes_attempted']} episodes ok)",
            target="0 errors" if is_target else "",
            earlier="1 session max" if is_target else "",
            met=(errors == 0) if is_target else None,
        )
        add(
            f"{n} sessions: throughput",
            f"{run['episodes_per_s']:.1f} ep/s, {run['steps_per_s']:.0f} steps/s",
            f"wall {run['wall_s']:.2f} s"
            + (
                ""
                if run["server_cpu_ms_per_step"] is None
                else f", server CPU/msg {run['server_cpu_ms_per_step']:.2f} ms"
            ),
        )
        step = run["analysis_step"]
        if step.get("n"):
            add(
                f"{n} sessions: step latency under load",
                f"{step['p50_ms']:.1f} ms", f"{step['p95_ms']:.1f} ms",
            )  # fmt: skip

    rss = phases.get("rss", {})
    if rss.get("peak_mb") is not None:
        add("server RSS idle -> peak (VmHWM)", f"{rss['idle_mb']:.0f} -> {rss['peak_mb']:.0f} MB")

    sizes = phases.get("sizes", {})
    if "error" in sizes:
        failed("sizes", sizes)
    elif sizes:
        b = sizes["typical_step_bytes"]
        add(f"WS step size ({TYPICAL_STEP})", f"{b} B", target="<= 2 kB", earlier="7.2-7.6 kB", met=b <= 2000)
        add("WS analysis step size, median of 10", f"{sizes['analysis_step_bytes_median']:.0f} B")
        add("WS reset size", f"{sizes['reset_bytes']} B")
    if http and "error" not in http:
        b = http["typical_step_bytes"]
        add(
            f"HTTP step size ({TYPICAL_STEP}, {http['typical_step_status']})",
            f"{b} B", target="<= 2 kB", earlier="7.2-7.6 kB", met=b <= 2000,
        )  # fmt: skip
        add("HTTP reset size", f"{http['reset_bytes']} B")
    return rows


def print_report(report: dict[str, Any], console: Console) -> None:
    info = report["machine"]
    console.print(
        f"[bold]metric_tracker_rl server benchmark[/] - {report['mode']} run, task {report['task_id']}, "
        f"uvicorn on {HOST}\n"
        f"{info['platform']} | Python {info['python']} | openenv {info['openenv']} | "
        f"uvicorn {info['uvicorn']} | "
        f"{info['cpu_count']} CPUs | load {info['load_average_at_start']} -> {report['load_average_at_end']}"
    )
    table = Table(show_lines=False)
    for column, justify in (
        ("measure", "left"),
        ("figure (p50)", "right"),
        ("p95 / note", "right"),
        ("target", "right"),
        ("earlier", "right"),
        ("target?", "center"),
    ):
        table.add_column(column, justify=justify, no_wrap=column == "measure")
    for row in report["rows"]:
        met = row["met"]
        verdict = "" if met is None else ("[green]pass[/]" if met else "[red]miss[/]")
        table.add_row(row["name"], row["figure"], row["p95"], row["target"], row["earlier"], verdict)
    console.print(table)
    for note in report["notes"]:
        console.print(f"- {note}")


def notes_for(report: dict[str, Any]) -> list[str]:
    phases = report["phases"]
    notes = []
    http = phases.get("http", {})
    if http.get("step_status") == "error":
        notes.append(
            "HTTP /step is stateless (a fresh environment per request, no episode), so it answers "
            f"status=error ({http.get('step_message', '')[:60]}...): it times the HTTP path, not an analysis."
        )
    if "raw_step" in http and "step" in http:
        gap = http["step"]["p50_ms"] - http["raw_step"]["p50_ms"]
        notes.append(
            f"httpx itself adds about {gap:.2f} ms to a /step request here (httpx p50 minus raw-socket p50)."
        )
    start = phases.get("start", {})
    if "label" in start:
        notes.append(f"start-to-healthy: {start['label']}.")
    log = phases.get("server_log", {})
    if log.get("error_lines"):
        notes.append(f"server log has {log['error_lines']} ERROR/Traceback lines, e.g. {log['examples'][:2]}")
    failed = [name for name, phase in phases.items() if isinstance(phase, dict) and "error" in phase]
    failed += [f"{r['sessions']} sessions" for r in phases.get("concurrency", []) if "error" in r]
    if failed:
        notes.append(f"phases that failed (see JSON): {', '.join(failed)}")
    return notes


# --- main ---------------------------------------------------------------------------------


def guarded(phases: dict[str, Any], name: str, run: Callable[[], Any]) -> Any:
    """Run one phase; a failure is recorded, never raised."""
    try:
        result = run()
    except Exception:  # noqa: BLE001
        result = {"error": traceback.format_exc(limit=3)}
        print(f"bench: phase {name} failed:\n{result['error']}", file=sys.stderr)
    phases[name] = result
    return result


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(config: dict[str, Any], work: Path, app: str, skip_start: bool) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    log_path = work / "server.log"
    info = bytecode_info()
    phases["bytecode"] = info

    # Bytecode cached in a private prefix: what a server with compiled .pyc files sees.
    cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if not skip_start:
        progress(f"start-to-healthy, {config['start_repeats']} runs (bytecode cached)")
        guarded(
            phases,
            "start",
            lambda: start_phase(
                "bytecode cached in a private PYTHONPYCACHEPREFIX, after one untimed run of each",
                cached_env, config["start_repeats"], True, log_path, app, True,
            ),
        )  # fmt: skip
    if not skip_start and config["start_repeats_as_is"] and not env_has_bytecode_cache(info):
        progress(
            f"start-to-healthy, {config['start_repeats_as_is']} runs (environment as is: no bytecode cache)"
        )
        guarded(
            phases,
            "start_as_is",
            lambda: start_phase(
                "environment as is: PYTHONDONTWRITEBYTECODE set and no __pycache__, so every start compiles",
                dict(os.environ), config["start_repeats_as_is"], False, log_path, app, False,
            ),
        )  # fmt: skip

    progress("starting the benchmark server")
    server = Server(cached_env, log_path, app)
    try:
        server.start()
        pid = server.pid
        time.sleep(0.5)
        idle_kb = proc_status(pid).get("VmRSS", 0)
        with RssSampler(pid) as sampler:
            progress("response sizes")
            sizes = guarded(phases, "sizes", lambda: asyncio.run(size_phase(server.base_url)))
            date = sizes.get("date")
            if date is None:  # the sizes phase failed; the other phases still need a date
                date = asyncio.run(size_phase(server.base_url))["date"]
            rate_args = {"date": date, "entity_name": "app_open_to_menu_open"}
            progress(f"HTTP, {config['http_requests']} requests per endpoint")
            guarded(
                phases,
                "http",
                lambda: http_phase(
                    server.base_url,
                    server.port,
                    pid,
                    config["http_requests"],
                    config["http_resets"],
                    rate_args,
                ),
            )
            progress(f"WebSocket, {config['ws_episodes']} sequential episodes")
            guarded(
                phases,
                "ws_sequential",
                lambda: asyncio.run(ws_sequential_phase(server.base_url, pid, config["ws_episodes"], date)),
            )
            phases["concurrency"] = []
            for sessions in config["sessions"]:
                progress(f"{sessions} concurrent sessions x {config['episodes_per_session']} episodes")
                time.sleep(SETTLE_S)
                holder: dict[str, Any] = {}
                result = guarded(
                    holder,
                    "run",
                    lambda n=sessions: asyncio.run(
                        concurrency_phase(server.base_url, pid, n, config["episodes_per_session"], date)
                    ),
                )
                result.setdefault("sessions", sessions)
                phases["concurrency"].append(result)
            with contextlib.suppress(httpx.HTTPError):
                phases["healthy_after"] = (
                    httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
                )
        status = proc_status(pid)
        phases["rss"] = {
            "idle_mb": round(idle_kb / 1024, 1),
            "peak_mb": round(status["VmHWM"] / 1024, 1) if "VmHWM" in status else None,
            "sampled_peak_mb": round(sampler.max_kb / 1024, 1),
            "end_mb": round(status["VmRSS"] / 1024, 1) if "VmRSS" in status else None,
        }
    except Exception:  # noqa: BLE001
        phases["server"] = {"error": traceback.format_exc(limit=3)}
        print(f"bench: server run failed:\n{phases['server']['error']}", file=sys.stderr)
    finally:
        server.stop()

    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    bad = [line for line in lines if "ERROR" in line or "Traceback" in line]
    phases["server_log"] = {"lines": len(lines), "error_lines": len(bad), "examples": bad[:5]}
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output file (default {DEFAULT_JSON})"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, for smoke testing")
    parser.add_argument(
        "--app", default=DEFAULT_APP, help=f"uvicorn app to serve, for A/B runs (default {DEFAULT_APP})"
    )
    parser.add_argument("--skip-start", action="store_true", help="leave out the start-to-healthy runs")
    options = parser.parse_args(argv)
    config = QUICK if options.quick else FULL

    report: dict[str, Any] = {
        "benchmark": "serve",
        "mode": "quick" if options.quick else "full",
        "task_id": TASK_ID,
        "app": options.app,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(
            (
                "openenv",
                "metric-tracker-rl",
                "fastapi",
                "uvicorn",
                "starlette",
                "websockets",
                "httpx",
                "pydantic",
                "numpy",
            )
        ),
    }
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    started = time.perf_counter()
    try:
        report["phases"] = run(config, work, options.app, options.skip_start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["duration_s"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["rows"] = build_rows(report)
    report["notes"] = notes_for(report)

    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=140)
    print_report(report, console)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    print(f"wrote {options.json} ({report['duration_s']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
