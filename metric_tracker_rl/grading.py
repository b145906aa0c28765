"""The grader: a pure function of (submitted rows, expected rows, valid dates).

Score = weighted components (SPEC §7) minus penalties, clamped to [0, 1]. Feedback talks
only about the rows the agent sent and about counts; it never names a hidden row.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from metric_tracker_rl import constants as C
from metric_tracker_rl.families import ANOMALY_TYPES, ENTITY_NAMES_BY_TYPE
from metric_tracker_rl.rows import ROW_FIELDS, AnomalyRow

_NUMERIC_FIELDS = ("baseline_value", "observed_value", "delta_value")
_PENALTIES = ("extra_row_penalty", "duplicate_row_penalty", "invalid_row_penalty", "mass_submission_penalty")


@dataclass(frozen=True)
class ValidatedRows:
    """Submitted rows split into valid unique rows, with per-row feedback."""

    rows: list[AnomalyRow] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # index of each valid row in the input
    issues: list[str] = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class GradeResult:
    score: float
    breakdown: dict[str, float | int]
    issues: list[str]
    correct_row_count: int
    valid_rows: list[AnomalyRow]


def describe_validation_error(err: ValidationError) -> str:
    """One line per failing field: 'field.path: message'."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "row"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def validate_rows(raw_rows: Sequence[Any], valid_dates: Collection[str]) -> ValidatedRows:
    """Parse rows, reject malformed ones and flag duplicate keys (first occurrence wins)."""
    out = ValidatedRows()
    seen: set[str] = set()
    invalid = duplicates = 0
    for i, raw in enumerate(raw_rows):
        if isinstance(raw, AnomalyRow):
            row = raw
        else:
            if not isinstance(raw, Mapping):
                out.issues.append(f"row {i}: invalid: expected an object with fields {list(ROW_FIELDS)}")
                invalid += 1
                continue
            try:
                # Keys outside the row schema (e.g. an assessment's "threshold") are ignored.
                row = AnomalyRow.model_validate({k: raw[k] for k in ROW_FIELDS if k in raw})
            except ValidationError as err:
                out.issues.append(f"row {i}: invalid: {describe_validation_error(err)}")
                invalid += 1
                continue
        problem = _semantic_problem(row, valid_dates)
        if problem:
            out.issues.append(f"row {i} ({row.key}): invalid: {problem}")
            invalid += 1
            continue
        if row.key in seen:
            out.issues.append(f"row {i} ({row.key}): duplicate key; only the first row counts")
            duplicates += 1
            continue
        seen.add(row.key)
        out.rows.append(row)
        out.positions.append(i)
    return ValidatedRows(out.rows, out.positions, out.issues, invalid, duplicates)


def _semantic_problem(row: AnomalyRow, valid_dates: Collection[str]) -> str | None:
    if row.date not in valid_dates:
        return f"date {row.date!r} is not a date of this episode"
    names = ENTITY_NAMES_BY_TYPE[row.entity_type]
    if row.entity_name not in names:
        return f"entity_name {row.entity_name!r} is not a {row.entity_type} entity (one of {list(names)})"
    if row.anomaly_type not in ANOMALY_TYPES:
        return f"anomaly_type {row.anomaly_type!r} is unknown (one of {list(ANOMALY_TYPES)})"
    if not row.detection_method:
        return "detection_method is empty"
    return None


def values_match(submitted: float, expected: float) -> bool:
    """Relative tolerance with an absolute floor."""
    tolerance = max(C.NUMERIC_RELATIVE_TOLERANCE * abs(expected), C.NUMERIC_ABSOLUTE_FLOOR)
    return abs(submitted - expected) <= tolerance


def grade_submission(
    submitted: Sequence[Any],
    expected: Sequence[AnomalyRow],
    valid_dates: Collection[str],
) -> GradeResult:
    """Grade a submission; deterministic, in [0, 1], a perfect submission scores 1.0."""
    if len(submitted) > C.MAX_SUBMISSION_ROWS:
        issue = (
            f"submission has {len(submitted)} rows; at most {C.MAX_SUBMISSION_ROWS} are accepted. "
            "Nothing was graded."
        )
        nothing = dict.fromkeys(C.GRADE_WEIGHTS, 0.0)
        no_penalty = dict.fromkeys(_PENALTIES, 0.0)
        breakdown = _breakdown(
            nothing,
            no_penalty,
            0.0,
            submitted=len(submitted),
            valid=0,
            matched=0,
            duplicates=0,
            invalid=len(submitted),
            expected=len(expected),
        )
        return GradeResult(0.0, breakdown, [issue], 0, [])

    checked = validate_rows(submitted, valid_dates)
    issues = list(checked.issues)
    expected_by_key = {row.key: row for row in expected}
    n_expected = len(expected_by_key)
    n_valid = len(checked.rows)

    matched = type_ok = method_ok = severity_ok = all_ok = 0
    numeric_credit = 0.0
    for position, row in zip(checked.positions, checked.rows, strict=True):
        truth = expected_by_key.get(row.key)
        if truth is None:
            issues.append(f"row {position} ({row.key}): extra row, not an expected anomaly")
            continue
        matched += 1
        wrong = []
        if row.anomaly_type == truth.anomaly_type:
            type_ok += 1
        else:
            wrong.append("anomaly_type")
        if row.detection_method == truth.detection_method:
            method_ok += 1
        else:
            wrong.append("detection_method")
        numeric_hits = 0
        for name in _NUMERIC_FIELDS:
            if values_match(getattr(row, name), getattr(truth, name)):
                numeric_hits += 1
            else:
                wrong.append(f"{name} (outside tolerance)")
        numeric_credit += numeric_hits / len(_NUMERIC_FIELDS)
        if row.severity == truth.severity:
            severity_ok += 1
        else:
            wrong.append("severity")
        if wrong:
            issues.append(f"row {position} ({row.key}): matched, but wrong: {', '.join(wrong)}")
        else:
            all_ok += 1

    extra = n_valid - matched
    missing = n_expected - matched
    if missing:
        issues.append(f"{missing} expected anomal{'y is' if missing == 1 else 'ies are'} missing")

    denominator = max(n_expected, 1)
    components = {
        "precision": matched / n_valid if n_valid else 0.0,
        "recall": matched / n_expected if n_expected else (1.0 if n_valid == 0 else 0.0),
        "anomaly_type": type_ok / denominator,
        "detection_method": method_ok / denominator,
        "numeric_values": numeric_credit / denominator,
        "severity": severity_ok / denominator,
    }
    if n_expected == 0 and n_valid == 0:
        components = dict.fromkeys(components, 1.0)
    penalties = {
        "extra_row_penalty": min(C.EXTRA_ROW_PENALTY * extra, C.EXTRA_ROW_PENALTY_CAP),
        "duplicate_row_penalty": C.DUPLICATE_ROW_PENALTY * checked.duplicates,
        "invalid_row_penalty": C.INVALID_ROW_PENALTY * checked.invalid,
        "mass_submission_penalty": (
            C.MASS_SUBMISSION_PENALTY if extra > C.MASS_SUBMISSION_FACTOR * max(n_expected, 1) else 0.0
        ),
    }
    if penalties["mass_submission_penalty"]:
        issues.append(
            f"mass submission: {extra} extra rows is more than {C.MASS_SUBMISSION_FACTOR}x "
            "the expected row count"
        )
    raw = math.fsum(C.GRADE_WEIGHTS[k] * v for k, v in components.items())
    raw -= math.fsum(penalties.values())
    score = round(min(1.0, max(0.0, raw)), 6)

    breakdown = _breakdown(
        components,
        penalties,
        score,
        submitted=len(submitted),
        valid=n_valid,
        matched=matched,
        duplicates=checked.duplicates,
        invalid=checked.invalid,
        expected=n_expected,
    )
    return GradeResult(score, breakdown, issues, all_ok, checked.rows)


def _breakdown(
    components: dict[str, float],
    penalties: dict[str, float],
    score: float,
    *,
    submitted: int,
    valid: int,
    matched: int,
    duplicates: int,
    invalid: int,
    expected: int,
) -> dict[str, float | int]:
    """Component credits, penalties, the score and the row counts (never a hidden key)."""
    breakdown: dict[str, float | int] = {k: round(v, 6) for k, v in components.items()}
    breakdown.update({k: round(v, 6) for k, v in penalties.items()})
    breakdown.update(
        score=score,
        submitted_rows=submitted,
        valid_rows=valid,
        matched_rows=matched,
        extra_rows=valid - matched,
        duplicate_rows=duplicates,
        invalid_rows=invalid,
        missing_rows=expected - matched,
        expected_rows=expected,
    )
    return breakdown
