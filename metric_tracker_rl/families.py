"""The seven anomaly families: one table, one place.

Each family names its entity type, the entity names it can hit, its canonical detection
method, the statistic that detector reads, and the direction it flags. The generator,
the analysis methods and the grader all read this table; nothing else hard-codes a family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from metric_tracker_rl import constants as C

Direction = Literal["up", "down", "both"]
StatisticKind = Literal["count", "rate", "funnel", "mix", "quality"]
STATISTIC_KINDS: tuple[StatisticKind, ...] = get_args(StatisticKind)  # in this order everywhere


@dataclass(frozen=True)
class Family:
    """One anomaly family (docs/data.md, Anomaly families)."""

    anomaly_type: str
    entity_type: str
    entity_names: tuple[str, ...]
    detection_method: str
    generator_method: str
    statistic: StatisticKind
    direction: Direction  # which side of the baseline this family flags
    description: str


FAMILIES: tuple[Family, ...] = (
    Family(
        "rate_drop_from_median",
        "conversion_rate",
        C.RATE_METRICS,
        "compare_rate_to_median",
        "get_rate_drop_from_median_rows",
        "rate",
        "down",
        "A conversion rate fell below its window median for a whole day.",
    ),
    Family(
        "rate_spike_from_median",
        "conversion_rate",
        C.RATE_METRICS,
        "compare_rate_to_median",
        "get_rate_spike_from_median_rows",
        "rate",
        "up",
        "A conversion rate rose above its window median for a whole day.",
    ),
    Family(
        "absolute_drop_in_event_count",
        "event_count",
        C.EVENTS,
        "compare_count_to_median",
        "get_absolute_drop_in_event_count_rows",
        "count",
        "down",
        "A funnel event's daily count fell well below its window median.",
    ),
    Family(
        "absolute_spike_in_event_count",
        "event_count",
        C.EVENTS,
        "compare_count_to_median",
        "get_absolute_spike_in_event_count_rows",
        "count",
        "up",
        "A funnel event's daily count rose well above its window median.",
    ),
    Family(
        "funnel_break",
        "funnel_step",
        C.FUNNEL_STEPS,
        "detect_funnel_break",
        "get_funnel_break_rows",
        "funnel",
        "down",
        "One funnel step went down for a few hours: its hourly step rate collapsed.",
    ),
    Family(
        "hourly_traffic_mix_shift",
        "hourly_mix",
        (C.HOURLY_MIX_ENTITY,),
        "hourly_rows_for_date",
        "get_hourly_traffic_mix_shift_rows",
        "mix",
        "both",
        "App-open traffic moved between daytime and night while the daily total stayed normal.",
    ),
    Family(
        "instrumentation_data_quality_issue",
        "data_quality",
        C.DATA_QUALITY_PAIRS,
        "check_impossible_counts",
        "get_instrumentation_data_quality_issue_rows",
        "quality",
        "up",
        "Impossible counts: a funnel step logged more events than the step before it.",
    ),
)

FAMILY_BY_TYPE: dict[str, Family] = {f.anomaly_type: f for f in FAMILIES}
ANOMALY_TYPES: tuple[str, ...] = tuple(FAMILY_BY_TYPE)
ENTITY_TYPES: tuple[str, ...] = (
    "conversion_rate",
    "event_count",
    "funnel_step",
    "hourly_mix",
    "data_quality",
)
ENTITY_NAMES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "conversion_rate": C.RATE_METRICS,
    "event_count": C.EVENTS,
    "funnel_step": C.FUNNEL_STEPS,
    "hourly_mix": (C.HOURLY_MIX_ENTITY,),
    "data_quality": C.DATA_QUALITY_PAIRS,
}
ANOMALY_TYPES_BY_ENTITY_TYPE: dict[str, tuple[str, ...]] = {
    et: tuple(f.anomaly_type for f in FAMILIES if f.entity_type == et) for et in ENTITY_TYPES
}


def family_for(entity_type: str, deviation: float) -> Family | None:
    """The family that a deviation of this sign from the baseline belongs to, for an entity
    type (None where no family flags that side, e.g. a funnel step that rose)."""
    if deviation == 0:
        return None
    side = "up" if deviation > 0 else "down"
    for family in FAMILIES:
        if family.entity_type == entity_type and family.direction in (side, "both"):
            return family
    return None


def opposite(family: Family) -> Family:
    """The family of the same entity type that flags the other side (itself if none does)."""
    other = {"up": "down", "down": "up"}.get(family.direction)
    for candidate in FAMILIES:
        if candidate.entity_type == family.entity_type and candidate.direction == other:
            return candidate
    return family


DETECTION_METHOD_BY_ENTITY_TYPE: dict[str, str] = {f.entity_type: f.detection_method for f in FAMILIES}


def same_statistic_decoys(scenario_family: str, difficulty: str) -> bool:
    """Whether a scenario's one statistic is volatile (``SAME_STATISTIC_DECOYS``): a scenario of
    one family with one entity (mix shifts alone) on those difficulties, whose every decoy is a
    day of that statistic and whose budget has no date-level allowance."""
    family = FAMILY_BY_TYPE.get(scenario_family)
    return difficulty in C.SAME_STATISTIC_DECOYS and family is not None and len(family.entity_names) == 1


SCENARIO_FAMILIES: tuple[str, ...] = ("mixed", *ANOMALY_TYPES)


# --- how an incident shows ------------------------------------------------------------------
# An incident of a family shows in one statistic ("single") or, as real incidents often do,
# in several at once. Every statistic it moves across its threshold is an expected row.
Shape = Literal["single", "cascade", "partial_load", "double_firing", "outage", "bot_traffic"]
SHAPES: tuple[Shape, ...] = get_args(Shape)  # in this order everywhere (the kernel's codes)
# The shape an incident of each family takes when it shows in several statistics.
MULTI_ROW_SHAPES: dict[str, Shape] = {
    "rate_drop_from_median": "cascade",
    "rate_spike_from_median": "cascade",
    "absolute_drop_in_event_count": "partial_load",
    "absolute_spike_in_event_count": "partial_load",
    "instrumentation_data_quality_issue": "double_firing",
    "funnel_break": "outage",
    "hourly_traffic_mix_shift": "bot_traffic",
}
