"""Deterministic funnel data with seeded anomalies and honest ground truth.

Data model: two driver arrays per episode, app-open traffic (days, 24) and step conversion
(4, days, 24). Counts cascade from them by rounding, so clean data is funnel-monotone in
every hour. Every anomaly family is the same mechanism with other parameters: multipliers
on the drivers of one day (plus, for impossible counts, an over-report of one event).

Placement is constructive and verified (``kernels.py``, compiled): for each incident
(the anomalies, then the decoys) candidate multipliers are proposed on a free day, every
canonical detector is evaluated on the changed day, and the first candidate whose only
flag is the intended (day, entity), with the difficulty's margin on every other
statistic, is kept. The window medians move as days change, so the window is checked
and, where needed, each incident is re-placed on its own day against the new medians.
The finished episode is verified once more on its final counts (``kernels.verify``: the
statistics, baselines, deviations and verdicts of ``statistics.py``, which the tests hold
equal), and the statistics it computed are what the analysis methods answer with; if
anything is off, the whole episode is re-drawn from the next deterministic sub-seed.

One attempt is one compiled call (``kernels.generate_episode``): clean drivers from the
episode's normal draws, placement on its uniform draws, and the final verification. The
kernel draws them itself from the state of the attempt's NumPy bit generator (PCG64):
the same numbers, in the same order, as that generator's ``standard_normal`` and then
``random`` would give.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, NamedTuple

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import kernel_paths
from metric_tracker_rl import statistics as S
from metric_tracker_rl.config import ConfigError, EpisodeConfig, Injection, resolve_config
from metric_tracker_rl.families import (
    ENTITY_NAMES_BY_TYPE,
    FAMILIES,
    FAMILY_BY_TYPE,
    MULTI_ROW_SHAPES,
    SHAPES,
    STATISTIC_KINDS,
    opposite,
    same_statistic_decoys,
)

MAX_ATTEMPTS = 64  # whole-episode re-draws before giving up (never reached in tests)
CANDIDATES = 4  # multiplier proposals tried per (day, entity)
NORMALS = (1 + C.NUM_STEPS) * C.NUM_DAYS * (1 + C.HOURS)  # standard normal draws of clean drivers
PLACEMENT_TRIES = 64  # (day, entity) pairs tried per incident
REFINE_ROUNDS = 4  # re-placements against the updated medians before a full re-draw
QUIET_DAYS = 8  # days that neither an incident nor a decoy touches
# Decoys mimic every family whose statistic can move without crossing a threshold
# (impossible counts cannot: any excess is flagged).
DECOY_FAMILIES: tuple[str, ...] = tuple(f.anomaly_type for f in FAMILIES if f.statistic != "quality")

_PROFILE = np.array(C.HOURLY_PROFILE)
_TREND = 1.0 + C.TREND_PER_DAY * (np.arange(C.NUM_DAYS) - (C.NUM_DAYS - 1) / 2)
_LOGIT_BASE = np.log(np.array(C.BASE_STEP_RATES) / (1 - np.array(C.BASE_STEP_RATES)))
# Each entity's position among its type's entity names (event, metric, step or pair index).
_POSITION = np.array([ENTITY_NAMES_BY_TYPE[e.entity_type].index(e.entity_name) for e in S.ENTITIES])
_DIRECTION = {"up": 1, "down": -1, "both": 0}
_ORDER_RATE = S.ENTITY_INDEX[("conversion_rate", "app_open_to_order_placed")]
_PAY_RATE = S.ENTITY_INDEX[("conversion_rate", "app_open_to_payment_successful")]
_RATE_PATH = {  # conversion metric -> (steps on its path)
    name: tuple(range(den + 1, num + 1)) for name, (num, den) in C.CONVERSION_METRICS.items()
}


class GenerationError(RuntimeError):
    """The generator could not honour the config (should not happen for valid configs)."""


class Incident(NamedTuple):
    """One placed anomaly: where it is, what was done to the data and the rows it makes."""

    anomaly_type: str
    day: int
    entity: int  # column of the statistics table (the statistic the incident starts from)
    parameters: dict[str, Any]
    decoy: bool = False  # a strong but sub-threshold movement: flags nothing
    shape: str = "single"  # how it shows (families.SHAPES)
    rows: tuple[int, ...] = ()  # the columns it flags on its day


@dataclass
class Drivers:
    """What the counts cascade from. Steps come first in the step arrays (as events do in
    the generator's counts, (5, days, 24)), so every operation runs over long rows."""

    traffic: np.ndarray  # (days, 24) expected app opens
    steps: np.ndarray  # (4, days, 24) step conversion probabilities
    over_report: np.ndarray  # (4, days, 24) ratio to predecessor an event is over-reported at (0 = none)


@dataclass(frozen=True)
class GeneratedData:
    """The final counts with the statistics their verification computed from them."""

    hourly: np.ndarray  # (days, 24, 5) int64
    incidents: tuple[Incident, ...]
    attempt: int  # whole-episode re-draws before this one verified
    values: np.ndarray  # (days, entities) statistic per entity, from ``hourly``
    base: np.ndarray  # (entities,) baselines
    z: np.ndarray  # (days, entities) deviations in threshold units
    flagged: np.ndarray  # (days, entities) the canonical detectors' verdicts
    spread: np.ndarray  # (entities,) std-from-median
    severity: np.ndarray  # (days, entities) severity index
    delta: np.ndarray  # (days, entities) values - base
    abs_delta: np.ndarray  # (days, entities) |values - base|


# --- clean data ------------------------------------------------------------------------


def _rng(config: EpisodeConfig, attempt: int, stream: int) -> np.random.Generator:
    family_index = ("mixed", *FAMILY_BY_TYPE).index(config.scenario_family)
    entropy = (
        config.seed,
        family_index,
        C.DIFFICULTIES.index(config.difficulty),
        config.anomaly_count,
        config.end_date.toordinal(),
        attempt,
        stream,
    )
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy_words(entropy))))


_WORD = (1 << 64) - 1


def state_words(rng: np.random.Generator) -> np.ndarray:
    """The PCG64 state of ``rng`` as the kernel holds it: (state high, state low,
    increment high, increment low) words."""
    state = rng.bit_generator.state["state"]
    value, increment = state["state"], state["inc"]
    return np.array([value >> 64, value & _WORD, increment >> 64, increment & _WORD], dtype=np.uint64)


@cache
def ziggurat() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's ziggurat tables for standard normals (as Numba ships them for its own
    ``Generator`` support): the layers' k, w and f, and (tail start, its inverse).
    Loaded on first use, with Numba; read-only."""
    from numba.np.random import _constants as Z

    tables = (
        np.array(Z.ki_double, dtype=np.uint64),
        np.array(Z.wi_double, dtype=np.float64),
        np.array(Z.fi_double, dtype=np.float64),
        np.array([Z.ziggurat_nor_r, Z.ziggurat_nor_inv_r], dtype=np.float64),
    )
    for table in tables:
        table.setflags(write=False)
    return tables


def entropy_words(values: tuple[int, ...]) -> np.ndarray:
    """Non-negative integers as the uint32 words ``SeedSequence`` makes of them (each one
    least significant word first, at least one word): the same entropy as passing the
    integers themselves, without NumPy's per-integer conversion."""
    words = []
    for value in values:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
        while value:
            words.append(value & 0xFFFFFFFF)
            value >>= 32
    return np.array(words, dtype=np.uint32)


@cache
def _clean_inputs(difficulty: str, first_weekday: int) -> tuple[np.ndarray, ...]:
    """What clean drivers are drawn around: the expected daily app opens (weekday factors
    and trend, for a window starting on ``first_weekday``), the hourly profile, the step
    conversion logits and the difficulty's noise (daily traffic, hourly traffic, daily
    logit, hourly logit). Cached: read-only."""
    noise = C.NOISE[difficulty]
    weekday = np.array(C.WEEKDAY_FACTORS)[(first_weekday + np.arange(C.NUM_DAYS)) % 7]
    sigma = np.array(
        [noise["daily_traffic"], noise["hourly_traffic"], noise["daily_logit"], noise["hourly_logit"]]
    )
    inputs = (C.BASE_DAILY_APP_OPENS * weekday * _TREND, _PROFILE.copy(), _LOGIT_BASE.copy(), sigma)
    for array in inputs:
        array.setflags(write=False)
    return inputs


def _first_weekday(config: EpisodeConfig) -> int:
    return (config.end_date - dt.timedelta(days=C.NUM_DAYS - 1)).weekday()


def clean_drivers(config: EpisodeConfig, rng: np.random.Generator) -> Drivers:
    """Weekly seasonality, a slow trend and the difficulty's noise; no anomaly yet."""
    traffic = np.empty((C.NUM_DAYS, C.HOURS))
    steps = np.empty((C.NUM_STEPS, C.NUM_DAYS, C.HOURS))
    kernels = kernel_paths.current()  # compiled, or plain Python while a server prepares them

    normals = rng.standard_normal(NORMALS)
    kernels.clean_drivers(normals, *_clean_inputs(config.difficulty, _first_weekday(config)), traffic, steps)
    return Drivers(traffic, steps, np.zeros_like(steps))


def cascade(traffic: np.ndarray, steps: np.ndarray, over_report: np.ndarray) -> np.ndarray:
    """Counts, event first (5, ..., 24), from drivers (traffic (..., 24), steps and
    over-report (4, ..., 24)): each step is the rounded share of the one before.

    ``over_report`` > 0 makes an event's *reported* count that multiple of its
    predecessor (an instrumentation bug); the true count still feeds the next step.
    """
    counts = np.empty((C.NUM_EVENTS,) + traffic.shape)
    np.rint(traffic, out=counts[0])
    for k in range(C.NUM_STEPS):
        np.rint(counts[k] * steps[k], out=counts[k + 1])
    if over_report.any():
        reported = np.rint(counts[:-1] * over_report)
        counts[1:] = np.where(over_report > 0, np.maximum(counts[1:], reported), counts[1:])
    return counts


def hours_last(counts: np.ndarray) -> np.ndarray:
    """Generator counts (5, days, 24) in the episode's layout, (days, 24, 5) int64."""
    return np.moveaxis(counts, 0, -1).astype(np.int64, order="C")


# --- placement -------------------------------------------------------------------------

_FAMILY_ID = {f.anomaly_type: i for i, f in enumerate(FAMILIES)}
_KIND_CODE = {kind: code for code, kind in enumerate(STATISTIC_KINDS)}  # kernels.COUNT ...
_SHAPE_CODE = {shape: code for code, shape in enumerate(SHAPES)}  # kernels.SINGLE ...
_MAX_ENTITIES = max(len(f.entity_names) for f in FAMILIES)
_COUNT = {event: S.ENTITY_INDEX[("event_count", event)] for event in C.EVENTS}
_RATE = {name: S.ENTITY_INDEX[("conversion_rate", name)] for name in C.RATE_METRICS}


def _shape_columns(family: Any, shape: str) -> list[int]:
    """The columns an incident of this family and shape may start from."""
    if shape == "single":
        return [S.ENTITY_INDEX[(family.entity_type, n)] for n in family.entity_names]
    if MULTI_ROW_SHAPES.get(family.anomaly_type) != shape:
        return []
    if shape == "cascade":  # checkout and payment; a payment spike would pass 100 %
        steps = (2, 3) if family.direction == "down" else (2,)
        return [_RATE[C.ADJACENT_RATE_METRICS[k]] for k in steps]
    if shape == "outage":  # checkout and payment
        return [S.ENTITY_INDEX[("funnel_step", C.FUNNEL_STEPS[k])] for k in (2, 3)]
    if shape == "bot_traffic":
        return [S.ENTITY_INDEX[("hourly_mix", C.HOURLY_MIX_ENTITY)]]
    if shape == "partial_load":  # every count moves with the app opens
        return [_COUNT[C.EVENTS[0]]]
    # double firing: menu opens, orders, payments; twice an add-to-cart stays below the menu opens
    return [S.ENTITY_INDEX[("data_quality", C.DATA_QUALITY_PAIRS[pair])] for pair in (0, 2, 3)]


def _signature(shape: str, col: int) -> list[int]:
    """The columns an incident of this shape starting from ``col`` flags on its day."""
    if shape == "single":
        return [col]
    if shape == "partial_load":
        return list(_COUNT.values())
    name = S.ENTITIES[col].entity_name
    if shape == "bot_traffic":  # app opens that never convert
        out_of_app_opens = [_RATE[m] for m, (num, den) in C.CONVERSION_METRICS.items() if den == 0]
        return [col, _COUNT[C.EVENTS[0]], *out_of_app_opens]
    if shape in ("cascade", "outage"):  # a step converts worse for a whole day or hours of it
        step = (C.ADJACENT_RATE_METRICS if shape == "cascade" else C.FUNNEL_STEPS).index(name)
        through = [
            _RATE[m] for m in C.END_TO_END_RATE_METRICS if step in range(*C.CONVERSION_METRICS[m][::-1])
        ]
        rate = _RATE[C.ADJACENT_RATE_METRICS[step]]
        return [col, *dict.fromkeys([rate, *through]), *(_COUNT[e] for e in C.EVENTS[step + 1 :])]
    event = C.DATA_QUALITY_PAIRS.index(name) + 1  # double firing of this event
    rates = [
        _RATE[m] for m, (num, den) in C.CONVERSION_METRICS.items() if event in (num, den) and num - den == 1
    ]
    ending = [_RATE[m] for m in C.END_TO_END_RATE_METRICS if C.CONVERSION_METRICS[m][0] == event]
    return [col, _COUNT[C.EVENTS[event]], *rates, *ending]


def _shape_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (family, shape): how many columns it may start from and which; per (shape,
    column): the rows it makes."""
    count = np.zeros((len(FAMILIES), len(SHAPES)), dtype=np.int64)
    cols = np.full((len(FAMILIES), len(SHAPES), _MAX_ENTITIES), -1, dtype=np.int64)
    signatures = np.zeros((len(SHAPES), S.NUM_ENTITIES, S.NUM_ENTITIES), dtype=np.bool_)
    for f, family in enumerate(FAMILIES):
        for k, shape in enumerate(SHAPES):
            starts = _shape_columns(family, shape)
            count[f, k] = len(starts)
            cols[f, k, : len(starts)] = starts
            for col in starts:
                signatures[k, col, _signature(shape, col)] = True
    return count, cols, signatures


_SHAPE_COUNT, _SHAPE_COLS, SIGNATURES = _shape_tables()
SIGNATURES.setflags(write=False)
# The tables the kernel reads, built once from families.py, statistics.py and constants.py.
FAMILY_TABLES = (
    np.array([_KIND_CODE[f.statistic] for f in FAMILIES]),
    np.array([_DIRECTION[f.direction] for f in FAMILIES]),
    np.array([_FAMILY_ID[opposite(f).anomaly_type] for f in FAMILIES]),
    np.array([f.anomaly_type in DECOY_FAMILIES for f in FAMILIES]),
    np.array([len(f.entity_names) for f in FAMILIES]),
    np.array(
        [
            [S.ENTITY_INDEX[(f.entity_type, n)] for n in f.entity_names]
            + [-1] * (_MAX_ENTITIES - len(f.entity_names))
            for f in FAMILIES
        ]
    ),
    _SHAPE_COUNT,
    _SHAPE_COLS,
)
COLUMNS = (
    S.THRESHOLDS.astype(np.float64),
    np.array([_KIND_CODE[e.statistic] for e in S.ENTITIES]),
    _POSITION,
)
_ALL_DECOY_FAMILIES = np.array([_FAMILY_ID[t] for t in DECOY_FAMILIES], dtype=np.int64)
_ALL_DECOY_FAMILIES.setflags(write=False)  # read-only, as each plan's own pool (``_plan``)


@cache
def _tuning(difficulty: str) -> np.ndarray:
    """The kernel's numbers for a difficulty (read-only: cached)."""
    tuning = np.array(
        [
            C.MARGIN[difficulty],
            C.INCIDENT_REACH[difficulty],
            C.DECOY_MIN_Z[difficulty],
            CANDIDATES,
            _ORDER_RATE,
            _PAY_RATE,
            C.DATA_QUALITY_MIN_EXCESS,
        ],
        dtype=np.float64,
    )
    tuning.setflags(write=False)
    return tuning


@cache
def _limits(difficulty: str, anomalies: int, one_statistic: bool) -> np.ndarray:
    """Decoys (as many as the difficulty asks, or with ``one_statistic`` one on every free day,
    leaving ``QUIET_DAYS`` days untouched), (day, entity) tries per incident and refine rounds,
    for the kernel."""
    free = C.NUM_DAYS - anomalies - QUIET_DAYS
    decoys = max(0, free if one_statistic else min(C.DECOYS[difficulty], free))
    limits = np.array([decoys, PLACEMENT_TRIES, REFINE_ROUNDS], dtype=np.int64)
    limits.setflags(write=False)
    return limits


# What the anomaly schedule calls a placed change's value, and its hours (if any), by shape
# for the several-row shapes and by statistic for the rest.
_PARAMETER_NAMES: dict[str, tuple[str, str | None]] = {
    "cascade": ("step_rate_change", None),
    "partial_load": ("relative_change", None),
    "double_firing": ("doubled_share", "hours"),
    "outage": ("outage_rate_factor", "outage_hours"),
    "bot_traffic": ("extra_app_opens", None),
    "count": ("relative_change", None),
    "rate": ("rate_change_pp", None),
    "funnel": ("outage_rate_factor", "outage_hours"),
    "mix": ("daytime_share_pp", None),
    "quality": ("over_report_ratio", "hours"),
}


def _parameters(statistic: str, shape: str, value: float, start: int, length: int) -> dict[str, Any]:
    """What the anomaly schedule reports of a placed change."""
    name, hours = _PARAMETER_NAMES[statistic if shape == "single" else shape]
    parameters: dict[str, Any] = {name: round(float(value), 4)}
    if hours is not None:
        parameters = {hours: list(range(start, start + length)), **parameters}
    return parameters


@lru_cache(maxsize=1024)
def _plan(
    anomaly_plan: tuple[str, ...], shapes: tuple[str, ...], shared: tuple[bool, ...], one_statistic: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The kernel's form of a plan: the anomalies' family ids, shape codes and shared-day
    requests, and the families decoys may mimic: those of the plan (on entities no incident
    uses), then, with ``one_statistic`` (``families.same_statistic_decoys``), the plan's one
    family on its one entity again, then all. Cached: read-only."""
    plan = (
        np.array([_FAMILY_ID[t] for t in anomaly_plan], dtype=np.int64),
        np.array([_SHAPE_CODE[k] for k in shapes], dtype=np.int64),
        np.array(shared, dtype=np.bool_),
    )
    in_play = np.array(
        [_FAMILY_ID[t] for t in dict.fromkeys(anomaly_plan) if t in DECOY_FAMILIES], dtype=np.int64
    )
    repeat = in_play if one_statistic else in_play[:0]
    for array in (*plan, in_play, repeat):
        array.setflags(write=False)
    return plan, (in_play, repeat, _ALL_DECOY_FAMILIES)


def place(config: EpisodeConfig, rng: np.random.Generator, attempt: int) -> GeneratedData | None:
    """One attempt: clean drivers, the config's anomalies and its difficulty's decoys,
    and the final verification, all in one compiled call (``kernels.generate_episode``);
    None when the noise alone comes too close to a threshold, an incident found no place
    or the final counts did not verify."""
    kernels = kernel_paths.current()  # compiled, or plain Python while a server prepares them

    one_statistic = same_statistic_decoys(config.scenario_family, config.difficulty)
    plan, decoy_pools = _plan(config.anomaly_plan, config.incident_shapes, config.shared_days, one_statistic)
    outcome, hourly, tables, out = kernels.generate_episode(
        state_words(rng),
        ziggurat(),
        _clean_inputs(config.difficulty, _first_weekday(config)),
        plan,
        decoy_pools,
        FAMILY_TABLES,
        SIGNATURES,
        COLUMNS,
        S.LAYOUT,
        _tuning(config.difficulty),
        _limits(config.difficulty, len(config.anomaly_plan), one_statistic),
        SEVERITY_CUTOFFS,
    )
    if outcome <= 0:
        return None
    incidents = tuple(
        Incident(
            FAMILIES[family].anomaly_type,
            day,
            col,
            _parameters(FAMILIES[family].statistic, SHAPES[shape], value, start, length),
            decoy,
            SHAPES[shape],
            () if decoy else tuple(np.flatnonzero(SIGNATURES[shape, col]).tolist()),
        )
        for day, col, value, start, length, family, decoy, shape in zip(
            *(column.tolist() for column in out), strict=True
        )
    )
    return GeneratedData(hourly, incidents, attempt, *tables)


def _inject(drivers: Drivers, hourly: np.ndarray, injection: Injection, dates: tuple[str, ...]) -> None:
    """Apply an explicit ``metric_stddev_shift``: move each metric on each date by
    ``stddev_factor`` x its std-from-median (measured before the shift)."""
    values = S.event_values(hourly)
    base = S.baselines(values)
    spread = np.sqrt(np.mean((values - base) ** 2, axis=0))
    sign = 1.0 if injection.direction == "up" else -1.0
    for date in injection.dates:
        day = dates.index(date)
        for metric in injection.metric_names:
            if metric in C.EVENTS:
                col = S.ENTITY_INDEX[("event_count", metric)]
                factor = max(0.0, 1.0 + sign * injection.stddev_factor * spread[col] / values[day, col])
                event = C.EVENTS.index(metric)
                if event == 0:
                    drivers.traffic[day] *= factor
                else:
                    drivers.steps[event - 1, day] *= factor
            else:
                col = S.ENTITY_INDEX[("conversion_rate", metric)]
                target = max(0.0, values[day, col] + sign * injection.stddev_factor * spread[col])
                path = _RATE_PATH[metric]
                factor = (target / values[day, col]) ** (1.0 / len(path))
                for step in path:
                    drivers.steps[step - 1, day] *= factor
            np.clip(drivers.steps[:, day], 0.0, 1.0, out=drivers.steps[:, day])


def warm_up() -> None:
    """Load the compiled kernels by generating one episode: from Numba's cache in
    milliseconds, or, on the first run after an install or an upgrade, compiled (10 to
    40 s by the machine, once). Servers call it in the background at start."""
    generate(resolve_config(seed=0, difficulty="hard", anomaly_density="high"))


def generate(config: EpisodeConfig) -> GeneratedData:
    """Build the episode's hourly counts and the incidents hidden in them."""
    margin = C.MARGIN[config.difficulty]
    for attempt in range(MAX_ATTEMPTS):
        rng = _rng(config, attempt, 0)
        if config.injections:
            drivers = clean_drivers(config, rng)
            hourly = cascade(drivers.traffic, drivers.steps, drivers.over_report)
            nothing = np.zeros((C.NUM_DAYS, S.NUM_ENTITIES), dtype=bool)
            if _verified(hourly, margin, required=nothing, allowed=nothing) is None:
                continue  # noise alone came too close to a threshold: re-draw
            for injection in config.injections:
                _inject(drivers, hourly, injection, config.dates)
                hourly = cascade(drivers.traffic, drivers.steps, drivers.over_report)
            injected = np.zeros((C.NUM_DAYS, S.NUM_ENTITIES), dtype=bool)
            for injection in config.injections:
                injected[[config.dates.index(d) for d in injection.dates]] = True
            verified = _verified(hourly, margin, required=nothing, allowed=injected)
            if verified is not None:
                return GeneratedData(hours_last(hourly), (), attempt, *verified)
            continue
        placed = place(config, rng, attempt)
        if placed is not None:
            return placed
    if config.injections:
        raise ConfigError(
            "the injected shifts land within the separation margin of a detector threshold (or "
            "move other days across one) for every noise draw; choose a clearly smaller or larger "
            "stddev_factor"
        )
    raise GenerationError(f"could not generate a verified episode for {config}")


# values, baselines, deviations, flags, spread, severity, delta, |delta|
Verified = tuple[np.ndarray, ...]
# The severity ratio and impossible-count percentage cutoffs, for the kernel.
SEVERITY_CUTOFFS = (
    np.array(C.SEVERITY_RATIO_CUTOFFS, dtype=np.float64),
    np.array(C.DATA_QUALITY_SEVERITY_PCT_CUTOFFS, dtype=np.float64),
)


def _verified(
    counts: np.ndarray, margin: float, required: np.ndarray, allowed: np.ndarray
) -> Verified | None:
    """The final check (as for placed episodes) on final counts: the statistics it
    computed, or None."""
    holds, tables = verify(counts, margin, required, allowed)
    return tables if holds else None


def verify(
    counts: np.ndarray, margin: float, required: np.ndarray, allowed: np.ndarray
) -> tuple[bool, Verified]:
    """``kernels.verify`` on final counts (5, days, 24): whether every required (day,
    entity) flags, nothing flags that is not allowed, every value keeps the margin, and
    impossible counts are absent or at least the minimum excess; and the tables it
    computed (values, baselines, deviations, flags, spread, severity, delta, |delta|)."""
    kernels = kernel_paths.current()

    tables = kernels.verify_tables(counts.shape[1], S.NUM_ENTITIES)
    holds = kernels.verify(
        np.ascontiguousarray(counts, dtype=np.float64),
        required,
        allowed,
        COLUMNS,
        S.LAYOUT,
        margin,
        C.DATA_QUALITY_MIN_EXCESS,
        SEVERITY_CUTOFFS,
        tables,
    )
    return holds, tables
