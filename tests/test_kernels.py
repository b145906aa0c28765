"""The compiled kernels agree with plain NumPy statements of the same rules: the per-day
statistics with tests/reference_statistics.py, the medians, the cascade and the window
verdicts with statistics.py and generator.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import reference_statistics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from metric_tracker_rl import constants as C
from metric_tracker_rl import kernels
from metric_tracker_rl import statistics as S
from metric_tracker_rl.generator import COLUMNS, cascade, clean_drivers, verify
from metric_tracker_rl.tasks import config_for

REPO = Path(__file__).resolve().parents[1]
DAYS = 6
# Small counts, so that zeros and impossible counts (a step above its predecessor) are common.
COUNTS = arrays(np.float64, (C.NUM_EVENTS, DAYS, C.HOURS), elements=st.integers(0, 40).map(float))


def kernel_values(counts: np.ndarray) -> np.ndarray:
    values = np.empty((counts.shape[1], S.NUM_ENTITIES))
    for day in range(counts.shape[1]):
        kernels.day_statistics(counts, day, values[day], S.LAYOUT)
    return values


@settings(max_examples=60, deadline=None)
@given(COUNTS)
def test_day_statistics_equal_the_reference(counts):
    expected = reference_statistics.event_values(counts)
    np.testing.assert_array_equal(kernel_values(counts), expected)
    np.testing.assert_array_equal(S.event_values(counts), expected)
    hours_last = np.moveaxis(counts, 0, -1)
    np.testing.assert_array_equal(S.day_values(hours_last), expected)
    np.testing.assert_array_equal(
        S.day_values(hours_last.reshape(2, 3, C.HOURS, C.NUM_EVENTS)), expected.reshape(2, 3, -1)
    )


def test_day_statistics_on_the_hand_built_day():
    from test_statistics import hand_built_day

    counts = np.ascontiguousarray(np.moveaxis(hand_built_day()[None], -1, 0))
    np.testing.assert_array_equal(kernel_values(counts), S.day_values(hand_built_day()[None]))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (28, S.NUM_ENTITIES), elements=st.floats(-1e6, 1e6)))
def test_baselines_equal_statistics_py(values):
    base = np.empty(S.NUM_ENTITIES)
    kernels.baselines(values, base, S.LAYOUT)
    np.testing.assert_array_equal(base, S.baselines(values))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from(C.DIFFICULTIES))
def test_cascade_day_equals_cascade_with_over_reports(seed, difficulty):
    config = config_for(None, seed=seed, difficulty=difficulty)
    rng = np.random.default_rng(seed)
    drivers = clean_drivers(config, rng)
    over = np.where(rng.random(drivers.steps.shape) < 0.05, 1.0 + rng.random(drivers.steps.shape), 0.0)
    expected = cascade(drivers.traffic, drivers.steps, over)
    counts = np.empty_like(expected)
    for day in range(C.NUM_DAYS):
        assert kernels.cascade_day(drivers.traffic[day], drivers.steps[:, day], over[:, day], counts, day)
    np.testing.assert_array_equal(counts, expected)


def test_cascade_day_refuses_counts_that_are_not_finite_and_non_negative():
    counts = np.empty((C.NUM_EVENTS, 1, C.HOURS))
    steps = np.full((C.NUM_STEPS, C.HOURS), 0.5)
    over = np.zeros((C.NUM_STEPS, C.HOURS))
    assert kernels.cascade_day(np.full(C.HOURS, 100.0), steps, over, counts, 0)
    steps[2, 5] = -0.1
    assert not kernels.cascade_day(np.full(C.HOURS, 100.0), steps, over, counts, 0)
    steps[2, 5] = np.nan
    assert not kernels.cascade_day(np.full(C.HOURS, 100.0), steps, over, counts, 0)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31),
    st.sampled_from(C.DIFFICULTIES),
    st.floats(0.0, 0.3),
)
def test_window_check_equals_the_verdicts_of_statistics_py(seed, difficulty, spread):
    """On real and on disturbed windows, the kernel's check passes exactly when every
    verdict of statistics.py is the expected one with the margin kept."""
    config = config_for(None, seed=seed, difficulty=difficulty)
    rng = np.random.default_rng(seed)
    drivers = clean_drivers(config, rng)
    drivers.traffic *= np.exp(rng.normal(0.0, spread, (C.NUM_DAYS, 1)))
    values = S.event_values(cascade(drivers.traffic, drivers.steps, drivers.over_report))
    z = S.deviations(values, S.baselines(values))
    margin = C.MARGIN[difficulty]
    expected = S.flags(z) if rng.random() < 0.5 else np.zeros_like(z, dtype=bool)
    holds = bool(np.array_equal(S.flags(z), expected) and S.within_margin(z, margin).all())
    kernel = kernels.window_holds(values, expected, COLUMNS, S.LAYOUT, margin, C.DATA_QUALITY_MIN_EXCESS)
    assert kernel == holds


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from(C.DIFFICULTIES))
def test_a_day_judged_in_two_stages_gets_the_verdict_of_the_whole_day(seed, difficulty):
    """Placement computes a changed day's totals, judges them, and computes the day's shape
    only when they hold: the verdict is day_holds' on all of the day's statistics."""
    config = config_for(None, seed=seed, difficulty=difficulty)
    rng = np.random.default_rng(seed)
    drivers = clean_drivers(config, rng)
    counts = cascade(drivers.traffic, drivers.steps, drivers.over_report)
    values = S.event_values(counts)
    base = np.empty(S.NUM_ENTITIES)
    kernels.baselines(values, base, S.LAYOUT)
    bounds = np.empty((2, S.NUM_ENTITIES))
    kernels.verdict_bounds(base, COLUMNS, C.MARGIN[difficulty], bounds)
    verdicts = set()
    for day in range(C.NUM_DAYS):
        # A day kept as drawn, each event scaled on its own (rates move), or all alike
        # (only counts move).
        shared = np.full((C.NUM_EVENTS, 1), rng.normal(1.0, 0.15))
        scale = (np.ones((C.NUM_EVENTS, 1)), rng.normal(1.0, 0.08, (C.NUM_EVENTS, 1)), shared)[day % 3]
        counts[:, day] = np.rint(counts[:, day] * scale)
        # What the day should flag: nothing, one statistic, or what it flags as changed (an
        # incident of several statistics).
        wanted = np.zeros(S.NUM_ENTITIES, dtype=bool)
        if day % 3 == 1:
            wanted[int(rng.integers(S.NUM_ENTITIES))] = True
        elif day % 3 == 2:
            changed = S.event_values(counts[:, day : day + 1])
            wanted = S.flags(S.deviations(changed, base))[0]
        staged = values.copy()
        verdict = kernels.judge_day(counts, day, staged, base, bounds, wanted, COLUMNS, S.LAYOUT, 50.0)
        kernels.day_statistics(counts, day, values[day], S.LAYOUT)
        assert verdict == kernels.day_holds(values, day, base, bounds, wanted, COLUMNS, 50.0)
        if verdict:
            np.testing.assert_array_equal(staged[day], values[day])
        verdicts.add(verdict)
    assert verdicts == {True, False}


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (28, S.NUM_ENTITIES), elements=st.floats(-1e3, 1e3)),
    st.lists(st.tuples(st.integers(0, 27), st.integers(0, 2**31)), min_size=1, max_size=12),
)
def test_medians_kept_in_order_equal_a_full_sort(values, changes):
    """Placement keeps every statistic's days in order as days change, and reads the
    medians from that: the same as sorting the window again."""
    values = values.copy()
    ordered = np.empty((S.NUM_ENTITIES, 28))
    kernels.sort_columns(values, ordered)
    for day, seed in changes:
        new = np.random.default_rng(seed).normal(0.0, 500.0, S.NUM_ENTITIES)
        new[::3] = values[day, ::3]  # some statistics keep their value
        assert kernels.replace_sorted(ordered, values[day].copy(), new)
        values[day] = new
        np.testing.assert_array_equal(ordered, np.sort(values, axis=0).T)
        base = np.empty(S.NUM_ENTITIES)
        kernels.sorted_baselines(ordered, base, S.LAYOUT)
        np.testing.assert_array_equal(base, S.baselines(values))


def test_a_value_missing_from_the_order_is_reported():
    values = np.arange(28.0 * S.NUM_ENTITIES).reshape(28, S.NUM_ENTITIES)
    ordered = np.empty((S.NUM_ENTITIES, 28))
    kernels.sort_columns(values, ordered)
    assert not kernels.replace_sorted(ordered, np.full(S.NUM_ENTITIES, -1.0), np.zeros(S.NUM_ENTITIES))


def test_the_kernel_codes_statistic_kinds_as_families_orders_them():
    from metric_tracker_rl.families import STATISTIC_KINDS

    codes = (kernels.COUNT, kernels.RATE, kernels.FUNNEL, kernels.MIX, kernels.QUALITY)
    assert codes == tuple(STATISTIC_KINDS.index(k) for k in ("count", "rate", "funnel", "mix", "quality"))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31),
    st.sampled_from(C.DIFFICULTIES),
    st.floats(0.0, 0.3),
    st.floats(0.0, 0.02),
)
def test_final_verification_equals_statistics_py(seed, difficulty, spread, over_share):
    """The compiled final check computes the statistics, baselines, deviations, verdicts and
    severities of statistics.py (and the episode's std-from-median), and passes exactly
    when they say the window is right."""
    config = config_for(None, seed=seed, difficulty=difficulty)
    rng = np.random.default_rng(seed)
    drivers = clean_drivers(config, rng)
    drivers.traffic *= np.exp(rng.normal(0.0, spread, (C.NUM_DAYS, 1)))
    over = np.where(rng.random(drivers.steps.shape) < over_share, 1.0 + rng.random(drivers.steps.shape), 0.0)
    counts = cascade(drivers.traffic, drivers.steps, over)
    values = S.event_values(counts)
    base = S.baselines(values)
    z = S.deviations(values, base)
    flagged = S.flags(z)
    margin = C.MARGIN[difficulty]
    allowed = flagged if rng.random() < 0.5 else flagged & (rng.random(flagged.shape) < 0.8)
    required = allowed & (rng.random(flagged.shape) < 0.5)
    quality = values[:, S.QUALITY_COLS]
    holds = bool(
        not (flagged & ~allowed).any()
        and not (required & ~flagged).any()
        and S.within_margin(z, margin).all()
        and ((quality == 0) | (quality >= C.DATA_QUALITY_MIN_EXCESS)).all()
    )
    spread = np.sqrt(np.mean((values - base) ** 2, axis=0))
    severity = S.severity_level(z, values[:, S.COUNT_COLS[:-1]])
    verdict, tables = verify(counts, margin, required, allowed)
    assert verdict == holds
    computed = (values, base, z, flagged, spread, severity, values - base, np.abs(values - base))
    for got, expected in zip(tables, computed, strict=True):
        np.testing.assert_array_equal(got, expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=8))
def test_entropy_words_make_the_seed_sequence_of_the_integers(values):
    from metric_tracker_rl.generator import entropy_words

    expected = np.random.SeedSequence(values).generate_state(8)
    np.testing.assert_array_equal(
        np.random.SeedSequence(entropy_words(tuple(values))).generate_state(8), expected
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(0, 4000), st.integers(0, 3000))
def test_the_kernel_draws_what_numpy_would(seed, normals, uniforms):
    """The kernel draws from the PCG64 state the numbers NumPy's Generator would draw:
    standard normals (the ziggurat, with its rare wedge and tail draws), then uniforms;
    and leaves the state where NumPy would."""
    from metric_tracker_rl.generator import state_words, ziggurat

    rng = np.random.Generator(np.random.PCG64(seed))
    bits = state_words(rng)
    got = np.empty(normals), np.empty(uniforms)
    kernels.draw(bits, ziggurat(), *got)
    np.testing.assert_array_equal(got[0], rng.standard_normal(normals))
    np.testing.assert_array_equal(got[1], rng.random(uniforms))
    np.testing.assert_array_equal(bits, state_words(rng))


def test_the_kernel_normals_take_the_ziggurat_s_wedge_and_tail():
    """Over many draws, NumPy's ziggurat leaves its rectangles (wedge and tail draws,
    beyond 3.44 in size for the tail): the kernel's draws match there too."""
    from metric_tracker_rl.generator import state_words, ziggurat

    rng = np.random.Generator(np.random.PCG64(20261203))
    bits = state_words(rng)
    got = np.empty(400_000)
    kernels.draw(bits, ziggurat(), got, np.empty(0))
    expected = rng.standard_normal(got.size)
    assert (np.abs(expected) > ziggurat()[3][0]).sum() > 10  # tail draws happened
    np.testing.assert_array_equal(got, expected)


def test_a_first_compile_is_announced_once_and_later_processes_load_the_cache(tmp_path):
    """After an install (an empty cache folder) the first episode compiles the kernels and
    says so once on standard error; a new process then loads them from the cache and
    compiles nothing, so it says nothing."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    code = "from metric_tracker_rl.generator import warm_up; warm_up()"

    def first_episode() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr

    assert first_episode().count(kernels.COMPILE_NOTICE) == 1
    assert any(tmp_path.rglob("*.nbi")), "nothing was cached"
    assert kernels.COMPILE_NOTICE not in first_episode()
