"""Per-day statistics that the canonical detectors read, computed from hourly counts.

Every entity of every family is one column of a flat table (see ``ENTITIES``). The
same functions serve the generator (to place anomalies and verify the ground truth) and
the analysis methods (to answer agents), so both always agree. The per-day table itself
is computed by ``kernels.day_statistics`` (compiled); medians, deviations, verdicts,
margins and severities are NumPy here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import kernel_paths
from metric_tracker_rl.families import FAMILIES


@dataclass(frozen=True)
class Entity:
    """One column of the statistics table: an (entity_type, entity_name) with its rule."""

    index: int
    entity_type: str
    entity_name: str
    statistic: str  # count | rate | funnel | mix | quality
    threshold: float  # in the units of the normalised deviation, see ``deviations``
    detection_method: str


def _build_entities() -> tuple[Entity, ...]:
    thresholds = {
        "count": lambda name: C.COUNT_THRESHOLD_RELATIVE,
        "rate": lambda name: C.RATE_THRESHOLD_PP[name],
        "funnel": lambda name: C.FUNNEL_BREAK_RELATIVE_DROP,
        "mix": lambda name: C.HOURLY_MIX_THRESHOLD_PP,
        "quality": lambda name: C.DATA_QUALITY_MIN_EXCESS,
    }
    seen: dict[str, Entity] = {}
    for family in FAMILIES:
        for name in family.entity_names:
            key = f"{family.entity_type}|{name}"
            if key not in seen:
                seen[key] = Entity(
                    len(seen),
                    family.entity_type,
                    name,
                    family.statistic,
                    thresholds[family.statistic](name),
                    family.detection_method,
                )
    return tuple(seen.values())


ENTITIES: tuple[Entity, ...] = _build_entities()
ENTITY_INDEX: dict[tuple[str, str], int] = {(e.entity_type, e.entity_name): e.index for e in ENTITIES}
NUM_ENTITIES = len(ENTITIES)
THRESHOLDS = np.array([e.threshold for e in ENTITIES])
_KIND = np.array([e.statistic for e in ENTITIES])
COUNT_COLS = np.flatnonzero(_KIND == "count")
RATE_COLS = np.flatnonzero(_KIND == "rate")
FUNNEL_COLS = np.flatnonzero(_KIND == "funnel")
MIX_COLS = np.flatnonzero(_KIND == "mix")
QUALITY_COLS = np.flatnonzero(_KIND == "quality")

# Where each statistic lives, for the compiled statistics (kernels.day_statistics).
LAYOUT = (
    COUNT_COLS,
    RATE_COLS,
    np.array([n for n, _ in C.CONVERSION_METRICS.values()]),  # rate numerator events
    np.array([d for _, d in C.CONVERSION_METRICS.values()]),  # rate denominator events
    FUNNEL_COLS,
    QUALITY_COLS,
    np.array([MIX_COLS[0], C.DAYTIME_HOURS.start, C.DAYTIME_HOURS.stop]),
)


def day_values(hourly: np.ndarray) -> np.ndarray:
    """Statistic of every entity for each day.

    ``hourly``: counts of shape (..., 24, 5). Returns (..., NUM_ENTITIES):
    daily counts, daily rates (%), lowest hourly step rate (%, hours with impossible
    counts excluded), daytime share of app opens (%), excess of impossible counts.
    """
    lead = hourly.shape[:-2]
    counts = np.moveaxis(np.asarray(hourly, dtype=np.float64).reshape(-1, C.HOURS, C.NUM_EVENTS), -1, 0)
    return event_values(np.ascontiguousarray(counts)).reshape(lead + (NUM_ENTITIES,))


def event_values(counts: np.ndarray) -> np.ndarray:
    """``day_values`` for counts laid out event first, (5, days, 24), the generator's
    layout. Computed by ``kernels.day_statistics``, the one definition of the statistics."""
    kernels = kernel_paths.current()  # compiled, or plain Python while a server prepares them

    counts = np.ascontiguousarray(counts, dtype=np.float64)
    if not counts.flags.writeable:  # one compiled signature: writable arrays
        counts = counts.copy()
    out = np.empty((counts.shape[1], NUM_ENTITIES))
    kernels.all_day_statistics(counts, out, LAYOUT)
    return out


def baselines(values: np.ndarray) -> np.ndarray:
    """Baseline of every entity over the window (axis 0 = days).

    Counts, rates and the mix use the window median; a funnel step uses the median of
    its daily step rate; impossible counts have baseline 0.
    """
    ordered = np.sort(values, axis=0)  # the median of an even count, without np.median's overhead
    n = ordered.shape[0]
    med = 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])
    med[FUNNEL_COLS] = med[RATE_COLS[: C.NUM_STEPS]]
    med[QUALITY_COLS] = 0.0
    return med


def deviations(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Signed deviation in threshold units: |z| > 1 means the canonical detector flags.

    Counts and funnel steps are relative changes, rates and the mix are points;
    impossible counts are the excess itself (flagged when > 0).
    """
    delta = values - base
    z = delta / THRESHOLDS
    relative = np.concatenate([COUNT_COLS, FUNNEL_COLS])
    z[..., relative] = delta[..., relative] / (base[relative] * THRESHOLDS[relative])
    return z


def threshold_units(base: np.ndarray) -> np.ndarray:
    """Each entity's detection threshold in the units of its statistic: points for rates
    and the mix, counts and step-rate points for the relative rules (given the baselines)."""
    units = THRESHOLDS.astype(np.float64)
    relative = np.concatenate([COUNT_COLS, FUNNEL_COLS])
    units[relative] = THRESHOLDS[relative] * np.abs(base[relative])
    return units


def flags(z: np.ndarray) -> np.ndarray:
    """The canonical detectors' verdict for every (day, entity)."""
    flagged = np.abs(z) > 1.0
    flagged[..., FUNNEL_COLS] = z[..., FUNNEL_COLS] < -1.0
    flagged[..., QUALITY_COLS] = z[..., QUALITY_COLS] > 0.0
    return flagged


def public_flag(entity_type: str, baseline: float, observed: float, threshold: float) -> bool:
    """The canonical rule on one row's values, with the threshold ``task_overview`` publishes
    for its entity: the scalar form of ``flags`` (they agree on every (day, entity))."""
    delta = observed - baseline
    if entity_type == "event_count":
        return abs(delta) > threshold * abs(baseline)
    if entity_type == "funnel_step":
        return observed < (1.0 - threshold) * baseline
    if entity_type == "data_quality":
        return observed > threshold
    return abs(delta) > threshold  # conversion_rate: points; hourly_mix: share points


def within_margin(z: np.ndarray, margin: float) -> np.ndarray:
    """True where a value keeps the separation margin from its threshold on both sides."""
    a = np.abs(z)
    ok = (a >= 1.0 + margin) | (a <= 1.0 - margin)
    fz = z[..., FUNNEL_COLS]
    ok[..., FUNNEL_COLS] = (fz <= -(1.0 + margin)) | (fz >= -(1.0 - margin))
    qz = z[..., QUALITY_COLS]
    ok[..., QUALITY_COLS] = (qz == 0.0) | (qz >= 1.0)
    return ok


def severity_level(z: np.ndarray, predecessor_counts: np.ndarray | None = None) -> np.ndarray:
    """Severity index 0..3 (low..critical) from |delta| / threshold.

    Impossible counts use the excess as a percentage of the predecessor's daily count
    (``predecessor_counts`` aligned with the quality columns).
    """
    level = _RATIO_CUTOFFS.searchsorted(np.abs(z), side="right") - 1
    if predecessor_counts is not None:
        pct = 100.0 * z[..., QUALITY_COLS] * C.DATA_QUALITY_MIN_EXCESS / predecessor_counts
        level[..., QUALITY_COLS] = _PCT_CUTOFFS.searchsorted(pct, side="right") - 1
    np.maximum(level, 0, out=level)
    return np.minimum(level, len(C.SEVERITY_LEVELS) - 1, out=level)


_RATIO_CUTOFFS = np.array(C.SEVERITY_RATIO_CUTOFFS)
_PCT_CUTOFFS = np.array(C.DATA_QUALITY_SEVERITY_PCT_CUTOFFS)
