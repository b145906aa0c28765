"""Reset-argument validation: every bad value is a ConfigError naming the problem."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from metric_tracker_rl import constants as C
from metric_tracker_rl.config import ConfigError, EpisodeConfig, resolve_config
from metric_tracker_rl.episode import build_episode
from metric_tracker_rl.tasks import config_for


def injection(**changes):
    base = {
        "method_name": "metric_stddev_shift",
        "metric_name": "app_open_to_menu_open",
        "date": "2026-03-20",
        "stddev_factor": 8,
        "direction": "down",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def test_defaults():
    config = resolve_config()
    assert isinstance(config, EpisodeConfig)
    assert (config.seed, config.scenario_family, config.difficulty) == (0, "mixed", "medium")
    assert config.anomaly_density == "medium"
    assert config.anomaly_count == C.ANOMALY_DENSITY_COUNTS["medium"]
    assert config.end_date == dt.date(2026, 3, 31)
    assert len(config.anomaly_plan) == config.anomaly_count
    assert config.injections == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario_family": "spikes"}, "scenario_family"),
        ({"scenario_family": "MIXED"}, "scenario_family"),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"difficulty": 2}, "difficulty"),
        ({"anomaly_density": "huge"}, "anomaly_density"),
        ({"anomaly_density": "huge", "anomaly_count": 3}, "anomaly_density"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": False}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "3"}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"anomaly_count": 0}, "anomaly_count"),
        ({"anomaly_count": 13}, "anomaly_count"),
        ({"anomaly_count": -2}, "anomaly_count"),
        ({"anomaly_count": "3"}, "anomaly_count"),
        ({"anomaly_count": 3.0}, "anomaly_count"),
        ({"anomaly_count": True}, "anomaly_count"),
        ({"end_date": "2026-02-30"}, "end_date"),
        ({"end_date": "31/03/2026"}, "end_date"),
        ({"end_date": 20260331}, "end_date"),
        ({"end_date": "0001-01-10"}, "end_date"),  # the 28-day window would start before year 1
    ],
)
def test_bad_scalar_arguments_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": 0}, "difficulty"),
        ({"difficulty": False}, "difficulty"),
        ({"scenario_family": False}, "scenario_family"),
        ({"scenario_family": []}, "scenario_family"),
        ({"anomaly_density": 0}, "anomaly_density"),
    ],
)
def test_falsy_non_string_choices_raise_instead_of_falling_back_to_defaults(kwargs, message):
    # config.py promises "no silent fallback to a default" for unknown values.
    with pytest.raises(ConfigError, match=message):
        resolve_config(**kwargs)


@pytest.mark.parametrize("task_id", ["nope", "EASY_SINGLE_SPIKE", "", 3])
def test_unknown_task_id_raises(task_id):
    with pytest.raises(ConfigError, match="task_id"):
        config_for(task_id)


def test_config_for_passes_validation_through():
    with pytest.raises(ConfigError, match="difficulty"):
        config_for("easy_single_spike", difficulty="impossible")
    with pytest.raises(ConfigError, match="seed"):
        config_for("easy_single_spike", seed=-5)
    with pytest.raises(ConfigError, match="anomaly_count"):
        config_for(seed=1, anomaly_count=13)


@pytest.mark.parametrize(("density", "count"), [("low", 3), ("medium", 5), ("high", 7)])
def test_density_sets_the_number_of_incidents(density, count):
    """On easy an incident is one row; elsewhere it may show in several statistics."""
    config = resolve_config(seed=11, anomaly_density=density, difficulty="easy")
    assert config.anomaly_count == count == len(config.anomaly_plan)
    assert config.anomaly_density == density
    assert len(build_episode(config).expected_rows) == count
    hard = resolve_config(seed=11, anomaly_density=density, difficulty="hard")
    assert hard.anomaly_count == count
    assert sum(len(i.rows) for i in build_episode(hard).incidents) == len(build_episode(hard).expected_rows)
    assert len(build_episode(hard).expected_rows) > count


@pytest.mark.parametrize("count", [1, 2, 12])
def test_anomaly_count_overrides_density(count):
    config = resolve_config(seed=12, anomaly_density="high", anomaly_count=count, difficulty="hard")
    assert config.anomaly_count == count
    assert (
        len(config.anomaly_plan)
        == len(config.incident_shapes)
        == len(build_episode(config).incidents)
        == count
    )


@pytest.mark.parametrize("difficulty", C.DIFFICULTIES)
def test_incident_shapes_follow_the_difficulty(difficulty):
    """Easy: every incident shows once and has a day of its own; medium and hard: a share show
    in several statistics (at most MAX_MULTI_ROW_INCIDENTS), some ask to share a day."""
    configs = [resolve_config(seed=s, difficulty=difficulty, anomaly_count=7) for s in range(40)]
    shapes = [shape for c in configs for shape in c.incident_shapes]
    multi = sum(shape != "single" for shape in shapes) / len(shapes)
    shared = sum(flag for c in configs for flag in c.shared_days) / len(shapes)
    if difficulty == "easy":
        assert multi == shared == 0.0
    else:
        assert 0.3 < multi <= C.MULTI_ROW_SHARE[difficulty] + 0.05
        assert shared > 0.0
    assert all(sum(s != "single" for s in c.incident_shapes) <= C.MAX_MULTI_ROW_INCIDENTS for c in configs)
    assert all(not c.shared_days[0] for c in configs)


def test_end_date_accepts_iso_string_and_date():
    assert resolve_config(end_date="2025-01-15").end_date == dt.date(2025, 1, 15)
    assert resolve_config(end_date=dt.date(2025, 1, 15)).end_date == dt.date(2025, 1, 15)


def test_config_is_hashable_with_injections():
    a = resolve_config(seed=4, anomalies=[injection()])
    b = resolve_config(seed=4, anomalies=[injection()])
    assert a == b
    assert hash(a) == hash(b)


# --- injections -----------------------------------------------------------------------


def test_valid_injection_is_parsed():
    config = resolve_config(
        seed=3,
        anomalies=[
            injection(),
            injection(
                metric_name=_DROP,
                metric_names=["app_opens", "orders_placed", "app_opens"],
                date=_DROP,
                dates=["2026-03-10", "2026-03-05", "2026-03-10"],
                stddev_factor=2.5,
                direction="up",
            ),
        ],
    )
    first, second = config.injections
    assert first.metric_names == ("app_open_to_menu_open",)
    assert first.dates == ("2026-03-20",)
    assert first.stddev_factor == 8.0
    assert first.direction == "down"
    assert second.metric_names == ("app_opens", "orders_placed")
    assert second.dates == ("2026-03-05", "2026-03-10")
    assert config.anomaly_plan == ()
    assert config.visible()["injections"][0]["metric_names"] == ["app_open_to_menu_open"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (injection(method_name=_DROP), "method_name"),
        (injection(method_name="metric_explode"), "method_name"),
        (injection(metric_name=_DROP), "metric_name"),
        (injection(metric_names=["app_opens"]), "exactly one of 'metric_name' or 'metric_names'"),
        (injection(metric_name="revenue"), "revenue"),
        (injection(metric_name=_DROP, metric_names=[]), "metric_names"),
        (injection(metric_name=_DROP, metric_names="app_opens"), "metric_names"),
        (injection(metric_name=7), "metric"),
        (injection(date=_DROP), "date"),
        (injection(dates=["2026-03-20"]), "exactly one of 'date' or 'dates'"),
        (injection(date="2026-04-01"), "outside the window"),
        (injection(date="2026-03-03"), "outside the window"),
        (injection(date="yesterday"), "outside the window"),
        (injection(stddev_factor=_DROP), "stddev_factor"),
        (injection(stddev_factor=math.nan), "stddev_factor"),
        (injection(stddev_factor=math.inf), "stddev_factor"),
        (injection(stddev_factor=-math.inf), "stddev_factor"),
        (injection(stddev_factor=0), "stddev_factor"),
        (injection(stddev_factor=-3), "stddev_factor"),
        (injection(stddev_factor=1e6), "stddev_factor"),
        (injection(stddev_factor=True), "stddev_factor"),
        (injection(stddev_factor="8"), "stddev_factor"),
        (injection(direction="sideways"), "direction"),
        (injection(direction=_DROP), "direction"),
        (injection(colour="red"), "unknown fields"),
        ("metric_stddev_shift", "must be an object"),
    ],
)
def test_malformed_injection_raises(raw, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(anomalies=[raw])


def test_injection_error_names_its_position():
    with pytest.raises(ConfigError, match=r"anomalies\[1\]"):
        resolve_config(anomalies=[injection(), injection(direction="left")])


@pytest.mark.parametrize("anomalies", [[], {}, "metric_stddev_shift", injection()])
def test_anomalies_must_be_a_non_empty_list(anomalies):
    with pytest.raises(ConfigError, match="anomalies"):
        resolve_config(anomalies=anomalies)


def test_too_many_injections_raise():
    with pytest.raises(ConfigError, match="at most"):
        resolve_config(anomalies=[injection()] * 13)


def test_injection_window_follows_end_date():
    config = resolve_config(end_date="2025-06-30", anomalies=[injection(date="2025-06-03")])
    assert config.injections[0].dates == ("2025-06-03",)
    with pytest.raises(ConfigError, match="outside the window"):
        resolve_config(end_date="2025-06-30", anomalies=[injection()])
