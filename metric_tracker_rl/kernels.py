"""The compiled kernels (Numba): the per-day statistics, and the generator's
propose-and-verify placement loop.

``day_statistics`` is the one definition of the statistics the canonical detectors read;
``statistics.py`` computes every episode's table with it, so the analysis methods, the
ground truth and placement all agree. Placement tries many candidate changes and judges
each by every canonical detector on its day: a loop of small steps that NumPy runs at its
per-call overhead and compiled code at the speed of arithmetic. What it places is
verified again on the final counts by ``generator.py`` with ``statistics.py``.

Every constant and table arrives as an argument, so a changed constant can never hide in
a stale compiled cache; all compiled code lives in this one file, because Numba's cache
notices a change only in the file of the function it compiled. Counts are laid out event
first, (5, days, 24); drivers step first, (4, days, 24).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Statistic kinds as the tables code them: positions in families.STATISTIC_KINDS.
COUNT, RATE, FUNNEL, MIX, QUALITY = range(5)
# Kernel outcomes besides a positive number of verification passes.
FAILED = -1  # an incident found no place, or refining did not verify
NOISY = -2  # the clean data alone comes too close to a threshold

_JIT = {"cache": True, "error_model": "numpy", "nogil": True}


@njit(**_JIT)
def day_statistics(counts, day, out, layout):  # pragma: no cover - compiled
    """Every entity's statistic of one day (``statistics.event_values`` for one day)."""
    count_cols, rate_cols, rate_num, rate_den, funnel_cols, quality_cols, mix = layout
    events, hours = counts.shape[0], counts.shape[2]
    daily = np.zeros(events)
    for e in range(events):
        for h in range(hours):
            daily[e] += counts[e, day, h]
    for e in range(events):
        out[count_cols[e]] = daily[e]
    for i in range(rate_cols.size):
        out[rate_cols[i]] = 100.0 * daily[rate_num[i]] / daily[rate_den[i]]
    bad = np.zeros(hours, dtype=np.bool_)
    excess = np.zeros(events - 1)
    for h in range(hours):
        for s in range(events - 1):
            over = counts[s + 1, day, h] - counts[s, day, h]
            if over > 0:
                bad[h] = True
                excess[s] += over
    for s in range(events - 1):
        lowest = np.inf
        for h in range(hours):
            upstream = counts[s, day, h]
            if not bad[h] and upstream > 0:
                rate = counts[s + 1, day, h] / upstream
                if rate < lowest:
                    lowest = rate
        out[funnel_cols[s]] = 100.0 * lowest
        out[quality_cols[s]] = excess[s]
    daytime = 0.0
    for h in range(mix[1], mix[2]):
        daytime += counts[0, day, h]
    out[mix[0]] = 100.0 * daytime / daily[0]


@njit(**_JIT)
def all_day_statistics(counts, out, layout):  # pragma: no cover - compiled
    """``day_statistics`` of every day of ``counts`` (5, days, 24) into ``out`` (days, E)."""
    for day in range(counts.shape[1]):
        day_statistics(counts, day, out[day], layout)


@njit(**_JIT)
def baselines(values, base, layout):  # pragma: no cover - compiled
    """Window medians (``statistics.baselines``): funnel steps take their step rate's,
    impossible counts 0."""
    ordered = np.empty((values.shape[1], values.shape[0]))
    sort_columns(values, ordered)
    sorted_baselines(ordered, base, layout)


@njit(**_JIT)
def sort_columns(values, ordered):  # pragma: no cover - compiled
    """``ordered`` (E, days): each column of ``values`` (days, E) in ascending order (by
    insertion: 28 values, in place of a sort)."""
    days = values.shape[0]
    for col in range(values.shape[1]):
        for i in range(days):
            x = values[i, col]
            j = i
            while j > 0 and ordered[col, j - 1] > x:
                ordered[col, j] = ordered[col, j - 1]
                j -= 1
            ordered[col, j] = x


@njit(**_JIT)
def sorted_baselines(ordered, base, layout):  # pragma: no cover - compiled
    """``baselines`` from columns kept in order (``sort_columns``, ``replace_sorted``)."""
    rate_cols, funnel_cols, quality_cols = layout[1], layout[4], layout[5]
    days = ordered.shape[1]
    for col in range(ordered.shape[0]):
        base[col] = 0.5 * (ordered[col, (days - 1) // 2] + ordered[col, days // 2])
    for s in range(funnel_cols.size):
        base[funnel_cols[s]] = base[rate_cols[s]]
        base[quality_cols[s]] = 0.0


@njit(**_JIT)
def replace_sorted(ordered, old, new):  # pragma: no cover - compiled
    """Keep ``ordered`` in order when one day's statistics change from ``old`` to ``new``:
    per column, the old value leaves its place and the new one slides into its own. False
    (the table untouched from that column on) if an old value is not in it: re-sort then."""
    days = ordered.shape[1]
    for col in range(ordered.shape[0]):
        before, after = old[col], new[col]
        if before == after:
            continue
        row = ordered[col]
        i = 0
        while i < days and row[i] != before:
            i += 1
        if i == days:
            return False
        if after > before:
            while i + 1 < days and row[i + 1] < after:
                row[i] = row[i + 1]
                i += 1
        else:
            while i > 0 and row[i - 1] > after:
                row[i] = row[i - 1]
                i -= 1
        row[i] = after
    return True


@njit(**_JIT)
def verdict_bounds(base, columns, margin, bounds):  # pragma: no cover - compiled
    """Per column, the distances from the baseline that keep the margin: an unflagged value
    lies within ``bounds[0]``, a flagged one beyond ``bounds[1]`` (in the statistic's
    units: the threshold, relative to the baseline for counts and funnel steps). The rules
    of ``statistics.deviations``, ``flags`` and ``within_margin``, with the divisions done
    once per column instead of once per value."""
    thresholds, kinds = columns[0], columns[1]
    for col in range(base.size):
        unit = thresholds[col]
        if kinds[col] == COUNT or kinds[col] == FUNNEL:
            unit = base[col] * thresholds[col]
        bounds[0, col] = (1.0 - margin) * unit
        bounds[1, col] = (1.0 + margin) * unit


@njit(**_JIT)
def value_holds(value, base, col, kind, bounds, wanted, min_excess):  # pragma: no cover - compiled
    """One value: flagged exactly when ``wanted``, and clear of the threshold by the margin."""
    delta = value - base[col]
    if kind == QUALITY:  # any excess flags; a generated one is at least min_excess
        if wanted:
            return value >= min_excess
        return delta == 0.0
    if kind == FUNNEL:  # drops only
        if wanted:
            return -delta >= bounds[1, col]
        return -delta <= bounds[0, col]
    size = abs(delta)
    if wanted:
        return size >= bounds[1, col]
    return size <= bounds[0, col]


@njit(**_JIT)
def day_holds(values, day, base, bounds, target, columns, min_excess):  # pragma: no cover
    """True when the day flags exactly ``target`` (nothing when ``target`` is -1) and
    every statistic keeps the margin."""
    kinds = columns[1]
    for col in range(values.shape[1]):
        if not value_holds(values[day, col], base, col, kinds[col], bounds, col == target, min_excess):
            return False
    return True


@njit(**_JIT)
def cascade_day(traffic, steps, over_report, counts, day):  # pragma: no cover - compiled
    """One day's counts from its drivers (``generator.cascade``); False when a count is
    not a finite non-negative number."""
    steps_n, hours = steps.shape[0], steps.shape[1]
    for h in range(hours):
        counts[0, day, h] = np.rint(traffic[h])
        for k in range(steps_n):
            counts[k + 1, day, h] = np.rint(counts[k, day, h] * steps[k, h])
    for k in range(steps_n - 1, -1, -1):  # from the last step, so each reads true counts
        for h in range(hours):
            if over_report[k, h] > 0:
                reported = np.rint(counts[k, day, h] * over_report[k, h])
                if reported > counts[k + 1, day, h]:
                    counts[k + 1, day, h] = reported
    for e in range(steps_n + 1):
        for h in range(hours):
            c = counts[e, day, h]
            if not (c >= 0.0 and c < np.inf):
                return False
    return True


@njit(**_JIT)
def _sign(rng, direction):  # pragma: no cover - compiled
    if direction != 0:
        return float(direction)
    return 1.0 if rng.random() < 0.5 else -1.0


@njit(**_JIT)
def _target_z(rng, sign, decoy, tuning, reach_scale):  # pragma: no cover - compiled
    """Normalised deviation of the changed entity: beyond the flag line for an anomaly
    (|z| in [1 + margin, 1 + margin + reach]), clearly inside it for a decoy."""
    margin, reach, decoy_min_z = tuning[0], tuning[1], tuning[2]
    if decoy:
        return sign * (decoy_min_z + rng.random() * (1.0 - margin - 0.02 - decoy_min_z))
    return sign * (1.0 + margin + 0.02 + rng.random() * reach * reach_scale)


@njit(**_JIT)
def _inside_z(rng, margin):  # pragma: no cover - compiled
    return (2.0 * rng.random() - 1.0) * (1.0 - margin) * 0.9


@njit(**_JIT)
def propose(rng, kind, direction, decoy, col, day, state, base, columns, layout, tuning, change):
    # pragma: no cover - compiled
    """One candidate change of ``col`` on ``day``: multipliers of the day's traffic and
    steps and absolute over-report ratios, written into ``change``; returns what the
    schedule reports of it (value, first hour, hours)."""
    traffic_factor, step_factor, over_report = change
    counts, values, steps = state[0], state[1], state[3]
    thresholds, positions = columns[0], columns[2]
    count_cols, rate_cols = layout[0], layout[1]
    margin = tuning[0]
    traffic_factor[:] = 1.0
    step_factor[:] = 1.0
    over_report[:] = 0.0
    hours = traffic_factor.size
    value, start, length = 0.0, 0, 0
    if kind == COUNT:
        # The event moves beyond the threshold; its neighbours follow just inside it, so
        # no conversion rate breaks.
        sign = _sign(rng, direction)
        threshold = thresholds[col]
        target = 1.0 + threshold * _target_z(rng, sign, decoy, tuning, 0.3)
        factors = np.empty(count_cols.size)
        for e in range(count_cols.size):
            desired = 1.0 + sign * threshold * (1.0 - margin - (0.03 + 0.17 * rng.random()))
            if e == positions[col]:
                desired = target
            factors[e] = desired * base[count_cols[e]] / values[day, count_cols[e]]
        traffic_factor[:] = factors[0]
        for s in range(step_factor.shape[0]):
            step_factor[s, :] = factors[s + 1] / factors[s]
        value = target - 1.0
    elif kind == RATE:
        # A whole-day conversion shift. Adjacent metrics move one step; end-to-end
        # metrics spread it over their steps, with the other end-to-end metric held
        # inside its threshold by the last step.
        sign = _sign(rng, direction)
        target = base[col] + thresholds[col] * _target_z(rng, sign, decoy, tuning, 1.0)
        needed = target / values[day, col]
        position = positions[col]
        steps_n = step_factor.shape[0]
        if position < steps_n:
            step_factor[position, :] = needed
        else:
            order_col, pay_col = int(tuning[4]), int(tuning[5])
            other = pay_col if col == order_col else order_col
            other_rate = base[other] + thresholds[other] * _inside_z(rng, margin)
            other_needed = other_rate / values[day, other]
            order = needed if col == order_col else other_needed
            pay = other_needed if col == order_col else needed
            w0, w1, w2 = -np.log(1.0 - rng.random()), -np.log(1.0 - rng.random()), -np.log(1.0 - rng.random())
            total = w0 + w1 + w2  # Dirichlet(1, 1, 1) weights from three exponentials
            step_factor[0, :] = order ** (w0 / total)
            step_factor[1, :] = order ** (w1 / total)
            step_factor[2, :] = order ** (w2 / total)
            step_factor[3, :] = pay / order
        traffic_factor[:] = 0.9 + 0.2 * rng.random()  # nudged, so counts move on their own too
        value = target - values[day, col]
    elif kind == FUNNEL:
        # An outage of one step for a few consecutive hours; users retry later in the
        # day, so the daily step rate stays inside the rate threshold.
        step = positions[col]
        length = 2 + int(rng.random() * 3)
        start = 7 + int(rng.random() * (14 - length))
        z = max(_target_z(rng, -1.0, decoy, tuning, 1.0), -1.9)  # -2 would be a total outage
        rate_col = rate_cols[step]
        target = base[rate_col] / 100.0 * (1.0 + thresholds[col] * z)
        desired = (base[rate_col] + thresholds[rate_col] * _inside_z(rng, margin) * 0.5) / 100.0
        lost, rest, upstream_total = 0.0, 0.0, 0.0
        value = np.inf
        for h in range(hours):
            rate = steps[step, day, h]
            expected = counts[step, day, h] * rate
            upstream_total += counts[step, day, h]
            if start <= h < start + length:
                phi = target / rate
                step_factor[step, h] = phi
                lost += expected * phi
                value = min(value, phi)
            else:
                rest += expected
        beta = (desired * upstream_total - lost) / rest
        for h in range(hours):
            if not (start <= h < start + length):
                step_factor[step, h] = beta
    elif kind == MIX:
        # Traffic moves between daytime and night hours; the daily total is unchanged.
        sign = _sign(rng, direction)
        share = values[day, col] / 100.0
        target = (base[col] + thresholds[col] * _target_z(rng, sign, decoy, tuning, 1.0)) / 100.0
        mix = layout[6]
        for h in range(hours):
            if mix[1] <= h < mix[2]:
                traffic_factor[h] = target / share
            else:
                traffic_factor[h] = (1.0 - target) / (1.0 - share)
        value = 100.0 * (target - share)
    else:
        # A tracking bug over-reports one event above its predecessor in a few hours.
        pair = positions[col]
        length = 1 + int(rng.random() * 3)
        start = int(rng.random() * (hours - length))
        value = 1.0 + 0.05 + 0.55 * rng.random()
        for h in range(start, start + length):
            over_report[pair, h] = value
    return value, start, length


@njit(**_JIT)
def place_one(rng, kind, direction, decoy, allowed, free, state, columns, layout, tuning, tries, out, slot):
    # pragma: no cover - compiled
    """Place one incident: up to ``tries`` (day, entity) pairs from ``free`` days and
    ``allowed`` columns, ``tuning[3]`` candidates each, keeping the first candidate whose
    day flags exactly the target with the margin on every statistic (judged against the
    current window medians). The day's drivers, counts and statistics are updated."""
    counts, values, traffic, steps, over_report = state[0], state[1], state[2], state[3], state[4]
    ordered = state[5]
    hours = traffic.shape[1]
    steps_n = steps.shape[0]
    margin, candidates, min_excess = tuning[0], int(tuning[3]), tuning[6]
    base = np.empty(values.shape[1])
    sorted_baselines(ordered, base, layout)
    bounds = np.empty((2, values.shape[1]))
    verdict_bounds(base, columns, margin, bounds)
    free_days = np.flatnonzero(free)
    traffic_factor = np.empty(hours)
    step_factor = np.empty((steps_n, hours))
    over_factor = np.empty((steps_n, hours))
    change = (traffic_factor, step_factor, over_factor)
    new_traffic = np.empty(hours)
    new_steps = np.empty((steps_n, hours))
    new_over = np.empty((steps_n, hours))
    saved_counts = np.empty((steps_n + 1, hours))
    saved_values = np.empty(values.shape[1])
    for _ in range(tries):
        day = free_days[int(rng.random() * free_days.size)]
        col = allowed[int(rng.random() * allowed.size)]
        _take_day(counts, day, saved_counts)
        _copy(values[day], saved_values)
        for _k in range(candidates):
            value, start, length = propose(
                rng, kind, direction, decoy, col, day, state, base, columns, layout, tuning, change
            )
            feasible = True
            for h in range(hours):
                new_traffic[h] = traffic[day, h] * traffic_factor[h]
                for s in range(steps_n):
                    new_steps[s, h] = steps[s, day, h] * step_factor[s, h]
                    new_over[s, h] = max(over_report[s, day, h], over_factor[s, h])
                    if not new_steps[s, h] < 1.0:
                        feasible = False
            if not feasible:
                continue
            if cascade_day(new_traffic, new_steps, new_over, counts, day):
                day_statistics(counts, day, values[day], layout)
                if day_holds(values, day, base, bounds, -1 if decoy else col, columns, min_excess):
                    if not replace_sorted(ordered, saved_values, values[day]):
                        sort_columns(values, ordered)
                    _copy(new_traffic, traffic[day])
                    _put_day(steps, day, new_steps)
                    _put_day(over_report, day, new_over)
                    out[0][slot] = day
                    out[1][slot] = col
                    out[2][slot] = value
                    out[3][slot] = start
                    out[4][slot] = length
                    return True
            _put_day(counts, day, saved_counts)
            _copy(saved_values, values[day])
    return False


@njit(**_JIT)
def window_holds(values, expected, columns, layout, margin, min_excess):  # pragma: no cover
    """Every day flags exactly its expected entities and keeps the margin everywhere."""
    kinds = columns[1]
    base = np.empty(values.shape[1])
    baselines(values, base, layout)
    bounds = np.empty((2, values.shape[1]))
    verdict_bounds(base, columns, margin, bounds)
    for day in range(values.shape[0]):
        for col in range(values.shape[1]):
            wanted = expected[day, col]
            if not value_holds(values[day, col], base, col, kinds[col], bounds, wanted, min_excess):
                return False
    return True


@njit(**_JIT)
def place_episode(rng, state, plan, families, decoy_pools, columns, layout, tuning, limits, out):
    # pragma: no cover - compiled
    """Place the planned anomalies, then the decoys, verify the window and refine it.

    ``plan`` holds the anomalies' family ids; ``families`` the family tables (kind,
    direction, opposite, decoy-capable, entity count, entity columns); ``decoy_pools``
    the families decoys may mimic (those in play, then all). Returns the verification
    passes used, FAILED or NOISY; ``out`` receives (family, day, column, value, first
    hour, hours) per incident, anomalies first.
    """
    counts, values, traffic = state[0], state[1], state[2]
    opposite, decoy_capable, entity_count, entity_cols = families[2], families[3], families[4], families[5]
    days = traffic.shape[0]
    margin, min_excess = tuning[0], tuning[6]
    decoys, tries, refine_rounds = limits[0], limits[1], limits[2]
    day_steps = np.empty((state[3].shape[0], traffic.shape[1]))  # contiguous, as in place_one
    day_over = np.empty_like(day_steps)
    for day in range(days):
        _take_day(state[3], day, day_steps)
        _take_day(state[4], day, day_over)
        if not cascade_day(traffic[day], day_steps, day_over, counts, day):
            return NOISY
        day_statistics(counts, day, values[day], layout)
    expected = np.zeros(values.shape, dtype=np.bool_)
    if not window_holds(values, expected, columns, layout, margin, min_excess):
        return NOISY
    sort_columns(values, state[5])
    clean = (counts.copy(), values.copy(), traffic.copy(), state[3].copy(), state[4].copy())
    anomalies = plan.size
    total = anomalies + decoys
    family, is_decoy = out[5], out[6]
    free = np.ones(days, dtype=np.bool_)
    twins = np.empty(anomalies, dtype=np.int64)
    twin_count = 0
    for s in range(anomalies):
        if decoy_capable[plan[s]]:
            twins[twin_count] = s
            twin_count += 1
    for slot in range(total):
        if slot < anomalies:
            f = plan[slot]
            allowed = entity_cols[f, : entity_count[f]].copy()
        elif slot - anomalies < twin_count:
            # A twin: the anomaly's entity on another day, leaning the other way where the
            # family has an opposite, so the window median holds.
            anomaly = twins[slot - anomalies]
            f = opposite[plan[anomaly]]
            allowed = out[1][anomaly : anomaly + 1].copy()
        else:
            # A decoy of a family in play, on an entity no incident uses yet.
            used = out[1][:slot]
            f, allowed = -1, np.empty(0, dtype=np.int64)
            for pool in decoy_pools:
                options = np.empty(pool.size, dtype=np.int64)
                option_count = 0
                for g in pool:
                    if _unused(entity_cols[g, : entity_count[g]], used).size:
                        options[option_count] = g
                        option_count += 1
                if option_count:
                    f = options[int(rng.random() * option_count)]
                    allowed = _unused(entity_cols[f, : entity_count[f]], used)
                    break
            if f < 0:
                return FAILED
        family[slot], is_decoy[slot] = f, slot >= anomalies
        if not _place_slot(rng, slot, allowed, free, state, families, columns, layout, tuning, tries, out):
            return FAILED
        free[out[0][slot]] = False
    for round_ in range(refine_rounds + 1):
        expected[:, :] = False
        for slot in range(anomalies):
            expected[out[0][slot], out[1][slot]] = True
        if window_holds(values, expected, columns, layout, margin, min_excess):
            return round_ + 1
        if round_ == refine_rounds:
            break
        # Re-place each incident on its own day and entity against the medians that the
        # others produced (many same-direction incidents move the window medians).
        for slot in range(total):
            day = out[0][slot]
            _copy_day(clean[0], counts, day)
            kept = replace_sorted(state[5], values[day], clean[1][day])
            _copy(clean[1][day], values[day])
            if not kept:
                sort_columns(values, state[5])
            _copy(clean[2][day], traffic[day])
            _copy_day(clean[3], state[3], day)
            _copy_day(clean[4], state[4], day)
            only = np.zeros(days, dtype=np.bool_)
            only[day] = True
            allowed = out[1][slot : slot + 1].copy()
            if not _place_slot(
                rng, slot, allowed, only, state, families, columns, layout, tuning, tries, out
            ):
                return FAILED
    return FAILED


@njit(**_JIT)
def _place_slot(rng, slot, allowed, free, state, families, columns, layout, tuning, tries, out):
    # pragma: no cover - compiled
    """``place_one`` for the incident in ``slot`` of ``out`` (its family and decoy flag set)."""
    f = out[5][slot]
    kind_of, direction_of = families[0], families[1]
    return place_one(
        rng,
        kind_of[f],
        direction_of[f],
        out[6][slot],
        allowed,
        free,
        state,
        columns,
        layout,
        tuning,
        tries,
        out,
        slot,
    )


@njit(**_JIT)
def _unused(cols, used):  # pragma: no cover - compiled
    keep = np.ones(cols.size, dtype=np.bool_)
    for i in range(cols.size):
        for u in used:
            if cols[i] == u:
                keep[i] = False
    return cols[keep]


@njit(**_JIT)
def clean_drivers(normals, daily, profile, logit_base, sigma, traffic, steps):  # pragma: no cover
    """Clean drivers from standard normal draws (taken in this order): log-normal daily
    and hourly traffic noise around ``daily`` x the hourly ``profile``; step conversion
    from ``logit_base`` with daily and hourly noise in logit space. ``sigma`` = (daily
    traffic, hourly traffic, daily logit, hourly logit)."""
    days, hours = traffic.shape[0], traffic.shape[1]
    i = 0
    for d in range(days):
        level = daily[d] * np.exp(sigma[0] * normals[i])
        i += 1
        for h in range(hours):
            traffic[d, h] = level * profile[h] * np.exp(sigma[1] * normals[i])
            i += 1
    for s in range(steps.shape[0]):
        for d in range(days):
            day_logit = logit_base[s] + sigma[2] * normals[i]
            i += 1
            for h in range(hours):
                steps[s, d, h] = 1.0 / (1.0 + np.exp(-(day_logit + sigma[3] * normals[i])))
                i += 1


# Copies by loop: an array assignment would make Numba compile its shape-mismatch error
# message (string formatting), seconds of compile time for nothing.


@njit(**_JIT)
def _copy(src, dst):  # pragma: no cover - compiled
    for i in range(src.size):
        dst[i] = src[i]


@njit(**_JIT)
def _take_day(src, day, dst):  # pragma: no cover - compiled
    """dst (k, 24) <- src (k, days, 24) of one day."""
    for i in range(dst.shape[0]):
        for h in range(dst.shape[1]):
            dst[i, h] = src[i, day, h]


@njit(**_JIT)
def _put_day(dst, day, src):  # pragma: no cover - compiled
    """dst (k, days, 24) of one day <- src (k, 24)."""
    for i in range(src.shape[0]):
        for h in range(src.shape[1]):
            dst[i, day, h] = src[i, h]


@njit(**_JIT)
def _copy_day(src, dst, day):  # pragma: no cover - compiled
    """One day of (k, days, 24) from ``src`` to ``dst``."""
    for i in range(src.shape[0]):
        for h in range(src.shape[2]):
            dst[i, day, h] = src[i, day, h]
