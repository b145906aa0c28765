"""Shortcut agents: recipes that try to score without investigating.

They exist to keep the score honest. ``bench/validity.py`` runs them on many configs
next to the honest agents, and the tests hold their scores under fixed bounds. Each uses
the public interface only (reset, step, the observations), like any agent would.

- ``feedback_oracle``: submit everything the generators produce, then use the grader's
  feedback to drop the rows it calls extra (or, as feedback is aggregate, probe halves)
  and resubmit.
- ``dump_and_filter``: the generators at their lowest accepted threshold, one metric at a
  time while the budget lasts (in the overview's order, or the discovery ranking's), then
  the public thresholds applied locally.
- ``date_scan``: one date-level view per date in window order while the budget lasts,
  every canonical statistic computed locally from what was seen.
- ``explorer``: a stochastic investigator (discovery, then a random share of the
  candidates confirmed in a random order); its spread over rollouts shows how much a
  trainer can learn from a group of rollouts.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.solver import DAILY_VIEW, PLANS
from metric_tracker_rl.families import FAMILIES, FAMILY_BY_TYPE, family_for
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS, row_key

EXTRA_ROW_ISSUE = re.compile(r"^row (\d+) \(([^)]*)\): extra row")


class _Session:
    """An episode seen through its observations: the budget left and what calls return."""

    def __init__(self, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.env = env
        self.first = first
        self.costs = {m["name"]: (m["cost"], m.get("cost_per_row", 0)) for m in first.available_methods}
        self.last = first

    @property
    def left(self) -> int:
        """Units left for analysis, keeping one submission's worth."""
        return int(self.last.budget["max_steps"]) - int(self.last.budget["steps_used"]) - C.SUBMISSION_COST

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


def _lowest_threshold(first: MetricTrackerRlObservation) -> float:
    """The smallest threshold_multiplier the generators accept, read from their schema."""
    for method in first.available_methods:
        if method["kind"] == "generator":
            prop = method["arguments"]["properties"]["threshold_multiplier"]
            return float(prop.get("minimum", prop.get("exclusiveMinimum", 0.0)))
    return 0.0


def _family_generators(threshold: float) -> list[dict[str, Any]]:
    return [{"method_name": f.generator_method, "threshold_multiplier": threshold} for f in FAMILIES]


def _severity(entity_type: str, baseline: float, observed: float, threshold: float) -> str:
    """The public severity rule, from task_overview's cut-offs."""
    delta = abs(observed - baseline)
    if entity_type == "data_quality":
        return "low"  # needs the predecessor's count; a scanner guesses
    relative = entity_type in ("event_count", "funnel_step")
    ratio = delta / (abs(baseline) * threshold) if relative else delta / threshold
    level = int(np.searchsorted(np.array(C.SEVERITY_RATIO_CUTOFFS), ratio, side="right")) - 1
    return C.SEVERITY_LEVELS[min(max(level, 0), len(C.SEVERITY_LEVELS) - 1)]


def _local_row(date: str, entity: S.Entity, baseline: float, observed: float, threshold: float) -> dict:
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
        "severity": _severity(entity.entity_type, baseline, observed, threshold),
    }


class FeedbackOracleAgent:
    """Use submission feedback as a membership oracle: submit every generator at its lowest
    threshold, drop the rows the feedback calls extra, resubmit. When the feedback names no
    row, probe halves of the generators and keep the half that matched more."""

    name = "feedback_oracle"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = _Session(env, env.reset(**config))
        generators = _family_generators(_lowest_threshold(session.first))
        graded = session.submit([], generators)
        extra = {m.group(2) for issue in graded.submission_issues if (m := EXTRA_ROW_ISSUE.match(issue))}
        if extra and not graded.done:
            kept = [r for r in graded.submitted_rows if row_key(r) not in extra]
            return session.submit([{k: r[k] for k in ROW_FIELDS} for r in kept])
        halves = [generators[::2], generators[1::2]]
        scores = []
        for half in halves:
            if session.last.done:
                return session.last
            probe = session.submit([], half)
            scores.append(
                (probe.reward_breakdown.get("matched_rows", 0), -probe.reward_breakdown.get("extra_rows", 0))
            )
        return session.last if session.last.done else session.submit([], halves[int(np.argmax(scores))])


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
        session = _Session(env, env.reset(**config))
        threshold = _lowest_threshold(session.first) if self.threshold is None else self.threshold
        overview = session.call("task_overview") or {}
        thresholds = overview.get("thresholds", {})
        order = list(thresholds)
        if self.ranked:
            ranking = session.call("list_suspicious_dates", limit=int(session.first.config["num_days"])) or {}
            signals = sorted(
                (s for item in ranking.get("dates", []) for s in item["signals"]), key=lambda s: -s["score"]
            )
            order = list(dict.fromkeys(s["entity_name"] for s in signals)) + order
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
        session = _Session(env, env.reset(**config))
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
                        _local_row(date, entity, base[entity.index], values[i, entity.index], threshold)
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
        session = _Session(env, first)
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
                observed = {**result.get("counts", {}), **result.get("rates_pct", {})}
                medians = {**result.get("median_counts", {}), **result.get("median_rates_pct", {})}
                for entity in S.ENTITIES:
                    name = entity.entity_name
                    if entity.entity_type != entity_type or name not in observed:
                        continue
                    if S.public_flag(entity_type, medians[name], observed[name], thresholds[name]):
                        row = _local_row(date, entity, medians[name], observed[name], thresholds[name])
                        rows[row_key(row)] = row
            for answer in result.get("assessments", []):
                if answer["anomaly_type"] != "normal":
                    rows[row_key(answer)] = {k: answer[k] for k in ROW_FIELDS}
        return session.submit(list(rows.values()))


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
        session = _Session(env, first)
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
            method = FAMILY_BY_TYPE[_any_family(signal["entity_type"])].detection_method
            if spent + session.costs[method][0] > stop_at or not session.affords(method):
                continue
            spent += session.costs[method][0]
            if method.startswith("compare_"):
                answers = [session.call(method, date=date, entity_name=signal["entity_name"]) or {}]
            else:
                answers = (session.call(method, date=date) or {}).get("assessments", [])
            for answer in answers:
                if answer.get("anomaly_type", "normal") != "normal":
                    confirmed[row_key(answer)] = {k: answer[k] for k in ROW_FIELDS}
        return session.submit(list(confirmed.values()))


class HintGuessAgent:
    """The discovery ranking taken as the answer: the strongest signals (over the scenario
    family's entity type when there is one), as many as there are expected rows, submitted
    with guessed values (the window median from ``get_metric_median`` as baseline where the
    budget allows) and no confirmation."""

    name = "hint_guess"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        session = _Session(env, first)
        family = FAMILY_BY_TYPE.get(str(first.config.get("scenario_family")))
        ranking = (
            session.call(
                "list_suspicious_dates",
                limit=int(first.config["num_days"]),
                entity_type=family.entity_type if family is not None else None,
            )
            or {}
        )
        signals = sorted(
            ((item["date"], s) for item in ranking.get("dates", []) for s in item["signals"]),
            key=lambda pair: -pair[1]["score"],
        )
        rows: dict[str, dict[str, Any]] = {}
        medians: dict[str, float] = {}
        for date, signal in signals:
            if len(rows) >= first.expected_row_count:
                break
            entity = next(e for e in S.ENTITIES if e.entity_name == signal["entity_name"])
            if entity.entity_type == "funnel_step" and signal["direction"] == "up":
                continue
            name = entity.entity_name
            if name not in medians and session.affords("get_metric_median"):
                medians[name] = float(
                    (session.call("get_metric_median", metric_name=name) or {}).get("median", 0.0)
                )
            baseline = medians.get(name, 0.0)
            step = 1.0 if signal["direction"] == "up" else -1.0
            guess = _local_row(date, entity, baseline, baseline + step * max(abs(baseline) * 0.25, 1.0), 1.0)
            rows[row_key(guess)] = guess
        return session.submit(list(rows.values()))


class PayloadSearchAgent:
    """Blind payload submissions: every family generator at a threshold, raised while the
    aggregate feedback reports extra rows; the last submission is the best one seen."""

    name = "payload_search"
    thresholds = (2.5, 3.5, 4.5)

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = _Session(env, env.reset(**config))
        best: tuple[float, float] | None = None
        for k, threshold in enumerate(self.thresholds):
            if session.last.done:
                break
            graded = session.submit([], _family_generators(threshold))
            score = float(graded.reward or 0.0)
            if best is None or score > best[0]:
                best = (score, threshold)
            if graded.reward_breakdown.get("extra_rows", 0) == 0:
                break
            if k == len(self.thresholds) - 2 and best[1] != threshold and not graded.done:
                return session.submit([], _family_generators(best[1]))
        return session.last


def _any_family(entity_type: str) -> str:
    return next(f.anomaly_type for f in FAMILIES if f.entity_type == entity_type)
