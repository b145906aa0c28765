"""The briefing followed literally, as a checklist: what a benchmark must tell apart from an
analyst who reasons about how incidents show up in a funnel.

- ``playbook``: ``task_overview``; ``list_suspicious_dates`` (over the scenario family's entity
  type when the config names one family); then each listed signal in rank order, with its
  family's detection method, and once a date yields a row, on to the next date; it stops when
  it holds ``expected_row_count`` rows (where the count is hidden: when the ranking or the
  budget ends) and submits the flagged assessments.
- ``playbook_stochastic``: the same, with the dates taken in an order drawn from a softmax over
  their ranking scores (``seed`` picks the rollout): a policy that has learnt the checklist,
  with the spread of a sampled one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.shortcuts.common import Session, flagged_answers
from metric_tracker_rl.families import DETECTION_METHOD_BY_ENTITY_TYPE, FAMILY_BY_TYPE
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import row_key

SOFTMAX_TEMPERATURE = 2.0  # in robust standard deviations of the ranking's scores


class PlaybookAgent:
    """The checklist of the briefing, literally (see the module note)."""

    name = "playbook"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        session = Session(env, first)
        session.call("task_overview")
        family = FAMILY_BY_TYPE.get(str(first.config.get("scenario_family")))
        scope = {"entity_type": family.entity_type} if family is not None else {}
        ranking = session.call("list_suspicious_dates", limit=int(first.config["num_days"]), **scope) or {}
        dates = ranking.get("dates", [])
        wanted = first.expected_row_count
        rows: dict[str, dict[str, Any]] = {}
        for item in (dates[i] for i in self.order(dates, first)):
            if wanted is not None and len(rows) >= wanted:
                break
            for signal in item["signals"]:
                method = DETECTION_METHOD_BY_ENTITY_TYPE[signal["entity_type"]]
                if not session.affords(method):
                    break
                flagged = flagged_answers(session, method, item["date"], signal["entity_name"])
                if flagged:
                    rows.update((row_key(row), row) for row in flagged)
                    break  # this date is explained: on to the next
        return session.submit(list(rows.values()))

    def order(self, dates: list[dict[str, Any]], first: MetricTrackerRlObservation) -> list[int]:
        """The ranking's order."""
        return list(range(len(dates)))


class StochasticPlaybookAgent(PlaybookAgent):
    """The checklist with the dates in an order drawn from a softmax over their scores."""

    name = "playbook_stochastic"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def order(self, dates: list[dict[str, Any]], first: MetricTrackerRlObservation) -> list[int]:
        if not dates:
            return []
        rng = np.random.default_rng([int(first.config.get("seed") or 0), self.seed, 6_151])
        scores = np.array([float(item["score"]) for item in dates]) / SOFTMAX_TEMPERATURE
        gumbel = -np.log(-np.log(rng.uniform(size=len(dates))))  # a softmax draw without replacement
        return np.argsort(-(scores + gumbel), kind="stable").tolist()
