"""The validity audit: shortcut recipes next to honest investigators, by difficulty.

Read this before changing data, methods, feedback or grading. It plays, in process and
with public methods only:

- the shortcuts that never call a row's detection method (``SHORTCUTS``, from
  ``metric_tracker_rl.agents.shortcuts``): the feedback oracle, per-field feedback probes,
  blind payload searches, generators calibrated into the public rule (one server-written
  payload, or a paid per-entity scan), dump-and-filter at the lowest accepted generator
  threshold (and at 3.0; and in the ranking's order, at the lowest threshold and at 2.0),
  daily views plus the public thresholds, guesses from the ranking. Only evidence earns
  credit, so each must stay at or below ``SHORTCUT_CEILING``;
- the exhaustive per-date scans (``BRUTE_FORCE``), which do call detection methods and are
  held back by the budget;
- the trivial agents and the scripted payload-generator baseline;
- the literal playbook: the briefing followed as a checklist (overview, ranking, each listed
  signal's detection method in rank order, on to the next date after a row), which must stay
  well below an investigator that reasons about how incidents show;
- a ladder of budget-limited investigators: the reference solver at 4, 8, 16, 32 units
  and at the default budget;
- stochastic policies, 8 rollouts per config (a random explorer, and the playbook taking dates
  from a softmax over the ranking): their means and the share of configs whose 8 rollouts all
  score the same (a GRPO group with no reward variance teaches nothing).

Config sets: ``train`` (150 training configs: 50 per difficulty, every scenario family
and density) and ``named_eval`` (the 3 named tasks and the 72 evaluation configs).

    uv run python bench/validity.py    # prints the tables, writes bench/results/validity.json
    uv run python bench/validity.py --sets train --json /tmp/validity.json
    uv run python bench/validity.py --sets train --curve docs/budget_curve.svg
    uv run python bench/validity.py --rule keys --sets train    # the grading before the rule

``--rule keys`` grades as before "only evidence earns credit": a row counts when its key is
an expected one, whatever the episode's calls were. It shows what each recipe would earn
without the rule.

``--curve`` also plays the solver at budgets from 4 to 64 units on the first set and draws
its mean score per difficulty against the budget, with the best shortcut as a dashed line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl.agents import AGENTS, SHORTCUT_CEILING, WITHOUT_EVIDENCE
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.evidence import Evidence
from metric_tracker_rl.families import SCENARIO_FAMILIES
from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS

TRAIN_SEED_BASE = 900_000
LADDER = (4, 8, 16, 32)
CURVE_BUDGETS = (4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64)
ROLLOUTS = 8

# name -> (agent factory, step budget or None for the default)
TRIVIAL = ("empty", "mass", "random", "scripted")
BRUTE_FORCE = ("date_scan", "detector_scan")  # call detection methods on every date, budget allowing
RECIPES: dict[str, tuple[Callable[[], Any], int | None]] = {
    **{name: (AGENTS[name], None) for name in TRIVIAL},
    # never call the detection method of a row they report
    **{name: (AGENTS[name], None) for name in WITHOUT_EVIDENCE if name not in TRIVIAL},
    "dump_and_filter@3": (lambda: AGENTS["dump_and_filter"](threshold=3.0), None),
    "dump_and_filter_ranked": (lambda: AGENTS["dump_and_filter"](ranked=True), None),
    "dump_and_filter_ranked@2": (lambda: AGENTS["dump_and_filter"](threshold=2.0, ranked=True), None),
    **{name: (AGENTS[name], None) for name in BRUTE_FORCE},
    "playbook": (AGENTS["playbook"], None),
    **{f"solver@{n}": (AGENTS["solver"], n) for n in LADDER},
    "solver": (AGENTS["solver"], None),
}
SHORTCUTS = tuple(
    name
    for name in RECIPES
    if name not in (*TRIVIAL, *BRUTE_FORCE, "playbook") and not name.startswith("solver")
)
STOCHASTIC = ("explorer", "playbook_stochastic")  # played ROLLOUTS times per config


def train_configs() -> list[dict[str, Any]]:
    """50 per difficulty: every scenario family and density, in turn."""
    configs = []
    for d, difficulty in enumerate(C.DIFFICULTIES):
        combos = itertools.cycle(itertools.product(SCENARIO_FAMILIES, C.ANOMALY_DENSITY_COUNTS))
        for i in range(50):
            family, density = next(combos)
            configs.append(
                {
                    "seed": TRAIN_SEED_BASE + 1000 * d + i,
                    "scenario_family": family,
                    "difficulty": difficulty,
                    "anomaly_density": density,
                }
            )
    return configs


def named_eval_configs() -> list[dict[str, Any]]:
    return [{"task_id": task_id} for task_id in NAMED_TASKS] + [dict(c) for c in EVAL_SPLIT]


CONFIG_SETS = {"train": train_configs, "named_eval": named_eval_configs}


class _KeyEvidence(Evidence):
    """The grading before "only evidence earns credit": a row counts when its key is expected."""

    __slots__ = ("keys",)

    def __init__(self, keys: frozenset[str]) -> None:
        super().__init__()
        self.keys = keys

    def supports(self, row: Any) -> bool:
        return row.key in self.keys


class KeysRuleEnvironment(MetricTrackerRlEnvironment):
    """The environment graded by the rule before evidence (``--rule keys``)."""

    def reset(self, **config: Any) -> Any:
        observation = super().reset(**config)
        self._evidence = _KeyEvidence(frozenset(row.key for row in self._episode.expected_rows))
        return observation


ENVIRONMENTS: dict[str, type[MetricTrackerRlEnvironment]] = {
    "evidence": MetricTrackerRlEnvironment,
    "keys": KeysRuleEnvironment,
}
RULES = tuple(ENVIRONMENTS)


def play(
    agent: Any,
    config: dict[str, Any],
    max_steps: int | None,
    environment: type[MetricTrackerRlEnvironment] = MetricTrackerRlEnvironment,
) -> float:
    final = agent.play(environment(max_steps=max_steps), dict(config))
    return float(final.reward or 0.0)


def difficulty_of(config: dict[str, Any]) -> str:
    if "task_id" in config:
        return NAMED_TASKS[config["task_id"]].difficulty
    return config["difficulty"]


def audit(
    configs: list[dict[str, Any]], environment: type[MetricTrackerRlEnvironment] = MetricTrackerRlEnvironment
) -> dict[str, Any]:
    """Mean score of every recipe per difficulty (and overall), and the stochastic policies'
    spread over rollouts."""
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in RECIPES}
    for name, (factory, budget) in RECIPES.items():
        for config in configs:
            score = play(factory(), config, budget, environment)
            scores[name].setdefault(difficulty_of(config), []).append(score)
    table = {name: _means(by) for name, by in scores.items()}
    for name in STOCHASTIC:
        flat_groups: dict[str, list[float]] = {}
        rollouts: dict[str, list[float]] = {}
        for config in configs:
            group = [play(AGENTS[name](seed=k), config, None, environment) for k in range(ROLLOUTS)]
            flat_groups.setdefault(difficulty_of(config), []).append(float(len(set(group)) == 1))
            rollouts.setdefault(difficulty_of(config), []).extend(group)
        table[name] = _means(rollouts)
        table[f"{name}_zero_variance_share"] = _means(flat_groups)
    return table


def _means(by: dict[str, list[float]]) -> dict[str, float]:
    """Mean per difficulty and over all of them."""
    means = {d: round(statistics.fmean(v), 4) for d, v in by.items()}
    means["all"] = round(statistics.fmean(x for v in by.values() for x in v), 4)
    return means


def budget_curve(
    configs: list[dict[str, Any]],
    table: dict[str, dict[str, float]],
    environment: type[MetricTrackerRlEnvironment] = MetricTrackerRlEnvironment,
) -> str:
    """The solver's mean score against its budget, per difficulty, as an SVG line chart (graded
    by ``environment``'s rule, as the table was)."""
    from svg_chart import Chart, Series

    chart = Chart(
        title="Reference solver: mean score against the step budget",
        x_label="step budget (units)",
        y_label="mean score",
        x_ticks=[0, 8, 16, 24, 32, 40, 48, 56, 64],
    )
    for difficulty in C.DIFFICULTIES:
        chosen = [c for c in configs if difficulty_of(c) == difficulty]
        points = [
            (budget, statistics.fmean(play(AGENTS["solver"](), c, budget, environment) for c in chosen))
            for budget in CURVE_BUDGETS
        ]
        chart.series.append(Series(f"solver, {difficulty}", [(b, round(m, 4)) for b, m in points]))
    best = max(max(table[name][d] for d in C.DIFFICULTIES) for name in SHORTCUTS)
    chart.series.append(Series(f"best shortcut ({best:.2f})", [(0, best), (64, best)], dashed=True))
    return chart.render()


def markdown(table: dict[str, dict[str, float]], difficulties: list[str]) -> str:
    lines = [
        "| recipe | " + " | ".join(difficulties) + " | all |",
        "|---|" + "---|" * (len(difficulties) + 1),
    ]
    for name, row in table.items():
        cells = [f"{row[d]:.3f}" if d in row else "" for d in difficulties]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['all']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=sorted(CONFIG_SETS), default=["train", "named_eval"])
    parser.add_argument("--json", default="bench/results/validity.json", help="where to write the tables")
    parser.add_argument("--curve", help="also write the score-against-budget chart (SVG) here")
    parser.add_argument(
        "--rule", choices=RULES, default="evidence", help="keys: grade as before the evidence rule"
    )
    args = parser.parse_args(argv)
    environment = ENVIRONMENTS[args.rule]
    started = time.perf_counter()
    report: dict[str, Any] = {"rule": args.rule, "shortcut_ceiling": SHORTCUT_CEILING, "sets": {}}
    for set_name in args.sets:
        configs = CONFIG_SETS[set_name]()
        table = audit(configs, environment)
        difficulties = [d for d in C.DIFFICULTIES if any(d in row for row in table.values())]
        print(f"\n{set_name}: {len(configs)} configs")
        print(markdown(table, difficulties))
        report["sets"][set_name] = {"configs": len(configs), "table": table}
        if args.curve and set_name == args.sets[0]:
            Path(args.curve).write_text(budget_curve(configs, table, environment), encoding="utf-8")
            print(f"wrote {args.curve}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {out} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
