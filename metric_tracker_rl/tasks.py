"""Named tasks and the fixed evaluation split.

A task is a fixed reset config. Beyond them any (seed, scenario_family, difficulty,
anomaly_density | anomaly_count) is a valid episode. Training should use seeds below
``EVAL_SEED_BASE``; the evaluation split uses seeds from it upward, so the two never meet.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl.config import ConfigError, EpisodeConfig, resolve_config
from metric_tracker_rl.families import SCENARIO_FAMILIES

EVAL_SEED_BASE = 1_000_000_000


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    difficulty: str
    description: str
    seed: int
    scenario_family: str
    anomaly_plan: tuple[str, ...] = field(default=())
    anomaly_density: str | None = None
    anomaly_count: int | None = None
    # How each planned incident shows and whether it shares an earlier incident's day; the
    # expected rows they make (held equal to the generated truth by tests/test_tasks.py).
    incident_shapes: tuple[str, ...] = field(default=())
    shared_days: tuple[bool, ...] = field(default=())
    anomaly_rows: int | None = None

    def reset_arguments(self) -> dict[str, Any]:
        """The reset config this task stands for (plan-based tasks also fix the families)."""
        args: dict[str, Any] = {
            "seed": self.seed,
            "scenario_family": self.scenario_family,
            "difficulty": self.difficulty,
        }
        if self.anomaly_density is not None:
            args["anomaly_density"] = self.anomaly_density
        if self.anomaly_count is not None:
            args["anomaly_count"] = self.anomaly_count
        return args

    def size_text(self) -> str:
        """How much there is to find, as an agent may know it: "3 anomalies, 7 rows"."""
        shown = self.describe()
        rows = "rows not given" if shown["anomaly_rows"] is None else f"{shown['anomaly_rows']} rows"
        return f"{shown['anomalies']} anomalies, {rows}"

    def describe(self) -> dict[str, Any]:
        """What an agent may know of the task: the expected row count is null where the
        difficulty hides it."""
        hidden = self.difficulty in C.HIDDEN_ROW_COUNT
        return {
            "task_id": self.task_id,
            "difficulty": self.difficulty,
            "description": self.description,
            "anomalies": len(self.anomaly_plan) or self.anomaly_count,
            "anomaly_rows": None if hidden else self.anomaly_rows,
        }


NAMED_TASKS: dict[str, TaskSpec] = {
    t.task_id: t
    for t in (
        TaskSpec(
            "easy_single_spike",
            "easy",
            "Two conversion-rate spikes, well separated from the noise.",
            seed=1_001,
            scenario_family="rate_spike_from_median",
            anomaly_plan=("rate_spike_from_median", "rate_spike_from_median"),
            incident_shapes=("single", "single"),
            anomaly_rows=2,
        ),
        TaskSpec(
            "medium_mixed_pair",
            "medium",
            "Three anomalies mixing event-count and conversion-rate signals; one shows in several "
            "statistics.",
            seed=2_002,
            scenario_family="mixed",
            anomaly_plan=(
                "absolute_spike_in_event_count",
                "rate_drop_from_median",
                "absolute_drop_in_event_count",
            ),
            incident_shapes=("single", "cascade", "single"),
            anomaly_rows=7,
        ),
        TaskSpec(
            "hard_mixed_multi",
            "hard",
            "Four anomalies from four families, including hour-level ones, with weak separation; "
            "incidents show in several statistics, two share a date, and the row count is not given.",
            seed=3_003,
            scenario_family="mixed",
            anomaly_plan=(
                "funnel_break",
                "rate_drop_from_median",
                "hourly_traffic_mix_shift",
                "instrumentation_data_quality_issue",
            ),
            incident_shapes=("single", "cascade", "single", "double_firing"),
            shared_days=(False, False, True, False),
            anomaly_rows=11,
        ),
    )
}


# Every (scenario family, difficulty, anomaly density): the cells the evaluation split and
# the training datasets cover.
CELLS: tuple[tuple[str, str, str], ...] = tuple(
    itertools.product(SCENARIO_FAMILIES, C.DIFFICULTIES, tuple(C.ANOMALY_DENSITY_COUNTS))
)


def _eval_split() -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "seed": EVAL_SEED_BASE + i,
            "scenario_family": family,
            "difficulty": difficulty,
            "anomaly_density": density,
        }
        for i, (family, difficulty, density) in enumerate(CELLS)
    )


# 8 scenario families x 3 difficulties x 3 densities = 72 fixed configs.
EVAL_SPLIT: tuple[dict[str, Any], ...] = _eval_split()


def config_for(
    task_id: str | None = None,
    *,
    seed: Any = None,
    scenario_family: Any = None,
    difficulty: Any = None,
    anomaly_density: Any = None,
    anomaly_count: Any = None,
    anomalies: Any = None,
    end_date: Any = None,
    split: Any = None,
    index: Any = None,
) -> EpisodeConfig:
    """Resolve reset arguments, starting from a named task's config, or from a Task API
    split's config (``split`` + ``index``), when one is given.

    Explicit arguments override the task's; changing its family or size drops the task's
    fixed family plan.
    """
    if split is not None or index is not None:
        try:
            chosen = task_spec(split, index)["reset"]
        except IndexError as err:
            raise ConfigError(str(err)) from None
        task_id = chosen.get("task_id", task_id)
        seed = chosen.get("seed") if seed is None else seed
        scenario_family = chosen.get("scenario_family") if scenario_family is None else scenario_family
        difficulty = chosen.get("difficulty") if difficulty is None else difficulty
        if anomaly_count is None and anomaly_density is None:
            anomaly_density = chosen.get("anomaly_density")
    plan = shapes = shared = None
    if task_id is not None:
        task = NAMED_TASKS.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise ConfigError(f"unknown task_id {task_id!r}; expected one of {list(NAMED_TASKS)}")
        base = task.reset_arguments()
        if scenario_family is None and anomaly_count is None and anomaly_density is None:
            plan = task.anomaly_plan or None
            if difficulty is None or difficulty == task.difficulty:  # the task's own incidents
                shapes, shared = task.incident_shapes or None, task.shared_days or None
        seed = base["seed"] if seed is None else seed
        scenario_family = base["scenario_family"] if scenario_family is None else scenario_family
        difficulty = base["difficulty"] if difficulty is None else difficulty
    return resolve_config(
        seed=seed,
        scenario_family=scenario_family,
        difficulty=difficulty,
        anomaly_density=anomaly_density,
        anomaly_count=anomaly_count,
        anomalies=anomalies,
        end_date=end_date,
        task_id=task_id,
        anomaly_plan=plan,
        incident_shapes=shapes,
        shared_days=shared,
    )


# --- OpenEnv Task API: splits of reset configs -------------------------------------------

TASK_SPLITS: dict[str, tuple[dict[str, Any], ...]] = {
    "named": tuple({"task_id": task_id} for task_id in NAMED_TASKS),
    "eval": EVAL_SPLIT,
}
SPLIT_TYPES = {"named": "validation", "eval": "test"}


def split_configs(split: str) -> tuple[dict[str, Any], ...]:
    """The reset configs of a split; an unknown split is an IndexError (OpenEnv's 400)."""
    configs = TASK_SPLITS.get(split) if isinstance(split, str) else None
    if configs is None:
        raise IndexError(f"unknown split {split!r}; expected one of {list(TASK_SPLITS)}")
    return configs


def task_spec(split: str, index: int) -> dict[str, Any]:
    """One task of a split: its id, position and reset config."""
    configs = split_configs(split)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(configs):
        raise IndexError(f"task index {index!r} is out of range for split {split!r} (0..{len(configs) - 1})")
    config = configs[index]
    return {
        "id": config.get("task_id") or f"{split}-{index}",
        "split": split,
        "index": index,
        "reset": dict(config),
    }
