"""The read-only analysis methods (docs/task.md, Analysis methods). Each is a lookup in the episode's
precomputed statistics plus a small computation; none sees the hidden truth."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis.registry import REGISTRY, MethodError, method, parse_arguments
from metric_tracker_rl.episode import Episode, anomaly_type_for, threshold_description
from metric_tracker_rl.evidence import EVIDENCE_RULE
from metric_tracker_rl.families import ENTITY_TYPES, FAMILIES, STATISTIC_KINDS, Family
from metric_tracker_rl.rows import ROW_FIELDS, RowObject, validate_rows

ENTITY_BY_NAME: dict[str, S.Entity] = {e.entity_name: e for e in S.ENTITIES}
_ENTITY_TYPE_OF_COL = np.array([e.entity_type for e in S.ENTITIES])
SIGNALS_PER_DATE = 5  # list_suspicious_dates: the strongest signals shown per date
EntityType = Literal[ENTITY_TYPES]  # type: ignore[valid-type]


# --- argument models -------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        """Strict tool schemas send every argument: null for an optional one means its default."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: v for k, v in data.items() if v is not None or k not in fields or fields[k].is_required()}


class NoArgs(_Args):
    pass


class DateArgs(_Args):
    date: str = Field(description="ISO date YYYY-MM-DD inside the window (see list_dates)")


class DateEntityArgs(DateArgs):
    entity_name: str = Field(description="Entity name (see list_entities)")


class SuspiciousArgs(_Args):
    limit: int = Field(default=5, ge=1, le=C.NUM_DAYS, description="How many dates to return")
    entity_type: EntityType | None = Field(
        default=None, description="Rank by the signals of this entity type only (default: every entity)"
    )


class RawDataArgs(_Args):
    limit: int = Field(default=3, ge=1, le=C.NUM_DAYS, description="How many daily rows to return")


class RowsArgs(_Args):
    rows: list[RowObject] = Field(
        max_length=C.MAX_SUBMISSION_ROWS, description="Rows in the submission schema"
    )


class MetricArgs(_Args):
    metric_name: str = Field(description="Any entity name: event, conversion metric, funnel step, ...")


class GeneratorArgs(_Args):
    metric_name: str | None = Field(default=None, description="Restrict to one entity")
    metric_names: list[str] | None = Field(default=None, description="Restrict to these entities")
    threshold_multiplier: float = Field(
        default=2.0,
        ge=C.MIN_THRESHOLD_MULTIPLIER,
        le=100.0,
        allow_inf_nan=False,
        description=(
            f"Flag where |value - median| > threshold_multiplier x std_from_median "
            f"(at least {C.MIN_THRESHOLD_MULTIPLIER})"
        ),
    )


class GeneratorSpec(GeneratorArgs):
    method_name: str = Field(description="A get_*_rows generator method")


class PayloadGeneratorArgs(_Args):
    generator_methods: list[GeneratorSpec] = Field(
        min_length=1,
        max_length=32,
        description="get_*_rows generator specs: method_name, metric_name(s), threshold_multiplier",
    )


# --- helpers ---------------------------------------------------------------------------


def _day(episode: Episode, date: str) -> int:
    index = episode.date_index.get(date)
    if index is None:
        raise MethodError(f"unknown date {date!r}; the window is {episode.dates[0]}..{episode.dates[-1]}")
    return index


def _entity(name: str, statistics: tuple[str, ...]) -> S.Entity:
    entity = ENTITY_BY_NAME.get(name)
    if entity is None or entity.statistic not in statistics:
        allowed = [e.entity_name for e in S.ENTITIES if e.statistic in statistics]
        raise MethodError(f"unknown entity_name {name!r}; expected one of {allowed}")
    return entity


def _cols(kind: str) -> np.ndarray:
    return {
        "count": S.COUNT_COLS,
        "rate": S.RATE_COLS,
        "funnel": S.FUNNEL_COLS,
        "mix": S.MIX_COLS,
        "quality": S.QUALITY_COLS,
    }[kind]


def _round(x: float) -> float:
    return round(float(x), C.ROUND_DIGITS)


def _daily_record(episode: Episode, day: int) -> dict[str, Any]:
    values = episode.values[day]
    return {
        "date": episode.dates[day],
        "weekday": episode.weekdays[day],
        "counts": {e: int(values[c]) for e, c in zip(C.EVENTS, S.COUNT_COLS, strict=True)},
        "rates_pct": {m: _round(values[c]) for m, c in zip(C.RATE_METRICS, S.RATE_COLS, strict=True)},
    }


# --- overview and discovery ------------------------------------------------------------


@method("task_overview", "overview", NoArgs, cost=1)
def task_overview(episode: Episode, args: NoArgs) -> dict[str, Any]:
    """Task shape: visible config, expected row count (null where the difficulty hides it),
    the anomaly families with their entities, detection methods and generators, public
    thresholds, severity cut-offs and the submission row schema."""
    return {
        "config": episode.visible_config(),
        "expected_row_count": episode.shown_row_count(),
        "window": {"start": episode.dates[0], "end": episode.dates[-1], "days": len(episode.dates)},
        "families": [
            {
                "anomaly_type": f.anomaly_type,
                "entity_type": f.entity_type,
                "detection_method": f.detection_method,
                "generator_method": f.generator_method,
                "description": f.description,
            }
            for f in FAMILIES
        ],
        "thresholds": {e.entity_name: threshold_description(e)["value"] for e in S.ENTITIES},
        "threshold_units": {
            "event_count": "relative change vs median",
            "conversion_rate": "percentage points vs median",
            "funnel_step": "relative drop of the lowest hourly step rate vs median step rate",
            "hourly_mix": "share points of daytime app opens vs median",
            "data_quality": "any excess of a step over its predecessor",
        },
        "severity": {
            "levels": list(C.SEVERITY_LEVELS),
            "ratio_of_delta_to_threshold_cutoffs": list(C.SEVERITY_RATIO_CUTOFFS),
            "data_quality_excess_pct_of_predecessor_cutoffs": list(C.DATA_QUALITY_SEVERITY_PCT_CUTOFFS),
        },
        "row_schema": list(ROW_FIELDS),
        "delta_value": "observed_value - baseline_value, values rounded to 4 decimals",
        "grading_rule": EVIDENCE_RULE,
    }


@method("list_dates", "overview", NoArgs, cost=1)
def list_dates(episode: Episode, args: NoArgs) -> dict[str, Any]:
    """The dates of the window with their weekdays."""
    return {
        "dates": [{"date": d, "weekday": w} for d, w in zip(episode.dates, episode.weekdays, strict=True)]
    }


@method("list_entities", "overview", NoArgs, cost=1)
def list_entities(episode: Episode, args: NoArgs) -> dict[str, Any]:
    """Entity names by entity type, and the conversion metric definitions."""
    by_type: dict[str, list[str]] = {}
    for e in S.ENTITIES:
        by_type.setdefault(e.entity_type, []).append(e.entity_name)
    return {"entities": by_type, "conversion_metric_definitions": conversion_metric_definitions()}


def conversion_metric_definitions() -> dict[str, str]:
    return {
        name: f"{C.EVENTS[num]} / {C.EVENTS[den]} * 100" for name, (num, den) in C.CONVERSION_METRICS.items()
    }


@method("rows_for_date", "discovery", DateArgs, cost=3)
def rows_for_date(episode: Episode, args: DateArgs) -> dict[str, Any]:
    """The daily counts and conversion rates of one date, next to the window medians."""
    day = _day(episode, args.date)
    record = _daily_record(episode, day)
    record["median_counts"] = {
        e: _round(episode.base[c]) for e, c in zip(C.EVENTS, S.COUNT_COLS, strict=True)
    }
    record["median_rates_pct"] = {
        m: _round(episode.base[c]) for m, c in zip(C.RATE_METRICS, S.RATE_COLS, strict=True)
    }
    return record


@method("hourly_rows_for_date", "targeted", DateArgs, cost=3)
def hourly_rows_for_date(episode: Episode, args: DateArgs) -> dict[str, Any]:
    """The 24 hourly rows of one date, and the hourly-mix assessment: daytime share of app
    opens (08:00-19:59) against its median."""
    day = _day(episode, args.date)
    rows = [
        {"hour": h, **{e: int(episode.hourly[day, h, i]) for i, e in enumerate(C.EVENTS)}}
        for h in range(C.HOURS)
    ]
    return {
        "date": args.date,
        "hourly_rows": rows,
        "assessments": [episode.assessment(day, int(c)) for c in S.MIX_COLS],
    }


@method("compare_rate_to_median", "targeted", DateEntityArgs, cost=1)
def compare_rate_to_median(episode: Episode, args: DateEntityArgs) -> dict[str, Any]:
    """Assess one conversion rate on one date against its window median (percentage points)."""
    day = _day(episode, args.date)
    return episode.assessment(day, _entity(args.entity_name, ("rate",)).index)


@method("compare_count_to_median", "targeted", DateEntityArgs, cost=1)
def compare_count_to_median(episode: Episode, args: DateEntityArgs) -> dict[str, Any]:
    """Assess one event's daily count on one date against its window median (relative change)."""
    day = _day(episode, args.date)
    return episode.assessment(day, _entity(args.entity_name, ("count",)).index)


@method("detect_funnel_break", "targeted", DateArgs, cost=3)
def detect_funnel_break(episode: Episode, args: DateArgs) -> dict[str, Any]:
    """Assess every funnel step on one date: the lowest hourly step rate of the day
    against the step's median rate (hours with impossible counts are left out)."""
    day = _day(episode, args.date)
    return {"date": args.date, "assessments": [episode.assessment(day, int(c)) for c in S.FUNNEL_COLS]}


@method("check_impossible_counts", "targeted", DateArgs, cost=3)
def check_impossible_counts(episode: Episode, args: DateArgs) -> dict[str, Any]:
    """Assess every step pair on one date for impossible counts (a step above the step
    before it), with the hours where it happened."""
    day = _day(episode, args.date)
    hourly = episode.hourly[day]
    excess = hourly[:, 1:] - hourly[:, :-1]
    out = []
    for k, col in enumerate(S.QUALITY_COLS):
        item = episode.assessment(day, int(col))
        item["hours"] = [int(h) for h in np.flatnonzero(excess[:, k] > 0)]
        out.append(item)
    return {"date": args.date, "assessments": out}


@method("list_suspicious_dates", "discovery", SuspiciousArgs, cost=2)
def list_suspicious_dates(episode: Episode, args: SuspiciousArgs) -> dict[str, Any]:
    """Dates ranked by their most unusual statistics, over every entity (daily counts and
    rates, funnel steps, the hourly mix, impossible counts) or over one entity_type: each
    date's top signals with their direction and robust z-score (|value - window median| /
    (1.4826 x median absolute deviation, at least a tenth of the entity's detection
    threshold), rounded to 0.1; any impossible count is off the scale at 99.9). A ranking,
    not a verdict: unusual days are not anomalies until their family's detection method
    flags them."""
    scores = episode.unusualness
    if args.entity_type is not None:
        scores = np.where(np.equal(_ENTITY_TYPE_OF_COL, args.entity_type), scores, 0.0)
    top = scores.max(axis=1)
    order = np.argsort(-top, kind="stable")[: args.limit]
    # Every listed date's strongest signals at once, as plain Python values.
    chosen = scores[order]
    cols = np.argsort(-chosen, axis=1, kind="stable")[:, :SIGNALS_PER_DATE]
    picked = np.take_along_axis(chosen, cols, axis=1).tolist()
    ups = (np.take_along_axis(episode.values[order], cols, axis=1) > episode.base[cols]).tolist()
    dates = []
    for day, row, values, up, best in zip(
        order.tolist(), cols.tolist(), picked, ups, top[order].tolist(), strict=True
    ):
        signals = [
            {
                "entity_type": S.ENTITIES[c].entity_type,
                "entity_name": S.ENTITIES[c].entity_name,
                "direction": "up" if rises else "down",
                "score": round(value, 1),
            }
            for c, value, rises in zip(row, values, up, strict=True)
            if value > 0
        ]
        dates.append(
            {
                "date": episode.dates[day],
                "weekday": episode.weekdays[day],
                "score": round(best, 1),
                "top_metric": signals[0]["entity_name"] if signals else None,
                "signals": signals,
            }
        )
    return {"dates": dates}


@method("show_raw_data", "discovery", RawDataArgs, cost=1, cost_per_row=2)
def show_raw_data(episode: Episode, args: RawDataArgs) -> dict[str, Any]:
    """The first `limit` daily rows of the window (counts and rates), without medians."""
    return {"rows": [_daily_record(episode, d) for d in range(args.limit)]}


@method("preview_submission", "submission", RowsArgs, cost=1)
def preview_submission(episode: Episode, args: RowsArgs) -> dict[str, Any]:
    """Check rows against the submission schema without grading them: invalid rows,
    duplicates and the rows that would be graded."""
    checked = validate_rows(args.rows, set(episode.dates))
    return {
        "rows": len(args.rows),
        "valid_rows": len(checked.rows),
        "invalid_rows": checked.invalid,
        "duplicate_rows": checked.duplicates,
        "issues": checked.issues,
    }


# --- statistics ------------------------------------------------------------------------


@method("get_metric_median", "statistic", MetricArgs, cost=1)
def get_metric_median(episode: Episode, args: MetricArgs) -> dict[str, Any]:
    """The window baseline of one entity's statistic (median; 0 for impossible counts)."""
    entity = _entity(args.metric_name, STATISTIC_KINDS)
    return {"metric_name": entity.entity_name, "median": _round(episode.base[entity.index])}


@method("get_metric_std_dev_from_median", "statistic", MetricArgs, cost=1)
def get_metric_std_dev_from_median(episode: Episode, args: MetricArgs) -> dict[str, Any]:
    """std_dev_from_median = sqrt(mean((x - median)^2)) of one entity's daily statistic."""
    entity = _entity(args.metric_name, STATISTIC_KINDS)
    return {
        "metric_name": entity.entity_name,
        "median": _round(episode.base[entity.index]),
        "std_dev_from_median": _round(episode.spread[entity.index]),
    }


# --- generators ------------------------------------------------------------------------


# What each generator method selects: (statistic kinds, direction, anomaly type or None
# for the type the deviation's sign gives).
Selection = tuple[tuple[str, ...], str, str | None]
GENERATOR_SELECTIONS: dict[str, Selection] = {
    **{f.generator_method: ((f.statistic,), f.direction, f.anomaly_type) for f in FAMILIES},
    "get_rows_with_abs_diff_from_median_gt": (("count", "rate"), "both", None),
    "get_median_filter_rows": (STATISTIC_KINDS, "both", None),
}
Hit = tuple[int, int, str]  # (day, column, anomaly type) of a generated row


def generator_hits(episode: Episode, args: GeneratorArgs, selection: Selection) -> list[Hit]:
    """The one generator mechanism: (day, column, anomaly type) where the deviation from
    the baseline exceeds threshold_multiplier x std_from_median on the given side, in row
    order (date, entity_type, entity_name). Nothing else filters them."""
    kinds, direction, anomaly_type = selection
    if args.metric_name is not None and args.metric_names is not None:
        raise MethodError("give metric_name or metric_names, not both")
    names = [args.metric_name] if args.metric_name is not None else args.metric_names
    if names is None:
        columns = _kind_mask(kinds)
    else:
        columns = np.zeros(S.NUM_ENTITIES, dtype=bool)
        columns[[_entity(n, kinds).index for n in names]] = True
    delta = episode.delta
    limit = args.threshold_multiplier * episode.spread
    if direction == "up":
        hit = delta > limit
    elif direction == "down":
        hit = delta < -limit
    else:
        hit = episode.abs_delta > limit
    hit &= columns
    days, places = np.nonzero(hit[:, _ROW_ORDER])  # by day, then in the order of columns
    cols = _ROW_ORDER[places]
    hits = []
    for day, col, deviation in zip(days.tolist(), cols.tolist(), delta[days, cols].tolist(), strict=True):
        kind = anomaly_type or anomaly_type_for(col, deviation)
        if kind != "normal":
            hits.append((day, col, kind))
    return hits


@cache
def _kind_mask(kinds: tuple[str, ...]) -> np.ndarray:
    """Which columns hold a statistic of these kinds."""
    mask = np.zeros(S.NUM_ENTITIES, dtype=bool)
    mask[np.concatenate([_cols(k) for k in kinds])] = True
    mask.setflags(write=False)
    return mask


# The columns in (entity_type, entity_name) order: rows of a day are listed so.
_ROW_ORDER = np.array(
    sorted(range(S.NUM_ENTITIES), key=lambda c: (S.ENTITIES[c].entity_type, S.ENTITIES[c].entity_name))
)


def _generator(name: str, doc: str):
    """The generator method ``name``: its selection's rows, described by ``doc``."""
    selection = GENERATOR_SELECTIONS[name]

    def generate(episode: Episode, args: GeneratorArgs) -> dict[str, Any]:
        rows = [episode.row(*hit) for hit in generator_hits(episode, args, selection)]
        return {"rows": rows, "row_count": len(rows)}

    generate.__name__, generate.__doc__ = name, doc
    return generate


GENERATOR_NOTE = (
    "A hint, not evidence: a row earns credit only once its detection method flagged it in this episode."
)


def _family_doc(family: Family) -> str:
    return (
        f"Rows of {family.anomaly_type} ({family.entity_type}): days where the {family.statistic} "
        f"statistic deviates {'in either direction' if family.direction == 'both' else family.direction} "
        f"from its median by more than threshold_multiplier x std_from_median. {GENERATOR_NOTE}"
    )


_GENERATOR_DOCS = {
    **{f.generator_method: _family_doc(f) for f in FAMILIES},
    "get_rows_with_abs_diff_from_median_gt": (
        "Rows for daily counts and conversion rates whose |value - median| exceeds "
        f"threshold_multiplier x std_from_median; the sign picks spike or drop. {GENERATOR_NOTE}"
    ),
    "get_median_filter_rows": (
        "The broadest filter: every entity statistic (counts, rates, funnel steps, hourly "
        "mix, impossible counts) whose deviation from its median exceeds threshold_multiplier x "
        f"std_from_median on a side its family can flag. {GENERATOR_NOTE}"
    ),
}
for _name in GENERATOR_SELECTIONS:
    method(_name, "generator", GeneratorArgs, cost=1, cost_per_row=C.GENERATOR_ROW_COST)(
        _generator(_name, _GENERATOR_DOCS[_name])
    )


GENERATOR_METHODS: tuple[str, ...] = tuple(
    name for name, spec in REGISTRY.items() if spec.kind == "generator"
)


def build_payload(episode: Episode, specs: list[GeneratorSpec]) -> list[dict[str, Any]]:
    """Run generator specs and merge their rows (first row per key wins)."""
    return [episode.row(*hit) for hit in payload_hits(episode, specs)]


def payload_hits(episode: Episode, specs: list[GeneratorSpec]) -> list[Hit]:
    """``build_payload``'s rows as hits: a row's key is its (day, column), so the first
    hit per (day, column) wins."""
    merged: dict[tuple[int, int], Hit] = {}
    for spec in specs:
        if spec.method_name not in GENERATOR_SELECTIONS:
            raise MethodError(
                f"unknown generator method {spec.method_name!r}; available: {list(GENERATOR_METHODS)}"
            )
        selection = GENERATOR_SELECTIONS[spec.method_name]
        for hit in generator_hits(episode, spec, selection):  # a spec is a GeneratorArgs
            merged.setdefault(hit[:2], hit)
    return list(merged.values())


def parse_generator_specs(raw: Any) -> list[GeneratorSpec]:
    """Validate a payload_generators list (the action field) with precise errors."""
    parsed = parse_arguments("payload_generator", {"generator_methods": raw})
    return list(parsed.generator_methods)  # type: ignore[attr-defined]


@method("payload_generator", "submission", PayloadGeneratorArgs, cost=1, cost_per_row=C.GENERATOR_ROW_COST)
def payload_generator(episode: Episode, args: PayloadGeneratorArgs) -> dict[str, Any]:
    """Build (not grade) the rows that a payload_generators submission would send: each
    entry names a get_*_rows method, optional metric_name(s) and a threshold_multiplier. A
    hint, not evidence: a row earns credit only once its detection method flagged it in this
    episode."""
    rows = build_payload(episode, list(args.generator_methods))
    return {"rows": rows, "row_count": len(rows)}
