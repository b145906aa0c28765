"""The compiled kernels (Numba): the per-day statistics, the generator's
propose-and-verify placement loop and its final verification, fused into one call per
attempt at an episode (``generate_episode``).

``day_statistics`` is the one definition of the statistics the canonical detectors read;
``statistics.py`` computes every episode's table with it, so the analysis methods, the
ground truth and placement all agree. Placement tries many candidate changes and judges
each by every canonical detector on its day: a loop of small steps that NumPy runs at its
per-call overhead and compiled code at the speed of arithmetic. What it places is
verified again on the final counts by ``verify``, which states the rules of
``statistics.baselines``, ``deviations``, ``flags`` and ``within_margin`` (the tests
hold them equal). Random draws are those of the episode's NumPy generator (PCG64), drawn
here from its state in the order that generator would produce them.

Every constant and table from another file arrives as an argument, so a changed constant
can never hide in a stale compiled cache (PCG64's multiplier, a constant of the algorithm,
is defined here); all compiled code lives in this one file, because Numba's cache notices
a change only in the file of the function it compiled. Counts are laid out event
first, (5, days, 24); drivers step first, (4, days, 24).
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit
from numba.core import event

# Statistic kinds as the tables code them: positions in families.STATISTIC_KINDS.
COUNT, RATE, FUNNEL, MIX, QUALITY = range(5)
# Incident shapes as the tables code them: positions in families.SHAPES.
SINGLE, CASCADE, PARTIAL_LOAD, DOUBLE_FIRING, OUTAGE, BOT_TRAFFIC = range(6)
# Kernel outcomes besides a positive number of verification passes.
FAILED = -1  # an incident found no place, or refining did not verify
NOISY = -2  # the clean data alone comes too close to a threshold
UNVERIFIED = -4  # the final counts failed the final verification

_JIT = {"cache": True, "error_model": "numpy", "nogil": True}

COMPILE_NOTICE = (
    "metric_tracker_rl: compiling the episode generator's kernels with Numba, once after an install "
    "or an upgrade (10 to 40 s by the machine); later processes load them from Numba's cache"
)


class _CompileNotice(event.Listener):
    """Says once per process, on standard error, that this file's kernels are compiling,
    so the first episode's wait has a reason; a load from the cache compiles nothing and
    says nothing (Numba announces a compile only after its cache missed)."""

    def __init__(self) -> None:
        self.told = False

    def on_start(self, ev: event.Event) -> None:
        if not self.told and ev.data["dispatcher"].py_func.__module__ == __name__:
            self.told = True
            print(COMPILE_NOTICE, file=sys.stderr, flush=True)

    def on_end(self, ev: event.Event) -> None:
        pass


event.register("numba:compile", _CompileNotice())


@njit(**_JIT)
def day_statistics(counts, day, out, layout):  # pragma: no cover - compiled
    """Every entity's statistic of one day (``statistics.event_values`` for one day): the
    totals (``day_totals``), then the shape of the day (``day_shape``)."""
    day_totals(counts, day, out, layout)
    day_shape(counts, day, out, layout)


@njit(**_JIT)
def day_totals(counts, day, out, layout):  # pragma: no cover - compiled
    """The daily event counts and conversion rates of one day. Placement judges these
    first: most candidates that fail, fail here, before the day's shape is computed.

    The hours are summed in four interleaved running totals, which compiled code runs in
    parallel; the sum is the same in any order, since counts are integers far below 2**53.
    """
    count_cols, rate_cols, rate_num, rate_den = layout[0], layout[1], layout[2], layout[3]
    events, hours = counts.shape[0], counts.shape[2]
    for e in range(events):
        t0, t1, t2, t3 = 0.0, 0.0, 0.0, 0.0
        h = 0
        while h + 4 <= hours:
            t0 += counts[e, day, h]
            t1 += counts[e, day, h + 1]
            t2 += counts[e, day, h + 2]
            t3 += counts[e, day, h + 3]
            h += 4
        while h < hours:
            t0 += counts[e, day, h]
            h += 1
        out[count_cols[e]] = (t0 + t1) + (t2 + t3)
    for i in range(rate_cols.size):
        out[rate_cols[i]] = 100.0 * out[count_cols[rate_num[i]]] / out[count_cols[rate_den[i]]]


@njit(**_JIT)
def day_shape(counts, day, out, layout):  # pragma: no cover - compiled
    """The lowest hourly step rates, impossible counts and the daytime share of one day
    (after ``day_totals``, whose app-open total the share divides by).

    No scratch arrays and one division per statistic. Hours where some event counts more
    than its predecessor are left out of the lowest step rates; they are marked in one
    pass, as bits of an integer. The lowest step rate is found by comparing fractions
    crosswise (exact: counts are integers far below 2**53) and divided once, which gives
    the same number as dividing every hour and taking the least.
    """
    count_cols, funnel_cols, quality_cols, mix = layout[0], layout[4], layout[5], layout[6]
    events, hours = counts.shape[0], counts.shape[2]
    impossible = 0
    for s in range(events - 1):
        excess = 0.0
        for h in range(hours):
            upstream, downstream = counts[s, day, h], counts[s + 1, day, h]
            if downstream > upstream:
                excess += downstream - upstream
                impossible |= 1 << h
        out[quality_cols[s]] = excess
    for s in range(events - 1):
        best_num, best_den = np.inf, 1.0
        for h in range(hours):
            upstream, downstream = counts[s, day, h], counts[s + 1, day, h]
            if upstream > 0 and downstream * best_den < best_num * upstream and not (impossible >> h) & 1:
                best_num, best_den = downstream, upstream
        out[funnel_cols[s]] = 100.0 * (best_num / best_den)
    daytime = 0.0
    for h in range(mix[1], mix[2]):
        daytime += counts[0, day, h]
    out[mix[0]] = 100.0 * daytime / out[count_cols[0]]


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
def day_holds(values, day, base, bounds, wanted, columns, min_excess):  # pragma: no cover
    """True when the day flags exactly the columns ``wanted`` marks and every statistic
    keeps the margin."""
    kinds = columns[1]
    for col in range(values.shape[1]):
        if not value_holds(values[day, col], base, col, kinds[col], bounds, wanted[col], min_excess):
            return False
    return True


@njit(**_JIT)
def judge_day(counts, day, values, base, bounds, wanted, columns, layout, min_excess):
    # pragma: no cover - compiled
    """``day_statistics`` of a changed day into ``values`` and ``day_holds`` on it, in two
    stages: the totals are computed and judged first, and the day's shape only when they
    hold (most candidates that fail, fail on a conversion rate). The same verdict as
    computing everything first; ``values[day]`` is complete only when it is True."""
    day_totals(counts, day, values[day], layout)
    for cols in (layout[0], layout[1]):
        if not columns_hold(values, day, base, bounds, wanted, columns, min_excess, cols):
            return False
    day_shape(counts, day, values[day], layout)
    return day_holds(values, day, base, bounds, wanted, columns, min_excess)


@njit(**_JIT)
def columns_hold(values, day, base, bounds, wanted, columns, min_excess, cols):  # pragma: no cover
    """``day_holds`` for the columns ``cols`` only."""
    kinds = columns[1]
    for col in cols:
        if not value_holds(values[day, col], base, col, kinds[col], bounds, wanted[col], min_excess):
            return False
    return True


@njit(**_JIT)
def cascade_day(traffic, steps, over_report, counts, day):  # pragma: no cover - compiled
    """One day's counts from its drivers (``generator.cascade``); False when a count is
    not a finite non-negative number."""
    steps_n, hours = steps.shape[0], steps.shape[1]
    for h in range(hours):  # event by event, so each loop runs over the day's hours in step
        counts[0, day, h] = np.rint(traffic[h])
    for k in range(steps_n):
        for h in range(hours):
            counts[k + 1, day, h] = np.rint(counts[k, day, h] * steps[k, h])
    for k in range(steps_n - 1, -1, -1):  # from the last step, so each reads true counts
        for h in range(hours):
            if over_report[k, h] > 0:
                reported = np.rint(counts[k, day, h] * over_report[k, h])
                if reported > counts[k + 1, day, h]:
                    counts[k + 1, day, h] = reported
    finite = True
    for e in range(steps_n + 1):
        for h in range(hours):
            c = counts[e, day, h]
            finite &= c >= 0.0 and c < np.inf
    return finite


# --- random draws: NumPy's PCG64 and its standard normal, in compiled code -------------
# PCG64 is a 128-bit linear congruential generator with the XSL-RR output; its state is
# held as four words (state high, state low, increment high, increment low). The numbers
# drawn here are the ones the episode's NumPy ``Generator`` would draw, in the same order
# (the tests hold them equal), without calling back into NumPy for each draw.
_PCG_MULT_HI = np.uint64(0x2360ED051FC65DA4)
_PCG_MULT_LO = np.uint64(0x4385DF649FCCF645)
_LOW32 = np.uint64(0xFFFFFFFF)
_BITS32 = np.uint64(32)


@njit(**_JIT)
def _mulhi(a, b):  # pragma: no cover - compiled
    """The high word of the 128-bit product of two words."""
    a_lo, a_hi = a & _LOW32, a >> _BITS32
    b_lo, b_hi = b & _LOW32, b >> _BITS32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    cross = (lo_lo >> _BITS32) + (hi_lo & _LOW32) + a_lo * b_hi
    return a_hi * b_hi + (hi_lo >> _BITS32) + (cross >> _BITS32)


@njit(**_JIT)
def next_uint64(bits):  # pragma: no cover - compiled
    """PCG64's next word: the state steps (times the multiplier, plus the increment, modulo
    2**128), then the high and low words of the new state are xored and rotated right by
    its top six bits."""
    hi, lo = bits[0], bits[1]
    product_lo = lo * _PCG_MULT_LO
    new_hi = _mulhi(lo, _PCG_MULT_LO) + lo * _PCG_MULT_HI + hi * _PCG_MULT_LO
    new_lo = product_lo + bits[3]
    if new_lo < product_lo:  # the carry
        new_hi += np.uint64(1)
    new_hi += bits[2]
    bits[0], bits[1] = new_hi, new_lo
    x = new_hi ^ new_lo
    rot = new_hi >> np.uint64(58)
    return (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@njit(**_JIT)
def next_double(bits):  # pragma: no cover - compiled
    """A uniform draw in [0, 1): the top 53 bits of the next word (``Generator.random``)."""
    return np.float64(next_uint64(bits) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**_JIT)
def standard_normals(bits, ziggurat, out):  # pragma: no cover - compiled
    """``out`` filled with standard normal draws by NumPy's ziggurat
    (``Generator.standard_normal``); ``ziggurat`` = (k, w, f tables of its 256 layers,
    (tail start, its inverse)). One flat loop: a draw is a few instructions."""
    k, w = ziggurat[0], ziggurat[1]
    i = 0
    while i < out.size:
        r = next_uint64(bits)
        layer = np.int64(r & np.uint64(0xFF))
        r >>= np.uint64(8)
        size = (r >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = np.float64(size) * w[layer]
        if r & np.uint64(1):
            x = -x
        if size < k[layer]:  # inside the layer's rectangle: almost always
            out[i] = x
            i += 1
            continue
        done, x = _outside_rectangle(bits, ziggurat, layer, size, x)
        if done:
            out[i] = x
            i += 1


@njit(**_JIT)
def _outside_rectangle(bits, ziggurat, layer, size, x):  # pragma: no cover - compiled
    """The ziggurat's rare case: the tail (layer 0, from two more draws) or the wedge of
    a layer (accepted or not, from one more draw). Returns (accepted, draw)."""
    f, tail = ziggurat[2], ziggurat[3]
    if layer == 0:
        while True:
            xx = -tail[1] * np.log1p(-next_double(bits))
            yy = -np.log1p(-next_double(bits))
            if yy + yy > xx * xx:
                if (size >> np.uint64(8)) & np.uint64(1):
                    return True, -(tail[0] + xx)
                return True, tail[0] + xx
    if (f[layer - 1] - f[layer]) * next_double(bits) + f[layer] < np.exp(-0.5 * x * x):
        return True, x
    return False, 0.0


@njit(**_JIT)
def draw(bits, ziggurat, normals, uniforms):  # pragma: no cover - compiled
    """``normals`` then ``uniforms`` filled with draws, in that order (for the tests)."""
    standard_normals(bits, ziggurat, normals)
    for i in range(uniforms.size):
        uniforms[i] = next_double(bits)


@njit(**_JIT)
def _sign(rng, direction):  # pragma: no cover - compiled
    if direction != 0:
        return float(direction)
    return 1.0 if next_double(rng) < 0.5 else -1.0


@njit(**_JIT)
def _target_z(rng, sign, decoy, tuning, reach_scale):  # pragma: no cover - compiled
    """Normalised deviation of the changed entity: beyond the flag line for an anomaly
    (|z| in [1 + margin, 1 + margin + reach]), clearly inside it for a decoy."""
    margin, reach, decoy_min_z = tuning[0], tuning[1], tuning[2]
    if decoy:
        return sign * (decoy_min_z + next_double(rng) * (1.0 - margin - 0.02 - decoy_min_z))
    return sign * (1.0 + margin + 0.02 + next_double(rng) * reach * reach_scale)


@njit(**_JIT)
def _inside_z(rng, margin):  # pragma: no cover - compiled
    return (2.0 * next_double(rng) - 1.0) * (1.0 - margin) * 0.9


@njit(**_JIT)
def propose(rng, kind, shape, direction, decoy, col, day, state, base, columns, layout, tuning, change):
    # pragma: no cover - compiled
    """One candidate change of ``col`` on ``day`` for an incident of this ``kind`` and
    ``shape``: multipliers of the day's traffic and steps and absolute over-report ratios,
    written into ``change``; returns what the schedule reports of it (value, first hour,
    hours). The several-row shapes are ``propose_spread``'s."""
    traffic_factor, step_factor, over_report = change
    counts, values, steps = state[0], state[1], state[3]
    thresholds, positions = columns[0], columns[2]
    count_cols, rate_cols = layout[0], layout[1]
    margin = tuning[0]
    hours = traffic_factor.size
    steps_n = step_factor.shape[0]
    for h in range(hours):  # loops: a slice assignment is a generic broadcast in Numba
        traffic_factor[h] = 1.0
        for s in range(steps_n):
            step_factor[s, h] = 1.0
            over_report[s, h] = 0.0
    if shape != SINGLE:
        return propose_spread(rng, shape, direction, col, day, state, base, columns, layout, tuning, change)
    value, start, length = 0.0, 0, 0
    if kind == COUNT:
        # The event moves beyond the threshold; its neighbours follow just inside it, so
        # no conversion rate breaks.
        sign = _sign(rng, direction)
        threshold = thresholds[col]
        target = 1.0 + threshold * _target_z(rng, sign, decoy, tuning, 0.3)
        before = 1.0  # the previous event's factor
        for e in range(count_cols.size):
            desired = 1.0 + sign * threshold * (1.0 - margin - (0.03 + 0.17 * next_double(rng)))
            if e == positions[col]:
                desired = target
            factor = desired * base[count_cols[e]] / values[day, count_cols[e]]
            for h in range(hours):
                if e == 0:
                    traffic_factor[h] = factor
                else:
                    step_factor[e - 1, h] = factor / before
            before = factor
        value = target - 1.0
    elif kind == RATE:
        # A whole-day conversion shift. Adjacent metrics move one step; end-to-end
        # metrics spread it over their steps, with the other end-to-end metric held
        # inside its threshold by the last step.
        sign = _sign(rng, direction)
        target = base[col] + thresholds[col] * _target_z(rng, sign, decoy, tuning, 1.0)
        needed = target / values[day, col]
        position = positions[col]
        if position < steps_n:
            _fill_row(step_factor, position, needed)
        else:
            order_col, pay_col = int(tuning[4]), int(tuning[5])
            other = pay_col if col == order_col else order_col
            other_rate = base[other] + thresholds[other] * _inside_z(rng, margin)
            other_needed = other_rate / values[day, other]
            order = needed if col == order_col else other_needed
            pay = other_needed if col == order_col else needed
            w0, w1, w2 = (
                -np.log(1.0 - next_double(rng)),
                -np.log(1.0 - next_double(rng)),
                -np.log(1.0 - next_double(rng)),
            )
            total = w0 + w1 + w2  # Dirichlet(1, 1, 1) weights from three exponentials
            _fill_row(step_factor, 0, order ** (w0 / total))
            _fill_row(step_factor, 1, order ** (w1 / total))
            _fill_row(step_factor, 2, order ** (w2 / total))
            _fill_row(step_factor, 3, pay / order)
        nudge = 0.9 + 0.2 * next_double(rng)  # nudged, so counts move on their own too
        for h in range(hours):
            traffic_factor[h] = nudge
        value = target - values[day, col]
    elif kind == FUNNEL:
        # An outage of one step for a few consecutive hours; users retry later in the
        # day, so the daily step rate stays inside the rate threshold.
        step = positions[col]
        length = 2 + int(next_double(rng) * 3)
        start = 7 + int(next_double(rng) * (14 - length))
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
        length = 1 + int(next_double(rng) * 3)
        start = int(next_double(rng) * (hours - length))
        value = 1.0 + 0.05 + 0.55 * next_double(rng)
        for h in range(start, start + length):
            over_report[pair, h] = value
    return value, start, length


@njit(**_JIT)
def propose_spread(rng, shape, direction, col, day, state, base, columns, layout, tuning, change):
    # pragma: no cover - compiled
    """``propose`` for an incident that shows in several statistics (``change`` reset to no
    change by ``propose``). Each aims the statistic that crosses last, with room beyond the
    margin; the day's verdict (``judge_day``) checks every statistic against the shape's rows.

    - cascade: the step of rate ``col`` converts worse (or better) all day, so that the next
      event's count moves beyond the count threshold; every later count follows, and the rate
      and the end-to-end rates through the step move further than their thresholds.
    - partial load: every hour's traffic by one factor (every count moves, rates stay flat).
    - double firing: the event after pair ``col`` is logged twice (reported at twice its
      predecessor's rate, its true count still feeding the next step) in a block of hours
      holding a share of its day beyond the count threshold.
    - outage: the step of funnel ``col`` converts a small fraction of its usual rate from an
      hour on, until the next event has lost a share of its day beyond the count threshold.
    - bot traffic: app opens that never convert, beyond the count threshold, spread over the
      night hours (or the daytime ones) in proportion to their traffic.
    """
    traffic_factor, step_factor, over_report = change
    counts, values, steps = state[0], state[1], state[3]
    thresholds, positions = columns[0], columns[2]
    count_cols = layout[0]
    margin = tuning[0]
    hours = traffic_factor.size
    value, start, length = 0.0, 0, 0
    if shape == CASCADE:
        sign = _sign(rng, direction)
        step = positions[col]
        after = count_cols[step + 1]
        z = 1.0 + margin + 0.1 + 0.3 * next_double(rng)
        factor = base[after] * (1.0 + sign * thresholds[after] * z) / values[day, after]
        _fill_row(step_factor, step, factor)
        value = factor - 1.0
    elif shape == PARTIAL_LOAD:
        sign = _sign(rng, direction)
        first = count_cols[0]
        z = 1.0 + margin + 0.3 + 0.4 * next_double(rng)
        factor = base[first] * (1.0 + sign * thresholds[first] * z) / values[day, first]
        for h in range(hours):
            traffic_factor[h] = factor
        value = factor - 1.0
    elif shape == OUTAGE:
        step = positions[col]
        after = count_cols[step + 1]
        lose = values[day, after] * thresholds[after] * (1.0 + margin + 0.1 + 0.3 * next_double(rng))
        value = 0.05 + 0.25 * next_double(rng)
        start = 8 + int(next_double(rng) * 6.0)
        lost = 0.0
        h = start
        while h < hours and lost < lose:
            step_factor[step, h] = value
            lost += counts[step + 1, day, h] * (1.0 - value)
            h += 1
        length = h - start
    elif shape == BOT_TRAFFIC:
        sign = _sign(rng, direction)
        mix = layout[6]
        first = count_cols[0]
        extra = values[day, first] * thresholds[first] * (1.0 + margin + 0.1 + 0.2 * next_double(rng))
        window = 0.0
        for h in range(hours):
            if (mix[1] <= h < mix[2]) == (sign > 0):
                window += counts[0, day, h]
        for h in range(hours):
            if (mix[1] <= h < mix[2]) == (sign > 0):
                traffic_factor[h] = 1.0 + extra / window
                step_factor[0, h] = 1.0 / traffic_factor[h]  # the bots open nothing further
        value = extra / values[day, first]
    else:  # DOUBLE_FIRING
        pair = positions[col]
        event = pair + 1
        total = values[day, count_cols[event]]
        wanted = total * thresholds[count_cols[event]] * (1.0 + margin + 0.1 + 0.4 * next_double(rng))
        start = int(next_double(rng) * 12.0)
        doubled = 0.0
        h = start
        while h < hours and doubled < wanted:
            over_report[pair, h] = 2.0 * steps[pair, day, h]
            doubled += counts[event, day, h]
            h += 1
        length = h - start
        value = doubled / total
    return value, start, length


@njit(**_JIT)
def _fill_row(array, row, value):  # pragma: no cover - compiled
    for h in range(array.shape[1]):
        array[row, h] = value


@njit(**_JIT)
def place_one(rng, kind, shape, direction, decoy, allowed, free, earlier, context, slot, keep):
    # pragma: no cover - compiled
    """Place one incident: up to ``tries`` (day, entity) pairs from ``free`` days and
    ``allowed`` columns, ``tuning[3]`` candidates each, keeping the first candidate whose
    day flags exactly what it should with the margin on every statistic (judged against
    the current window medians): the rows of the incident (``signatures[shape, col]``;
    none for a decoy) and those of the incidents placed on the day before it
    (``earlier[day]``). The day's drivers, counts and statistics are updated; when
    ``keep`` is given (a first placement), what the day held before goes to ``keep`` at
    ``slot``. ``context`` = (signatures, state, families, columns, layout, tuning, tries,
    out, work), as ``place_episode`` holds them; ``work`` holds the scratch arrays (``_work``)."""
    signatures, state, _, columns, layout, tuning, tries, out, work = context
    counts, values, traffic, steps, over_report = state[0], state[1], state[2], state[3], state[4]
    ordered = state[5]
    hours = traffic.shape[1]
    steps_n = steps.shape[0]
    margin, candidates, min_excess = tuning[0], int(tuning[3]), tuning[6]
    base, bounds, free_days = work[0], work[1], work[2]
    traffic_factor, step_factor, over_factor = work[3], work[4], work[5]
    change = (traffic_factor, step_factor, over_factor)
    new_traffic, new_steps, new_over = work[6], work[7], work[8]
    saved_counts, saved_values, wanted = work[9], work[10], work[11]
    sorted_baselines(ordered, base, layout)
    verdict_bounds(base, columns, margin, bounds)
    free_count = 0
    for day in range(free.size):
        if free[day]:
            free_days[free_count] = day
            free_count += 1
    for _ in range(tries):
        day = free_days[int(next_double(rng) * free_count)]
        col = allowed[int(next_double(rng) * allowed.size)]
        overlap = False
        for c in range(wanted.size):
            own = not decoy and signatures[shape, col, c]
            overlap |= own and earlier[day, c]
            wanted[c] = earlier[day, c] or own
        if overlap:
            continue  # a row of an incident already on the day: another (day, entity)
        _take_day(counts, day, saved_counts)
        _copy(values[day], saved_values)
        for _k in range(candidates):
            value, start, length = propose(
                rng, kind, shape, direction, decoy, col, day, state, base, columns, layout, tuning, change
            )
            feasible = True
            for h in range(hours):  # each loop over a day's hours, so it runs in step
                new_traffic[h] = traffic[day, h] * traffic_factor[h]
            for s in range(steps_n):
                for h in range(hours):
                    new_steps[s, h] = steps[s, day, h] * step_factor[s, h]
                    new_over[s, h] = max(over_report[s, day, h], over_factor[s, h])
                    feasible &= new_steps[s, h] < 1.0
            if not feasible:
                continue
            if cascade_day(new_traffic, new_steps, new_over, counts, day) and judge_day(
                counts, day, values, base, bounds, wanted, columns, layout, min_excess
            ):
                if not replace_sorted(ordered, saved_values, values[day]):
                    sort_columns(values, ordered)
                if keep is not None:
                    _copy_2d(saved_counts, keep[0][slot])
                    _copy(saved_values, keep[1][slot])
                    _copy(traffic[day], keep[2][slot])
                    _take_day(steps, day, keep[3][slot])
                    _take_day(over_report, day, keep[4][slot])
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
def _work(days, hours, steps_n, entities):  # pragma: no cover - compiled
    """``place_one``'s scratch arrays, made once per episode."""
    return (
        np.empty(entities),
        np.empty((2, entities)),
        np.empty(days, dtype=np.int64),
        np.empty(hours),
        np.empty((steps_n, hours)),
        np.empty((steps_n, hours)),
        np.empty(hours),
        np.empty((steps_n, hours)),
        np.empty((steps_n, hours)),
        np.empty((steps_n + 1, hours)),
        np.empty(entities),
        np.zeros(entities, dtype=np.bool_),
    )


@njit(**_JIT)
def window_holds(values, expected, columns, layout, margin, min_excess):  # pragma: no cover
    """Every day flags exactly its expected entities and keeps the margin everywhere."""
    base = np.empty(values.shape[1])
    baselines(values, base, layout)
    return _window_holds(values, base, np.empty((2, values.shape[1])), expected, columns, margin, min_excess)


@njit(**_JIT)
def _window_holds(values, base, bounds, expected, columns, margin, min_excess):  # pragma: no cover
    """``window_holds`` against the baselines ``base`` (``bounds``: scratch)."""
    kinds = columns[1]
    verdict_bounds(base, columns, margin, bounds)
    for day in range(values.shape[0]):
        for col in range(values.shape[1]):
            wanted = expected[day, col]
            if not value_holds(values[day, col], base, col, kinds[col], bounds, wanted, min_excess):
                return False
    return True


@njit(**_JIT)
def place_episode(rng, state, plan, families, signatures, decoy_pools, columns, layout, tuning, limits, out):
    # pragma: no cover - compiled
    """Place the planned anomalies, then the decoys, verify the window and refine it.

    ``rng`` is the PCG64 state words every draw advances (``next_double``); ``plan``
    holds the anomalies' family ids, shapes and whether each is to share the day of an
    earlier incident; ``families`` the family tables (kind, direction, opposite,
    decoy-capable, entity count, entity columns, and per shape: column count and columns);
    ``signatures[shape, col]`` the rows an incident
    of that shape on that column makes; ``decoy_pools`` the families decoys may mimic
    (those in play, then all). Returns the verification passes used, FAILED or NOISY;
    ``out`` receives (day, column, value, first hour, hours, family, decoy, shape) per
    incident, anomalies first.
    """
    counts, values, traffic = state[0], state[1], state[2]
    opposite, decoy_capable, entity_count, entity_cols = families[2], families[3], families[4], families[5]
    shape_count, shape_cols = families[6], families[7]
    plan_family, plan_shape, plan_shared = plan[0], plan[1], plan[2]
    days = traffic.shape[0]
    entities = values.shape[1]
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
    hours, steps_n = traffic.shape[1], state[3].shape[0]
    work = _work(days, hours, steps_n, entities)
    context = (signatures, state, families, columns, layout, tuning, tries, out, work)
    base, bounds = work[0], work[1]  # each use reads the medians afresh
    earlier = np.zeros(values.shape, dtype=np.bool_)  # the rows of the incidents placed so far
    sort_columns(values, state[5])
    sorted_baselines(state[5], base, layout)
    if not _window_holds(values, base, bounds, earlier, columns, margin, min_excess):
        return NOISY
    anomalies = plan_family.size
    total = anomalies + decoys
    # What each incident's day held before its first placement, for refining.
    clean = (
        np.empty((total, steps_n + 1, hours)),
        np.empty((total, entities)),
        np.empty((total, hours)),
        np.empty((total, steps_n, hours)),
        np.empty((total, steps_n, hours)),
    )
    family, is_decoy, shape = out[5], out[6], out[7]
    free = np.ones(days, dtype=np.bool_)
    twins = np.empty(anomalies, dtype=np.int64)
    twin_count = 0
    for s in range(anomalies):
        if decoy_capable[plan_family[s]]:
            twins[twin_count] = s
            twin_count += 1
    for slot in range(total):
        candidate_days = free
        if slot < anomalies:
            f = plan_family[slot]
            shape[slot] = plan_shape[slot]
            allowed = shape_cols[f, shape[slot], : shape_count[f, shape[slot]]].copy()
            if plan_shared[slot]:
                shared = _shared_days(out, slot, f, days)
                if shared.any():
                    candidate_days = shared
        elif slot - anomalies < twin_count:
            # A twin: the anomaly's entity on another day, leaning the other way where the
            # family has an opposite, so the window median holds.
            anomaly = twins[slot - anomalies]
            f = opposite[plan_family[anomaly]]
            allowed = out[1][anomaly : anomaly + 1].copy()
        else:
            # A decoy of a family in play, on an entity no incident uses yet (a family of the second
            # pool, the one family in play when it has one entity, on that entity again).
            used = out[1][:slot]
            f, allowed = -1, np.empty(0, dtype=np.int64)
            for p in range(len(decoy_pools)):
                pool = decoy_pools[p]
                options = np.empty(pool.size, dtype=np.int64)
                option_count = 0
                for g in pool:
                    if p == 1 or _unused(entity_cols[g, : entity_count[g]], used).size:
                        options[option_count] = g
                        option_count += 1
                if option_count:
                    f = options[int(next_double(rng) * option_count)]
                    if p == 1:
                        allowed = entity_cols[f, : entity_count[f]].copy()
                    else:
                        allowed = _unused(entity_cols[f, : entity_count[f]], used)
                    break
            if f < 0:
                return FAILED
        family[slot], is_decoy[slot] = f, slot >= anomalies
        placed = _place_slot(rng, slot, allowed, candidate_days, earlier, context, clean)
        if not placed and candidate_days is not free:  # no shared day fits: a day of its own
            placed = _place_slot(rng, slot, allowed, free, earlier, context, clean)
        if not placed:
            return FAILED
        free[out[0][slot]] = False
        if slot < anomalies:
            _mark(earlier, out[0][slot], signatures[shape[slot], out[1][slot]])
    for round_ in range(refine_rounds + 1):
        sorted_baselines(state[5], base, layout)  # the order is kept as days change
        if _window_holds(values, base, bounds, earlier, columns, margin, min_excess):
            return round_ + 1
        if round_ == refine_rounds:
            break
        # Re-place each incident on its own day and entity against the medians that the
        # others produced (many same-direction incidents move the window medians). A day
        # is restored to what it held before the incident's first placement: the incidents
        # placed on it earlier (as first placed), and nothing of those placed on it later.
        for slot in range(total):
            day = out[0][slot]
            _put_day(counts, day, clean[0][slot])
            kept = replace_sorted(state[5], values[day], clean[1][slot])
            _copy(clean[1][slot], values[day])
            if not kept:
                sort_columns(values, state[5])
            _copy(clean[2][slot], traffic[day])
            _put_day(state[3], day, clean[3][slot])
            _put_day(state[4], day, clean[4][slot])
            before = np.zeros(values.shape, dtype=np.bool_)
            for other in range(min(slot, anomalies)):
                if out[0][other] == day:
                    _mark(before, day, signatures[shape[other], out[1][other]])
            only = np.zeros(days, dtype=np.bool_)
            only[day] = True
            allowed = out[1][slot : slot + 1].copy()
            if not _place_slot(rng, slot, allowed, only, before, context, None):
                return FAILED
    return FAILED


@njit(**_JIT)
def _shared_days(out, slot, family, days):  # pragma: no cover - compiled
    """The days of earlier incidents that an incident may share: held by one incident of
    another family (and, as ``place_one`` checks, with no row in common)."""
    shared = np.zeros(days, dtype=np.bool_)
    held = np.zeros(days, dtype=np.int64)
    for other in range(slot):
        held[out[0][other]] += 1
    for other in range(slot):
        if out[5][other] != family and held[out[0][other]] == 1:  # two incidents a date at most
            shared[out[0][other]] = True
    return shared


@njit(**_JIT)
def _mark(expected, day, rows):  # pragma: no cover - compiled
    for c in range(rows.size):
        if rows[c]:
            expected[day, c] = True


@njit(**_JIT)
def _place_slot(rng, slot, allowed, free, earlier, context, keep):  # pragma: no cover - compiled
    """``place_one`` for the incident in ``slot`` of ``out`` (its family, decoy flag and
    shape set)."""
    families, out = context[2], context[7]
    f = out[5][slot]
    return place_one(
        rng,
        families[0][f],
        out[7][slot],
        families[1][f],
        out[6][slot],
        allowed,
        free,
        earlier,
        context,
        slot,
        keep,
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


@njit(**_JIT)
def verify(counts, required, allowed, columns, layout, margin, min_excess, cutoffs, tables):
    # pragma: no cover - compiled
    """The final check, on the final counts (5, days, 24): the statistics of every day
    (``day_statistics``), their baselines, deviations and the canonical verdicts (the rules
    of ``statistics.baselines``, ``deviations``, ``flags`` and ``within_margin``). True
    when every ``required`` (day, entity) flags, nothing flags that is not ``allowed``,
    every deviation keeps the margin and impossible counts are absent or at least
    ``min_excess``.

    ``tables`` = (values, base, z, flagged, spread, severity, delta, abs_delta) receives
    what the episode is answered from: spread and severity as ``Episode`` and
    ``statistics.severity_level`` define them (``cutoffs``: the severity ratio and
    impossible-count percentage cutoffs), delta = values - base and its size.
    """
    values, base, z, flagged, spread, severity, deltas, sizes = tables
    thresholds, kinds = columns[0], columns[1]
    all_day_statistics(counts, values, layout)
    baselines(values, base, layout)
    ok = True
    for col in range(values.shape[1]):
        kind = kinds[col]
        unit = thresholds[col]
        relative = kind == COUNT or kind == FUNNEL  # noqa: SIM109 - as verdict_bounds, for Numba
        for day in range(values.shape[0]):
            delta = values[day, col] - base[col]
            deltas[day, col] = delta
            sizes[day, col] = abs(delta)
            d = delta / (base[col] * unit) if relative else delta / unit
            z[day, col] = d
            size = abs(d)
            if kind == FUNNEL:
                flag = d < -1.0
                keeps = d <= -(1.0 + margin) or d >= -(1.0 - margin)
            elif kind == QUALITY:
                flag = d > 0.0
                keeps = d == 0.0 or d >= 1.0
                value = values[day, col]
                keeps = keeps and (value == 0.0 or value >= min_excess)
            else:
                flag = size > 1.0
                keeps = size >= 1.0 + margin or size <= 1.0 - margin
            flagged[day, col] = flag
            if not keeps or (flag and not allowed[day, col]) or (required[day, col] and not flag):
                ok = False
    _spread_and_severity(values, base, z, layout, min_excess, cutoffs, spread, severity)
    return ok


@njit(**_JIT)
def verify_tables(days, entities):  # pragma: no cover - compiled
    """The tables ``verify`` fills: (values, base, z, flagged, spread, severity, delta,
    abs_delta)."""
    return (
        np.empty((days, entities)),
        np.empty(entities),
        np.empty((days, entities)),
        np.zeros((days, entities), dtype=np.bool_),
        np.empty(entities),
        np.zeros((days, entities), dtype=np.int64),
        np.empty((days, entities)),
        np.empty((days, entities)),
    )


@njit(**_JIT)
def _spread_and_severity(values, base, z, layout, min_excess, cutoffs, spread, severity):
    # pragma: no cover - compiled
    """Each entity's std-from-median (the days summed in order, as NumPy sums an axis-0
    reduction) and each (day, entity)'s severity index: the ratio cutoffs at or below
    |z|; for impossible counts, the excess as a percentage of the predecessor's daily count."""
    count_cols, quality_cols = layout[0], layout[5]
    days = values.shape[0]
    for col in range(values.shape[1]):
        total = 0.0
        for day in range(days):
            d = values[day, col] - base[col]
            total += d * d
        spread[col] = np.sqrt(total / days)
        for day in range(days):
            severity[day, col] = _level(cutoffs[0], abs(z[day, col]))
    for s in range(quality_cols.size):
        col = quality_cols[s]
        for day in range(days):
            pct = 100.0 * z[day, col] * min_excess / values[day, count_cols[s]]
            severity[day, col] = _level(cutoffs[1], pct)


@njit(**_JIT)
def _level(cutoffs, x):  # pragma: no cover - compiled
    """``searchsorted(cutoffs, x, side="right") - 1`` clipped to the levels (NaN sorts last)."""
    n = cutoffs.size
    if x != x:
        return n - 1
    level = -1
    for c in cutoffs:
        if c <= x:
            level += 1
    return min(max(level, 0), n - 1)


@njit(**_JIT)
def generate_episode(
    bits, ziggurat, clean, plan, decoy_pools, families, signatures, columns, layout, tuning, limits, cutoffs
):
    # pragma: no cover - compiled
    """One attempt at an episode, from its random draws to its verified statistics:
    clean drivers from standard normal draws (``clean_drivers``, ``clean`` = (daily,
    profile, logit base, sigma)), placement (``place_episode``, on uniform draws), then
    ``verify`` on the final counts with the anomalies as the required and allowed flags.
    Every draw comes from the PCG64 state words ``bits`` (advanced), normals first.

    Returns (outcome, hourly (days, 24, 5) int64, ``verify``'s tables, incidents). The
    outcome is the verification passes used (> 0), FAILED, NOISY or UNVERIFIED;
    incidents = (day, column, value, first hour, hours, family, decoy, shape) per incident,
    anomalies first; the expected rows are the incidents' signatures.
    """
    daily, profile, logit_base = clean[0], clean[1], clean[2]
    days, hours, steps_n = daily.size, profile.size, logit_base.size
    entities = columns[0].size
    normals = np.empty((1 + steps_n) * days * (1 + hours))
    standard_normals(bits, ziggurat, normals)
    traffic = np.empty((days, hours))
    steps = np.empty((steps_n, days, hours))
    clean_drivers(normals, daily, profile, logit_base, clean[3], traffic, steps)
    counts = np.empty((steps_n + 1, days, hours))
    state = (
        counts,
        np.empty((days, entities)),
        traffic,
        steps,
        np.zeros((steps_n, days, hours)),
        np.empty((entities, days)),
    )
    anomalies = plan[0].size
    total = anomalies + limits[0]
    out = (
        np.full(total, -1, dtype=np.int64),
        np.full(total, -1, dtype=np.int64),
        np.zeros(total),
        np.zeros(total, dtype=np.int64),
        np.zeros(total, dtype=np.int64),
        np.zeros(total, dtype=np.int64),
        np.zeros(total, dtype=np.bool_),
        np.zeros(total, dtype=np.int64),
    )
    outcome = place_episode(
        bits, state, plan, families, signatures, decoy_pools, columns, layout, tuning, limits, out
    )
    tables = verify_tables(days, entities)
    hourly = np.empty((days, hours, steps_n + 1), dtype=np.int64)
    if outcome > 0:
        expected = np.zeros((days, entities), dtype=np.bool_)
        for slot in range(anomalies):
            _mark(expected, out[0][slot], signatures[out[7][slot], out[1][slot]])
        if verify(counts, expected, expected, columns, layout, tuning[0], tuning[6], cutoffs, tables):
            for e in range(steps_n + 1):
                for d in range(days):
                    for h in range(hours):
                        hourly[d, h, e] = np.int64(counts[e, d, h])
        else:
            outcome = UNVERIFIED
    return outcome, hourly, tables, out


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
def _copy_2d(src, dst):  # pragma: no cover - compiled
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]
