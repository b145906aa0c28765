"""Scaling out: sessions held and episodes per second, through nginx and across workers.

    uv run --group dev python bench/scale.py [--sessions 1024] [--episodes 512] [--json PATH]

Against real processes on loopback (the tests' launchers, ``tests/servers.py``):

- nginx (``deploy/nginx.conf``) in front of 1, 2 and 4 replicas (``metric-tracker serve``,
  one records file), and one server with ``--workers 1``, ``2`` and ``4``; for each:
  ``--sessions`` WebSocket sessions opened at once, each with an episode (reset), all held
  open, then one step each: how many it held and the errors; then ``--episodes`` reference-
  solver episodes with ``--concurrency`` at a time, played as ``metric-tracker eval --url``
  plays them, by ``--clients`` processes (one Python process is itself a limit): episodes
  per second, and the CPU time the servers (and nginx) spent per episode, which says what a
  core serves when the client runs elsewhere;
- one worker alone: memory per idle session (connected, no episode) and per session holding
  a hard episode, from the worker's resident memory before and after ``--probe`` sessions,
  and whether it holds them all.

The client runs on the same machine and takes its share of the cores, which the table names.
Prints a table and writes JSON (default ``bench/results/scale.json``, not versioned).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine  # bench/machine.py (the script's folder is on sys.path)
from rich.console import Console
from rich.table import Table
from serve import proc_cpu_s, proc_status  # bench/serve.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from servers import Nginx, Served  # noqa: E402  (the tests' launchers)

from metric_tracker_rl.client import MetricTrackerRlEnv  # noqa: E402
from metric_tracker_rl.evaluation import run_evaluation  # noqa: E402
from metric_tracker_rl.integrations.dataset import train_configs  # noqa: E402
from metric_tracker_rl.models import MetricTrackerRlAction  # noqa: E402
from metric_tracker_rl.serving import raise_open_files_limit  # noqa: E402
from metric_tracker_rl.tasks import CELLS  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "scale.json"
OPEN_AT_ONCE = 128  # sessions connecting at the same moment (a trainer's burst, bounded)


def group_cpu_s(groups: list[int]) -> float:
    """CPU seconds (user + system) used so far by every process of these process groups (a
    server, its workers, nginx and its workers)."""
    seconds = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        try:
            in_groups = os.getpgid(pid) in groups
        except OSError:
            continue  # the process ended meanwhile
        if in_groups:
            seconds += proc_cpu_s(pid) or 0.0
    return seconds


async def hold_sessions(url: str, count: int, episode: bool = True) -> dict[str, Any]:
    """Open ``count`` sessions (an episode each, if asked), hold them all, step each once."""
    clients = [MetricTrackerRlEnv(base_url=url, message_timeout_s=120) for _ in range(count)]
    errors: list[str] = []

    async def start(i: int, client: MetricTrackerRlEnv) -> bool:
        try:
            await client.connect()
            if episode:
                await client.reset(seed=i, difficulty=("easy", "medium", "hard")[i % 3])
            return True
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}"[:200])
            return False

    started = time.perf_counter()
    opened: list[bool] = []
    for first in range(0, count, OPEN_AT_ONCE):
        batch = clients[first : first + OPEN_AT_ONCE]
        opened += await asyncio.gather(*(start(first + i, c) for i, c in enumerate(batch)))
    open_s = time.perf_counter() - started
    held = [c for c, ok in zip(clients, opened, strict=True) if ok]

    async def step(client: MetricTrackerRlEnv) -> None:
        try:
            answer = await client.step(MetricTrackerRlAction(analysis_method="list_dates"))
            if answer.observation.status != "analysis":
                errors.append(f"step answered {answer.observation.status}")
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}"[:200])

    if episode:
        await asyncio.gather(*(step(c) for c in held))
    result = {"asked": count, "held": len(held), "errors": len(errors), "open_s": round(open_s, 2)}
    result["first_error"] = errors[0] if errors else None
    result["clients"] = clients
    return result


async def close_all(clients: list[MetricTrackerRlEnv]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def _play(url: str, configs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """One client process: the solver over ``configs``, as ``metric-tracker eval --url`` plays."""
    report = run_evaluation("solver", configs, url=url, workers=concurrency)
    return {"failed": report["failed_episodes"], "scores": [e["score"] for e in report["episodes"]]}


def sessions_and_episodes(url: str, args: argparse.Namespace, groups: list[int]) -> dict[str, Any]:
    async def sessions_phase() -> dict[str, Any]:
        held = await hold_sessions(url, args.sessions)
        await close_all(held.pop("clients"))
        return held

    figures = asyncio.run(sessions_phase())
    time.sleep(1.0)  # the servers close the sessions
    configs = train_configs(-(-args.episodes // len(CELLS)))[: args.episodes]  # per cell, rounded up
    shares = [configs[k :: args.clients] for k in range(args.clients)]
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        pool.starmap(_play, [(url, share[:1], 1) for share in shares])  # each client's imports, first
        started, cpu_before = time.perf_counter(), group_cpu_s(groups)
        played = pool.starmap(_play, [(url, share, args.concurrency // args.clients) for share in shares])
        wall, server_cpu = time.perf_counter() - started, group_cpu_s(groups) - cpu_before
    scores = [s for part in played for s in part["scores"] if s is not None]
    figures.update(
        episodes=args.episodes,
        episodes_failed=sum(part["failed"] for part in played),
        episodes_per_s=round(args.episodes / wall, 1),
        server_cpu_ms_per_episode=round(1000 * server_cpu / args.episodes, 1),
        mean_score=round(sum(scores) / max(len(scores), 1), 6),
    )
    return figures


def behind_nginx(replicas: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    records = folder / f"records-{replicas}.sqlite"
    servers = [
        Served(folder / f"nginx{replicas}-replica{i}.log", "--no-web", "--records", str(records))
        for i in range(replicas)
    ]
    nginx = None
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait()
        nginx = Nginx([s.port for s in servers], folder)
        return sessions_and_episodes(nginx.url, args, [nginx.process.pid, *(s.process.pid for s in servers)])
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()


def with_workers(workers: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Served(folder / f"workers{workers}.log", "--workers", str(workers), "--no-web").launch()
    try:
        server.wait()
        return sessions_and_episodes(server.url, args, [server.process.pid])
    finally:
        server.stop()


def memory_per_session(folder: Path, probe: int) -> dict[str, Any]:
    """One worker, ``--max-sessions`` above the probe: resident memory per session held."""
    server = Served(folder / "memory.log", "--no-web", "--max-sessions", str(4 * probe)).launch()
    try:
        server.wait()
        assert server.process is not None
        pid = server.process.pid
        figures: dict[str, Any] = {}

        async def measure() -> None:
            warm = await hold_sessions(server.url, 8)  # the first episodes load what every one needs
            await close_all(warm.pop("clients"))
            await asyncio.sleep(1.0)
            for name, episode in (("idle", False), ("with_episode", True)):
                before = proc_status(pid)["VmRSS"]
                held = await hold_sessions(server.url, probe, episode=episode)
                await asyncio.sleep(1.0)
                after = proc_status(pid)["VmRSS"]
                clients = held.pop("clients")
                figures[name] = held | {
                    "rss_before_mb": round(before / 1024, 1),
                    "rss_after_mb": round(after / 1024, 1),
                    "kb_per_session": round((after - before) / max(held["held"], 1), 1),
                }
                await close_all(clients)
                await asyncio.sleep(2.0)

        asyncio.run(measure())
        return figures
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1024, help="sessions opened at once per setup")
    parser.add_argument("--episodes", type=int, default=512, help="solver episodes per setup")
    parser.add_argument("--concurrency", type=int, default=64, help="episodes in play at once")
    parser.add_argument("--clients", type=int, default=2, help="client processes sharing them")
    parser.add_argument("--probe", type=int, default=2048, help="sessions on one worker, for memory")
    parser.add_argument("--counts", default="1,2,4", help="replicas behind nginx, and workers, to measure")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    raise_open_files_limit()  # the client holds as many sockets as the servers
    counts = [int(n) for n in args.counts.split(",")]
    console = Console(width=150)
    console.print(f"cores: {os.cpu_count()} (the client shares them with the servers and nginx)")
    setups: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="metric-tracker-scale-") as tmp:
        folder = Path(tmp)
        for n in counts:
            console.print(f"nginx + {n} replica(s) ...")
            name = f"nginx + {n} replica{'s' if n > 1 else ''}"
            setups.append({"setup": name, **behind_nginx(n, folder, args)})
        for n in counts:
            console.print(f"serve --workers {n} ...")
            setups.append({"setup": f"serve --workers {n}", **with_workers(n, folder, args)})
        console.print(f"one worker, {args.probe} sessions ...")
        memory = memory_per_session(folder, args.probe)

    table = Table(title=f"Scaling out ({os.cpu_count()} cores)")
    columns = ("setup", "sessions held", "errors", "open s", "episodes/s", "server CPU ms/episode", "failed")
    for column in (*columns, "mean score"):
        table.add_column(column, justify="left" if column == "setup" else "right")
    for s in setups:
        table.add_row(
            s["setup"],
            f"{s['held']} / {s['asked']}",
            str(s["errors"]),
            f"{s['open_s']:.1f}",
            f"{s['episodes_per_s']:.1f}",
            f"{s['server_cpu_ms_per_episode']:.1f}",
            str(s["episodes_failed"]),
            f"{s['mean_score']:.3f}",
        )
    console.print(table)
    for name in ("idle", "with_episode"):
        m = memory[name]
        console.print(
            f"one worker, {m['asked']} sessions {name.replace('_', ' ')}: held {m['held']}, "
            f"errors {m['errors']}, {m['kb_per_session']:.0f} KB per session "
            f"(resident {m['rss_before_mb']} -> {m['rss_after_mb']} MB)"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "setups": setups,
        "memory_per_session": memory,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
