"""Deterministic funnel data with seeded anomalies and honest ground truth.

Data model: two driver arrays per episode, app-open traffic (days, 24) and step conversion
(days, 24, 4). Counts cascade from them by rounding, so clean data is funnel-monotone in
every hour. Every anomaly family is the same mechanism with other parameters: multipliers
on the drivers of one day (plus, for impossible counts, an over-report of one event).

Placement is constructive and verified: for an incident we propose a batch of candidate
multipliers, evaluate every canonical detector on the changed day at once (NumPy), and
keep the first candidate whose only flag is the intended (day, entity), with the
difficulty's margin on every other statistic. The finished episode is verified again on
the final data; if anything is off, the whole episode is re-drawn from the next
deterministic sub-seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.config import ConfigError, EpisodeConfig, Injection
from metric_tracker_rl.families import FAMILIES, FAMILY_BY_TYPE, Family, opposite

MAX_ATTEMPTS = 64  # whole-episode re-draws before giving up (never reached in tests)
CANDIDATES = 16  # multiplier proposals evaluated at once per (day, entity)
PLACEMENT_TRIES = 24  # (day, entity) pairs tried per incident
# Decoys mimic every family whose statistic can move without crossing a threshold
# (impossible counts cannot: any excess is flagged).
DECOY_FAMILIES: tuple[str, ...] = tuple(f.anomaly_type for f in FAMILIES if f.statistic != "quality")
REFINE_ROUNDS = 4  # re-placements against the updated medians before a full re-draw

_HOURS = np.arange(C.HOURS)
_DAYTIME = np.isin(_HOURS, list(C.DAYTIME_HOURS))
_PROFILE = np.array(C.HOURLY_PROFILE)
_LOGIT_BASE = np.log(np.array(C.BASE_STEP_RATES) / (1 - np.array(C.BASE_STEP_RATES)))
_RATE_PATH = {  # conversion metric -> (steps on its path)
    name: tuple(range(den + 1, num + 1)) for name, (num, den) in C.CONVERSION_METRICS.items()
}


class GenerationError(RuntimeError):
    """The generator could not honour the config (should not happen for valid configs)."""


@dataclass(frozen=True)
class Incident:
    """One placed anomaly: where it is and what was done to the data."""

    anomaly_type: str
    day: int
    entity: int  # column of the statistics table
    parameters: dict[str, Any] = field(default_factory=dict)
    decoy: bool = False  # a strong but sub-threshold movement: flags nothing


@dataclass
class Drivers:
    traffic: np.ndarray  # (days, 24) expected app opens
    steps: np.ndarray  # (days, 24, 4) step conversion probabilities
    over_report: np.ndarray  # (days, 24, 4) ratio to predecessor an event is over-reported at (0 = none)


@dataclass(frozen=True)
class GeneratedData:
    hourly: np.ndarray  # (days, 24, 5) int64
    incidents: tuple[Incident, ...]
    attempt: int


# --- clean data ------------------------------------------------------------------------


def _rng(config: EpisodeConfig, attempt: int, stream: int) -> np.random.Generator:
    family_index = ("mixed", *FAMILY_BY_TYPE).index(config.scenario_family)
    entropy = [
        config.seed,
        family_index,
        C.DIFFICULTIES.index(config.difficulty),
        config.anomaly_count,
        config.end_date.toordinal(),
        attempt,
        stream,
    ]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def clean_drivers(config: EpisodeConfig, rng: np.random.Generator) -> Drivers:
    noise = C.NOISE[config.difficulty]
    start = config.end_date - dt.timedelta(days=C.NUM_DAYS - 1)
    weekday = np.array(C.WEEKDAY_FACTORS)[(start.weekday() + np.arange(C.NUM_DAYS)) % 7]
    trend = 1.0 + C.TREND_PER_DAY * (np.arange(C.NUM_DAYS) - (C.NUM_DAYS - 1) / 2)
    daily = C.BASE_DAILY_APP_OPENS * weekday * trend
    daily = daily * np.exp(rng.normal(0.0, noise["daily_traffic"], C.NUM_DAYS))
    hourly_noise = np.exp(rng.normal(0.0, noise["hourly_traffic"], (C.NUM_DAYS, C.HOURS)))
    traffic = daily[:, None] * _PROFILE[None, :] * hourly_noise
    logit = (
        _LOGIT_BASE[None, None, :]
        + rng.normal(0.0, noise["daily_logit"], (C.NUM_DAYS, 1, C.NUM_STEPS))
        + rng.normal(0.0, noise["hourly_logit"], (C.NUM_DAYS, C.HOURS, C.NUM_STEPS))
    )
    steps = 1.0 / (1.0 + np.exp(-logit))
    return Drivers(traffic, steps, np.zeros_like(steps))


def cascade(traffic: np.ndarray, steps: np.ndarray, over_report: np.ndarray) -> np.ndarray:
    """Counts (..., 24, 5) from drivers: each step is the rounded share of the one before.

    ``over_report`` > 0 makes an event's *reported* count that multiple of its
    predecessor (an instrumentation bug); the true count still feeds the next step.
    """
    counts = np.empty(traffic.shape + (C.NUM_EVENTS,))
    counts[..., 0] = np.rint(traffic)
    for k in range(C.NUM_STEPS):
        counts[..., k + 1] = np.rint(counts[..., k] * steps[..., k])
    if over_report.any():
        reported = np.rint(counts[..., :-1] * over_report)
        counts[..., 1:] = np.where(over_report > 0, np.maximum(counts[..., 1:], reported), counts[..., 1:])
    return counts


# --- proposals: one per statistic kind, all returning driver multipliers -----------------


@dataclass
class Proposal:
    traffic: np.ndarray  # (K, 24) multipliers
    steps: np.ndarray  # (K, 24, 4) multipliers
    over_report: np.ndarray  # (K, 24, 4) absolute ratios (0 = none)
    parameters: list[dict[str, Any]]


def _target_z(
    rng: np.random.Generator, ctx: DayContext, sign: np.ndarray, reach_scale: float = 1.0
) -> np.ndarray:
    """Normalised deviation of the changed entity: beyond the flag line for an anomaly
    (|z| in [1 + margin, 1 + margin + reach]); clearly inside it for a decoy."""
    k = sign.shape[0]
    if ctx.decoy:
        return sign * rng.uniform(C.DECOY_MIN_Z[ctx.difficulty], 1.0 - ctx.margin - 0.02, k)
    return sign * (1.0 + ctx.margin + 0.02 + rng.uniform(0.0, ctx.reach * reach_scale, k))


def _inside_z(rng: np.random.Generator, size: Any, margin: float) -> np.ndarray:
    return rng.uniform(-(1.0 - margin), 1.0 - margin, size) * 0.9


def _uniform_proposal(k: int) -> Proposal:
    return Proposal(
        np.ones((k, C.HOURS)),
        np.ones((k, C.HOURS, C.NUM_STEPS)),
        np.zeros((k, C.HOURS, C.NUM_STEPS)),
        [{} for _ in range(k)],
    )


def _signs(rng: np.random.Generator, family: Family, k: int) -> np.ndarray:
    if family.direction == "up":
        return np.ones(k)
    if family.direction == "down":
        return -np.ones(k)
    return rng.choice([-1.0, 1.0], size=k)


def _counts_to_drivers(p: Proposal, factors: np.ndarray) -> None:
    """Turn per-event daily count factors (K, 5) into traffic and step multipliers."""
    p.traffic *= factors[:, :1]
    p.steps *= (factors[:, 1:] / factors[:, :-1])[:, None, :]


def propose_count(ctx: DayContext, family: Family, entity: S.Entity, rng: np.random.Generator) -> Proposal:
    """A traffic surge or loss centred on one event: the event moves beyond the threshold,
    its neighbours follow just inside it so no conversion rate breaks."""
    k, t = CANDIDATES, C.EVENTS.index(entity.entity_name)
    sign = _signs(rng, family, k)
    thr = C.COUNT_THRESHOLD_RELATIVE
    target = 1.0 + thr * _target_z(rng, ctx, sign, 0.3)
    others = 1.0 + sign[:, None] * thr * (1.0 - ctx.margin - rng.uniform(0.03, 0.2, (k, C.NUM_EVENTS)))
    desired = others
    desired[:, t] = target
    counts = ctx.values[S.COUNT_COLS]
    base = ctx.base[S.COUNT_COLS]
    p = _uniform_proposal(k)
    _counts_to_drivers(p, desired * base / counts)
    p.parameters = [{"relative_change": round(float(d - 1), 4)} for d in target]
    return p


def propose_rate(ctx: DayContext, family: Family, entity: S.Entity, rng: np.random.Generator) -> Proposal:
    """A whole-day conversion shift. Adjacent metrics move one step; end-to-end metrics
    spread the change over their steps, with the other end-to-end metric held inside its
    threshold by the last step. Traffic is nudged to keep counts inside theirs."""
    k = CANDIDATES
    sign = _signs(rng, family, k)
    name = entity.entity_name
    col = entity.index
    target_rate = ctx.base[col] + entity.threshold * _target_z(rng, ctx, sign)
    needed = target_rate / ctx.values[col]  # product of step factors on this metric's path
    p = _uniform_proposal(k)
    if name in C.ADJACENT_RATE_METRICS:
        p.steps[:, :, C.ADJACENT_RATE_METRICS.index(name)] *= needed[:, None]
    else:
        other = next(m for m in C.END_TO_END_RATE_METRICS if m != name)
        other_col = S.ENTITY_INDEX[("conversion_rate", other)]
        other_rate = ctx.base[other_col] + C.RATE_THRESHOLD_PP[other] * _inside_z(rng, k, ctx.margin)
        other_needed = other_rate / ctx.values[other_col]
        order_factor, pay_factor = (
            (needed, other_needed) if name == "app_open_to_order_placed" else (other_needed, needed)
        )
        weights = rng.dirichlet(np.ones(3), size=k)
        p.steps[:, :, :3] *= (order_factor[:, None] ** weights)[:, None, :]
        p.steps[:, :, 3] *= (pay_factor / order_factor)[:, None]
    p.traffic *= rng.uniform(0.9, 1.1, k)[:, None]
    p.parameters = [{"rate_change_pp": round(float(t - ctx.values[col]), 4)} for t in target_rate]
    return p


def propose_funnel(ctx: DayContext, family: Family, entity: S.Entity, rng: np.random.Generator) -> Proposal:
    """An outage of one step for a few consecutive hours; users retry later in the day, so
    the daily step rate stays inside the rate threshold."""
    k = CANDIDATES
    step = C.FUNNEL_STEPS.index(entity.entity_name)
    length = rng.integers(2, 5, k)
    start = rng.integers(7, 21 - length)
    outage = (_HOURS[None, :] >= start[:, None]) & (_HOURS[None, :] < (start + length)[:, None])
    z = np.maximum(_target_z(rng, ctx, -np.ones(k)), -1.9)  # -2 would be a total outage
    target = ctx.base[S.RATE_COLS[step]] / 100.0 * (1.0 + C.FUNNEL_BREAK_RELATIVE_DROP * z)
    hourly_rate = ctx.steps[:, step]
    phi = target[:, None] / hourly_rate[None, :]
    upstream = ctx.hourly[:, step]
    expected = upstream[None, :] * hourly_rate[None, :]
    rate_col = S.RATE_COLS[step]
    desired_daily = (
        ctx.base[rate_col]
        + C.RATE_THRESHOLD_PP[C.ADJACENT_RATE_METRICS[step]] * _inside_z(rng, k, ctx.margin) * 0.5
    ) / 100.0
    lost = (expected * np.where(outage, phi, 0.0)).sum(axis=1)
    rest = (expected * ~outage).sum(axis=1)
    beta = (desired_daily * upstream.sum() - lost) / rest
    p = _uniform_proposal(k)
    p.steps[:, :, step] = np.where(outage, phi, beta[:, None])
    p.parameters = [
        {"outage_hours": [int(h) for h in _HOURS[o]], "outage_rate_factor": round(float(f.min()), 4)}
        for o, f in zip(outage, np.where(outage, phi, np.inf), strict=True)
    ]
    return p


def propose_mix(ctx: DayContext, family: Family, entity: S.Entity, rng: np.random.Generator) -> Proposal:
    """Traffic moves between daytime and night hours; the daily total is unchanged."""
    k = CANDIDATES
    sign = _signs(rng, family, k)
    share = ctx.values[entity.index] / 100.0
    target = (ctx.base[entity.index] + entity.threshold * _target_z(rng, ctx, sign)) / 100.0
    day_factor = target / share
    night_factor = (1.0 - target) / (1.0 - share)
    p = _uniform_proposal(k)
    p.traffic = np.where(_DAYTIME[None, :], day_factor[:, None], night_factor[:, None])
    p.parameters = [{"daytime_share_pp": round(float(100 * (t - share)), 4)} for t in target]
    return p


def propose_quality(ctx: DayContext, family: Family, entity: S.Entity, rng: np.random.Generator) -> Proposal:
    """A tracking bug over-reports one event above its predecessor in a few hours."""
    k = CANDIDATES
    pair = C.DATA_QUALITY_PAIRS.index(entity.entity_name)
    length = rng.integers(1, 4, k)
    start = rng.integers(0, C.HOURS - length)
    hours = (_HOURS[None, :] >= start[:, None]) & (_HOURS[None, :] < (start + length)[:, None])
    ratio = 1.0 + rng.uniform(0.05, 0.6, k)
    p = _uniform_proposal(k)
    p.over_report[:, :, pair] = np.where(hours, ratio[:, None], 0.0)
    p.parameters = [
        {"hours": [int(h) for h in _HOURS[hh]], "over_report_ratio": round(float(r), 4)}
        for hh, r in zip(hours, ratio, strict=True)
    ]
    return p


PROPOSERS = {
    "count": propose_count,
    "rate": propose_rate,
    "funnel": propose_funnel,
    "mix": propose_mix,
    "quality": propose_quality,
}


# --- placement -------------------------------------------------------------------------


@dataclass
class DayContext:
    """What a proposer may read about the day it changes."""

    day: int
    traffic: np.ndarray  # (24,)
    steps: np.ndarray  # (24, 4)
    over_report: np.ndarray  # (24, 4)
    hourly: np.ndarray  # (24, 5) current counts
    values: np.ndarray  # (E,) current statistics
    base: np.ndarray  # (E,) current baselines
    margin: float
    reach: float
    decoy: bool = False
    difficulty: str = "medium"


def _evaluate(ctx: DayContext, p: Proposal, target: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """The first candidate whose day flags exactly ``target`` (nothing at all for a decoy)
    with margins on every statistic: its index, hourly counts and statistics."""
    traffic = ctx.traffic[None, :] * p.traffic
    steps = ctx.steps[None, :, :] * p.steps
    over = np.maximum(ctx.over_report[None, :, :], p.over_report)
    if (steps >= 1.0).any(axis=(1, 2)).all():
        return None
    counts = cascade(traffic, steps, over)
    values = S.day_values(counts)
    z = S.deviations(values, ctx.base)
    flagged = S.flags(z)
    ok = S.within_margin(z, ctx.margin).all(axis=1)
    if ctx.decoy:
        ok &= flagged.sum(axis=1) == 0
    else:
        ok &= flagged[:, target] & (flagged.sum(axis=1) == 1)
    ok &= ~(steps >= 1.0).any(axis=(1, 2))
    if target in S.QUALITY_COLS and not ctx.decoy:
        ok &= values[:, target] >= C.DATA_QUALITY_MIN_EXCESS
    hits = np.flatnonzero(ok)
    if not hits.size:
        return None
    hit = int(hits[0])
    return hit, counts[hit], values[hit]


@dataclass
class Workspace:
    """Drivers plus the counts and statistics they produce, updated one day at a time."""

    drivers: Drivers
    hourly: np.ndarray  # (days, 24, 5)
    values: np.ndarray  # (days, entities)

    @classmethod
    def from_drivers(cls, drivers: Drivers) -> Workspace:
        hourly = cascade(drivers.traffic, drivers.steps, drivers.over_report)
        return cls(drivers, hourly, S.day_values(hourly))

    def refresh(self, day: int) -> None:
        d = self.drivers
        self.hourly[day] = cascade(d.traffic[day], d.steps[day], d.over_report[day])
        self.values[day] = S.day_values(self.hourly[day])


def _place(
    work: Workspace,
    family: Family,
    free_days: list[int],
    config: EpisodeConfig,
    rng: np.random.Generator,
    entity_names: tuple[str, ...] | None = None,
    decoy: bool = False,
) -> Incident | None:
    names = entity_names or family.entity_names
    drivers = work.drivers
    base = S.baselines(work.values)
    margin = C.MARGIN[config.difficulty]
    reach = C.INCIDENT_REACH[config.difficulty]
    proposer = PROPOSERS[family.statistic]
    for _ in range(PLACEMENT_TRIES):
        day = free_days[int(rng.integers(len(free_days)))]
        name = names[int(rng.integers(len(names)))]
        entity = S.ENTITIES[S.ENTITY_INDEX[(family.entity_type, name)]]
        ctx = DayContext(
            day,
            drivers.traffic[day],
            drivers.steps[day],
            drivers.over_report[day],
            work.hourly[day],
            work.values[day],
            base,
            margin,
            reach,
            decoy,
            config.difficulty,
        )
        p = proposer(ctx, family, entity, rng)
        found = _evaluate(ctx, p, entity.index)
        if found is None:
            continue
        hit, counts, values = found
        drivers.traffic[day] *= p.traffic[hit]
        drivers.steps[day] *= p.steps[hit]
        drivers.over_report[day] = np.maximum(drivers.over_report[day], p.over_report[hit])
        work.hourly[day] = counts  # the same arithmetic as a cascade of the updated drivers
        work.values[day] = values
        return Incident(family.anomaly_type, day, entity.index, p.parameters[hit], decoy)
    return None


def _inject(drivers: Drivers, hourly: np.ndarray, injection: Injection, dates: tuple[str, ...]) -> None:
    """Apply an explicit ``metric_stddev_shift``: move each metric on each date by
    ``stddev_factor`` x its std-from-median (measured before the shift)."""
    values = S.day_values(hourly)
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
                    drivers.steps[day, :, event - 1] *= factor
            else:
                col = S.ENTITY_INDEX[("conversion_rate", metric)]
                target = max(0.0, values[day, col] + sign * injection.stddev_factor * spread[col])
                path = _RATE_PATH[metric]
                factor = (target / values[day, col]) ** (1.0 / len(path))
                for step in path:
                    drivers.steps[day, :, step - 1] *= factor
            np.clip(drivers.steps[day], 0.0, 1.0, out=drivers.steps[day])


def generate(config: EpisodeConfig) -> GeneratedData:
    """Build the episode's hourly counts and the incidents hidden in them."""
    margin = C.MARGIN[config.difficulty]
    for attempt in range(MAX_ATTEMPTS):
        rng = _rng(config, attempt, 0)
        work = Workspace.from_drivers(clean_drivers(config, rng))
        z = S.deviations(work.values, S.baselines(work.values))
        if S.flags(z).any() or not S.within_margin(z, margin).all():
            continue  # noise alone came too close to a threshold: re-draw
        drivers = work.drivers
        if config.injections:
            for injection in config.injections:
                _inject(drivers, work.hourly, injection, config.dates)
                work = Workspace.from_drivers(drivers)
            if _injection_verified(work, config, margin):
                return GeneratedData(work.hourly.astype(np.int64), (), attempt)
            continue
        clean = Drivers(drivers.traffic.copy(), drivers.steps.copy(), drivers.over_report.copy())
        placed = _place_all(config, work, rng)
        for _ in range(REFINE_ROUNDS):
            if placed is None:
                break
            if _verified(work, placed, margin):
                return GeneratedData(work.hourly.astype(np.int64), placed, attempt)
            placed = _refine(config, clean, work, placed, rng)
    if config.injections:
        raise ConfigError(
            "the injected shifts land within the separation margin of a detector threshold (or "
            "move other days across one) for every noise draw; choose a clearly smaller or larger "
            "stddev_factor"
        )
    raise GenerationError(f"could not generate a verified episode for {config}")


def _place_all(
    config: EpisodeConfig, work: Workspace, rng: np.random.Generator
) -> tuple[Incident, ...] | None:
    free_days = list(range(C.NUM_DAYS))
    placed: list[Incident] = []
    for anomaly_type in config.anomaly_plan:
        incident = _place(work, FAMILY_BY_TYPE[anomaly_type], free_days, config, rng)
        if incident is None:
            return None
        placed.append(incident)
        free_days.remove(incident.day)
    # Decoys: first a "twin" beside each real anomaly (same family and entity, another day),
    # then decoys of the families in play on entities of their own. Both make the real
    # anomalies stand out less to filters that only count standard deviations.
    # A twin leans the other way where the family has an opposite, so the window median holds.
    twins = [
        (opposite(FAMILY_BY_TYPE[i.anomaly_type]), (S.ENTITIES[i.entity].entity_name,))
        for i in placed
        if i.anomaly_type in DECOY_FAMILIES
    ]
    for n in range(C.DECOYS[config.difficulty]):
        if n < len(twins):
            family, names = twins[n]
        else:
            used = {S.ENTITIES[i.entity].entity_name for i in placed}
            options = _decoy_options(config.anomaly_plan, used) or _decoy_options(DECOY_FAMILIES, used)
            family, names = options[int(rng.integers(len(options)))]
        decoy = _place(work, family, free_days, config, rng, names, decoy=True)
        if decoy is None:
            return None
        placed.append(decoy)
        free_days.remove(decoy.day)
    return tuple(placed)


def _decoy_options(families: tuple[str, ...], used: set[str]) -> list[tuple[Family, tuple[str, ...]]]:
    """Families a decoy can mimic (no impossible counts) with their still-unused entities."""
    options = []
    for anomaly_type in dict.fromkeys(families):
        if anomaly_type not in DECOY_FAMILIES:
            continue
        family = FAMILY_BY_TYPE[anomaly_type]
        names = tuple(n for n in family.entity_names if n not in used)
        if names:
            options.append((family, names))
    return options


def _refine(
    config: EpisodeConfig,
    clean: Drivers,
    work: Workspace,
    placed: tuple[Incident, ...],
    rng: np.random.Generator,
) -> tuple[Incident, ...] | None:
    """Re-place each incident on its own day and entity against the baselines that the
    other incidents produced (many same-direction incidents move the window medians)."""
    refined: list[Incident] = []
    drivers = work.drivers
    for incident in placed:
        day = incident.day
        drivers.traffic[day] = clean.traffic[day]
        drivers.steps[day] = clean.steps[day]
        drivers.over_report[day] = clean.over_report[day]
        work.refresh(day)
        entity = S.ENTITIES[incident.entity]
        family = FAMILY_BY_TYPE[incident.anomaly_type]
        again = _place(work, family, [day], config, rng, (entity.entity_name,), incident.decoy)
        if again is None:
            return None
        refined.append(again)
    return tuple(refined)


def _injection_verified(work: Workspace, config: EpisodeConfig, margin: float) -> bool:
    """Injected episodes: flags only on injected dates, every value clear of its threshold."""
    z = S.deviations(work.values, S.baselines(work.values))
    injected = np.zeros(C.NUM_DAYS, dtype=bool)
    for injection in config.injections:
        injected[[config.dates.index(d) for d in injection.dates]] = True
    if S.flags(z)[~injected].any() or not S.within_margin(z, margin).all():
        return False
    quality = work.values[:, S.QUALITY_COLS]
    return bool(((quality == 0) | (quality >= C.DATA_QUALITY_MIN_EXCESS)).all())


def _verified(work: Workspace, incidents: tuple[Incident, ...], margin: float) -> bool:
    """Final check on the finished data: flags are exactly the incidents, with margins."""
    work.hourly = cascade(work.drivers.traffic, work.drivers.steps, work.drivers.over_report)
    values = work.values = S.day_values(work.hourly)
    z = S.deviations(values, S.baselines(values))
    expected = np.zeros_like(z, dtype=bool)
    for incident in incidents:
        expected[incident.day, incident.entity] = not incident.decoy
    if not np.array_equal(S.flags(z), expected) or not S.within_margin(z, margin).all():
        return False
    quality = values[:, S.QUALITY_COLS]
    return bool(((quality == 0) | (quality >= C.DATA_QUALITY_MIN_EXCESS)).all())
