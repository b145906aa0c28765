"""A stochastic investigator: its spread over rollouts shows how much a trainer can learn
from a group of rollouts."""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.shortcuts.common import Session, flagged_answers
from metric_tracker_rl.families import DETECTION_METHOD_BY_ENTITY_TYPE
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import row_key


class ExplorerAgent:
    """A stochastic investigator: the discovery ranking, then a random share of the budget
    spent confirming candidates in a random order (stronger signals more likely first),
    and a submission of what it confirmed. ``seed`` picks the rollout."""

    name = "explorer"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        rng = np.random.default_rng([int(first.config.get("seed") or 0), self.seed, 4_243])
        session = Session(env, first)
        ranking = session.call("list_suspicious_dates", limit=int(first.config["num_days"])) or {}
        signals = [(item["date"], s) for item in ranking.get("dates", []) for s in item["signals"]]
        if not signals:
            return session.submit([])
        weights = np.array([s["score"] for _, s in signals]) + 1.0
        order = rng.choice(len(signals), size=len(signals), replace=False, p=weights / weights.sum())
        stop_at = session.left * (1.0 - rng.uniform(0.0, 0.8))
        spent = 0.0
        confirmed: dict[str, dict[str, Any]] = {}
        for index in order:
            date, signal = signals[int(index)]
            method = DETECTION_METHOD_BY_ENTITY_TYPE[signal["entity_type"]]
            if spent + session.costs[method][0] > stop_at or not session.affords(method):
                continue
            spent += session.costs[method][0]
            for row in flagged_answers(session, method, date, signal["entity_name"]):
                confirmed[row_key(row)] = row
        return session.submit(list(confirmed.values()))
