"""The OpenEnv environment: contract, budgets, submissions, errors, debug mode, no leaks."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import pytest
from evidence_calls import confirm

from metric_tracker_rl import (
    MetricTrackerRlAction,
    MetricTrackerRlEnvironment,
    MetricTrackerRlObservation,
    analysis,
    episode,
    grading,
    tasks,
)
from metric_tracker_rl import constants as C
from metric_tracker_rl.arguments import ResetArgs
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import DEBUG_ENV_VAR
from metric_tracker_rl.evidence import Evidence
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.generator import DECOY_FAMILIES

TASK = "medium_mixed_pair"


@pytest.fixture(autouse=True)
def _no_debug_env(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV_VAR, raising=False)


def make_env(**kwargs: Any) -> tuple[MetricTrackerRlEnvironment, MetricTrackerRlObservation]:
    env = MetricTrackerRlEnvironment(**kwargs)
    return env, env.reset(task_id=TASK)


def analyse(env: MetricTrackerRlEnvironment, method: str, **args: Any) -> MetricTrackerRlObservation:
    return env.step(MetricTrackerRlAction(analysis_method=method, analysis_args=args))


def truth() -> episode.Episode:
    return episode.build_episode(tasks.config_for(TASK))


def expected_payload() -> list[dict[str, Any]]:
    env = MetricTrackerRlEnvironment(debug=True)
    env.reset(task_id=TASK)
    return env.export_debug_snapshot()["expected_payload"]


def wrong_rows() -> list[dict[str, Any]]:
    """The expected rows moved by one day: plausible-looking, all wrong."""
    ep = truth()
    expected = {row.key for row in ep.expected_rows}
    out = []
    for row in ep.expected_rows:
        day = ep.dates.index(row.date)
        moved = {**row.model_dump(), "date": ep.dates[day - 1 if day else day + 1]}
        if f"{moved['date']}|{row.entity_type}|{row.entity_name}" not in expected:
            out.append(moved)
    assert out
    return out


# --- contract ---------------------------------------------------------------------------


def test_constructor_and_reset_signatures():
    init = inspect.signature(MetricTrackerRlEnvironment.__init__).parameters
    assert init["debug"].default is None
    assert str(init["debug"].annotation).replace(" ", "") in {"bool|None", "Optional[bool]"}
    reset = inspect.signature(MetricTrackerRlEnvironment.reset).parameters
    for name in (
        "task_id",
        "seed",
        "scenario_family",
        "difficulty",
        "anomaly_density",
        "anomaly_count",
        "anomalies",
    ):
        assert name in reset, name
        assert reset[name].default is None
    # Every reset argument is ResetArgs's, the one definition the tool schemas and client use
    # (besides OpenEnv's episode_id and the server's keep_episode).
    assert [n for n in reset if n not in ("self", "episode_id", "keep_episode", "unknown")] == [
        "seed",
        *(n for n in ResetArgs.model_fields if n != "seed"),
    ]


def test_debug_flag_reads_the_environment_variable(monkeypatch):
    assert MetricTrackerRlEnvironment().debug is False
    assert MetricTrackerRlEnvironment(debug=True).debug is True
    monkeypatch.setenv(DEBUG_ENV_VAR, "1")
    assert MetricTrackerRlEnvironment().debug is True
    assert MetricTrackerRlEnvironment(debug=False).debug is False


def test_reset_observation():
    env, obs = make_env()
    assert isinstance(obs, MetricTrackerRlObservation)
    assert obs.task_id == TASK
    assert obs.status == "ready"
    assert obs.done is False
    assert obs.reward is None
    assert obs.available_methods == analysis.available_methods()
    assert obs.available_synthetic_generator_methods == list(analysis.GENERATOR_METHODS)
    assert {t["task_id"] for t in obs.available_tasks} >= set(tasks.NAMED_TASKS)
    assert obs.conversion_metric_definitions == analysis.conversion_metric_definitions()
    assert obs.expected_row_count == len(truth().expected_rows)
    assert obs.config["task_id"] == TASK and obs.config["difficulty"] == "medium"
    assert obs.instruction


def test_reset_without_arguments_plays_a_named_task():
    obs = MetricTrackerRlEnvironment().reset()
    assert obs.task_id in tasks.NAMED_TASKS


def test_reset_with_a_procedural_config():
    env = MetricTrackerRlEnvironment()
    obs = env.reset(seed=77, scenario_family="funnel_break", difficulty="easy", anomaly_count=2)
    assert obs.config["seed"] == 77 and obs.config["scenario_family"] == "funnel_break"
    assert obs.expected_row_count >= 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task_id": "no_such_task"},
        {"task_id": 5},
        {"seed": 1, "scenario_family": "aliens"},
        {"seed": 1, "difficulty": "extreme"},
        {"seed": 1, "anomaly_density": "dense"},
        {"seed": -1},
        {"seed": "7"},
        {"seed": 1, "anomaly_count": 13},
        {"seed": 1, "anomaly_count": 0},
        {"seed": 1, "anomalies": [{"method_name": "metric_stddev_shift"}]},
        {
            "seed": 1,
            "anomalies": [{"method_name": "teleport", "metric_name": "app_opens", "date": "2026-03-10"}],
        },
        {"seed": 1, "anomalies": "lots"},
        {"seed": 1, "colour": "blue"},
        {"task_id": TASK, "verbose": True},
    ],
)
def test_bad_reset_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        MetricTrackerRlEnvironment().reset(**kwargs)


def test_reset_with_an_explicit_injection_reports_it():
    env = MetricTrackerRlEnvironment()
    injection = {
        "method_name": "metric_stddev_shift",
        "metric_name": "app_opens",
        "date": "2026-03-20",
        "stddev_factor": 8,
        "direction": "down",
    }
    obs = env.reset(seed=3, anomalies=[injection])
    assert obs.config["injections"][0]["metric_names"] == ["app_opens"]


def test_step_before_reset_returns_an_error_observation():
    env = MetricTrackerRlEnvironment()
    obs = env.step(MetricTrackerRlAction(analysis_method="task_overview"))
    assert obs.status == "error"
    assert obs.done is False
    assert "reset" in obs.message


# --- analysis steps ---------------------------------------------------------------------


def test_analysis_steps_give_zero_reward_and_do_not_end_the_episode():
    env, obs = make_env()
    date = obs.config["start_date"]
    for method, args in [
        ("task_overview", {}),
        ("list_suspicious_dates", {"limit": 3}),
        ("rows_for_date", {"date": date}),
        ("compare_rate_to_median", {"date": date, "entity_name": "app_open_to_menu_open"}),
        ("get_median_filter_rows", {"threshold_multiplier": 3}),
    ]:
        obs = analyse(env, method, **args)
        assert obs.status == "analysis", obs.message
        assert obs.reward == 0.0
        assert obs.done is False
        assert obs.analysis_result["method"] == method
        assert obs.analysis_result["result"] == analysis.run_method(truth(), method, args)["result"]
    assert env.state.step_count == 5
    assert env.state.submissions_used == 0


def test_bad_analysis_calls_return_error_observations():
    env, _ = make_env()
    for method, args in [
        ("no_such_method", {}),
        ("rows_for_date", {}),
        ("rows_for_date", {"date": "1999-01-01"}),
        ("show_raw_data", {"limit": 0}),
        ("compare_rate_to_median", {"date": "2026-03-10", "entity_name": "app_opens"}),
        ("get_rate_drop_from_median_rows", {"threshold_multiplier": float("nan")}),
    ]:
        obs = analyse(env, method, **args)
        assert obs.status == "error"
        assert obs.reward == 0.0 and obs.done is False
        assert obs.analysis_result["error"] == obs.message
    assert analyse(env, "list_dates").status == "analysis"


@pytest.mark.parametrize(
    "action",
    [
        {"analysis_method": 5},
        {"analysis_method": "rows_for_date", "analysis_args": "2026-03-10"},
        {"classifications": "all of them"},
        {"payload_generators": {"method_name": "get_median_filter_rows"}},
        {"unexpected": 1},
        "task_overview",
    ],
)
def test_step_with_a_malformed_dict_action_returns_an_error(action):
    env, _ = make_env()
    obs = env.step(action)
    assert obs.status == "error"
    assert obs.done is False
    assert env.state.submissions_used == 0
    assert analyse(env, "list_dates").status == "analysis"


def test_step_accepts_a_well_formed_dict_action():
    env, _ = make_env()
    obs = env.step({"analysis_method": "list_dates", "analysis_args": {}})
    assert obs.status == "analysis"


@pytest.mark.parametrize(
    "method", ["hourly_rows_for_date", "detect_funnel_break", "check_impossible_counts", "rows_for_date"]
)
def test_step_observations_are_small(method):
    env, _ = make_env()
    for date in truth().dates:
        step = analyse(env, method, date=date)
        assert step.available_methods == [] and step.available_tasks == []
        assert len(step.model_dump_json()) < 4096, (method, date)
    for entity in ("app_open_to_menu_open", "app_opens"):
        name = "compare_rate_to_median" if entity != "app_opens" else "compare_count_to_median"
        assert len(analyse(env, name, date=truth().dates[5], entity_name=entity).model_dump_json()) < 4096


# --- submissions ------------------------------------------------------------------------


def test_submission_grades_classifications_and_payload_generators_together():
    env, _ = make_env()
    ep = truth()
    classification = expected_payload()[:1]
    spent = sum(obs.analysis_result["cost"] for obs in confirm(env, expected_payload()))
    generators = [{"method_name": "get_rate_drop_from_median_rows", "threshold_multiplier": 3.0}]
    obs = env.step(MetricTrackerRlAction(classifications=classification, payload_generators=generators))
    assert obs.status == "graded"
    generated = analysis.build_payload(ep, analysis.parse_generator_specs(generators))
    want = grading.grade_submission([*classification, *generated], ep.expected_rows, ep.dates, env.evidence)
    assert obs.reward == want.score
    assert obs.reward_breakdown == want.breakdown
    # a submission shows the generated rows' keys and families, not their canonical values
    keys = ("date", "entity_type", "entity_name", "anomaly_type", "detection_method")
    assert obs.generated_rows == [{k: r[k] for k in keys} for r in generated]
    assert obs.reward_breakdown["submitted_rows"] == len(classification) + len(generated)
    assert obs.submitted_rows == classification
    assert env.state.submissions_used == 1
    assert obs.budget["steps_used"] == spent + C.SUBMISSION_COST


def test_generated_rows_earn_nothing_without_evidence():
    """A calibrated or lucky generator formats rows; it does not confirm them."""
    env, _ = make_env()
    ep = truth()
    generators = [{"method_name": "get_median_filter_rows", "threshold_multiplier": 2.5}]
    obs = env.step(MetricTrackerRlAction(payload_generators=generators))
    rows = analysis.build_payload(ep, analysis.parse_generator_specs(generators))
    assert obs.status == "graded"
    assert obs.reward == grading.grade_submission(rows, ep.expected_rows, ep.dates, Evidence()).score == 0.0
    assert obs.reward_breakdown["unsupported_rows"] == len(rows)
    assert obs.reward_breakdown["matched_rows"] == 0


def test_confirm_then_generate_the_smallest_payload():
    """The generator path: confirm with the detection methods, then let a generator narrowed
    to the confirmed entities write the rows."""
    env, _ = make_env()
    payload = expected_payload()
    confirm(env, payload)
    generators = [
        {
            "method_name": family.generator_method,
            "metric_name": row["entity_name"],
            "threshold_multiplier": 0.0,
        }
        for row in payload
        for family in FAMILIES
        if family.anomaly_type == row["anomaly_type"]
    ]
    obs = env.step(MetricTrackerRlAction(payload_generators=generators))
    assert obs.status == "graded"
    assert obs.reward_breakdown["matched_rows"] == len(payload)
    assert obs.reward_breakdown["exact_rows"] == len(payload)
    # the generators also wrote rows nobody confirmed: they cost as extra rows
    assert obs.reward_breakdown["unsupported_rows"] == obs.reward_breakdown["valid_rows"] - len(payload)


def test_an_action_without_analysis_method_says_it_was_a_submission():
    env, _ = make_env()
    obs = env.step(MetricTrackerRlAction(analysis_args={"date": "2026-03-10"}))
    assert obs.status == "graded"
    assert "analysis_method was null, so the action was a submission" in obs.message
    obs = env.step(MetricTrackerRlAction())
    assert "an action without analysis_method is a submission: this one held no rows" in obs.message


def test_empty_submission_scores_zero_and_uses_a_submission():
    env, _ = make_env()
    obs = env.step(MetricTrackerRlAction())
    assert obs.status == "graded"
    assert obs.reward == 0.0
    assert obs.done is False
    assert obs.budget["submissions_used"] == 1
    assert env.state.submissions_used == 1


def test_perfect_submission_ends_the_episode():
    env, _ = make_env()
    confirm(env, expected_payload())
    obs = env.step(MetricTrackerRlAction(classifications=expected_payload()))
    assert obs.status == "graded"
    assert obs.reward == 1.0
    assert obs.done is True
    assert obs.correct_row_count == obs.expected_row_count
    later = analyse(env, "list_dates")
    assert later.status == "finished" and later.done is True and later.reward == 1.0


def test_the_same_rows_unconfirmed_score_zero():
    env, _ = make_env()
    obs = env.step(MetricTrackerRlAction(classifications=expected_payload()))
    assert obs.reward == 0.0
    assert obs.reward_breakdown["unsupported_rows"] == obs.expected_row_count
    for row in expected_payload():
        key = f"{row['date']}|{row['entity_type']}|{row['entity_name']}"
        assert any(
            issue.startswith("row ") and f"({key}): unsupported" in issue for issue in obs.submission_issues
        )


def test_three_graded_submissions_end_the_episode_with_the_last_score():
    env, _ = make_env()
    payload = expected_payload()
    confirm(env, payload)
    scores = []
    for rows in ([], payload[:1], payload[:2]):
        obs = env.step(MetricTrackerRlAction(classifications=rows))
        assert obs.status == "graded"
        scores.append(obs.reward)
    assert obs.done is True
    assert scores[0] == 0.0 and 0.0 < scores[1] < scores[2] < 1.0
    for _ in range(2):
        later = env.step(MetricTrackerRlAction(classifications=payload))
        assert later.status == "finished"
        assert later.done is True
        assert later.reward == scores[-1]
    assert env.state.submissions_used == 3


def test_analysis_never_spends_the_unit_of_the_report():
    """Analysis stops one unit short of the budget: further calls are refused at no cost and
    the episode goes on; the report then spends the last unit and ends it."""
    env, first_obs = make_env()
    budget = first_obs.budget["max_steps"]
    payload = expected_payload()
    confirm(env, payload[:2])
    first = env.step(MetricTrackerRlAction(classifications=payload[:2]))
    assert first.status == "graded" and not first.done
    while (obs := analyse(env, "list_dates")).status == "analysis":
        assert obs.budget["analysis_steps_left"] == budget - C.SUBMISSION_COST - obs.budget["steps_used"]
        assert not obs.done and obs.reward == 0.0
    assert obs.status == "error" and "left for analysis" in obs.message
    assert obs.analysis_result["cost"] == 0 and obs.budget["steps_used"] == budget - C.SUBMISSION_COST
    assert not obs.done and obs.budget["analysis_steps_left"] == 0
    assert env.step({"analysis_method": 5}).budget["steps_used"] == budget - C.SUBMISSION_COST  # free too
    last = env.step(MetricTrackerRlAction(classifications=payload[:1]))
    assert last.status == "graded" and last.done and "Step budget spent" in last.message
    assert last.reward < first.reward  # the episode's reward is its last graded score
    later = analyse(env, "list_dates")
    assert later.status == "finished" and later.done and later.reward == last.reward


def test_the_final_submission_is_always_possible():
    env, first_obs = make_env()
    for _ in range(first_obs.budget["max_steps"] + 5):
        obs = analyse(env, "list_dates")
        assert not obs.done
    graded = env.step(MetricTrackerRlAction())
    assert graded.status == "graded" and graded.done is True and graded.reward == 0.0
    assert env.step(MetricTrackerRlAction()).status == "finished"


# --- budgets ----------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", C.SAME_STATISTIC_DECOYS)
def test_a_scenario_of_mix_shifts_alone_gets_no_date_level_allowance(difficulty):
    """There every incident moves related statistics too, whose agreement points at it, so it
    is budgeted like the families judged per entity; funnel breaks keep their allowance."""
    budgets = {}
    for family in ("hourly_traffic_mix_shift", "funnel_break"):
        obs = MetricTrackerRlEnvironment().reset(
            seed=17, scenario_family=family, difficulty=difficulty, anomaly_density="medium"
        )
        rows = obs.expected_row_count or 0  # hidden (None) on hard, where rows play no part
        budgets[family] = obs.budget["max_steps"] - rows * C.STEP_BUDGET_PER_ROW[difficulty]
    mix, funnel = budgets["hourly_traffic_mix_shift"], budgets["funnel_break"]
    assert mix == C.STEP_BUDGET_BASE[difficulty] + 5 * C.STEP_BUDGET_PER_INCIDENT[difficulty]
    assert funnel == mix + 5 * C.STEP_BUDGET_DATE_LEVEL[difficulty]


@pytest.mark.parametrize("task_id", list(tasks.NAMED_TASKS))
def test_the_default_budget_is_set_by_difficulty_incidents_and_rows(task_id):
    env = MetricTrackerRlEnvironment()
    obs = env.reset(task_id=task_id)
    task = tasks.NAMED_TASKS[task_id]
    difficulty, incidents, rows = task.difficulty, len(task.anomaly_plan), task.anomaly_rows
    date_level = 3 / 7  # mixed: funnel breaks, mix shifts and impossible counts are judged a date at a time
    if task.scenario_family != "mixed":
        date_level = float(task.scenario_family in ("funnel_break", "instrumentation_data_quality_issue"))
    per_incident = C.STEP_BUDGET_PER_INCIDENT[difficulty] + C.STEP_BUDGET_DATE_LEVEL[difficulty] * date_level
    per_row = 0 if difficulty in C.HIDDEN_ROW_COUNT else C.STEP_BUDGET_PER_ROW[difficulty]
    want = C.STEP_BUDGET_BASE[difficulty] + math.ceil(per_incident * incidents) + per_row * rows
    assert obs.budget == {
        "steps_used": 0,
        "steps_left": want,
        "analysis_steps_left": want - C.SUBMISSION_COST,
        "max_steps": want,
        "submissions_used": 0,
        "max_submissions": C.MAX_SUBMISSIONS[difficulty],
    }
    assert f"Budget: {want} units" in obs.instruction


def test_where_the_row_count_is_hidden_nothing_tells_it_before_the_report():
    """On hard the expected row count is null everywhere an agent looks, the budget does not
    depend on it, and one graded submission, the report, ends the episode."""
    env = MetricTrackerRlEnvironment()
    first = env.reset(task_id="hard_mixed_multi")
    assert first.expected_row_count is None
    assert "the number of anomaly rows is not given" in first.instruction
    assert first.config["anomaly_count"] == 4  # incidents, not rows
    overview = analyse(env, "task_overview").analysis_result["result"]
    assert overview["expected_row_count"] is None
    assert {t["task_id"]: t["anomaly_rows"] for t in first.available_tasks}["hard_mixed_multi"] is None
    same_incidents = MetricTrackerRlEnvironment().reset(
        seed=5, scenario_family="mixed", difficulty="hard", anomaly_count=4
    )
    assert same_incidents.budget["max_steps"] == first.budget["max_steps"]  # whatever the rows
    report = env.step(MetricTrackerRlAction())
    assert report.status == "graded" and report.done and report.budget["max_submissions"] == 1
    assert env.step(MetricTrackerRlAction()).status == "finished"


def test_max_steps_replaces_the_default_budget():
    env = MetricTrackerRlEnvironment(max_steps=7)
    for task_id in tasks.NAMED_TASKS:
        assert env.reset(task_id=task_id).budget["max_steps"] == 7
    with pytest.raises(ValueError, match="positive integer"):
        MetricTrackerRlEnvironment(max_steps=0)


def test_each_action_spends_its_cost():
    env, obs = make_env()
    costs = {m["name"]: m["cost"] for m in obs.available_methods}
    date = obs.config["start_date"]
    spent = 0
    for method, args in (
        ("task_overview", {}),
        ("list_suspicious_dates", {"limit": 5}),
        ("compare_rate_to_median", {"date": date, "entity_name": "app_open_to_menu_open"}),
        ("detect_funnel_break", {"date": date}),
        ("rows_for_date", {"date": date}),
        ("hourly_rows_for_date", {"date": date}),
    ):
        obs = analyse(env, method, **args)
        assert obs.status == "analysis" and obs.analysis_result["cost"] == costs[method]
        spent += costs[method]
        assert obs.budget["steps_used"] == spent
    obs = analyse(env, "get_rate_drop_from_median_rows", threshold_multiplier=1.0)
    rows = len(obs.analysis_result["result"]["rows"])
    spent += 1 + C.GENERATOR_ROW_COST * rows
    assert obs.budget["steps_used"] == spent
    obs = analyse(env, "no_such_method")
    spent += C.ERROR_COST
    assert obs.status == "error" and obs.budget["steps_used"] == spent
    obs = env.step(MetricTrackerRlAction())
    assert obs.budget["steps_used"] == spent + C.SUBMISSION_COST


def test_a_call_the_budget_cannot_pay_is_refused_and_costs_an_error():
    env = MetricTrackerRlEnvironment(max_steps=5)
    date = env.reset(task_id=TASK).config["start_date"]
    analyse(env, "list_dates")
    analyse(env, "list_entities")
    obs = analyse(env, "detect_funnel_break", date=date)
    assert obs.status == "error" and "costs 3 budget units but only 2 are left for analysis" in obs.message
    assert obs.analysis_result["cost"] == C.ERROR_COST and "result" not in obs.analysis_result
    assert obs.budget["steps_used"] == 3 and not obs.done
    assert env.step(MetricTrackerRlAction(classifications=expected_payload()[:1])).status == "graded"


def test_generator_rows_beyond_the_budget_are_not_shown():
    env = MetricTrackerRlEnvironment(max_steps=7)
    env.reset(task_id=TASK)
    obs = analyse(env, "get_median_filter_rows", threshold_multiplier=1.0)
    result = obs.analysis_result["result"]
    assert result["row_count"] == (6 - 1) // C.GENERATOR_ROW_COST and result["truncated"]
    assert obs.budget["steps_used"] == 1 + C.GENERATOR_ROW_COST * result["row_count"] <= 6
    assert obs.budget["steps_left"] >= C.SUBMISSION_COST


def test_malformed_payload_generators_give_an_error_and_the_session_keeps_working():
    env, _ = make_env()
    for generators in (
        [{"method_name": "no_such_generator"}],
        [{"method_name": "payload_generator"}],
        [{"method_name": "get_median_filter_rows", "threshold_multiplier": -1}],
        [{"method_name": "get_median_filter_rows", "threshold_multiplier": "high"}],
        [{"threshold_multiplier": 2}],
        [{"method_name": "get_rate_drop_from_median_rows", "metric_name": "app_opens"}],
    ):
        obs = env.step(MetricTrackerRlAction(payload_generators=generators))
        assert obs.status == "error", generators
        assert "payload_generators" in obs.message
        assert obs.done is False and obs.reward == 0.0
    assert env.state.submissions_used == 0
    assert analyse(env, "list_dates").status == "analysis"
    confirm(env, expected_payload())
    graded = env.step(MetricTrackerRlAction(classifications=expected_payload()))
    assert graded.status == "graded" and graded.reward == 1.0


def test_reset_starts_a_fresh_episode():
    env, _ = make_env()
    env.step(MetricTrackerRlAction(classifications=expected_payload()))
    obs = env.reset(task_id="easy_single_spike")
    assert obs.done is False and obs.task_id == "easy_single_spike"
    assert env.state.step_count == 0 and env.state.submissions_used == 0
    assert analyse(env, "list_dates").status == "analysis"


# --- debug mode -------------------------------------------------------------------------


def test_debug_snapshot_is_refused_when_debug_is_off():
    for env in (MetricTrackerRlEnvironment(debug=False), MetricTrackerRlEnvironment()):
        env.reset(task_id=TASK)
        with pytest.raises(PermissionError, match=DEBUG_ENV_VAR):
            env.export_debug_snapshot()


def _check_snapshot(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) == {"expected_payload", "anomaly_schedule"}
    assert snapshot["expected_payload"] == [row.model_dump() for row in truth().expected_rows]
    schedule = snapshot["anomaly_schedule"]
    anomalies = [item for item in schedule if item["anomaly_type"] != "normal"]
    decoys = [item for item in schedule if item["anomaly_type"] == "normal"]
    assert sorted(item["anomaly_type"] for item in anomalies) == sorted(tasks.NAMED_TASKS[TASK].anomaly_plan)
    assert len(decoys) == C.DECOYS[tasks.NAMED_TASKS[TASK].difficulty]
    assert all(item["decoy_of"] in DECOY_FAMILIES for item in decoys)


def test_debug_snapshot_with_debug_true():
    env, _ = make_env(debug=True)
    _check_snapshot(env.export_debug_snapshot())


def test_debug_snapshot_via_the_environment_variable(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV_VAR, "1")
    env, _ = make_env()
    _check_snapshot(env.export_debug_snapshot())


# --- no leak in standard mode -----------------------------------------------------------


def test_standard_observations_never_contain_the_hidden_rows():
    env, reset = make_env()
    ep = truth()
    expected = [row.model_dump() for row in ep.expected_rows]
    quiet_date = next(d for d in ep.dates if all(r["date"] != d for r in expected))
    observations = [reset]
    script: list[MetricTrackerRlAction] = [
        MetricTrackerRlAction(analysis_method="task_overview"),
        MetricTrackerRlAction(analysis_method="list_entities"),
        MetricTrackerRlAction(analysis_method="list_suspicious_dates", analysis_args={"limit": 28}),
        MetricTrackerRlAction(analysis_method="show_raw_data", analysis_args={"limit": 28}),
        MetricTrackerRlAction(analysis_method="rows_for_date", analysis_args={"date": quiet_date}),
        MetricTrackerRlAction(
            analysis_method="get_metric_median", analysis_args={"metric_name": "app_opens"}
        ),
        MetricTrackerRlAction(analysis_method="preview_submission", analysis_args={"rows": wrong_rows()}),
        MetricTrackerRlAction(analysis_method="rows_for_date", analysis_args={"date": "1999-01-01"}),
        MetricTrackerRlAction(),  # empty submission
        MetricTrackerRlAction(classifications=wrong_rows()),  # wrong submission
    ]
    for action in script:
        observations.append(env.step(action))
    assert observations[-2].status == observations[-1].status == "graded"
    for obs in observations:
        text = obs.model_dump_json()
        assert obs.metadata == {}
        for row in expected:
            key = f"{row['date']}|{row['entity_type']}|{row['entity_name']}"
            assert key not in text
            assert json.dumps(row) not in text
            assert json.dumps(row, separators=(",", ":")) not in text
        for issue in [*obs.submission_issues, json.dumps(obs.reward_breakdown)]:
            for row in expected:
                assert not (row["entity_name"] in issue and row["date"] in issue), issue
    empty = observations[-2]
    assert empty.reward_breakdown["missing_rows"] == len(expected)
