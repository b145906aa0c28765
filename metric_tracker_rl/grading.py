"""The grader: one OpenEnv rubric, a pure function of (submitted rows, expected rows,
dates, the episode's evidence).

Only evidence earns credit: a row counts when the episode's own calls of its detection
method flagged it (``evidence.Evidence``). A supported row's fields are then graded against
that answer; an unsupported row earns nothing and costs what an extra row costs, whether or
not it is in the truth. Score = weighted components minus penalties, clamped to [0, 1].
Every component but precision is a per-row credit summed over the supported rows and
divided by the expected row count, so each exactly right row adds the same share and an
exact subset of j of E rows scores about j/E. Baseline, delta and severity count only next
to a right observed value. Feedback names each unsupported row with the call it lacks and
each field of a supported row that differs from its detection answer: the agent's own
history. It never reads the truth for an unsupported row, so nothing it says depends on
which unsupported rows happen to be true.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from openenv.core.rubrics.base import Rubric

from metric_tracker_rl import constants as C
from metric_tracker_rl.evidence import Evidence
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
class Grounds:
    """What a submission is graded on: the hidden rows, the episode's dates and the evidence
    its detection calls gathered."""

    expected: Sequence[AnomalyRow]
    valid_dates: Collection[str]
    evidence: Evidence


@dataclass(frozen=True)
class Match:
    """How a submission lines up with the evidence and the truth: counts, and the per-row
    notes that name only what the agent's own calls established."""

    submitted: int
    valid: int
    expected: int
    matched: int  # supported rows (each is an expected row: the detectors' verdicts are the truth)
    unsupported: int  # valid rows no detection call of this episode flagged
    duplicates: int
    invalid: int
    correct: dict[str, int]  # per field of FIELD_CHECKS: matched rows where it is right
    anchored: dict[str, int]  # per field of ANCHORED: matched rows where it and ANCHOR are right
    exact: int  # matched rows right in every field
    over_limit: bool = False  # more rows than MAX_SUBMISSION_ROWS: nothing was graded
    notes: tuple[str, ...] = ()  # per row: unsupported rows, supported rows with differing fields

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


def match_submission(submitted: Sequence[Any], grounds: Grounds) -> tuple[Match, ValidatedRows]:
    """Line the submission up with the evidence and the truth; also the validated rows with
    their public issues."""
    if len(submitted) > C.MAX_SUBMISSION_ROWS:
        issue = (
            f"submission has {len(submitted)} rows; at most {C.MAX_SUBMISSION_ROWS} are accepted. "
            "Nothing was graded."
        )
        nothing = dict.fromkeys(FIELD_CHECKS, 0)
        match = Match(
            len(submitted),
            0,
            len(grounds.expected),
            0,
            0,
            0,
            len(submitted),
            nothing,
            dict.fromkeys(ANCHORED, 0),
            0,
            over_limit=True,
        )
        return match, ValidatedRows(issues=[issue], invalid=len(submitted))
    checked = validate_rows(submitted, grounds.valid_dates)
    expected_by_key = {row.key: row for row in grounds.expected}
    evidence = grounds.evidence
    correct = dict.fromkeys(FIELD_CHECKS, 0)
    anchored = dict.fromkeys(ANCHORED, 0)
    matched = unsupported = exact = 0
    notes: list[str] = []
    for row, key, position in zip(checked.rows, checked.keys, checked.positions, strict=True):
        if not evidence.supports(row):  # decided by the agent's own calls: the truth is not read
            unsupported += 1
            notes.append(f"row {position} ({key}): unsupported: {evidence.gap(row)}")
            continue
        # A flagged answer is an expected row: the truth is exactly what the detectors flag.
        # (Evidence made up outside an episode may say otherwise: such a row is an extra row.)
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
        if len(right) == len(FIELD_CHECKS):
            exact += 1
        else:
            differing = ", ".join(name for name in FIELD_CHECKS if name not in right)
            notes.append(
                f"row {position} ({key}): differs from {row.detection_method}'s answer in {differing}"
            )
    match = Match(
        len(submitted),
        len(checked.rows),
        len(expected_by_key),
        matched,
        unsupported,
        checked.duplicates,
        checked.invalid,
        correct,
        anchored,
        exact,
        notes=tuple(notes),
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
    """The grader as an OpenEnv rubric: ``rubric(submitted_rows, Grounds(...))`` returns the score.

    Each component and penalty is a child rubric named as in the breakdown, so a trainer
    can log them with ``for name, part in rubric.named_rubrics(): part.last_score``.
    ``last_result`` holds the full ``GradeResult`` of the last call.
    """

    def __init__(self) -> None:
        super().__init__()
        for name, part in (*COMPONENTS.items(), *PENALTIES.items()):
            setattr(self, name, PartRubric(part))
        self.last_result: GradeResult | None = None

    def forward(self, action: Sequence[Any], observation: Grounds) -> float:
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
            [*checked.issues, *match.notes, *summary(match)],
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
        unsupported_rows=match.unsupported,
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
    """The summary lines: counts over the agent's own evidence, and the expected row count."""
    if match.over_limit:
        return []
    lines = [
        f"valid rows: {match.valid}; supported by this episode's detection calls: {match.matched} "
        f"(these earn credit); unsupported: {match.unsupported} (each costs as an extra row); "
        f"expected anomaly rows not reported: {match.missing} of {match.expected}"
    ]
    if match.matched:
        fields = ", ".join(f"{name} {match.correct[name]}" for name in FIELD_CHECKS)
        lines.append(
            f"supported rows matching their detection answer in every field: {match.exact} of "
            f"{match.matched}; right per field: {fields}"
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
    evidence: Evidence,
    rubric: ReportRubric | None = None,
) -> GradeResult:
    """Grade a submission against the truth and the episode's evidence; deterministic, in
    [0, 1]; a perfect submission of supported rows scores 1.0."""
    rubric = rubric or ReportRubric()
    rubric(submitted, Grounds(expected, valid_dates, evidence))
    assert rubric.last_result is not None
    return rubric.last_result
