"""The per-day statistics the canonical detectors read, on tiny hand-built arrays."""

from __future__ import annotations

import numpy as np
import pytest

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S


def col(entity_type: str, entity_name: str) -> int:
    return S.ENTITY_INDEX[(entity_type, entity_name)]


RATE = {name: col("conversion_rate", name) for name in C.RATE_METRICS}
COUNT = {name: col("event_count", name) for name in C.EVENTS}
FUNNEL = {name: col("funnel_step", name) for name in C.FUNNEL_STEPS}
QUALITY = {name: col("data_quality", name) for name in C.DATA_QUALITY_PAIRS}
MIX = col("hourly_mix", C.HOURLY_MIX_ENTITY)


def hand_built_day() -> np.ndarray:
    """21 ordinary hours [100, 60, 30, 15, 12] plus three special ones:

    hour 3:  menu_opens (110) above app_opens (100): impossible, excess 10;
    hour 10: the first step collapses to 20 %;
    hour 22: half the traffic, and the last two steps convert 100 %.
    """
    day = np.tile(np.array([100.0, 60.0, 30.0, 15.0, 12.0]), (C.HOURS, 1))
    day[3] = [100, 110, 30, 15, 12]
    day[10] = [100, 20, 10, 5, 4]
    day[22] = [50, 30, 15, 15, 15]
    return day


def test_entity_table_covers_every_family_entity_once():
    assert S.NUM_ENTITIES == 6 + 5 + 4 + 1 + 4
    keys = [(e.entity_type, e.entity_name) for e in S.ENTITIES]
    assert len(keys) == len(set(keys))
    assert [e.index for e in S.ENTITIES] == list(range(S.NUM_ENTITIES))


def test_day_values_counts_rates_funnel_mix_and_quality():
    values = S.day_values(hand_built_day())
    assert values.shape == (S.NUM_ENTITIES,)

    app, menu, cart, orders, pay = 2350, 1420, 685, 350, 283
    expected_counts = {
        "app_opens": app,
        "menu_opens": menu,
        "product_added_to_cart": cart,
        "orders_placed": orders,
        "payment_successful": pay,
    }
    for name, count in expected_counts.items():
        assert values[COUNT[name]] == count

    expected_rates = {
        "app_open_to_menu_open": 100 * menu / app,
        "menu_open_to_product_added_to_cart": 100 * cart / menu,
        "product_added_to_cart_to_order_placed": 100 * orders / cart,
        "order_placed_to_payment_successful": 100 * pay / orders,
        "app_open_to_order_placed": 100 * orders / app,
        "app_open_to_payment_successful": 100 * pay / app,
    }
    for name, rate in expected_rates.items():
        assert values[RATE[name]] == pytest.approx(rate)

    # Lowest hourly step rate; hour 3 (impossible counts) is left out for every step,
    # otherwise product_added_to_cart_from_menu_opens would read 30 / 110 = 27.3 %.
    assert values[FUNNEL["menu_opens_from_app_opens"]] == pytest.approx(20.0)
    assert values[FUNNEL["product_added_to_cart_from_menu_opens"]] == pytest.approx(50.0)
    assert values[FUNNEL["orders_placed_from_product_added_to_cart"]] == pytest.approx(50.0)
    assert values[FUNNEL["payment_successful_from_orders_placed"]] == pytest.approx(80.0)

    # Daytime = 08:00-19:59: twelve hours of 100 app opens.
    assert values[MIX] == pytest.approx(100 * 1200 / app)

    assert values[QUALITY["menu_opens_lte_app_opens"]] == 10
    for name in C.DATA_QUALITY_PAIRS[1:]:
        assert values[QUALITY[name]] == 0  # equal counts (hour 22) are possible, not impossible


def test_day_values_is_vectorised_over_leading_axes():
    day = hand_built_day()
    other = np.tile(np.array([200.0, 100.0, 40.0, 20.0, 10.0]), (C.HOURS, 1))
    batch = np.stack([day, other])
    values = S.day_values(batch)
    assert values.shape == (2, S.NUM_ENTITIES)
    np.testing.assert_array_equal(values[0], S.day_values(day))
    assert values[1, RATE["app_open_to_menu_open"]] == pytest.approx(50.0)
    assert values[1, FUNNEL["payment_successful_from_orders_placed"]] == pytest.approx(50.0)
    assert values[1, MIX] == pytest.approx(50.0)


def test_day_values_ignores_hours_without_upstream_traffic():
    day = np.tile(np.array([100.0, 60.0, 30.0, 15.0, 12.0]), (C.HOURS, 1))
    day[2] = 0.0
    values = S.day_values(day)
    assert np.isfinite(values).all()
    assert values[FUNNEL["menu_opens_from_app_opens"]] == pytest.approx(60.0)
    assert values[COUNT["app_opens"]] == 2300


def test_baselines_are_medians_funnel_uses_daily_step_rate_quality_is_zero():
    days = np.stack(
        [
            np.tile(np.array([100.0, 60.0, 30.0, 15.0, 12.0]), (C.HOURS, 1)),
            np.tile(np.array([100.0, 50.0, 30.0, 15.0, 12.0]), (C.HOURS, 1)),
            np.tile(np.array([100.0, 70.0, 30.0, 15.0, 12.0]), (C.HOURS, 1)),
        ]
    )
    days[2, 5] = [100, 120, 30, 15, 12]  # impossible counts on the third day
    values = S.day_values(days)
    base = S.baselines(values)
    assert base[COUNT["app_opens"]] == 2400
    assert base[COUNT["menu_opens"]] == 60 * 24
    assert base[RATE["app_open_to_menu_open"]] == pytest.approx(60.0)
    # The funnel baseline is the median *daily* step rate, not the median hourly minimum.
    assert base[FUNNEL["menu_opens_from_app_opens"]] == base[RATE["app_open_to_menu_open"]]
    assert base[FUNNEL["product_added_to_cart_from_menu_opens"]] == pytest.approx(
        np.median(values[:, RATE["menu_open_to_product_added_to_cart"]])
    )
    for name in C.DATA_QUALITY_PAIRS:
        assert base[QUALITY[name]] == 0.0
    assert values[2, QUALITY["menu_opens_lte_app_opens"]] == 20


def hand_values() -> tuple[np.ndarray, np.ndarray]:
    base = np.zeros(S.NUM_ENTITIES)
    values = np.zeros(S.NUM_ENTITIES)
    base[RATE["app_open_to_menu_open"]], values[RATE["app_open_to_menu_open"]] = 60.0, 69.0
    base[RATE["app_open_to_order_placed"]], values[RATE["app_open_to_order_placed"]] = 10.0, 7.8
    base[COUNT["app_opens"]], values[COUNT["app_opens"]] = 1000.0, 1300.0
    base[COUNT["orders_placed"]], values[COUNT["orders_placed"]] = 1000.0, 900.0
    base[FUNNEL["menu_opens_from_app_opens"]], values[FUNNEL["menu_opens_from_app_opens"]] = 60.0, 25.0
    base[MIX], values[MIX] = 50.0, 53.0
    values[QUALITY["menu_opens_lte_app_opens"]] = 12.0
    # Fill the rest with a harmless baseline so relative deviations are defined.
    for c in (*COUNT.values(), *FUNNEL.values(), *RATE.values()):
        if base[c] == 0.0:
            base[c] = values[c] = 50.0
    return values, base


def test_deviations_in_threshold_units():
    values, base = hand_values()
    z = S.deviations(values, base)
    assert z[RATE["app_open_to_menu_open"]] == pytest.approx(9.0 / 7.5)
    assert z[RATE["app_open_to_order_placed"]] == pytest.approx(-2.2 / 2.2)
    assert z[COUNT["app_opens"]] == pytest.approx(0.3 / 0.22)
    assert z[COUNT["orders_placed"]] == pytest.approx(-0.1 / 0.22)
    assert z[FUNNEL["menu_opens_from_app_opens"]] == pytest.approx(-35.0 / 30.0)
    assert z[MIX] == pytest.approx(3.0 / 5.0)
    assert z[QUALITY["menu_opens_lte_app_opens"]] == pytest.approx(12.0 / C.DATA_QUALITY_MIN_EXCESS)
    assert z[QUALITY["product_added_to_cart_lte_menu_opens"]] == 0.0
    assert z[COUNT["menu_opens"]] == 0.0


def test_flags_per_statistic_kind():
    z = np.zeros((1, S.NUM_ENTITIES))
    z[0, RATE["app_open_to_menu_open"]] = 1.2
    z[0, RATE["menu_open_to_product_added_to_cart"]] = -1.2
    z[0, RATE["product_added_to_cart_to_order_placed"]] = 1.0  # exactly on the line: not flagged
    z[0, RATE["order_placed_to_payment_successful"]] = 0.99
    z[0, COUNT["app_opens"]] = -1.01
    z[0, FUNNEL["menu_opens_from_app_opens"]] = -1.1
    z[0, FUNNEL["product_added_to_cart_from_menu_opens"]] = 3.0  # a step rate rising is no break
    z[0, MIX] = -1.5
    z[0, QUALITY["menu_opens_lte_app_opens"]] = 0.1  # any excess is flagged
    flagged = S.flags(z)[0]
    expected = {
        RATE["app_open_to_menu_open"],
        RATE["menu_open_to_product_added_to_cart"],
        COUNT["app_opens"],
        FUNNEL["menu_opens_from_app_opens"],
        MIX,
        QUALITY["menu_opens_lte_app_opens"],
    }
    assert set(np.flatnonzero(flagged).tolist()) == expected


@pytest.mark.parametrize(
    ("column", "z_value", "ok"),
    [
        (RATE["app_open_to_menu_open"], 1.10, True),
        (RATE["app_open_to_menu_open"], 1.05, False),
        (RATE["app_open_to_menu_open"], -1.10, True),
        (RATE["app_open_to_menu_open"], 0.95, False),
        (RATE["app_open_to_menu_open"], -0.90, True),
        (RATE["app_open_to_menu_open"], 0.0, True),
        (COUNT["menu_opens"], -1.05, False),
        (MIX, 0.93, False),
        (FUNNEL["menu_opens_from_app_opens"], -1.10, True),
        (FUNNEL["menu_opens_from_app_opens"], -1.05, False),
        (FUNNEL["menu_opens_from_app_opens"], -0.95, False),
        (FUNNEL["menu_opens_from_app_opens"], 1.05, True),  # upward never flags a break
        (FUNNEL["menu_opens_from_app_opens"], 5.0, True),
        (QUALITY["menu_opens_lte_app_opens"], 0.0, True),
        (QUALITY["menu_opens_lte_app_opens"], 0.5, False),  # an excess below the minimum
        (QUALITY["menu_opens_lte_app_opens"], 1.0, True),
    ],
)
def test_within_margin(column, z_value, ok):
    z = np.zeros(S.NUM_ENTITIES)
    z[column] = z_value
    result = S.within_margin(z, 0.1)
    assert bool(result[column]) is ok
    others = np.delete(result, column)
    assert others.all()


@pytest.mark.parametrize(
    ("z_value", "level"),
    [(0.0, "low"), (1.2, "low"), (1.49, "low"), (1.5, "medium"), (1.99, "medium"), (2.0, "high")]
    + [(2.99, "high"), (3.0, "critical"), (-3.5, "critical"), (-1.6, "medium"), (40.0, "critical")],
)
def test_severity_level_ratio_cutoffs(z_value, level):
    z = np.full(S.NUM_ENTITIES, z_value)
    levels = S.severity_level(z)
    assert {C.SEVERITY_LEVELS[int(i)] for i in levels} == {level}


@pytest.mark.parametrize(
    ("excess", "predecessor", "level"),
    [
        (10, 10_000, "low"),  # 0.1 %
        (49, 10_000, "low"),  # 0.49 %
        (50, 10_000, "medium"),  # 0.5 %
        (199, 10_000, "medium"),
        (200, 10_000, "high"),  # 2 %
        (500, 10_000, "critical"),  # 5 %
        (30, 100, "critical"),  # 30 %
    ],
)
def test_severity_level_data_quality_uses_excess_share_of_predecessor(excess, predecessor, level):
    z = np.zeros(S.NUM_ENTITIES)
    q = QUALITY["orders_placed_lte_product_added_to_cart"]
    z[q] = excess / C.DATA_QUALITY_MIN_EXCESS
    predecessors = np.full(len(S.QUALITY_COLS), float(predecessor))
    levels = S.severity_level(z, predecessors)
    assert C.SEVERITY_LEVELS[int(levels[q])] == level
    # The ratio rule would have said something else for large excesses: the override is real.
    if excess >= 30:
        assert int(S.severity_level(z)[q]) == 3


def test_severity_level_broadcasts_over_days():
    z = np.zeros((3, S.NUM_ENTITIES))
    z[:, RATE["app_open_to_menu_open"]] = [1.1, 2.5, -3.2]
    levels = S.severity_level(z, np.full((3, len(S.QUALITY_COLS)), 1000.0))
    assert levels.shape == (3, S.NUM_ENTITIES)
    assert levels[:, RATE["app_open_to_menu_open"]].tolist() == [0, 2, 3]
