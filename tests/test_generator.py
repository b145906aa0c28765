"""The generated data: window, shape, funnel invariants and realism (docs/data.md, Data)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.config import resolve_config
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.generator import QUIET_DAYS, cascade, clean_drivers, hours_last

APP_OPENS = C.EVENTS.index("app_opens")
MENU_RATE = S.ENTITY_INDEX[("conversion_rate", "app_open_to_menu_open")]


def clean_counts(seed: int, difficulty: str = "medium", end_date: str | None = None) -> np.ndarray:
    config = resolve_config(seed=seed, difficulty=difficulty, end_date=end_date)
    drivers = clean_drivers(config, np.random.default_rng(seed))
    return hours_last(cascade(drivers.traffic, drivers.steps, drivers.over_report))


def test_default_window_is_28_days_ending_2026_03_31():
    config = resolve_config(seed=1)
    episode = build_episode(config)
    assert len(episode.dates) == C.NUM_DAYS == 28
    assert episode.dates[-1] == "2026-03-31"
    assert episode.dates[0] == "2026-03-04"
    days = [dt.date.fromisoformat(d) for d in episode.dates]
    assert all(b - a == dt.timedelta(days=1) for a, b in zip(days, days[1:], strict=False))


def test_end_date_is_configurable():
    config = resolve_config(seed=1, end_date="2024-03-01", anomaly_count=2)
    episode = build_episode(config)
    assert episode.dates[-1] == "2024-03-01"
    assert episode.dates[0] == "2024-02-03"  # leap year: 29 February is inside the window
    assert "2024-02-29" in episode.dates
    assert len(episode.incidents) == 2
    assert {r.date for r in episode.expected_rows} <= set(episode.dates)


def test_end_date_changes_the_data():
    a = build_episode(resolve_config(seed=1))
    b = build_episode(resolve_config(seed=1, end_date="2026-03-30"))
    assert not np.array_equal(a.hourly, b.hourly)


@pytest.mark.parametrize("difficulty", C.DIFFICULTIES)
def test_hourly_shape_integers_and_daily_is_sum_of_hours(difficulty):
    episode = build_episode(resolve_config(seed=21, difficulty=difficulty, anomaly_density="high"))
    hourly = episode.hourly
    assert hourly.shape == (28, 24, 5)
    assert np.issubdtype(hourly.dtype, np.integer)
    assert (hourly >= 0).all()
    np.testing.assert_array_equal(episode.values[:, S.COUNT_COLS], hourly.sum(axis=1))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    difficulty=st.sampled_from(C.DIFFICULTIES),
    end_date=st.sampled_from([None, "2024-02-29", "2030-12-31"]),
)
def test_clean_data_is_funnel_monotone_in_every_hour_and_day(seed, difficulty, end_date):
    counts = clean_counts(seed, difficulty, end_date)
    assert counts.shape == (C.NUM_DAYS, C.HOURS, C.NUM_EVENTS)
    assert (counts >= 0).all()
    assert np.array_equal(counts, np.rint(counts))
    assert (np.diff(counts, axis=-1) <= 0).all()
    assert (np.diff(counts.sum(axis=1), axis=-1) <= 0).all()
    assert (counts[..., APP_OPENS].sum(axis=1) > 0).all()


def test_noise_grows_with_difficulty():
    seeds = range(40)
    spread = {}
    for difficulty in C.DIFFICULTIES:
        stds = []
        for seed in seeds:
            values = S.day_values(clean_counts(seed, difficulty))
            stds.append(values[:, MENU_RATE].std())
        spread[difficulty] = float(np.mean(stds))
    assert spread["easy"] < spread["medium"] < spread["hard"], spread


def test_typical_volume_is_about_18k_app_opens_a_day():
    daily = np.array([clean_counts(seed)[..., APP_OPENS].sum(axis=1) for seed in range(20)])
    assert 16_000 < daily.mean() < 20_000
    assert daily.min() > 12_000
    assert daily.max() < 25_000
    episode = build_episode(resolve_config(seed=3))
    assert 15_000 < episode.base[S.ENTITY_INDEX[("event_count", "app_opens")]] < 21_000


def test_weekday_seasonality():
    start_weekday = dt.date(2026, 3, 4).weekday()  # the default window starts on a Wednesday
    daily = np.array([clean_counts(seed)[..., APP_OPENS].sum(axis=1) for seed in range(40)])
    weekday = (start_weekday + np.arange(C.NUM_DAYS)) % 7
    mean_by_weekday = np.array([daily[:, weekday == w].mean() for w in range(7)])
    friday, saturday = mean_by_weekday[4], mean_by_weekday[5]
    assert friday > 1.04 * saturday
    assert int(np.argmax(mean_by_weekday)) == 4
    assert mean_by_weekday.max() / mean_by_weekday.min() > 1.04


def test_slow_upward_trend():
    slopes = []
    for seed in range(40):
        daily = clean_counts(seed)[..., APP_OPENS].sum(axis=1)
        slopes.append(np.polyfit(np.arange(C.NUM_DAYS), np.log(daily), 1)[0])
    assert 0.0005 < float(np.mean(slopes)) < 0.004


def test_hourly_profile_night_low_evening_peak():
    hourly = np.concatenate([clean_counts(seed)[..., APP_OPENS] for seed in range(10)])
    profile = hourly.mean(axis=0)
    assert int(np.argmin(profile)) in range(0, 6)
    assert int(np.argmax(profile)) in range(17, 23)
    night = profile[1:5].mean()
    evening = profile[18:22].mean()
    assert night < 0.25 * evening
    daytime_share = hourly[:, 8:20].sum() / hourly.sum()
    assert 0.5 < daytime_share < 0.75


def test_conversion_rates_are_plausible():
    values = S.day_values(clean_counts(8))
    for name, step_rate in zip(C.ADJACENT_RATE_METRICS, C.BASE_STEP_RATES, strict=True):
        rates = values[:, S.ENTITY_INDEX[("conversion_rate", name)]]
        assert np.allclose(rates, 100 * step_rate, atol=5.0), name


def test_separation_shrinks_with_difficulty():
    """Easy anomalies stand out; hard ones sit close to the flag line (never on it).

    Over incidents that show in one statistic (beyond MAX_MULTI_ROW_INCIDENTS, the others
    do), averaged over the families whose statistic has a reach (impossible counts are any
    excess). A conversion rate cannot reach far on any difficulty: its end-to-end rate
    moves with it, so easy and medium rate anomalies sit about as far out."""
    families = [f for f in FAMILIES if f.statistic != "quality"]
    count = C.MAX_MULTI_ROW_INCIDENTS + 2
    reach: dict[str, dict[str, float]] = {d: {} for d in C.DIFFICULTIES}
    for difficulty in C.DIFFICULTIES:
        for family in families:
            beyond = []
            for seed in range(8):
                config = resolve_config(
                    seed=seed, scenario_family=family.anomaly_type, difficulty=difficulty, anomaly_count=count
                )
                episode = build_episode(config)
                assert (np.abs(episode.z[episode.flagged]) >= 1 + C.MARGIN[difficulty]).all()
                beyond.extend(
                    abs(float(episode.z[i.day, i.entity])) - 1
                    for i in episode.incidents
                    if i.shape == "single"
                )
            reach[difficulty][family.anomaly_type] = float(np.mean(beyond))
    mean = {d: float(np.mean(list(r.values()))) for d, r in reach.items()}
    assert mean["easy"] > mean["medium"] > mean["hard"] > 0, mean
    for family in families:
        name = family.anomaly_type
        assert reach["easy"][name] > reach["hard"][name], (name, reach)


@pytest.mark.parametrize("difficulty", C.DIFFICULTIES)
def test_a_scenario_of_mix_shifts_alone_has_ordinary_mix_days_as_decoys_where_asked(difficulty):
    """On SAME_STATISTIC_DECOYS difficulties the hourly mix of a mix-shift scenario is volatile:
    every day but the incidents' and the quiet ones is a decoy of it, and flags nothing; elsewhere
    only the twins beside the incidents are."""
    mix = S.ENTITY_INDEX[("hourly_mix", C.HOURLY_MIX_ENTITY)]
    for seed in range(6):
        config = resolve_config(
            seed=seed,
            scenario_family="hourly_traffic_mix_shift",
            difficulty=difficulty,
            anomaly_density="low",
        )
        episode = build_episode(config)
        on_mix = [d for d in episode.decoys if d.entity == mix]
        assert not episode.flagged[[d.day for d in episode.decoys]].any()
        if difficulty in C.SAME_STATISTIC_DECOYS:
            free = C.NUM_DAYS - config.anomaly_count - QUIET_DAYS
            assert len(on_mix) == len(episode.decoys) == free
        else:
            assert len(on_mix) == min(config.anomaly_count, C.DECOYS[difficulty])
