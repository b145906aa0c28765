"""The grader: one OpenEnv rubric, a pure function of (submitted rows, expected rows, dates).

Score = weighted components minus penalties, clamped to [0, 1]. Every component but
precision is a per-row credit summed over the matched rows and divided by the expected
row count, so each exactly right row adds the same share and an exact subset of j of E
rows scores about j/E. Baseline, delta and severity count only next to a right observed
value. Feedback is aggregate: counts of matched, extra, missing,
duplicate and invalid rows and per-field correct counts. It never says which submitted
row is expected, nor which field of a matched row is wrong, and never names a hidden row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from openenv.core.rubrics.base import Rubric

from metric_tracker_rl import constants as C
from metric_tracker_rl.rows import NUMERIC_FIELDS, AnomalyRow, ValidatedRows, validate_rows

FIELD_CHECKS: tuple[str, ...] = ("anomaly_type", "detection_method", *NUMERIC_FIELDS, "severity")
# The fields derived from a row's observed value. They earn credit only next to a right
# observed value: the baseline is public (the window median) and most severities are
# "low", so on their own they reward a guess of the key, not a reading of the data.
ANCHOR = "observed_value"
ANCHORED: tuple[str, ...] = ("baseline_value", "delta_value", "severity")
# What one exactly right row earns (everything but precision), in units of 1 / expected rows.
ROW_CREDIT = 1.0 - C.GRADE_WEIGHTS["precision"]


@dataclass(frozen=True)
class Truth:
    """What a submission is graded against: the hidden rows and the episode's dates."""

    expected: Sequence[AnomalyRow]
    valid_dates: Collection[str]


@dataclass(frozen=True)
class Match:
    """How a submission lines up with the truth, as counts only."""

    submitted: int
    valid: int
    expected: int
    matched: int
    duplicates: int
    invalid: int
    correct: dict[str, int]  # per field of FIELD_CHECKS: matched rows where it is right
    anchored: dict[str, int]  # per field of ANCHORED: matched rows where it and ANCHOR are right
    exact: int  # matched rows right in every field
    over_limit: bool = False  # more rows than MAX_SUBMISSION_ROWS: nothing was graded

    @property
    def extra(self) -> int:
        return self.valid - self.matched

    @property
    def missing(self) -> int:
        return self.expected - self.matched


def values_match(submitted: float, expected: float) -> bool:
    """Relative tolerance with an absolute floor."""
    tolerance = max(C.NUMERIC_RELATIVE_TOLERANCE * abs(expected), C.NUMERIC_ABSOLUTE_FLOOR)
    return abs(submitted - expected) <= tolerance


def _field_right(name: str, row: AnomalyRow, truth: AnomalyRow) -> bool:
    if name in NUMERIC_FIELDS:
        return values_match(getattr(row, name), getattr(truth, name))
    return getattr(row, name) == getattr(truth, name)


def match_submission(submitted: Sequence[Any], truth: Truth) -> tuple[Match, ValidatedRows]:
    """Line the submission up with the truth; also the validated rows with their public issues."""
    if len(submitted) > C.MAX_SUBMISSION_ROWS:
        issue = (
            f"submission has {len(submitted)} rows; at most {C.MAX_SUBMISSION_ROWS} are accepted. "
            "Nothing was graded."
        )
        nothing = dict.fromkeys(FIELD_CHECKS, 0)
        match = Match(
            len(submitted),
            0,
            len(truth.expected),
            0,
            0,
            len(submitted),
            nothing,
            dict.fromkeys(ANCHORED, 0),
            0,
            over_limit=True,
        )
        return match, ValidatedRows(issues=[issue], invalid=len(submitted))
    checked = validate_rows(submitted, truth.valid_dates)
    expected_by_key = {row.key: row for row in truth.expected}
    correct = dict.fromkeys(FIELD_CHECKS, 0)
    anchored = dict.fromkeys(ANCHORED, 0)
    matched = exact = 0
    for row, key in zip(checked.rows, checked.keys, strict=True):
        hidden = expected_by_key.get(key)
        if hidden is None:
            continue
        matched += 1
        if row is hidden:  # the episode's own row (a generated one): right in every field
            right = FIELD_CHECKS
        else:
            right = [name for name in FIELD_CHECKS if _field_right(name, row, hidden)]
        for name in right:
            correct[name] += 1
            if name in anchored and ANCHOR in right:
                anchored[name] += 1
        exact += len(right) == len(FIELD_CHECKS)
    match = Match(
        len(submitted),
        len(checked.rows),
        len(expected_by_key),
        matched,
        checked.duplicates,
        checked.invalid,
        correct,
        anchored,
        exact,
    )
    return match, checked


# --- the score as named parts: one table read by the rubric, the breakdown and the web UI ---


def _per_expected(count: float, match: Match) -> float:
    return count / match.expected if match.expected else float(match.valid == 0)


COMPONENTS: dict[str, Callable[[Match], float]] = {
    "precision": lambda m: m.matched / m.valid if m.valid else float(m.expected == 0 and not m.over_limit),
    "recall": lambda m: _per_expected(m.matched, m),
    "anomaly_type": lambda m: _per_expected(m.correct["anomaly_type"], m),
    "detection_method": lambda m: _per_expected(m.correct["detection_method"], m),
    "numeric_values": lambda m: _per_expected(
        (m.correct[ANCHOR] + m.anchored["baseline_value"] + m.anchored["delta_value"]) / 3, m
    ),
    "severity": lambda m: _per_expected(m.anchored["severity"], m),
}
PENALTIES: dict[str, Callable[[Match], float]] = {
    # An extra row costs a share of what a correct row earns.
    "extra_row_penalty": lambda m: C.EXTRA_ROW_PENALTY_SHARE * ROW_CREDIT * m.extra / max(m.expected, 1),
    "duplicate_row_penalty": lambda m: C.DUPLICATE_ROW_PENALTY * m.duplicates,
    "invalid_row_penalty": lambda m: C.INVALID_ROW_PENALTY * m.invalid * (not m.over_limit),
    "mass_submission_penalty": lambda m: (
        C.MASS_SUBMISSION_PENALTY if m.extra > C.MASS_SUBMISSION_FACTOR * max(m.expected, 1) else 0.0
    ),
}
assert set(COMPONENTS) == set(C.GRADE_WEIGHTS)


class PartRubric(Rubric):
    """One named part of the score, read from a ``Match``."""

    def __init__(self, part: Callable[[Match], float]) -> None:
        super().__init__()
        self.part = part

    def forward(self, action: Any, observation: Match) -> float:
        return self.part(observation)

    def __call__(self, action: Any, observation: Match) -> float:
        """``Rubric.__call__`` (the score stored as ``last_score``, hooks run), without its
        coroutine checks when no hook is registered: ``forward`` is plain and synchronous."""
        if self._forward_pre_hooks or self._forward_hooks:
            return super().__call__(action, observation)
        score = self.forward(action, observation)
        self.last_score = score
        return score


@dataclass(frozen=True)
class GradeResult:
    score: float
    breakdown: dict[str, float | int]
    issues: list[str]
    correct_row_count: int
    valid_rows: list[AnomalyRow]
    positions: list[int]  # each valid row's index in the submission


class ReportRubric(Rubric):
    """The grader as an OpenEnv rubric: ``rubric(submitted_rows, Truth(...))`` returns the score.

    Each component and penalty is a child rubric named as in the breakdown, so a trainer
    can log them with ``for name, part in rubric.named_rubrics(): part.last_score``.
    ``last_result`` holds the full ``GradeResult`` of the last call.
    """

    def __init__(self) -> None:
        super().__init__()
        for name, part in (*COMPONENTS.items(), *PENALTIES.items()):
            setattr(self, name, PartRubric(part))
        self.last_result: GradeResult | None = None

    def forward(self, action: Sequence[Any], observation: Truth) -> float:
        match, checked = match_submission(action, observation)
        credits = {name: getattr(self, name)(action, match) for name in COMPONENTS}
        penalties = {name: getattr(self, name)(action, match) for name in PENALTIES}
        if match.over_limit:
            credits = dict.fromkeys(credits, 0.0)
        raw = math.fsum(C.GRADE_WEIGHTS[k] * v for k, v in credits.items()) - math.fsum(penalties.values())
        score = 0.0 if match.over_limit else round(min(1.0, max(0.0, raw)), 6)
        self.last_result = GradeResult(
            score,
            breakdown(credits, penalties, score, match),
            [*checked.issues, *summary(match)],
            match.exact,
            checked.rows,
            checked.positions,
        )
        return score


def breakdown(
    credits: dict[str, float], penalties: dict[str, float], score: float, match: Match
) -> dict[str, float | int]:
    """Component credits, penalties, the score and aggregate counts (never a hidden key)."""
    out: dict[str, float | int] = {k: round(v, 6) for k, v in credits.items()}
    out.update({k: round(v, 6) for k, v in penalties.items()})
    out.update(
        score=score,
        submitted_rows=match.submitted,
        valid_rows=match.valid,
        matched_rows=match.matched,
        extra_rows=match.extra,
        duplicate_rows=match.duplicates,
        invalid_rows=match.invalid,
        missing_rows=match.missing,
        expected_rows=match.expected,
        exact_rows=match.exact,
    )
    out.update({f"{name}_correct": match.correct[name] for name in FIELD_CHECKS})
    return out


def summary(match: Match) -> list[str]:
    """The aggregate feedback lines: counts, never which row."""
    if match.over_limit:
        return []
    lines = [
        f"{match.matched} of {match.valid} valid rows match expected anomalies, {match.extra} "
        f"{'is' if match.extra == 1 else 'are'} extra, {match.missing} expected "
        f"{'anomaly is' if match.missing == 1 else 'anomalies are'} missing"
    ]
    if match.matched:
        fields = ", ".join(f"{name} {match.correct[name]}" for name in FIELD_CHECKS)
        lines.append(
            f"of the {match.matched} matched rows, {match.exact} are right in every field; "
            f"right per field: {fields}"
        )
    if PENALTIES["mass_submission_penalty"](match):
        lines.append(
            f"mass submission: {match.extra} extra rows is more than {C.MASS_SUBMISSION_FACTOR}x "
            "the expected row count"
        )
    return lines


def grade_submission(
    submitted: Sequence[Any],
    expected: Sequence[AnomalyRow],
    valid_dates: Collection[str],
    rubric: ReportRubric | None = None,
) -> GradeResult:
    """Grade a submission; deterministic, in [0, 1], a perfect submission scores 1.0."""
    rubric = rubric or ReportRubric()
    rubric(submitted, Truth(expected, valid_dates))
    assert rubric.last_result is not None
    return rubric.last_result
