"""An episode: generated data plus every statistic, computed once at reset.

Analysis methods and the ground truth both build rows through ``Episode.row``, so the
hidden expected rows carry exactly the values the public methods return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.config import EpisodeConfig
from metric_tracker_rl.families import FAMILY_BY_TYPE, Family, family_for
from metric_tracker_rl.generator import Incident, generate
from metric_tracker_rl.rows import AnomalyRow, canonical_rows

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _type_name(family: Family | None) -> str:
    return family.anomaly_type if family is not None else "normal"


# Per column, the anomaly type of a deviation below and above the baseline.
_TYPES_BY_SIDE = tuple(
    (_type_name(family_for(e.entity_type, -1.0)), _type_name(family_for(e.entity_type, 1.0)))
    for e in S.ENTITIES
)


def anomaly_type_for(col: int, deviation: float) -> str:
    """The anomaly type of a deviation of this sign for an entity ('normal' if none flags
    it): ``families.family_for``'s, looked up by side."""
    if deviation == 0:
        return "normal"
    return _TYPES_BY_SIDE[col][deviation > 0]


@dataclass(frozen=True, eq=False)
class Episode:
    config: EpisodeConfig
    dates: tuple[str, ...]
    hourly: np.ndarray  # (days, 24, 5) int64
    values: np.ndarray  # (days, entities) statistic per entity
    base: np.ndarray  # (entities,) baseline (median / 0)
    z: np.ndarray  # (days, entities) deviation in threshold units
    flagged: np.ndarray  # (days, entities) canonical detector verdicts
    spread: np.ndarray  # (entities,) std-from-median: sqrt(mean((x - baseline)^2))
    severity: np.ndarray  # (days, entities) severity index (statistics.severity_level)
    delta: np.ndarray  # (days, entities) value - baseline
    abs_delta: np.ndarray  # (days, entities) |value - baseline|
    incidents: tuple[Incident, ...]  # the anomalies behind the expected rows
    decoys: tuple[Incident, ...]  # sub-threshold movements that flag nothing
    # Rows built so far, by (day, entity, anomaly type): each is computed once per episode,
    # as a dict and, where the grader reads it, as an AnomalyRow.
    _rows: dict[tuple[int, int, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _models: dict[tuple[int, int, str], AnomalyRow] = field(default_factory=dict, repr=False)

    @cached_property
    def _rounded_base(self) -> tuple[float, ...]:
        return tuple(round(b, C.ROUND_DIGITS) for b in self.base.tolist())

    @cached_property
    def date_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.dates)}

    @cached_property
    def unusualness(self) -> np.ndarray:
        """Robust z-score per (day, entity), what discovery views rank by: |value - window
        median| over 1.4826 x the median absolute deviation, capped at MAX_DISCOVERY_SCORE.
        The scale is at least DISCOVERY_SCALE_FLOOR of the entity's detection threshold (in
        the statistic's units), so a statistic that takes few values (the lowest hourly step
        rate of small night hours) does not look unusual one step of its resolution away.
        Impossible counts break an invariant: any excess is off the scale. Anomalies and
        decoys alike stand out."""
        median = np.median(self.values, axis=0)
        deviation = np.abs(self.values - median)
        floor = C.DISCOVERY_SCALE_FLOOR * S.threshold_units(median)
        scale = np.maximum(C.MAD_TO_SIGMA * np.median(deviation, axis=0), floor)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(deviation > 0, deviation / scale, 0.0)
        z = np.minimum(z, min(C.DISCOVERY_SCORE_CEILING[self.config.difficulty], C.MAX_DISCOVERY_SCORE))
        z[:, S.QUALITY_COLS] = np.where(self.values[:, S.QUALITY_COLS] > 0, C.MAX_DISCOVERY_SCORE, 0.0)
        return z

    @cached_property
    def weekdays(self) -> tuple[str, ...]:
        return tuple(_WEEKDAYS[dt.date.fromisoformat(d).weekday()] for d in self.dates)

    @cached_property
    def expected_count(self) -> int:
        """How many rows the truth holds (without building them)."""
        return int(self.flagged.sum())

    @cached_property
    def expected_rows(self) -> tuple[AnomalyRow, ...]:
        """The hidden truth: every (date, entity) a canonical detector flags."""
        days, cols = np.nonzero(self.flagged)
        return tuple(self.row_models(zip(days.tolist(), cols.tolist(), repeat(None))))

    @property
    def row_count_hidden(self) -> bool:
        """Whether the difficulty keeps the number of expected rows from the agent."""
        return self.config.difficulty in C.HIDDEN_ROW_COUNT and not self.config.injections

    def shown_row_count(self) -> int | None:
        """The expected row count as an agent sees it: None where the difficulty hides it."""
        return None if self.row_count_hidden else self.expected_count

    def visible_config(self) -> dict[str, Any]:
        """The config an agent sees: anomaly_count is the number of incidents (anomalies), each
        of which may show as several rows; with injections, the rows they produced."""
        visible = self.config.visible()
        if self.config.injections:
            visible["anomaly_count"] = self.expected_count
        return visible

    def applied_synthetic_generators(self) -> list[dict[str, Any]]:
        """The explicit reset-time injections, as applied."""
        return [inj.describe() for inj in self.config.injections]

    def row(self, day: int, col: int, anomaly_type: str | None = None) -> dict[str, Any]:
        """A row in the submission schema with the canonical values for (day, entity) (a
        fresh dict each call; the values are computed once per episode). Without an
        anomaly type, the one the deviation's sign gives."""
        return dict(self._row(day, col, anomaly_type))

    def row_models(self, hits: Iterable[tuple[int, int, str | None]]) -> list[AnomalyRow]:
        """``row`` of each (day, column, anomaly type or None) as an ``AnomalyRow``, built
        once per episode (those not built yet are validated in one call): the hidden truth
        and the generated rows of a submission are the same objects where they agree."""
        keys = [
            (
                day,
                col,
                anomaly_type if anomaly_type is not None else anomaly_type_for(col, self.z.item(day, col)),
            )
            for day, col, anomaly_type in hits
        ]
        models = self._models
        missing = [key for key in dict.fromkeys(keys) if key not in models]
        if missing:
            models.update(zip(missing, canonical_rows([self._row(*key) for key in missing]), strict=True))
        return [models[key] for key in keys]

    def _row(self, day: int, col: int, anomaly_type: str | None) -> dict[str, Any]:
        if anomaly_type is None:
            anomaly_type = anomaly_type_for(col, self.z.item(day, col))
        cached = self._rows.get((day, col, anomaly_type))
        if cached is None:
            cached = self._rows[(day, col, anomaly_type)] = self._build_row(day, col, anomaly_type)
        return cached

    def _build_row(self, day: int, col: int, anomaly_type: str) -> dict[str, Any]:
        entity = S.ENTITIES[col]
        baseline = self._rounded_base[col]
        observed = round(self.values.item(day, col), C.ROUND_DIGITS)
        return {
            "date": self.dates[day],
            "entity_type": entity.entity_type,
            "entity_name": entity.entity_name,
            "anomaly_type": anomaly_type,
            "detection_method": entity.detection_method,
            "baseline_value": baseline,
            "observed_value": observed,
            "delta_value": round(observed - baseline, C.ROUND_DIGITS),
            "severity": C.SEVERITY_LEVELS[self.severity.item(day, col)],
        }

    def assessment(self, day: int, col: int) -> dict[str, Any]:
        """What a targeted detection method answers: the row, or 'normal', plus the rule."""
        entity = S.ENTITIES[col]
        out = self.row(day, col)
        if not self.flagged[day, col]:
            out["anomaly_type"] = "normal"
            out["severity"] = None
        out["threshold"] = threshold_description(entity)
        return out

    def anomaly_schedule(self) -> list[dict[str, Any]]:
        if self.config.injections:
            return self.applied_synthetic_generators()
        schedule = []
        for incident in sorted(self.incidents + self.decoys, key=lambda i: (i.day, i.entity)):
            entity = S.ENTITIES[incident.entity]
            item = {
                "date": self.dates[incident.day],
                "anomaly_type": "normal" if incident.decoy else incident.anomaly_type,
                "entity_type": entity.entity_type,
                "entity_name": entity.entity_name,
                "detection_method": FAMILY_BY_TYPE[incident.anomaly_type].detection_method,
                "parameters": incident.parameters,
            }
            if incident.decoy:
                item["decoy_of"] = incident.anomaly_type
            else:
                item["shape"] = incident.shape
                item["rows"] = [S.ENTITIES[col].entity_name for col in incident.rows]
            schedule.append(item)
        return schedule


def threshold_description(entity: S.Entity) -> dict[str, Any]:
    """The public rule a canonical detector applies to one entity."""
    rules = {
        "count": ("relative_change", "flag when |observed - baseline| / baseline > value"),
        "rate": ("percentage_points", "flag when |observed - baseline| > value"),
        "funnel": (
            "relative_drop",
            "flag when the day's lowest hourly step rate < (1 - value) x baseline",
        ),
        "mix": ("share_points", "flag when |daytime share - baseline| > value"),
        "quality": ("count", "flag when the day's excess of impossible counts > 0"),
    }
    unit, rule = rules[entity.statistic]
    value = 0.0 if entity.statistic == "quality" else entity.threshold
    return {"value": value, "unit": unit, "rule": rule}


def build_episode(config: EpisodeConfig) -> Episode:
    """Generate (or fetch from the cache) the episode for a config."""
    return _build_cached(config)


@lru_cache(maxsize=256)
def _build_cached(config: EpisodeConfig) -> Episode:
    data = generate(config)  # its statistics were computed from its final counts
    incidents = tuple(i for i in data.incidents if not i.decoy)
    decoys = tuple(i for i in data.incidents if i.decoy)
    return Episode(
        config,
        config.dates,
        _frozen(data.hourly),
        _frozen(data.values),
        _frozen(data.base),
        _frozen(data.z),
        _frozen(data.flagged),
        _frozen(data.spread),
        _frozen(data.severity),
        _frozen(data.delta),
        _frozen(data.abs_delta),
        incidents,
        decoys,
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
