"""A plain NumPy statement of the per-day statistics, as a reference for the compiled
one (``kernels.day_statistics``): written for reading, not for speed."""

from __future__ import annotations

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S

NUMERATORS = np.array([n for n, _ in C.CONVERSION_METRICS.values()])
DENOMINATORS = np.array([d for _, d in C.CONVERSION_METRICS.values()])
DAYTIME = slice(C.DAYTIME_HOURS.start, C.DAYTIME_HOURS.stop)


def event_values(counts: np.ndarray) -> np.ndarray:
    """(5, ..., 24) counts -> (..., E): daily counts, daily rates (%), the lowest hourly
    step rate (%, hours with impossible counts or no upstream traffic excluded), the
    daytime share of app opens (%), the excess of impossible counts."""
    daily = counts.sum(axis=-1)
    out = np.empty((S.NUM_ENTITIES,) + daily.shape[1:])
    out[S.COUNT_COLS] = daily
    with np.errstate(divide="ignore", invalid="ignore"):
        out[S.RATE_COLS] = 100.0 * daily[NUMERATORS] / daily[DENOMINATORS]
        upstream, downstream = counts[:-1], counts[1:]
        excess = np.maximum(downstream - upstream, 0.0)
        bad_hour = (excess > 0).any(axis=0) | (upstream <= 0)
        step = np.where(bad_hour, np.inf, downstream / upstream)
        out[S.FUNNEL_COLS] = 100.0 * step.min(axis=-1)
        out[S.MIX_COLS[0]] = 100.0 * counts[0, ..., DAYTIME].sum(axis=-1) / daily[0]
    out[S.QUALITY_COLS] = excess.sum(axis=-1)
    return np.moveaxis(out, 0, -1)
