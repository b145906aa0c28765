"""Honest ground truth (docs/data.md, Anomaly families): the hidden rows are exactly what the
public canonical detectors flag on the final data, each caused by one placed incident (an
incident may show in several statistics: its shape's rows), with margins and with the values
those methods return."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis import run_method
from metric_tracker_rl.config import EpisodeConfig, resolve_config
from metric_tracker_rl.episode import Episode, build_episode
from metric_tracker_rl.families import FAMILY_BY_TYPE, SCENARIO_FAMILIES
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS, config_for

CONFIGS_PER_FAMILY = 63  # x 8 scenario families = 504 random configs
DENSITIES = tuple(C.ANOMALY_DENSITY_COUNTS)


def random_configs(family: str) -> list[EpisodeConfig]:
    rng = np.random.default_rng([2026, SCENARIO_FAMILIES.index(family)])
    configs = []
    for _ in range(CONFIGS_PER_FAMILY):
        kwargs: dict[str, Any] = {
            "seed": int(rng.integers(0, 2**62)),
            "scenario_family": family,
            "difficulty": C.DIFFICULTIES[int(rng.integers(3))],
        }
        if rng.random() < 0.3:
            kwargs["anomaly_density"] = DENSITIES[int(rng.integers(3))]
        else:
            kwargs["anomaly_count"] = int(rng.integers(C.MIN_ANOMALY_COUNT, C.MAX_ANOMALY_COUNT + 1))
        configs.append(resolve_config(**kwargs))
    return configs


def targeted_assessment(episode: Episode, row) -> dict[str, Any] | None:
    """What the row's family's public detection method says about (date, entity)."""
    method = FAMILY_BY_TYPE[row.anomaly_type].detection_method
    if method in ("compare_rate_to_median", "compare_count_to_median"):
        args = {"date": row.date, "entity_name": row.entity_name}
    else:
        args = {"date": row.date}
    out = run_method(episode, method, args)
    assert "error" not in out, out
    result = out["result"]
    candidates = result.get("assessments", [result])
    matching = [a for a in candidates if a["entity_name"] == row.entity_name]
    return matching[0] if len(matching) == 1 else None


def truth_problems(config: EpisodeConfig) -> list[str]:
    """Every way the episode's ground truth is dishonest (empty list = honest)."""
    episode = build_episode(config)
    problems: list[str] = []
    rows = episode.expected_rows
    keys = [(r.date, r.entity_type, r.entity_name) for r in rows]

    # Recompute the detectors from the raw hourly counts, without the episode's caches.
    values = S.day_values(episode.hourly.astype(np.float64))
    z = S.deviations(values, S.baselines(values))
    flagged = S.flags(z)
    flagged_keys = {
        (episode.dates[d], S.ENTITIES[c].entity_type, S.ENTITIES[c].entity_name)
        for d, c in zip(*np.nonzero(flagged), strict=True)
    }
    if len(set(keys)) != len(keys):
        problems.append(f"duplicate expected keys {keys}")
    if set(keys) != flagged_keys:
        unlabeled = sorted(flagged_keys - set(keys))
        problems.append(f"unlabeled flags {unlabeled}, unflagged rows {sorted(set(keys) - flagged_keys)}")

    margin = C.MARGIN[config.difficulty]
    outside = np.argwhere(~S.within_margin(z, margin))
    if outside.size:
        where = [(episode.dates[d], S.ENTITIES[c].entity_name, round(float(z[d, c]), 4)) for d, c in outside]
        problems.append(f"values inside the margin band ({margin}): {where}")
    quality = values[:, S.QUALITY_COLS]
    if not ((quality == 0) | (quality >= C.DATA_QUALITY_MIN_EXCESS)).all():
        problems.append("an impossible-count excess below DATA_QUALITY_MIN_EXCESS")

    # The rows are the union of the incidents' rows; each incident makes its shape's rows on
    # its day, starting from a statistic of its family; no row belongs to two incidents.
    owners: Counter = Counter()
    for incident, shape in zip(episode.incidents, config.incident_shapes, strict=True):
        if incident.shape != shape:
            problems.append(f"incident {incident} placed as {incident.shape}, planned {shape}")
        if not incident.rows or incident.entity not in incident.rows:
            problems.append(f"incident {incident} makes no row of its own statistic")
        for col in incident.rows:
            entity = S.ENTITIES[col]
            owners[(episode.dates[incident.day], entity.entity_type, entity.entity_name)] += 1
        start = S.ENTITIES[incident.entity]
        if start.entity_type != FAMILY_BY_TYPE[incident.anomaly_type].entity_type:
            problems.append(f"incident {incident} starts from a statistic of another family")
    if set(owners) != set(keys) or max(owners.values(), default=1) != 1:
        problems.append(f"incident rows {sorted(owners)} do not cover the expected rows once each")
    primary = sorted(
        next(
            r.anomaly_type
            for r in rows
            if (r.date, r.entity_name) == (episode.dates[i.day], S.ENTITIES[i.entity].entity_name)
        )
        for i in episode.incidents
        if any(
            (r.date, r.entity_name) == (episode.dates[i.day], S.ENTITIES[i.entity].entity_name) for r in rows
        )
    )
    if primary != sorted(config.anomaly_plan):
        problems.append(f"the incidents' own rows are {primary}, the plan {sorted(config.anomaly_plan)}")
    if config.difficulty == "easy" and (
        len(rows) != config.anomaly_count or set(config.incident_shapes) != {"single"}
    ):
        problems.append("an easy incident shows in more than one statistic")
    by_day: dict[int, list] = {}
    for incident, shared in zip(episode.incidents, config.shared_days, strict=True):
        by_day.setdefault(incident.day, []).append((incident, shared))
    for day, placed in by_day.items():
        if len(placed) == 1:
            continue
        later = [incident for incident, shared in placed[1:] if not shared]
        kinds = [incident.anomaly_type for incident, _ in placed]
        if later or len(set(kinds)) != len(kinds):  # (rows in common: see above)
            problems.append(f"incidents {kinds} share day {day} without leave")

    # Funnel-monotone everywhere except where an impossible-count incident was placed.
    excess_days = set(np.flatnonzero((np.diff(episode.hourly, axis=-1) > 0).any(axis=(1, 2))).tolist())
    quality_days = {
        i.day for i in episode.incidents if i.anomaly_type == "instrumentation_data_quality_issue"
    }
    if excess_days != quality_days:
        problems.append(f"impossible counts on days {excess_days}, quality incidents on {quality_days}")

    for row in rows:
        family = FAMILY_BY_TYPE[row.anomaly_type]
        if (row.entity_type, row.detection_method) != (family.entity_type, family.detection_method):
            problems.append(f"row {row.key} has the wrong entity type or method for {row.anomaly_type}")
        numbers = (row.baseline_value, row.observed_value, row.delta_value)
        if any(v != round(v, C.ROUND_DIGITS) for v in numbers):
            problems.append(f"row {row.key}: values not rounded to {C.ROUND_DIGITS} decimals")
        if row.delta_value != round(row.observed_value - row.baseline_value, C.ROUND_DIGITS):
            problems.append(f"row {row.key}: delta is not observed - baseline")
        assessment = targeted_assessment(episode, row)
        if assessment is None:
            problems.append(f"row {row.key}: {family.detection_method} has no single assessment of it")
            continue
        public = {f: assessment[f] for f in ROW_FIELDS}
        if public != row.model_dump():
            problems.append(
                f"row {row.key}: {family.detection_method} says {public}, truth {row.model_dump()}"
            )
    return problems


@pytest.mark.parametrize("family", SCENARIO_FAMILIES)
def test_ground_truth_is_honest_over_random_configs(family):
    failures = {}
    for config in random_configs(family):
        problems = truth_problems(config)
        if problems:
            failures[(config.seed, config.difficulty, config.anomaly_count)] = problems
    assert not failures, f"{len(failures)} dishonest episodes, e.g. {next(iter(failures.items()))}"


@pytest.mark.parametrize("task_id", sorted(NAMED_TASKS))
def test_named_tasks_are_honest(task_id):
    assert truth_problems(config_for(task_id)) == []


def public_detector_sweep(episode: Episode) -> set[tuple[str, str, str, str]]:
    """Every (date, entity_type, entity_name, anomaly_type) that a targeted public method
    reports as not normal, over every date and every entity."""
    found = set()
    for date in episode.dates:
        calls = [("compare_rate_to_median", {"date": date, "entity_name": m}) for m in C.RATE_METRICS]
        calls += [("compare_count_to_median", {"date": date, "entity_name": e}) for e in C.EVENTS]
        calls += [(m, {"date": date}) for m in ("detect_funnel_break", "check_impossible_counts")]
        calls += [("hourly_rows_for_date", {"date": date})]
        for method, args in calls:
            result = run_method(episode, method, args)["result"]
            for a in result.get("assessments", [result]):
                if a["anomaly_type"] != "normal":
                    found.add((a["date"], a["entity_type"], a["entity_name"], a["anomaly_type"]))
    return found


@pytest.mark.parametrize(
    "config",
    [config_for(t) for t in sorted(NAMED_TASKS)]
    + [
        resolve_config(seed=s, scenario_family="mixed", difficulty=d, anomaly_count=n)
        for s, d, n in ((5, "easy", 12), (6, "medium", 7), (7, "hard", 9))
    ],
    ids=lambda c: f"{c.task_id or c.seed}-{c.difficulty}",
)
def test_public_targeted_methods_find_exactly_the_expected_rows(config):
    episode = build_episode(config)
    expected = {(r.date, r.entity_type, r.entity_name, r.anomaly_type) for r in episode.expected_rows}
    assert public_detector_sweep(episode) == expected


# --- explicit injections ----------------------------------------------------------------

MENU_DROP = {
    "method_name": "metric_stddev_shift",
    "metric_name": "app_open_to_menu_open",
    "date": "2026-03-20",
    "stddev_factor": 20,
    "direction": "down",
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injection_produces_a_flagged_row_of_that_metric_on_that_date(seed):
    episode = build_episode(resolve_config(seed=seed, anomalies=[MENU_DROP]))
    rows = {(r.date, r.entity_name): r for r in episode.expected_rows}
    assert ("2026-03-20", "app_open_to_menu_open") in rows, (
        f"no flagged row; z = {episode.z[episode.date_index['2026-03-20'], 0]:.3f}"
    )
    row = rows[("2026-03-20", "app_open_to_menu_open")]
    assert row.anomaly_type == "rate_drop_from_median"
    assert row.observed_value < row.baseline_value


def test_injection_is_reported_in_the_anomaly_schedule():
    episode = build_episode(resolve_config(seed=0, anomalies=[MENU_DROP]))
    assert episode.anomaly_schedule() == [
        {
            "method_name": "metric_stddev_shift",
            "metric_names": ["app_open_to_menu_open"],
            "dates": ["2026-03-20"],
            "stddev_factor": 20.0,
            "direction": "down",
        }
    ]
    assert episode.incidents == ()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injection_episode_truth_keeps_the_margin(seed):
    config = resolve_config(seed=seed, anomalies=[MENU_DROP])
    episode = build_episode(config)
    keys = {(r.date, r.entity_type, r.entity_name) for r in episode.expected_rows}
    assert keys == {
        (episode.dates[d], S.ENTITIES[c].entity_type, S.ENTITIES[c].entity_name)
        for d, c in zip(*np.nonzero(episode.flagged), strict=True)
    }
    outside = [
        (episode.dates[d], S.ENTITIES[c].entity_name, round(float(episode.z[d, c]), 4))
        for d, c in np.argwhere(~S.within_margin(episode.z, C.MARGIN[config.difficulty]))
    ]
    assert outside == [], "values within the margin band around a threshold"


def test_injection_flags_only_its_date():
    shifted = build_episode(resolve_config(seed=1, anomalies=[MENU_DROP]))
    day = shifted.date_index["2026-03-20"]
    assert np.flatnonzero(shifted.flagged.any(axis=1)).tolist() == [day]
    assert shifted.values[day, 0] < shifted.base[0] - C.RATE_THRESHOLD_PP["app_open_to_menu_open"]


def test_count_injection_up_flags_a_count_spike():
    spec = {
        "method_name": "metric_stddev_shift",
        "metric_names": ["app_opens"],
        "dates": ["2026-03-10"],
        "stddev_factor": 30,
        "direction": "up",
    }
    episode = build_episode(resolve_config(seed=4, anomalies=[spec]))
    rows = {(r.date, r.entity_name): r for r in episode.expected_rows}
    assert rows[("2026-03-10", "app_opens")].anomaly_type == "absolute_spike_in_event_count"
