"""Shared by the validation scripts: the declared reward contract, the episode sets, where
episodes are played (in process or on a server) and how a trajectory is recorded.

The scripts run as ``uv run python scripts/<name>.py`` from the repository root; this
module is found next to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from metric_tracker_rl.agents import ClientHandle, EnvHandle
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tasks import EVAL_SPLIT, NAMED_TASKS

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "openenv.yaml"
CANARY_DIR = ROOT / "validation" / "canaries"
PROBE_PLAN = ROOT / "validation" / "runtime.json"

# Canaries replay the named tasks and every 12th evaluation config (6 of 72, covering
# every difficulty and density) so the shipped files stay small.
CANARY_EVAL_STRIDE = 12


@dataclass(frozen=True)
class RewardContract:
    """``validation.reward`` of openenv.yaml: the numbers the scripts check against."""

    low: float
    high: float
    oracle_tolerance: float
    floor_margin: float

    @property
    def oracle_minimum(self) -> float:
        return self.high - self.oracle_tolerance

    @property
    def canary_ceiling(self) -> float:
        return self.high - self.floor_margin


def reward_contract(manifest: Path = MANIFEST) -> RewardContract:
    reward = yaml.safe_load(manifest.read_text(encoding="utf-8"))["validation"]["reward"]
    low, high = reward.get("range", (0.0, 1.0))
    return RewardContract(
        low=float(low),
        high=float(high),
        oracle_tolerance=float(reward.get("oracle_tolerance", 0.0)),
        floor_margin=float(reward["floor_margin"]),
    )


def episode_set(name: str) -> list[tuple[str, dict[str, Any]]]:
    """Labelled reset configs: ``named`` (3), ``eval`` (72), ``all`` (75) or ``canary`` (9)."""
    named = [(task_id, {"task_id": task_id}) for task_id in NAMED_TASKS]
    evaluation = [(f"eval-{i:02d}", dict(config)) for i, config in enumerate(EVAL_SPLIT)]
    sets = {
        "named": named,
        "eval": evaluation,
        "all": named + evaluation,
        "canary": named + evaluation[::CANARY_EVAL_STRIDE],
    }
    if name not in sets:
        raise ValueError(f"unknown episode set {name!r}; expected one of {sorted(sets)}")
    return sets[name]


@contextmanager
def open_target(url: str | None) -> Iterator[EnvHandle]:
    """An environment handle: a fresh in-process environment, or a WebSocket session at ``url``."""
    if url is None:
        from metric_tracker_rl.environment import MetricTrackerRlEnvironment

        yield MetricTrackerRlEnvironment()
        return
    from metric_tracker_rl.client import MetricTrackerRlEnv

    with MetricTrackerRlEnv(base_url=url).sync() as client:
        yield ClientHandle(client)


def action_payload(action: MetricTrackerRlAction) -> dict[str, Any]:
    """The action as sent on the wire (fields left at their defaults are omitted)."""
    return action.model_dump(mode="json", exclude_defaults=True)


class RecordingHandle:
    """Wraps an ``EnvHandle`` and records the reset config, each action and its outcome."""

    def __init__(self, env: EnvHandle) -> None:
        self.env = env
        self.reset_config: dict[str, Any] = {}
        self.steps: list[dict[str, Any]] = []

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        self.reset_config = dict(config)
        self.steps = []
        return self.env.reset(**config)

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        observation = self.env.step(action)
        self.steps.append(
            {
                "action": action_payload(action),
                "status": observation.status,
                "reward": observation.reward,
                "done": observation.done,
            }
        )
        return observation
