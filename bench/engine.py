"""Engine latency: reset, every analysis method, and reset + submission, in process;
cold resets per difficulty x density; the solver's in-process evaluation throughput.

    uv run python bench/engine.py [--repeat N] [--grid N] [--episodes N] [--json PATH]

Prints tables (median and p95 milliseconds) and writes JSON. Targets are printed next
to the figures with a pass/miss column; a miss never fails the run.

"cold" resets use a fresh seed every time, so the episode is generated; "warm" resets
repeat one named task, whose episode is cached by config.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine import machine  # bench/machine.py (the script's folder is on sys.path)
from rich.console import Console
from rich.table import Table

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.evaluation import run_evaluation
from metric_tracker_rl.generator import generate
from metric_tracker_rl.models import MetricTrackerRlAction
from metric_tracker_rl.tasks import NAMED_TASKS, config_for

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "engine.json"
TASK_ID = "hard_mixed_multi"
COLD_SEED_BASE = 700_000_000  # training range, far from the named tasks' seeds
GRID_SEED_BASE = 710_000_000  # the difficulty x density grid: its own seeds
THROUGHPUT_SEED_BASE = 720_000_000
GRID_PASSES = 5  # the grid is timed in passes over every cell (``grid``)
WARMUP = 5
SUBMISSION = [{"method_name": "get_median_filter_rows", "threshold_multiplier": 2.0}]

# name -> (target ms, the earlier system's figure in ms), from the performance issue.
TARGETS: dict[str, tuple[float, float]] = {
    "reset (cold)": (0.5, 6.3),
    "reset (warm)": (0.5, 6.3),
    "step list_suspicious_dates": (0.5, 9.4),
    "reset + submission (cold)": (1.0, 7.5),
    "reset + submission (warm)": (1.0, 7.5),
}


def measure(operation: Callable[[], Any], repeat: int) -> list[int]:
    """Nanoseconds per call, after a short warm-up; the collector is paused while timing."""
    for _ in range(WARMUP):
        operation()
    gc.collect()
    gc.disable()
    try:
        samples = []
        for _ in range(repeat):
            start = time.perf_counter_ns()
            operation()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return samples


def summarise(name: str, samples: list[int]) -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    target, earlier = TARGETS.get(name, (None, None))
    median_ms = statistics.median(ordered) / 1e6
    return {
        "name": name,
        "n": len(ordered),
        "median_ms": round(median_ms, 4),
        "p95_ms": round(p95 / 1e6, 4),
        "min_ms": round(ordered[0] / 1e6, 4),
        "target_ms": target,
        "earlier_ms": earlier,
        "meets_target": None if target is None else median_ms <= target,
    }


def method_arguments(env: MetricTrackerRlEnvironment) -> dict[str, dict[str, Any]]:
    """Valid arguments for every registered method, taken from the current episode."""
    overview = env.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates"))
    date = overview.analysis_result["result"]["dates"][0]["date"]
    generated = env.step(
        MetricTrackerRlAction(
            analysis_method="get_median_filter_rows", analysis_args={"threshold_multiplier": 2.0}
        )
    )
    rows = generated.analysis_result["result"]["rows"]
    by_argument = {
        "date": date,
        "limit": 5,
        "metric_name": "app_open_to_menu_open",
        "rows": rows,
        "generator_methods": SUBMISSION,
    }
    entity_by_method = {
        "compare_rate_to_median": "app_open_to_menu_open",
        "compare_count_to_median": "app_opens",
    }
    arguments: dict[str, dict[str, Any]] = {}
    for name, spec in REGISTRY.items():
        schema = spec.arguments_schema()
        args = {key: by_argument[key] for key in schema["required"] if key in by_argument}
        if "entity_name" in schema["required"]:
            if name not in entity_by_method:
                raise SystemExit(f"bench: add an entity_name for new method {name!r}")
            args["entity_name"] = entity_by_method[name]
        missing = sorted(set(schema["required"]) - set(args))
        if missing:
            raise SystemExit(f"bench: no value for required arguments {missing} of {name!r}")
        if "limit" in schema["properties"]:
            args.setdefault("limit", 5)
        arguments[name] = args
    return arguments


def run(repeat: int) -> list[dict[str, Any]]:
    env = MetricTrackerRlEnvironment(debug=False, max_steps=10**9, max_submissions=10**9)
    results: list[dict[str, Any]] = []
    cold_seeds = iter(range(COLD_SEED_BASE, COLD_SEED_BASE + 10 * (repeat + WARMUP)))

    results.append(
        summarise("reset (cold)", measure(lambda: env.reset(task_id=TASK_ID, seed=next(cold_seeds)), repeat))
    )
    results.append(summarise("reset (warm)", measure(lambda: env.reset(task_id=TASK_ID), repeat)))

    env.reset(task_id=TASK_ID)
    for name, args in method_arguments(env).items():
        action = MetricTrackerRlAction(analysis_method=name, analysis_args=args)
        check = env.step(action)
        if check.status != "analysis":
            raise SystemExit(f"bench: {name}({args}) did not run: {check.message}")
        results.append(summarise(f"step {name}", measure(lambda a=action: env.step(a), repeat)))

    submission = MetricTrackerRlAction(payload_generators=SUBMISSION)

    def reset_and_submit(**reset_args: Any) -> None:
        env.reset(**reset_args)
        observation = env.step(submission)
        if observation.status != "graded":
            raise SystemExit(f"bench: submission was not graded: {observation.message}")

    results.append(
        summarise(
            "reset + submission (cold)",
            measure(lambda: reset_and_submit(task_id=TASK_ID, seed=next(cold_seeds)), repeat),
        )
    )
    results.append(
        summarise("reset + submission (warm)", measure(lambda: reset_and_submit(task_id=TASK_ID), repeat))
    )
    return results


def grid(per_cell: int) -> list[dict[str, Any]]:
    """Cold reset and cold reset + submission per difficulty x density (mixed family, a
    fresh seed per call), with the share of episodes whose first draw did not verify.

    Each cell's calls are spread over ``GRID_PASSES`` passes through the whole grid: a
    shared machine's speed moves over seconds, and a cell timed in one stretch would meet
    such a spell alone."""
    env = MetricTrackerRlEnvironment(debug=False, max_steps=10**9, max_submissions=10**9)
    submission = MetricTrackerRlAction(payload_generators=SUBMISSION)
    seeds = iter(range(GRID_SEED_BASE, GRID_SEED_BASE + 10**7))
    cells = [
        {"scenario_family": "mixed", "difficulty": difficulty, "anomaly_density": density}
        for difficulty in C.DIFFICULTIES
        for density in C.ANOMALY_DENSITY_COUNTS
    ]
    resets: list[list[int]] = [[] for _ in cells]
    submitted: list[list[int]] = [[] for _ in cells]
    passes = min(GRID_PASSES, per_cell)
    for done in range(passes):
        calls = per_cell * (done + 1) // passes - per_cell * done // passes
        for i, args in enumerate(cells):

            def reset(a: dict[str, Any] = args) -> None:
                env.reset(seed=next(seeds), **a)

            def reset_and_submit(a: dict[str, Any] = args) -> None:
                env.reset(seed=next(seeds), **a)
                env.step(submission)

            resets[i] += measure(reset, calls)
            submitted[i] += measure(reset_and_submit, calls)
    report = []
    for args, reset_samples, submission_samples in zip(cells, resets, submitted, strict=True):
        redraw_seeds = range(GRID_SEED_BASE - 10**6, GRID_SEED_BASE - 10**6 + per_cell)
        redraws = sum(generate(config_for(None, seed=seed, **args)).attempt > 0 for seed in redraw_seeds)
        report.append(
            {
                "difficulty": args["difficulty"],
                "anomaly_density": args["anomaly_density"],
                "reset": summarise("reset (cold)", reset_samples),
                "reset_submission": summarise("reset + submission (cold)", submission_samples),
                "redraw_share": round(redraws / per_cell, 4),
            }
        )
    return report


def throughput(episodes: int) -> dict[str, Any]:
    """The reference solver over fresh configs in process, one worker (what
    ``metric-tracker eval --agent solver --workers 1`` does), in episodes per second."""
    densities = list(C.ANOMALY_DENSITY_COUNTS)
    configs = [
        {
            "seed": THROUGHPUT_SEED_BASE + i,
            "difficulty": C.DIFFICULTIES[i % 3],
            "anomaly_density": densities[(i // 3) % 3],
        }
        for i in range(episodes)
    ]
    start = time.perf_counter()
    report = run_evaluation("solver", configs, workers=1)
    seconds = time.perf_counter() - start
    return {
        "episodes": episodes,
        "seconds": round(seconds, 3),
        "episodes_per_second": round(episodes / seconds, 1),
        "mean_score": report["mean_score"],
    }


def print_report(report: dict[str, Any], console: Console) -> None:
    info = report["machine"]
    console.print(
        f"[bold]metric_tracker_rl engine benchmark[/] - task {report['task_id']}, "
        f"{report['repeat']} runs each\n"
        f"{info['platform']} | Python {info['python']} | numpy {info['numpy']} | "
        f"pydantic {info['pydantic']} | {info['cpu_count']} CPUs | "
        f"sum(range(10**6)) in {info['python_loop_ms']} ms (the machine's speed)"
    )
    table = Table(show_lines=False)
    table.add_column("operation", no_wrap=True)
    table.add_column("median ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("target ms", justify="right")
    table.add_column("earlier ms", justify="right")
    table.add_column("target?", justify="center")
    for row in report["results"]:
        met = row["meets_target"]
        verdict = "" if met is None else ("[green]pass[/]" if met else "[red]miss[/]")
        table.add_row(
            row["name"],
            f"{row['median_ms']:.3f}",
            f"{row['p95_ms']:.3f}",
            "" if row["target_ms"] is None else f"{row['target_ms']:g}",
            "" if row["earlier_ms"] is None else f"{row['earlier_ms']:g}",
            verdict,
        )
    console.print(table)
    cells = report.get("cold_grid") or []
    if cells:
        grid_table = Table(title="cold reset by difficulty x density (mixed family)")
        for name in (
            "difficulty",
            "density",
            "reset p50",
            "reset p95",
            "+ submission p50",
            "+ submission p95",
        ):
            grid_table.add_column(name, justify="left" if name in ("difficulty", "density") else "right")
        grid_table.add_column("re-drawn", justify="right")
        grid_table.add_column("target?", justify="center")
        for cell in cells:
            met = cell["reset"]["meets_target"] and cell["reset_submission"]["meets_target"]
            grid_table.add_row(
                cell["difficulty"],
                cell["anomaly_density"],
                f"{cell['reset']['median_ms']:.3f}",
                f"{cell['reset']['p95_ms']:.3f}",
                f"{cell['reset_submission']['median_ms']:.3f}",
                f"{cell['reset_submission']['p95_ms']:.3f}",
                f"{100 * cell['redraw_share']:.1f} %",
                "[green]pass[/]" if met else "[red]miss[/]",
            )
        console.print(grid_table)
    rate = report.get("throughput")
    if rate:
        console.print(
            f"solver, in process, 1 worker: {rate['episodes']} fresh episodes in {rate['seconds']:.2f} s = "
            f"[bold]{rate['episodes_per_second']:.1f} episodes/s[/] (mean score {rate['mean_score']:.4f})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100, help="timed calls per operation (default 100)")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output file (default {DEFAULT_JSON})"
    )
    parser.add_argument(
        "--grid",
        type=int,
        default=100,
        help="cold resets per difficulty x density cell (default 100; 0 skips)",
    )
    parser.add_argument(
        "--episodes", type=int, default=90, help="solver episodes for the throughput (default 90; 0 skips)"
    )
    options = parser.parse_args(argv)
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    if TASK_ID not in NAMED_TASKS:
        raise SystemExit(f"bench: unknown task {TASK_ID!r}")

    report = {
        "benchmark": "engine",
        "task_id": TASK_ID,
        "repeat": options.repeat,
        "warmup": WARMUP,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": run(options.repeat),
        "cold_grid": grid(options.grid) if options.grid > 0 else [],
        "throughput": throughput(options.episodes) if options.episodes > 0 else None,
    }
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=120)
    print_report(report, console)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {options.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
