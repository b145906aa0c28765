"""The anomaly-row schema shared by the generator (hidden truth), the analysis methods
(generated rows, assessments) and the grader. Plain pydantic, no server imports."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

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


class AnomalyRow(BaseModel):
    """One reported anomaly: a (date, entity) pair with its family, method and values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field(description="ISO date YYYY-MM-DD inside the episode window")
    entity_type: EntityType
    entity_name: str
    anomaly_type: str
    detection_method: str
    baseline_value: float
    observed_value: float
    delta_value: float
    severity: Severity

    @field_validator("baseline_value", "observed_value", "delta_value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number (NaN and Infinity are not allowed)")
        return value

    @property
    def key(self) -> str:
        """Rows are matched on date|entity_type|entity_name."""
        return f"{self.date}|{self.entity_type}|{self.entity_name}"


# A row as calls carry it: any object, so that a malformed row is reported as an invalid
# row rather than refusing the whole call; its published schema is AnomalyRow's.
RowObject = Annotated[dict[str, Any], WithJsonSchema(AnomalyRow.model_json_schema())]
