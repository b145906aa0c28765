"""Episode configuration: validation of reset arguments and the resolved anomaly plan.

Anything unknown or out of range is a ``ConfigError`` with an actionable message; there
is no silent fallback to a default.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from metric_tracker_rl import constants as C
from metric_tracker_rl.families import (
    ANOMALY_TYPES,
    MULTI_ROW_SHAPES,
    SCENARIO_FAMILIES,
)

INJECTION_METHODS: tuple[str, ...] = ("metric_stddev_shift",)
INJECTABLE_METRICS: tuple[str, ...] = (*C.EVENTS, *C.RATE_METRICS)
MAX_INJECTIONS = 12
MAX_STDDEV_FACTOR = 50.0
MIN_END_DATE = dt.date(2000, 1, 1)
MAX_END_DATE = dt.date(2100, 12, 31)


class ConfigError(ValueError):
    """A reset argument is unknown, malformed or out of range."""


@dataclass(frozen=True)
class Injection:
    """An explicit reset-time anomaly: shift metrics by ``stddev_factor`` std-from-median."""

    metric_names: tuple[str, ...]
    dates: tuple[str, ...]
    stddev_factor: float
    direction: str  # "up" | "down"
    method_name: str = "metric_stddev_shift"

    def describe(self) -> dict[str, Any]:
        return {
            "method_name": self.method_name,
            "metric_names": list(self.metric_names),
            "dates": list(self.dates),
            "stddev_factor": self.stddev_factor,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class EpisodeConfig:
    """A fully resolved, validated episode configuration (hashable: used as a cache key)."""

    seed: int
    scenario_family: str
    difficulty: str
    anomaly_count: int
    anomaly_density: str | None
    end_date: dt.date = C.DEFAULT_END_DATE
    task_id: str | None = None
    anomaly_plan: tuple[str, ...] = field(default=())  # one anomaly type per incident
    injections: tuple[Injection, ...] = field(default=())
    # Per incident: how it shows (families.SHAPES), and whether it is asked to share the day of
    # an earlier incident of another family. Hidden from agents: they tell the row count.
    incident_shapes: tuple[str, ...] = field(default=())
    shared_days: tuple[bool, ...] = field(default=())

    @cached_property
    def dates(self) -> tuple[str, ...]:
        return window_dates(self.end_date)

    def visible(self) -> dict[str, Any]:
        """The part of the config an agent may see."""
        return {
            "task_id": self.task_id,
            "seed": self.seed,
            "scenario_family": self.scenario_family,
            "difficulty": self.difficulty,
            "anomaly_density": self.anomaly_density,
            "anomaly_count": self.anomaly_count,
            "end_date": self.end_date.isoformat(),
            "num_days": C.NUM_DAYS,
            "start_date": self.dates[0],
            "injections": [inj.describe() for inj in self.injections],
        }


@lru_cache(maxsize=64)
def window_dates(end_date: dt.date) -> tuple[str, ...]:
    """The window's ISO dates, oldest first, ending on ``end_date``."""
    start = end_date - dt.timedelta(days=C.NUM_DAYS - 1)
    return tuple((start + dt.timedelta(days=i)).isoformat() for i in range(C.NUM_DAYS))


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; expected one of {list(allowed)}")
    return value


def _parse_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if seed < 0 or seed >= 2**63:
        raise ConfigError(f"seed must be a non-negative integer below 2**63, got {seed}")
    return seed


def _default(value: Any, default: str) -> Any:
    """None means 'use the default'; anything else is validated as given."""
    return default if value is None else value


def _parse_end_date(value: Any) -> dt.date:
    parsed = None
    if isinstance(value, dt.date):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ConfigError(f"end_date must be an ISO date YYYY-MM-DD, got {value!r}")
    if not MIN_END_DATE <= parsed <= MAX_END_DATE:
        raise ConfigError(
            f"end_date must be between {MIN_END_DATE.isoformat()} and {MAX_END_DATE.isoformat()}, "
            f"got {parsed.isoformat()}"
        )
    return parsed


def _parse_injection(i: int, raw: Any, dates: tuple[str, ...]) -> Injection:
    where = f"anomalies[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object, got {type(raw).__name__}")
    known = {"method_name", "metric_name", "metric_names", "date", "dates", "stddev_factor", "direction"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown fields {unknown}; allowed: {sorted(known)}")
    _choice(f"{where}.method_name", raw.get("method_name"), INJECTION_METHODS)
    metrics = _one_or_many(where, raw, "metric_name", "metric_names")
    for m in metrics:
        _choice(f"{where} metric", m, INJECTABLE_METRICS)
    picked = _one_or_many(where, raw, "date", "dates")
    for d in picked:
        if d not in dates:
            raise ConfigError(f"{where} date {d!r} is outside the window {dates[0]}..{dates[-1]}")
    factor = raw.get("stddev_factor")
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not math.isfinite(factor):
        raise ConfigError(f"{where}.stddev_factor must be a finite number, got {factor!r}")
    if not 0 < factor <= MAX_STDDEV_FACTOR:
        raise ConfigError(f"{where}.stddev_factor must be in (0, {MAX_STDDEV_FACTOR}], got {factor}")
    direction = _choice(f"{where}.direction", raw.get("direction"), ("up", "down"))
    return Injection(tuple(metrics), tuple(sorted(set(picked))), float(factor), direction)


def _one_or_many(where: str, raw: dict, one: str, many: str) -> list[str]:
    if (one in raw) == (many in raw):
        raise ConfigError(f"{where} needs exactly one of {one!r} or {many!r}")
    values = [raw[one]] if one in raw else raw[many]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}.{many} must be a non-empty list of strings")
    return list(dict.fromkeys(values))


def plan_anomalies(seed: int, scenario_family: str, count: int) -> tuple[str, ...]:
    """Which family each incident belongs to. ``mixed`` draws from all seven families."""
    if scenario_family != "mixed":
        return (scenario_family,) * count
    # Four bytes of a keyed hash per incident: uniform, stable everywhere, and cheap.
    digest = hashlib.blake2b(f"{seed}|{count}".encode(), digest_size=64, person=b"anomaly-plan").digest()
    picks = (int.from_bytes(digest[4 * i : 4 * i + 4], "little") % len(ANOMALY_TYPES) for i in range(count))
    return tuple(ANOMALY_TYPES[i] for i in picks)


def plan_shapes(
    seed: int, difficulty: str, anomaly_plan: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """How each incident shows and which incidents ask to share an earlier incident's day,
    drawn by difficulty (``MULTI_ROW_SHARE``, ``SHARED_DAY_SHARE``) from a keyed hash of the
    seed."""
    count = len(anomaly_plan)
    key = f"{seed}|{count}|{difficulty}|{'|'.join(anomaly_plan)}".encode()
    digest = hashlib.blake2b(key, digest_size=64, person=b"incident-shape").digest()

    def uniform(i: int) -> float:
        return int.from_bytes(digest[2 * i : 2 * i + 2], "little") / 65536.0

    multi = [
        kind in MULTI_ROW_SHAPES and uniform(i) < C.MULTI_ROW_SHARE[difficulty]
        for i, kind in enumerate(anomaly_plan)
    ]
    allowed = C.MAX_MULTI_ROW_INCIDENTS  # a crowded window keeps its medians: the rest show once
    shapes = tuple(
        MULTI_ROW_SHAPES[kind] if wanted and sum(multi[: i + 1]) <= allowed else "single"
        for i, (kind, wanted) in enumerate(zip(anomaly_plan, multi, strict=True))
    )
    # A request: the generator puts an incident on an earlier incident's day where their
    # families differ and no row is in common, else on a day of its own.
    shared = tuple(i > 0 and uniform(16 + i) < C.SHARED_DAY_SHARE[difficulty] for i in range(count))
    return shapes, shared


def resolve_config(
    *,
    seed: Any = None,
    scenario_family: Any = None,
    difficulty: Any = None,
    anomaly_density: Any = None,
    anomaly_count: Any = None,
    anomalies: Any = None,
    end_date: Any = None,
    task_id: str | None = None,
    anomaly_plan: tuple[str, ...] | None = None,
    incident_shapes: tuple[str, ...] | None = None,
    shared_days: tuple[bool, ...] | None = None,
) -> EpisodeConfig:
    """Validate reset arguments (already merged with a task's defaults) into a config."""
    seed_value = _parse_seed(0 if seed is None else seed)
    family = _choice("scenario_family", _default(scenario_family, "mixed"), SCENARIO_FAMILIES)
    level = _choice("difficulty", _default(difficulty, "medium"), C.DIFFICULTIES)
    density = None
    if anomaly_plan is not None:
        count = len(anomaly_plan)
    elif anomaly_count is None:
        density = _choice(
            "anomaly_density", _default(anomaly_density, "medium"), tuple(C.ANOMALY_DENSITY_COUNTS)
        )
        count = C.ANOMALY_DENSITY_COUNTS[density]
    else:
        if isinstance(anomaly_count, bool) or not isinstance(anomaly_count, int):
            raise ConfigError(f"anomaly_count must be an integer, got {anomaly_count!r}")
        if not C.MIN_ANOMALY_COUNT <= anomaly_count <= C.MAX_ANOMALY_COUNT:
            raise ConfigError(
                f"anomaly_count must be between {C.MIN_ANOMALY_COUNT} and "
                f"{C.MAX_ANOMALY_COUNT}, got {anomaly_count}"
            )
        if anomaly_density is not None:
            _choice("anomaly_density", anomaly_density, tuple(C.ANOMALY_DENSITY_COUNTS))
            density = anomaly_density
        count = anomaly_count
    end = _parse_end_date(C.DEFAULT_END_DATE if end_date is None else end_date)
    config = EpisodeConfig(seed_value, family, level, count, density, end, task_id)
    injections: tuple[Injection, ...] = ()
    if anomalies is not None:
        if not isinstance(anomalies, list) or not anomalies:
            raise ConfigError("anomalies must be a non-empty list of injection objects")
        if len(anomalies) > MAX_INJECTIONS:
            raise ConfigError(f"at most {MAX_INJECTIONS} injections are allowed, got {len(anomalies)}")
        injections = tuple(_parse_injection(i, a, config.dates) for i, a in enumerate(anomalies))
    if injections:
        return EpisodeConfig(seed_value, family, level, count, density, end, task_id, (), injections)
    plan = anomaly_plan if anomaly_plan is not None else plan_anomalies(seed_value, family, count)
    if incident_shapes is not None:  # a named task's fixed shapes
        shapes, shared = incident_shapes, shared_days or (False,) * len(plan)
    else:
        shapes, shared = plan_shapes(seed_value, level, plan)
    return EpisodeConfig(seed_value, family, level, count, density, end, task_id, plan, (), shapes, shared)
