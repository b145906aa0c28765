"""Recipes that scan the window with views and filters and apply the public rules
themselves, instead of asking the detection methods.

- ``dump_and_filter``: the broadest generator at its lowest accepted threshold, one metric
  at a time while the budget lasts (in the overview's order, or the ranking's), filtered by
  the public thresholds.
- ``date_scan``: the hourly table of every date in window order while the budget lasts,
  every canonical statistic computed locally from what was seen.
- ``detector_scan``: the scenario family's date-level method on every date in window order.
- ``daily_scan``: the daily counts and rates (``rows_for_date``) of the ranking's dates, in
  rank order, and the public thresholds applied to them: statistics plus arithmetic.
- ``calibrated_scan``: per entity in ranking order, its std-from-median, then its generator at
  the multiplier that turns the generator into the public rule; the rows that pass the rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.shortcuts.common import (
    ENTITY_BY_NAME,
    Session,
    calibrated_multiplier,
    daily_rows,
    local_row,
    lowest_threshold,
    ranked_signals,
)
from metric_tracker_rl.agents.solver import DAILY_VIEW, PLANS
from metric_tracker_rl.families import FAMILY_BY_TYPE
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS, row_key


class DumpAndFilterAgent:
    """The broadest generator at its lowest accepted threshold, one metric at a time while
    the budget lasts, filtered locally by the public thresholds of ``task_overview``.

    ``threshold`` picks another multiplier; ``ranked`` takes the metrics in the order of the
    discovery ranking's signals instead of the overview's order."""

    name = "dump_and_filter"
    generator = "get_median_filter_rows"

    def __init__(self, threshold: float | None = None, ranked: bool = False) -> None:
        self.threshold = threshold
        self.ranked = ranked

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        threshold = lowest_threshold(session.first) if self.threshold is None else self.threshold
        overview = session.call("task_overview") or {}
        thresholds = overview.get("thresholds", {})
        order = list(thresholds)
        if self.ranked:
            order = list(dict.fromkeys(s["entity_name"] for _, s in ranked_signals(session))) + order
        kept: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(order):
            if not session.affords(self.generator, rows=1):
                break
            result = session.call(self.generator, metric_name=name, threshold_multiplier=threshold)
            for row in (result or {}).get("rows", []):
                if S.public_flag(
                    row["entity_type"], row["baseline_value"], row["observed_value"], thresholds[name]
                ):
                    kept[row_key(row)] = row
        return session.submit(list(kept.values()))


class DateScanAgent:
    """Every date in window order with the view that shows its whole day (the hourly table),
    while the budget lasts; every canonical statistic computed locally from the scanned
    days (their medians stand in for the window's), flagged by the public thresholds."""

    name = "date_scan"
    view = "hourly_rows_for_date"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        overview = session.call("task_overview") or {}
        thresholds = overview.get("thresholds", {})
        dates = [d["date"] for d in (session.call("list_dates") or {}).get("dates", [])]
        seen: dict[str, np.ndarray] = {}
        for date in dates:
            if not session.affords(self.view):
                break
            result = session.call(self.view, date=date)
            if result:
                seen[date] = np.array([[row[e] for e in C.EVENTS] for row in result["hourly_rows"]], float)
        if len(seen) < 2 or not thresholds:
            return session.submit([])
        scanned = list(seen)
        values = S.day_values(np.stack([seen[d] for d in scanned]))
        base = S.baselines(values)
        rows = []
        for i, date in enumerate(scanned):
            for entity in S.ENTITIES:
                threshold = thresholds[entity.entity_name]
                if S.public_flag(entity.entity_type, base[entity.index], values[i, entity.index], threshold):
                    rows.append(
                        local_row(date, entity, base[entity.index], values[i, entity.index], threshold)
                    )
        return session.submit(rows)


class DetectorScanAgent:
    """Every date in window order with the date-level detection method of the scenario's
    family (the hourly view for mixed scenarios), while the budget lasts; daily counts and
    rates through ``rows_for_date`` and the public thresholds."""

    name = "detector_scan"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        family = first.config.get("scenario_family", "mixed")
        if family == "mixed":
            return DateScanAgent().play(env, config)
        session = Session(env, first)
        entity_type = FAMILY_BY_TYPE[family].entity_type
        method = PLANS[entity_type][0]
        thresholds = (
            (session.call("task_overview") or {}).get("thresholds", {}) if method == DAILY_VIEW else {}
        )
        dates = [d["date"] for d in (session.call("list_dates") or {}).get("dates", [])]
        rows: dict[str, dict[str, Any]] = {}
        for date in dates:
            if not session.affords(method):
                break
            result = session.call(method, date=date) or {}
            if method == DAILY_VIEW:
                rows.update((row_key(row), row) for row in daily_rows(date, result, thresholds, entity_type))
            for answer in result.get("assessments", []):
                if answer["anomaly_type"] != "normal":
                    rows[row_key(answer)] = {k: answer[k] for k in ROW_FIELDS}
        return session.submit(list(rows.values()))


class DailyScanAgent:
    """The ranking's dates in rank order with ``rows_for_date``, while the budget lasts; every
    daily count and rate that crosses its public threshold reported as the detection method
    would, without calling it."""

    name = "daily_scan"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        thresholds = (session.call("task_overview") or {}).get("thresholds", {})
        rows: dict[str, dict[str, Any]] = {}
        for date in dict.fromkeys(date for date, _ in ranked_signals(session)):
            if not session.affords(DAILY_VIEW):
                break
            day = session.call(DAILY_VIEW, date=date) or {}
            rows.update((row_key(row), row) for row in daily_rows(date, day, thresholds))
        return session.submit(list(rows.values()))


class CalibratedScanAgent:
    """Generators made into the detectors: per entity in the ranking's order, its median and
    std-from-median, then its rows at the multiplier that is the public rule (threshold, or
    threshold x median for relative ones, over the std), kept where the rule holds."""

    name = "calibrated_scan"
    generator = "get_median_filter_rows"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        thresholds = (session.call("task_overview") or {}).get("thresholds", {})
        order = dict.fromkeys(signal["entity_name"] for _, signal in ranked_signals(session))
        kept: dict[str, dict[str, Any]] = {}
        for name in order:
            if not session.affords("get_metric_std_dev_from_median") or not session.left > 2:
                break
            stats = session.call("get_metric_std_dev_from_median", metric_name=name) or {}
            if "std_dev_from_median" not in stats or not session.affords(self.generator, rows=1):
                break
            entity = ENTITY_BY_NAME[name]
            multiplier = calibrated_multiplier(
                entity, thresholds[name], stats["median"], stats["std_dev_from_median"]
            )
            result = session.call(self.generator, metric_name=name, threshold_multiplier=multiplier) or {}
            for row in result.get("rows", []):
                if S.public_flag(
                    row["entity_type"], row["baseline_value"], row["observed_value"], thresholds[name]
                ):
                    kept[row_key(row)] = row
        return session.submit(list(kept.values()))
