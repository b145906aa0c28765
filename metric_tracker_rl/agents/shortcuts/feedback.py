"""Recipes that read the grader's feedback as an oracle instead of the data.

- ``feedback_oracle``: every generator at its lowest accepted threshold, then the rows the
  feedback names as earning nothing dropped (or, where it names none, halves of the
  generators probed) and the rest resubmitted.
- ``payload_search``: blind payload submissions, the threshold raised while the feedback
  counts extra rows.
- ``field_probe``: per-field feedback counts as subset-sum queries. The top candidates of the
  ranking are submitted with fields set right or wrong on purpose (the detection method and
  anomaly type are public per entity type, the baseline is the public median), so each
  probe's per-field counts say how many of chosen subsets are true; the subsets consistent
  with every count decode the truth, which is then reported with guessed values.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.shortcuts.common import (
    ENTITY_BY_NAME,
    UNPAID_ROW_ISSUE,
    Session,
    family_generators,
    guessed_row,
    lowest_threshold,
    median_of,
    ranked_signals,
    rows_wanted,
)
from metric_tracker_rl.families import FAMILIES, family_for
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.rows import ROW_FIELDS, row_key


class FeedbackOracleAgent:
    """Use submission feedback as a membership oracle: submit every generator at its lowest
    threshold, drop the rows the feedback names as earning nothing, resubmit. When the feedback
    names no row, probe halves of the generators and keep the half that matched more."""

    name = "feedback_oracle"

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        generators = family_generators(lowest_threshold(session.first))
        graded = session.submit([], generators)
        extra = {m.group(2) for issue in graded.submission_issues if (m := UNPAID_ROW_ISSUE.match(issue))}
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


class PayloadSearchAgent:
    """Blind payload submissions: every family generator at a threshold, raised while the
    aggregate feedback reports extra rows; the last submission is the best one seen."""

    name = "payload_search"
    thresholds = (2.5, 3.5, 4.5)

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        session = Session(env, env.reset(**config))
        best: tuple[float, float] | None = None
        for k, threshold in enumerate(self.thresholds):
            if session.last.done:
                break
            graded = session.submit([], family_generators(threshold))
            score = float(graded.reward or 0.0)
            if best is None or score > best[0]:
                best = (score, threshold)
            if graded.reward_breakdown.get("extra_rows", 0) == 0:
                break
            if k == len(self.thresholds) - 2 and best[1] != threshold and not graded.done:
                return session.submit([], family_generators(best[1]))
        return session.last


class FieldProbeAgent:
    """Per-field feedback counts as a membership oracle (see the module note): two probe
    submissions over the ranking's top candidates, decoded by every subset consistent with
    their counts, then the decoded rows with guessed values."""

    name = "field_probe"
    candidates = 12
    probes = 2
    query_fields = ("anomaly_type", "detection_method", "baseline_value")

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        first = env.reset(**config)
        session = Session(env, first)
        candidates: dict[tuple[str, str], Any] = {}
        for date, signal in ranked_signals(session):
            entity = ENTITY_BY_NAME[signal["entity_name"]]
            family = family_for(entity.entity_type, 1.0 if signal["direction"] == "up" else -1.0)
            if family is not None:
                candidates.setdefault((date, entity.entity_name), (entity, family, signal["direction"]))
            if len(candidates) == self.candidates:
                break
        medians: dict[str, float] = {}
        for entity, _, _ in candidates.values():
            median_of(session, entity.entity_name, medians)
        cells = [(date, *candidate) for (date, _), candidate in candidates.items()]
        patterns = self._design(len(cells), rows_wanted(first))
        counts = []
        for probe in patterns:
            rows = [self._row(cell, medians, right=probe[:, i].astype(bool)) for i, cell in enumerate(cells)]
            graded = session.submit(rows)
            if graded.done:
                return graded
            breakdown = graded.reward_breakdown
            counts.append(
                [breakdown.get("matched_rows", 0)]
                + [breakdown.get(f"{name}_correct", 0) for name in self.query_fields]
            )
        chosen = self._decode(patterns, counts, len(cells))
        report = [self._row(cell, medians) for cell, keep in zip(cells, chosen, strict=True) if keep]
        return session.submit(report)

    def _row(self, cell: tuple, medians: dict[str, float], right: Any = (True, True, True)) -> dict:
        date, entity, family, direction = cell
        baseline = medians.get(entity.entity_name, 0.0)
        row = guessed_row(date, entity, direction, baseline)
        type_right, method_right, baseline_right = (bool(x) for x in right)
        if not type_right:
            row["anomaly_type"] = next(f.anomaly_type for f in FAMILIES if f is not family)
        if not method_right:
            row["detection_method"] = "list_suspicious_dates"
        if not baseline_right:
            row["baseline_value"] = round(baseline + 1e6, 4)
        return row

    def _design(self, n: int, expected: int) -> np.ndarray:
        """Right/wrong patterns (probe x field x candidate) that tell apart as many subsets of
        at most ``expected`` candidates as possible: the best of a few seeded draws."""
        subsets = _subsets(n)
        subsets = subsets[subsets.sum(axis=1) <= expected]
        best, best_distinct = None, -1
        for seed in range(32):
            rng = np.random.default_rng([n, expected, seed])
            patterns = rng.integers(0, 2, size=(self.probes, len(self.query_fields), n))
            signature = subsets @ patterns.reshape(-1, n).T
            distinct = len(np.unique(np.column_stack([subsets.sum(axis=1), signature]), axis=0))
            if distinct > best_distinct:
                best, best_distinct = patterns, distinct
        return best

    @staticmethod
    def _decode(patterns: np.ndarray, counts: list[list[int]], n: int) -> np.ndarray:
        """Each candidate's membership by vote over every subset consistent with the counts."""
        if not counts or n == 0:
            return np.zeros(n, dtype=bool)
        subsets = _subsets(n)
        keep = np.ones(len(subsets), dtype=bool)
        for probe, (matched, *fields) in zip(patterns, counts, strict=False):
            keep &= subsets.sum(axis=1) == matched
            for pattern, count in zip(probe, fields, strict=True):
                keep &= subsets @ pattern == count
        consistent = subsets[keep]
        if len(consistent) == 0:
            return np.zeros(n, dtype=bool)
        return consistent.mean(axis=0) > 0.5


def _subsets(n: int) -> np.ndarray:
    """Every subset of n candidates as a 0/1 row."""
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)
