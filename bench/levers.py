"""What each lever of "hard means hard" does: the literal playbook against the reference
solver on medium and hard, with every lever on, with one lever off at a time, and with all
off (the benchmark before them). The gap (solver minus playbook) is what a benchmark
measures; a lever's share of it is how much the gap shrinks without it. "flat" is the share of
configs on which 8 rollouts of the stochastic playbook all score the same (a GRPO group that
teaches nothing).

Levers (each models a situation analysts meet; see docs/task.md, "What makes hard hard"):

- ``multi_row``: incidents show in several statistics (``MULTI_ROW_SHARE``);
- ``shared_days``: two incidents on one date (``SHARED_DAY_SHARE``);
- ``hidden_count``: the row count not shown on hard, one graded submission there;
- ``budgets``: budgets near a careful investigator's need (off: twice as much);
- ``ranking``: more and stronger decoys, a ranking whose scores saturate and that lists five
  signals a date (off: the earlier decoys, full scores, three signals);
- ``mix_days``: on medium and hard, in a scenario of mix shifts alone, a volatile day/night mix
  (a decoy of it on every day but the quiet ones) and no date-level budget allowance
  (``SAME_STATISTIC_DECOYS``; off: the usual decoys, the allowance).

    uv run python bench/levers.py                 # writes bench/results/levers.json
    uv run python bench/levers.py --per-cell 1 --json /tmp/levers.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl import episode, generator
from metric_tracker_rl.agents import AGENTS
from metric_tracker_rl.analysis import methods
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.families import SCENARIO_FAMILIES

SEED_BASE = 960_000
DIFFICULTIES = ("medium", "hard")
AGENT_NAMES = ("playbook", "solver")
ROLLOUTS = 8  # of the stochastic playbook, for the share of configs whose rollouts all score the same


def _budgets_doubled() -> dict[str, Any]:
    return {
        name: {d: 2 * v for d, v in getattr(C, name).items()}
        for name in ("STEP_BUDGET_BASE", "STEP_BUDGET_PER_INCIDENT", "STEP_BUDGET_DATE_LEVEL")
    }


# lever -> the module attributes that switch it off: (module, name) -> value
LEVERS: dict[str, Callable[[], dict[tuple[Any, str], Any]]] = {
    "multi_row": lambda: {(C, "MULTI_ROW_SHARE"): dict.fromkeys(C.DIFFICULTIES, 0.0)},
    "shared_days": lambda: {(C, "SHARED_DAY_SHARE"): dict.fromkeys(C.DIFFICULTIES, 0.0)},
    "hidden_count": lambda: {
        (C, "HIDDEN_ROW_COUNT"): (),
        (C, "MAX_SUBMISSIONS"): dict.fromkeys(C.DIFFICULTIES, 3),
    },
    "budgets": lambda: {(C, name): value for name, value in _budgets_doubled().items()},
    "ranking": lambda: {
        (C, "DECOYS"): {"easy": 1, "medium": 3, "hard": 6},
        (C, "DECOY_MIN_Z"): {"easy": 0.5, "medium": 0.7, "hard": 0.8},
        (C, "DISCOVERY_SCORE_CEILING"): dict.fromkeys(C.DIFFICULTIES, C.MAX_DISCOVERY_SCORE),
        (methods, "SIGNALS_PER_DATE"): 3,
    },
    "mix_days": lambda: {(C, "SAME_STATISTIC_DECOYS"): ()},
}


@contextlib.contextmanager
def switched_off(names: tuple[str, ...]) -> Iterator[None]:
    """The levers ``names`` off for the duration (episodes generated afresh)."""
    changes = {key: value for name in names for key, value in LEVERS[name]().items()}
    saved = {key: getattr(*key) for key in changes}
    try:
        for (module, attribute), value in changes.items():
            setattr(module, attribute, value)
        _forget_episodes()
        yield
    finally:
        for (module, attribute), value in saved.items():
            setattr(module, attribute, value)
        _forget_episodes()


def _forget_episodes() -> None:
    episode._build_cached.cache_clear()
    generator._limits.cache_clear()
    generator._tuning.cache_clear()


def configs(per_cell: int) -> list[dict[str, Any]]:
    return [
        {"seed": SEED_BASE + 100 * i + k, "scenario_family": f, "difficulty": d, "anomaly_density": density}
        for i, (f, d, density) in enumerate(
            (f, d, density)
            for f in SCENARIO_FAMILIES
            for d in DIFFICULTIES
            for density in C.ANOMALY_DENSITY_COUNTS
        )
        for k in range(per_cell)
    ]


def measure(chosen: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean score of each agent per difficulty, and the stochastic playbook's share of configs
    without reward variance over its rollouts."""
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in (*AGENT_NAMES, "flat")}
    for config in chosen:
        for name in AGENT_NAMES:
            final = AGENTS[name]().play(MetricTrackerRlEnvironment(), dict(config))
            scores[name].setdefault(config["difficulty"], []).append(float(final.reward or 0.0))
        group = {
            AGENTS["playbook_stochastic"](seed=k).play(MetricTrackerRlEnvironment(), dict(config)).reward
            for k in range(ROLLOUTS)
        }
        scores["flat"].setdefault(config["difficulty"], []).append(float(len(group) == 1))
    return {name: {d: round(statistics.fmean(v), 4) for d, v in by.items()} for name, by in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-cell", type=int, default=2, help="configs per family x difficulty x density")
    parser.add_argument("--json", default="bench/results/levers.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    chosen = configs(args.per_cell)
    rows: dict[str, dict[str, dict[str, float]]] = {"all levers": measure(chosen)}
    for name in LEVERS:
        with switched_off((name,)):
            rows[f"without {name}"] = measure(chosen)
    with switched_off(tuple(LEVERS)):
        rows["no lever (before)"] = measure(chosen)
    head = " | ".join(f"playbook {d} | solver {d} | gap {d} | flat {d}" for d in DIFFICULTIES)
    lines = [f"| levers | {head} |", "|---|" + "---|" * 4 * len(DIFFICULTIES)]
    for label, result in rows.items():
        cells = []
        for d in DIFFICULTIES:
            playbook, solver = result["playbook"][d], result["solver"][d]
            cells += [
                f"{playbook:.3f}",
                f"{solver:.3f}",
                f"{solver - playbook:.3f}",
                f"{result['flat'][d]:.2f}",
            ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    print(f"{len(chosen)} training configs ({args.per_cell} per family x difficulty x density)\n")
    print("\n".join(lines))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"configs": len(chosen), "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {out} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
