"""Recipes that report guesses or generated rows without confirming them.

- ``hint_guess``: the strongest discovery signals taken as the answer, values guessed.
- ``calibrated_payload``: each entity's median and std-from-median, then one
  ``payload_generators`` submission whose multipliers make each generator the public rule:
  the server writes the rows.
"""

from __future__ import annotations

from typing import Any

from metric_tracker_rl import statistics as S
from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.shortcuts.common import (
    ENTITY_BY_NAME,
    Session,
    calibrated_multiplier,
    guessed_row,
    median_of,
    ranked_signals,
    rows_wanted,
)
from metric_tracker_rl.families import FAMILIES, FAMILY_BY_TYPE
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import row_key


class HintGuessAgent:
    """The discovery ranking taken as the answer: the strongest signals (over the scenario
    family's entity type when there is one), as many as there are expected rows, submitted
    with guessed values (the window median from ``get_metric_median`` as baseline where the
    budget allows) and no confirmation."""

    name = "hint_guess"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        session = Session(env, first)
        family = FAMILY_BY_TYPE.get(str(first.config.get("scenario_family")))
        signals = ranked_signals(session, family.entity_type if family is not None else None)
        wanted = rows_wanted(first)
        rows: dict[str, dict[str, Any]] = {}
        medians: dict[str, float] = {}
        for date, signal in signals:
            if len(rows) >= wanted:
                break
            entity = ENTITY_BY_NAME[signal["entity_name"]]
            if entity.entity_type == "funnel_step" and signal["direction"] == "up":
                continue
            baseline = median_of(session, entity.entity_name, medians)
            guess = guessed_row(date, entity, signal["direction"], baseline)
            rows[row_key(guess)] = guess
        return session.submit(list(rows.values()))


class CalibratedPayloadAgent:
    """One submission in which the server writes the report: for each entity in play (the
    scenario family's entity type, or all), ``get_metric_std_dev_from_median``, then the
    family generators of that entity at the multiplier that is its public rule."""

    name = "calibrated_payload"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        session = Session(env, first)
        thresholds = (session.call("task_overview") or {}).get("thresholds", {})
        family = FAMILY_BY_TYPE.get(str(first.config.get("scenario_family")))
        entities = [e for e in S.ENTITIES if family is None or e.entity_type == family.entity_type]
        specs = []
        for entity in entities:
            if not session.affords("get_metric_std_dev_from_median"):
                break
            stats = session.call("get_metric_std_dev_from_median", metric_name=entity.entity_name) or {}
            if "std_dev_from_median" not in stats:
                continue
            multiplier = calibrated_multiplier(
                entity,
                thresholds.get(entity.entity_name, 0.0),
                stats["median"],
                stats["std_dev_from_median"],
            )
            specs.extend(
                {
                    "method_name": f.generator_method,
                    "metric_name": entity.entity_name,
                    "threshold_multiplier": multiplier,
                }
                for f in FAMILIES
                if f.entity_type == entity.entity_type
            )
        return session.submit([], specs)
