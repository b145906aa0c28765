"""What the shortcut recipes share: an episode seen through its observations, and the
public rules they apply locally (thresholds, severities, row shapes)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.agents.base import EnvHandle, analysis_left
from metric_tracker_rl.evidence import takes_entity
from metric_tracker_rl.families import FAMILIES, family_for
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS

# A feedback line that names a row the grader gives nothing for, with its key.
UNPAID_ROW_ISSUE = re.compile(r"^row (\d+) \(([^)]*)\): (?:extra row|unsupported)")
ENTITY_BY_NAME: dict[str, S.Entity] = {e.entity_name: e for e in S.ENTITIES}


class Session:
    """An episode seen through its observations: the budget left and what calls return."""

    def __init__(self, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.env = env
        self.first = first
        self.costs = {m["name"]: (m["cost"], m.get("cost_per_row", 0)) for m in first.available_methods}
        self.last = first

    @property
    def left(self) -> int:
        """Units left for analysis (the environment keeps the report's unit)."""
        return analysis_left(self.last.budget)

    def affords(self, method: str, rows: int = 0) -> bool:
        cost, per_row = self.costs[method]
        return cost + per_row * rows <= self.left

    def call(self, method: str, **args: Any) -> Any:
        """The method's result, or None for an error or a refused call."""
        self.last = self.env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))
        result = self.last.analysis_result or {}
        return result.get("result")

    def submit(self, rows: list[dict[str, Any]], generators: list[dict[str, Any]] | None = None):
        self.last = self.env.step(
            MetricTrackerRlAction(classifications=rows, payload_generators=generators or [])
        )
        return self.last


def lowest_threshold(first: MetricTrackerRlObservation) -> float:
    """The smallest threshold_multiplier the generators accept, read from their schema."""
    for method in first.available_methods:
        if method["kind"] == "generator":
            prop = method["arguments"]["properties"]["threshold_multiplier"]
            return float(prop.get("minimum", prop.get("exclusiveMinimum", 0.0)))
    return 0.0


def family_generators(threshold: float) -> list[dict[str, Any]]:
    return [{"method_name": f.generator_method, "threshold_multiplier": threshold} for f in FAMILIES]


def severity(entity_type: str, baseline: float, observed: float, threshold: float) -> str:
    """The public severity rule, from task_overview's cut-offs."""
    delta = abs(observed - baseline)
    if entity_type == "data_quality":
        return "low"  # needs the predecessor's count; a scanner guesses
    relative = entity_type in ("event_count", "funnel_step")
    scale = abs(baseline) * threshold if relative else threshold
    if scale <= 0:
        return C.SEVERITY_LEVELS[0]  # no baseline fetched (a budget too small): a guess
    ratio = delta / scale
    level = int(np.searchsorted(np.array(C.SEVERITY_RATIO_CUTOFFS), ratio, side="right")) - 1
    return C.SEVERITY_LEVELS[min(max(level, 0), len(C.SEVERITY_LEVELS) - 1)]


def local_row(date: str, entity: S.Entity, baseline: float, observed: float, threshold: float) -> dict:
    family = family_for(entity.entity_type, observed - baseline)
    assert family is not None, "only rows the public rule flags are built"
    baseline, observed = round(baseline, C.ROUND_DIGITS), round(observed, C.ROUND_DIGITS)
    return {
        "date": date,
        "entity_type": entity.entity_type,
        "entity_name": entity.entity_name,
        "anomaly_type": family.anomaly_type,
        "detection_method": family.detection_method,
        "baseline_value": baseline,
        "observed_value": observed,
        "delta_value": round(observed - baseline, C.ROUND_DIGITS),
        "severity": severity(entity.entity_type, baseline, observed, threshold),
    }


def daily_rows(
    date: str,
    day: dict[str, Any],
    thresholds: dict[str, float],
    entity_type: str | None = None,
) -> list[dict[str, Any]]:
    """The rows the public rule flags among the daily counts and rates of a ``rows_for_date``
    view (of one entity type, if given), against the view's medians, in the view's order."""
    observed = {**day.get("counts", {}), **day.get("rates_pct", {})}
    medians = {**day.get("median_counts", {}), **day.get("median_rates_pct", {})}
    rows = []
    for name, value in observed.items():
        entity = ENTITY_BY_NAME[name]
        if entity_type is not None and entity.entity_type != entity_type:
            continue
        if S.public_flag(entity.entity_type, medians[name], value, thresholds[name]):
            rows.append(local_row(date, entity, medians[name], value, thresholds[name]))
    return rows


def flagged_answers(session: Session, method: str, date: str, entity_name: str) -> list[dict[str, Any]]:
    """A signal's detection method called on its date (and entity, for a method that judges
    one): the answers that flag a row, as rows."""
    args = {"date": date}
    if takes_entity(method):
        args["entity_name"] = entity_name
    result = session.call(method, **args) or {}
    return [
        {k: a[k] for k in ROW_FIELDS}
        for a in result.get("assessments", [result])
        if a.get("anomaly_type", "normal") != "normal"
    ]


def median_of(session: Session, name: str, medians: dict[str, float]) -> float:
    """A metric's window median from ``get_metric_median``, fetched once into ``medians`` while
    the budget allows; 0.0 where it was not fetched or not answered."""
    if name not in medians and session.affords("get_metric_median"):
        answer = session.call("get_metric_median", metric_name=name) or {}
        medians[name] = float(answer.get("median", 0.0))
    return medians.get(name, 0.0)


def guessed_row(date: str, entity: S.Entity, direction: str, baseline: float) -> dict:
    """An unconfirmed signal as a row: the baseline, and an observed value a quarter of it (at
    least 1) away in the signal's direction."""
    step = 1.0 if direction == "up" else -1.0
    return local_row(date, entity, baseline, baseline + step * max(abs(baseline) * 0.25, 1.0), 1.0)


def calibrated_multiplier(entity: S.Entity, threshold: float, median: float, spread: float) -> float:
    """The generator threshold_multiplier at which |value - median| > multiplier x spread is
    the public detection rule of the entity: its threshold in the statistic's units (relative
    ones times the median) over the std-from-median."""
    if entity.statistic == "quality" or spread <= 0:
        return 0.0  # any excess is flagged
    units = threshold * abs(median) if entity.statistic in ("count", "funnel") else threshold
    return units / spread


def ranked_signals(session: Session, entity_type: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(date, signal) of the whole discovery ranking, strongest signal first."""
    args: dict[str, Any] = {"limit": int(session.first.config["num_days"])}
    if entity_type is not None:
        args["entity_type"] = entity_type
    ranking = session.call("list_suspicious_dates", **args) or {}
    pairs = [(item["date"], signal) for item in ranking.get("dates", []) for signal in item["signals"]]
    return sorted(pairs, key=lambda pair: -pair[1]["score"])


def rows_wanted(first: MetricTrackerRlObservation) -> int:
    """The expected row count, or where the difficulty hides it, the number of incidents."""
    shown = first.expected_row_count
    return int(shown if shown is not None else first.config.get("anomaly_count") or 0)
