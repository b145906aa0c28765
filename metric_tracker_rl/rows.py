"""The anomaly-row schema shared by the generator (hidden truth), the analysis methods
(generated rows, assessments) and the grader, with the one row key and the one row
validation. Plain pydantic, no server imports."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema

from metric_tracker_rl.families import ANOMALY_TYPES, ENTITY_NAMES_BY_TYPE

Severity = Literal["low", "medium", "high", "critical"]
EntityType = Literal["conversion_rate", "event_count", "funnel_step", "hourly_mix", "data_quality"]

ROW_FIELDS: tuple[str, ...] = (
    "date",
    "entity_type",
    "entity_name",
    "anomaly_type",
    "detection_method",
    "baseline_value",
    "observed_value",
    "delta_value",
    "severity",
)
KEY_FIELDS: tuple[str, ...] = ROW_FIELDS[:3]
_ROW_FIELD_SET = frozenset(ROW_FIELDS)
NUMERIC_FIELDS: tuple[str, ...] = ("baseline_value", "observed_value", "delta_value")


def row_key(row: Mapping[str, Any] | AnomalyRow) -> str:
    """Rows are matched on date|entity_type|entity_name."""
    if isinstance(row, AnomalyRow):
        return row.key
    return f"{row.get('date')}|{row.get('entity_type')}|{row.get('entity_name')}"  # KEY_FIELDS


class AnomalyRow(BaseModel):
    """One reported anomaly: a (date, entity) pair with its family, method and values."""

    # Values must be finite: NaN and Infinity are refused by pydantic-core itself.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    date: str = Field(description="ISO date YYYY-MM-DD inside the episode window")
    entity_type: EntityType
    entity_name: str
    anomaly_type: str
    detection_method: str
    baseline_value: float
    observed_value: float
    delta_value: float
    severity: Severity

    @property
    def key(self) -> str:
        return f"{self.date}|{self.entity_type}|{self.entity_name}"


def describe_validation_error(err: ValidationError) -> str:
    """One line per failing field: 'field.path: message'."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "row"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class ValidatedRows:
    """Submitted rows split into valid unique rows, with public per-row problems."""

    rows: list[AnomalyRow] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # index of each valid row in the input
    keys: list[str] = field(default_factory=list)  # each valid row's key
    issues: list[str] = field(default_factory=list)  # invalid and duplicate rows only
    invalid: int = 0
    duplicates: int = 0


def validate_rows(raw_rows: Sequence[Any], valid_dates: Collection[str]) -> ValidatedRows:
    """Parse rows, reject malformed ones and flag duplicate keys (first occurrence wins).

    Whether a row is well-formed or a duplicate is public; nothing here reads the truth.
    """
    rows: list[AnomalyRow] = []
    positions: list[int] = []
    keys: list[str] = []
    issues: list[str] = []
    seen: set[str] = set()
    invalid = duplicates = 0
    for i, parsed in enumerate(_parse_rows(raw_rows)):
        if isinstance(parsed, str):
            issues.append(f"row {i}: invalid: {parsed}")
            invalid += 1
            continue
        row = parsed
        key = row.key
        problem = _semantic_problem(row, valid_dates)
        if problem:
            issues.append(f"row {i} ({key}): invalid: {problem}")
            invalid += 1
            continue
        if key in seen:
            issues.append(f"row {i} ({key}): duplicate key; only the first row counts")
            duplicates += 1
            continue
        seen.add(key)
        rows.append(row)
        positions.append(i)
        keys.append(key)
    return ValidatedRows(rows, positions, keys, issues, invalid, duplicates)


_ROW_LIST = TypeAdapter(list[AnomalyRow])


def canonical_rows(raw_rows: list[dict[str, Any]]) -> list[AnomalyRow]:
    """Rows the server built, as ``AnomalyRow``s, validated in one call."""
    return _ROW_LIST.validate_python(raw_rows)


def _parse_rows(raw_rows: Sequence[Any]) -> list[AnomalyRow | str]:
    """Each raw row as an ``AnomalyRow``, or why it is malformed. Keys outside the row
    schema (e.g. an assessment's "threshold") are ignored; ``AnomalyRow``s are taken as
    they are. Plain well-formed rows are validated in one call; on any error, each of
    them is validated on its own, for its own message."""
    parsed: list[Any] = list(raw_rows)
    plain = [i for i, raw in enumerate(raw_rows) if type(raw) is dict and raw.keys() <= _ROW_FIELD_SET]
    try:
        for i, row in zip(plain, _ROW_LIST.validate_python([raw_rows[i] for i in plain]), strict=True):
            parsed[i] = row
    except ValidationError:
        pass
    for i, raw in enumerate(parsed):
        if not isinstance(raw, AnomalyRow):
            parsed[i] = _parse_row(raw)
    return parsed


def _parse_row(raw: Any) -> AnomalyRow | str:
    if not isinstance(raw, Mapping):
        return f"expected an object with fields {list(ROW_FIELDS)}"
    fields = raw if raw.keys() <= _ROW_FIELD_SET else {k: raw[k] for k in ROW_FIELDS if k in raw}
    try:
        return AnomalyRow.model_validate(fields)
    except ValidationError as err:
        return describe_validation_error(err)


_ENTITIES = frozenset((kind, name) for kind, names in ENTITY_NAMES_BY_TYPE.items() for name in names)
_ANOMALY_TYPES = frozenset(ANOMALY_TYPES)


def _semantic_problem(row: AnomalyRow, valid_dates: Collection[str]) -> str | None:
    if row.date not in valid_dates:
        return f"date {row.date!r} is not a date of this episode"
    if (row.entity_type, row.entity_name) not in _ENTITIES:
        names = ENTITY_NAMES_BY_TYPE[row.entity_type]
        return f"entity_name {row.entity_name!r} is not a {row.entity_type} entity (one of {list(names)})"
    if row.anomaly_type not in _ANOMALY_TYPES:
        return f"anomaly_type {row.anomaly_type!r} is unknown (one of {list(ANOMALY_TYPES)})"
    if not row.detection_method:
        return "detection_method is empty"
    return None


# A row as calls carry it: any object, so that a malformed row is reported as an invalid
# row rather than refusing the whole call; its published schema is AnomalyRow's.
RowObject = Annotated[dict[str, Any], WithJsonSchema(AnomalyRow.model_json_schema())]
