"""The grader: only evidence earns credit; bounds, invariants, component weights, penalties,
the reward shape, feedback that depends on the agent's own calls only, no leaks.

Most tests grade with the evidence of an episode whose agent confirmed every expected row
(``Evidence.confirming``), to check the scoring of supported rows; the tests of the evidence
rule itself give other evidence."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_tracker_rl import constants as C
from metric_tracker_rl import episode, grading, tasks
from metric_tracker_rl.evidence import Evidence
from metric_tracker_rl.families import ANOMALY_TYPES, DETECTION_METHOD_BY_ENTITY_TYPE, ENTITY_NAMES_BY_TYPE
from metric_tracker_rl.rows import AnomalyRow, validate_rows

W = C.GRADE_WEIGHTS
ROW = 1 - W["precision"]  # what the exactly right rows earn together, shared by the expected rows
EXTRA = C.EXTRA_ROW_PENALTY_SHARE * ROW  # ... and what an extra row costs, also per expected row


def _episode(task_id: str = "hard_mixed_multi") -> episode.Episode:
    return episode.build_episode(tasks.config_for(task_id))


@pytest.fixture(scope="module")
def ep() -> episode.Episode:
    return _episode()


def expected_dicts(ep: episode.Episode) -> list[dict[str, Any]]:
    return [row.model_dump() for row in ep.expected_rows]


def grade(
    rows: list[Any],
    ep: episode.Episode,
    expected: list[AnomalyRow] | None = None,
    evidence: Evidence | None = None,
):
    """Grade against the episode's truth (or ``expected``), with every expected row confirmed
    unless other ``evidence`` is given."""
    truth = list(ep.expected_rows) if expected is None else expected
    if evidence is None:
        evidence = Evidence.confirming(truth)
    return grading.grade_submission(rows, truth, ep.dates, evidence)


def key_of(row: dict[str, Any]) -> str:
    return f"{row['date']}|{row['entity_type']}|{row['entity_name']}"


def extra_rows(ep: episode.Episode, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Valid rows whose keys are not expected (and distinct from each other)."""
    expected = {row.key for row in ep.expected_rows}
    rng = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    while len(out) < n:
        entity_type = rng.choice(sorted(ENTITY_NAMES_BY_TYPE))
        row = {
            "date": rng.choice(ep.dates),
            "entity_type": entity_type,
            "entity_name": rng.choice(ENTITY_NAMES_BY_TYPE[entity_type]),
            "anomaly_type": rng.choice(ANOMALY_TYPES),
            "detection_method": DETECTION_METHOD_BY_ENTITY_TYPE[entity_type],
            "baseline_value": 10.0,
            "observed_value": 12.0,
            "delta_value": 2.0,
            "severity": "low",
        }
        if key_of(row) not in expected:
            out.setdefault(key_of(row), row)
    return list(out.values())


# --- fixed points ----------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["easy_single_spike", "medium_mixed_pair", "hard_mixed_multi"])
def test_perfect_submission_scores_exactly_one(task_id):
    ep = _episode(task_id)
    result = grade(expected_dicts(ep), ep)
    assert result.score == 1.0
    assert result.correct_row_count == len(ep.expected_rows)
    n = len(ep.expected_rows)
    assert result.issues == [
        f"valid rows: {n}; supported by this episode's detection calls: {n} (these earn credit); "
        f"unsupported: 0 (each costs as an extra row); expected anomaly rows not reported: 0 of {n}",
        f"supported rows matching their detection answer in every field: {n} of {n}; right per field: "
        + ", ".join(f"{name} {n}" for name in grading.FIELD_CHECKS),
    ]
    for component in W:
        assert result.breakdown[component] == 1.0
    for penalty in (
        "extra_row_penalty",
        "duplicate_row_penalty",
        "invalid_row_penalty",
        "mass_submission_penalty",
    ):
        assert result.breakdown[penalty] == 0.0
    # AnomalyRow objects are accepted as well as plain objects, in any order
    assert grade(list(reversed(ep.expected_rows)), ep).score == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_the_episode_s_own_rows_grade_as_their_copies(seed):
    """A payload_generators submission grades the episode's own row objects, shared with
    the truth (matched by identity): the grade is the one their plain copies get, which
    are validated and compared field by field."""
    from metric_tracker_rl.analysis import parse_generator_specs, payload_hits

    ep = episode.build_episode(tasks.config_for(None, seed=seed, difficulty=C.DIFFICULTIES[seed % 3]))
    specs = parse_generator_specs(
        [{"method_name": "get_median_filter_rows", "threshold_multiplier": 1.0 + seed / 2}]
    )
    rows = ep.row_models(payload_hits(ep, specs))
    assert any(any(row is truth for truth in ep.expected_rows) for row in rows)
    own = grade(rows, ep)
    copies = grade([row.model_dump() for row in rows], ep)
    assert (own.score, own.breakdown, own.issues) == (copies.score, copies.breakdown, copies.issues)


def test_empty_submission_scores_zero(ep):
    result = grade([], ep)
    assert result.score == 0.0
    assert result.breakdown["missing_rows"] == len(ep.expected_rows)
    assert result.correct_row_count == 0


def test_weights_sum_to_one_and_keep_the_seed_components():
    assert W == {
        "precision": 0.10,
        "recall": 0.20,
        "anomaly_type": 0.05,
        "detection_method": 0.05,
        "numeric_values": 0.40,
        "severity": 0.20,
    }
    assert math.isclose(math.fsum(W.values()), 1.0)
    assert set(grading.COMPONENTS) == set(W)


def test_the_grader_is_an_openenv_rubric_with_named_parts(ep):
    from openenv.core.rubrics import Rubric

    rubric = grading.ReportRubric()
    assert isinstance(rubric, Rubric)
    names = [name for name, _ in rubric.named_rubrics()]
    assert names == [*grading.COMPONENTS, *grading.PENALTIES]
    rows = expected_dicts(ep)[1:] + extra_rows(ep, 1)
    score = rubric(rows, grading.Grounds(ep.expected_rows, ep.dates, Evidence.confirming(ep.expected_rows)))
    result = rubric.last_result
    assert score == result.score == grade(rows, ep).score
    for name, part in rubric.named_rubrics():
        assert part.last_score == pytest.approx(result.breakdown[name], abs=1e-6), name


def test_hooks_on_a_part_of_the_score_run(ep):
    rubric = grading.ReportRubric()
    seen = []
    rubric.recall.register_forward_pre_hook(lambda part, action, match: seen.append(("pre", match.matched)))
    rubric.recall.register_forward_hook(lambda part, action, match, score: seen.append(("post", score)))
    rows = expected_dicts(ep)[1:]
    rubric(rows, grading.Grounds(ep.expected_rows, ep.dates, Evidence.confirming(ep.expected_rows)))
    assert seen == [("pre", len(rows)), ("post", rubric.recall.last_score)]
    assert rubric.recall.last_score == pytest.approx(len(rows) / len(ep.expected_rows))


def test_grading_is_deterministic(ep):
    rows = expected_dicts(ep)[:2] + extra_rows(ep, 3)
    first = grade(rows, ep)
    second = grade(rows, ep)
    assert (first.score, first.breakdown, first.issues) == (second.score, second.breakdown, second.issues)


# --- each component moves the score by its weight ------------------------------------


def _with(ep: episode.Episode, index: int, **changes: Any) -> list[dict[str, Any]]:
    rows = expected_dicts(ep)
    rows[index] = {**rows[index], **changes}
    return rows


def test_wrong_anomaly_type_costs_its_weight(ep):
    n = len(ep.expected_rows)
    row = ep.expected_rows[0]
    wrong = next(t for t in ANOMALY_TYPES if t != row.anomaly_type)
    result = grade(_with(ep, 0, anomaly_type=wrong), ep)
    assert result.score == pytest.approx(1 - W["anomaly_type"] / n, abs=1e-6)
    assert result.breakdown["anomaly_type"] == pytest.approx((n - 1) / n, abs=1e-6)
    assert result.breakdown["anomaly_type_correct"] == n - 1
    assert result.correct_row_count == n - 1
    assert any(f"anomaly_type {n - 1}," in issue for issue in result.issues)
    # the agent holds the detection answer of a supported row: the feedback says what differs
    assert f"row 0 ({row.key}): differs from {row.detection_method}'s answer in anomaly_type" in result.issues


def test_a_row_naming_another_detection_method_is_unsupported(ep):
    """The detection method is the evidence a row rests on: a row that names a method which
    never flagged it earns nothing, and costs as an extra row."""
    n = len(ep.expected_rows)
    row = ep.expected_rows[-1]
    result = grade(_with(ep, n - 1, detection_method="list_suspicious_dates"), ep)
    assert result.breakdown["unsupported_rows"] == 1
    assert result.breakdown["matched_rows"] == n - 1
    assert result.score == pytest.approx(
        W["precision"] * (n - 1) / n + ROW * (n - 1) / n - EXTRA / n, abs=1e-6
    )
    assert (
        f"row {n - 1} ({row.key}): unsupported: 'list_suspicious_dates' is not the detection method of "
        f"{row.entity_type} rows; {row.detection_method} is, and only rows it flagged earn credit"
    ) in result.issues


def test_wrong_severity_costs_its_weight(ep):
    n = len(ep.expected_rows)
    row = ep.expected_rows[1]
    wrong = next(s for s in C.SEVERITY_LEVELS if s != row.severity)
    result = grade(_with(ep, 1, severity=wrong), ep)
    assert result.score == pytest.approx(1 - W["severity"] / n, abs=1e-6)
    assert result.breakdown["severity_correct"] == n - 1


def _tolerance(value: float) -> float:
    return max(C.NUMERIC_RELATIVE_TOLERANCE * abs(value), C.NUMERIC_ABSOLUTE_FLOOR)


def test_numeric_tolerance_constants():
    assert C.NUMERIC_RELATIVE_TOLERANCE == 0.01
    assert C.NUMERIC_ABSOLUTE_FLOOR == 0.05


@pytest.mark.parametrize("field", ["baseline_value", "observed_value", "delta_value"])
def test_numeric_values_within_tolerance_count_and_outside_cost_their_share(ep, field):
    """A wrong baseline or delta costs a third of the values' weight; a wrong observed value
    also takes the baseline, delta and severity credit that rest on it."""
    n = len(ep.expected_rows)
    lost = W["numeric_values"] / 3
    if field == grading.ANCHOR:
        lost = W["numeric_values"] + W["severity"]
    for index, row in enumerate(ep.expected_rows):
        value = getattr(row, field)
        tol = _tolerance(value)
        for sign in (1, -1):
            inside = grade(_with(ep, index, **{field: value + sign * 0.9 * tol}), ep)
            assert inside.score == 1.0, (row.key, field, value)
            outside = grade(_with(ep, index, **{field: value + sign * 1.2 * tol}), ep)
            assert outside.score == pytest.approx(1 - lost / n, abs=1e-6)
            assert outside.breakdown[f"{field}_correct"] == n - 1


def test_a_right_key_with_guessed_values_earns_only_the_key_share(ep):
    """The public median as baseline and the commonest severity do not pay without the
    observed value they rest on."""
    n = len(ep.expected_rows)
    guessed = [
        {**row, "observed_value": row["baseline_value"] + 1e6, "delta_value": 1e6}
        for row in expected_dicts(ep)
    ]
    result = grade(guessed, ep)
    key_share = W["precision"] + W["recall"] + W["anomaly_type"] + W["detection_method"]
    assert result.score == pytest.approx(key_share, abs=1e-6)
    assert result.breakdown["baseline_value_correct"] == n  # the feedback still counts it
    assert result.breakdown["severity_correct"] == n
    assert result.breakdown["numeric_values"] == 0.0 and result.breakdown["severity"] == 0.0


def test_relative_tolerance_with_absolute_floor():
    # floor: small values get 0.05
    assert grading.values_match(0.04, 0.0)
    assert not grading.values_match(0.06, 0.0)
    assert grading.values_match(1.049, 1.0)
    assert not grading.values_match(1.051, 1.0)
    # relative: 1 % of large values
    assert grading.values_match(1009.9, 1000.0)
    assert not grading.values_match(1010.1, 1000.0)
    assert grading.values_match(-80.7, -80.0)
    assert not grading.values_match(-80.9, -80.0)


def test_an_extra_row_costs_precision_and_the_extra_row_penalty(ep):
    n = len(ep.expected_rows)
    result = grade(expected_dicts(ep) + extra_rows(ep, 1), ep)
    assert result.breakdown["precision"] == pytest.approx(n / (n + 1), abs=1e-6)
    assert result.breakdown["extra_row_penalty"] == pytest.approx(EXTRA / n, abs=1e-6)
    assert result.score == pytest.approx(1 - W["precision"] / (n + 1) - EXTRA / n, abs=1e-6)
    assert result.breakdown["extra_rows"] == result.breakdown["unsupported_rows"] == 1
    assert any("unsupported: 1 (each costs as an extra row)" in issue for issue in result.issues)


def test_every_extra_row_costs_the_same(ep):
    n = len(ep.expected_rows)
    for k in (1, 2, 5):
        result = grade(expected_dicts(ep) + extra_rows(ep, k), ep)
        assert result.breakdown["extra_row_penalty"] == pytest.approx(k * EXTRA / n, abs=1e-6)


def test_a_missing_row_costs_recall_and_the_per_row_components(ep):
    n = len(ep.expected_rows)
    result = grade(expected_dicts(ep)[1:], ep)
    assert result.breakdown["precision"] == 1.0
    assert result.breakdown["recall"] == pytest.approx((n - 1) / n, abs=1e-6)
    assert result.breakdown["missing_rows"] == 1
    assert result.score == pytest.approx(W["precision"] + ROW * (n - 1) / n, abs=1e-6)
    assert any(f"expected anomaly rows not reported: 1 of {n}" in issue for issue in result.issues)


def test_duplicate_row_penalty(ep):
    rows = expected_dicts(ep)
    result = grade(rows + [rows[0], dict(rows[1])], ep)
    assert result.breakdown["duplicate_rows"] == 2
    assert result.score == pytest.approx(1 - 2 * C.DUPLICATE_ROW_PENALTY, abs=1e-6)
    assert sum("duplicate key" in issue for issue in result.issues) == 2  # duplicates are public


def _invalid_variants(ep: episode.Episode) -> dict[str, tuple[Any, str]]:
    row = expected_dicts(ep)[0]
    after = (dt.date.fromisoformat(ep.dates[-1]) + dt.timedelta(days=1)).isoformat()
    return {
        "nan_value": ({**row, "observed_value": float("nan")}, "observed_value"),
        "inf_value": ({**row, "delta_value": float("inf")}, "delta_value"),
        "string_value": ({**row, "baseline_value": "ten"}, "baseline_value"),
        "bad_severity": ({**row, "severity": "catastrophic"}, "severity"),
        "unknown_entity": ({**row, "entity_name": "no_such_metric"}, "entity_name"),
        "entity_of_other_type": ({**row, "entity_type": "event_count", "entity_name": "x"}, "entity_name"),
        "bad_entity_type": ({**row, "entity_type": "weather"}, "entity_type"),
        "unknown_anomaly_type": ({**row, "anomaly_type": "gremlins"}, "anomaly_type"),
        "date_outside_window": ({**row, "date": after}, "date"),
        "date_not_a_date": ({**row, "date": "last tuesday"}, "date"),
        "missing_field": ({k: v for k, v in row.items() if k != "severity"}, "severity"),
        "string_row": ("2026-03-10|conversion_rate|app_open_to_menu_open", "expected an object"),
        "list_row": (list(row.values()), "expected an object"),
        "none_row": (None, "expected an object"),
        "number_row": (42, "expected an object"),
    }


@pytest.mark.parametrize(
    "variant",
    [
        "nan_value",
        "inf_value",
        "string_value",
        "bad_severity",
        "unknown_entity",
        "entity_of_other_type",
        "bad_entity_type",
        "unknown_anomaly_type",
        "date_outside_window",
        "date_not_a_date",
        "missing_field",
        "string_row",
        "list_row",
        "none_row",
        "number_row",
    ],
)
def test_invalid_rows_are_penalised_and_explained(ep, variant):
    bad, field = _invalid_variants(ep)[variant]
    result = grade([*expected_dicts(ep), bad], ep)
    assert result.breakdown["invalid_rows"] == 1
    assert result.breakdown["invalid_row_penalty"] == C.INVALID_ROW_PENALTY
    assert result.score == pytest.approx(1 - C.INVALID_ROW_PENALTY, abs=1e-6)
    (issue,) = [i for i in result.issues if "invalid" in i]
    assert issue.startswith(f"row {len(ep.expected_rows)}")
    assert field in issue


def test_an_invalid_version_of_an_expected_row_does_not_match(ep):
    bad, _ = _invalid_variants(ep)["nan_value"]
    result = grade([bad], ep)
    assert result.breakdown["matched_rows"] == 0
    assert result.score == 0.0


def test_keys_outside_the_row_schema_are_ignored(ep):
    # An assessment returned by a targeted method carries "threshold"; submitting it as is works.
    rows = [{**row, "threshold": {"value": 1.0}, "confidence": 0.9} for row in expected_dicts(ep)]
    result = grade(rows, ep)
    assert result.score == 1.0
    assert result.breakdown["invalid_rows"] == 0


def test_mass_submission_penalty(ep):
    expected = list(ep.expected_rows)
    n = len(expected)
    truth = expected_dicts(ep)
    extras = extra_rows(ep, C.MASS_SUBMISSION_FACTOR * n + 1)
    at_limit = grade([*truth, *extras[:-1]], ep, expected)  # 3 x expected extra rows: no mass penalty
    assert at_limit.breakdown["mass_submission_penalty"] == 0.0
    over = grade([*truth, *extras], ep, expected)  # one more
    assert over.breakdown["mass_submission_penalty"] == C.MASS_SUBMISSION_PENALTY
    assert over.score == 0.0
    assert any("mass submission" in issue for issue in over.issues)
    one = grade([truth[0], *extras[:3]], ep, [expected[0]])
    assert one.score == 0.0 and one.breakdown["extra_row_penalty"] == pytest.approx(3 * EXTRA, abs=1e-6)


def test_more_than_max_rows_scores_zero_with_a_clear_issue(ep):
    rows = expected_dicts(ep) * 200
    assert len(rows) > C.MAX_SUBMISSION_ROWS == 500
    result = grade(rows[: C.MAX_SUBMISSION_ROWS + 1], ep)
    assert result.score == 0.0
    assert result.correct_row_count == 0
    assert len(result.issues) == 1
    assert "501 rows" in result.issues[0] and "at most 500" in result.issues[0]
    assert all(result.breakdown[k] == 0 for k in grading.COMPONENTS)
    assert result.breakdown["submitted_rows"] == 501
    # exactly at the limit it is graded (as a heavily duplicated submission)
    at_limit = grade(rows[: C.MAX_SUBMISSION_ROWS], ep)
    assert at_limit.breakdown["matched_rows"] == len(ep.expected_rows)
    assert at_limit.breakdown["duplicate_rows"] == C.MAX_SUBMISSION_ROWS - len(ep.expected_rows)


def test_breakdown_reports_counts(ep):
    rows = expected_dicts(ep)[:2] + extra_rows(ep, 2) + [expected_dicts(ep)[0], None]
    b = grade(rows, ep).breakdown
    n = len(ep.expected_rows)
    assert b["submitted_rows"] == 6
    assert b["valid_rows"] == 4
    assert b["matched_rows"] == 2
    assert b["extra_rows"] == 2
    assert b["duplicate_rows"] == 1
    assert b["invalid_rows"] == 1
    assert b["missing_rows"] == n - 2
    assert b["expected_rows"] == n


# --- invariants (hypothesis) ------------------------------------------------------------

EPISODES = ("hard_mixed_multi", "medium_mixed_pair", "easy_single_spike")


def _mutated(row: dict[str, Any]) -> st.SearchStrategy:
    """An expected row, possibly with wrong fields (still valid)."""
    return st.fixed_dictionaries(
        {},
        optional={
            "anomaly_type": st.sampled_from(ANOMALY_TYPES),
            "detection_method": st.sampled_from(["compare_rate_to_median", "detect_funnel_break", "x"]),
            "severity": st.sampled_from(C.SEVERITY_LEVELS),
            "observed_value": st.floats(min_value=-1e4, max_value=1e5),
            "baseline_value": st.floats(min_value=-1e4, max_value=1e5),
        },
    ).map(lambda changes: {**row, **changes})


@st.composite
def submissions(draw, ep: episode.Episode) -> list[Any]:
    expected = expected_dicts(ep)
    rows: list[Any] = []
    for row in expected:
        if draw(st.booleans()):
            rows.append(draw(_mutated(row)))
    rows.extend(extra_rows(ep, draw(st.integers(0, 14)), seed=draw(st.integers(0, 1000))))
    invalid = _invalid_variants(ep)
    rows.extend(invalid[name][0] for name in draw(st.lists(st.sampled_from(sorted(invalid)), max_size=3)))
    if rows and draw(st.booleans()):  # exact duplicates
        rows.extend(draw(st.lists(st.sampled_from(rows), max_size=3)))
    return draw(st.permutations(rows))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_score_bounds_and_permutation_invariance(data):
    ep = _episode(data.draw(st.sampled_from(EPISODES)))
    rows = data.draw(submissions(ep))
    result = grade(rows, ep)
    assert 0.0 <= result.score <= 1.0
    assert result.score == result.breakdown["score"]
    shuffled = data.draw(st.permutations(rows))
    assert grade(shuffled, ep).score == result.score
    json.dumps(result.breakdown, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_arbitrary_objects_never_break_the_grader(data):
    ep = _episode()
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=9),
        max_leaves=15,
    )
    rows = data.draw(st.lists(junk | st.sampled_from(expected_dicts(ep)), max_size=8))
    result = grade(rows, ep)
    assert 0.0 <= result.score <= 1.0


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_adding_an_extra_row_never_increases_the_score(data):
    ep = _episode(data.draw(st.sampled_from(EPISODES)))
    rows = data.draw(submissions(ep))
    present = {
        key_of(r) for r in rows if isinstance(r, dict) and {"date", "entity_type", "entity_name"} <= set(r)
    }
    candidates = [r for r in extra_rows(ep, 30, seed=7) if key_of(r) not in present]
    extra = data.draw(st.sampled_from(candidates))
    position = data.draw(st.integers(0, len(rows)))
    bigger = [*rows[:position], extra, *rows[position:]]
    assert grade(bigger, ep).score <= grade(rows, ep).score


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_dropping_a_supported_row_never_increases_the_score(data):
    """Within the range where no mass-submission penalty applies (see the test below for
    the boundary). A row that names another detection method than its answer's is
    unsupported, and dropping it may well raise the score."""
    ep = _episode(data.draw(st.sampled_from(EPISODES)))
    rows = data.draw(submissions(ep))
    supported = {(row.key, row.detection_method) for row in ep.expected_rows}
    keys = [key_of(r) if isinstance(r, dict) and "entity_name" in r else None for r in rows]
    valid = set(validate_rows(rows, ep.dates).positions)
    droppable = [
        i
        for i, k in enumerate(keys)
        if i in valid and (k, rows[i].get("detection_method")) in supported and keys.count(k) == 1
    ]
    if not droppable:
        return
    before = grade(rows, ep)
    if before.breakdown["mass_submission_penalty"]:
        return
    i = data.draw(st.sampled_from(droppable))
    after = grade(rows[:i] + rows[i + 1 :], ep)
    assert after.score <= before.score


def test_dropping_a_correct_row_must_not_lift_the_mass_submission_penalty(ep):
    """Removing a perfectly correct row should never raise the score: the mass penalty counts
    extra rows, so a correct row never pushes a submission over the line."""
    n = len(ep.expected_rows)
    truth = expected_dicts(ep)
    extras = extra_rows(ep, C.MASS_SUBMISSION_FACTOR * n - n + 1)
    with_all = grade(truth + extras, ep)
    without_one = grade(truth[1:] + extras, ep)
    assert without_one.score <= with_all.score, (
        f"dropping a correct row raised the score from {with_all.score} to {without_one.score} "
        f"(mass penalty {with_all.breakdown['mass_submission_penalty']} -> "
        f"{without_one.breakdown['mass_submission_penalty']})"
    )


# --- only evidence earns credit ----------------------------------------------------------


def _unconfirmed(ep: episode.Episode, keep: int) -> tuple[list[dict[str, Any]], Evidence]:
    """The expected rows, of which only the first ``keep`` were confirmed by a detection call."""
    rows = expected_dicts(ep)
    return rows, Evidence.confirming(ep.expected_rows[:keep])


@pytest.mark.parametrize("task_id", EPISODES)
def test_expected_rows_without_evidence_earn_nothing(task_id):
    ep = _episode(task_id)
    n = len(ep.expected_rows)
    result = grade(expected_dicts(ep), ep, evidence=Evidence())
    assert result.score == 0.0
    assert result.breakdown["matched_rows"] == 0
    assert result.breakdown["unsupported_rows"] == result.breakdown["extra_rows"] == n
    assert result.breakdown["extra_row_penalty"] == pytest.approx(EXTRA, abs=1e-6)
    for i, row in enumerate(ep.expected_rows):
        scope = "this date and entity" if row.detection_method.startswith("compare_") else "this date"
        assert f"row {i} ({row.key}): unsupported: no earlier {row.detection_method} call on {scope}" in (
            result.issues
        )


def test_each_confirmed_row_earns_its_share_and_each_unconfirmed_one_costs_an_extra_row(ep):
    n = len(ep.expected_rows)
    for keep in range(n + 1):
        rows, evidence = _unconfirmed(ep, keep)
        result = grade(rows, ep, evidence=evidence)
        raw = W["precision"] * keep / n + ROW * keep / n - EXTRA * (n - keep) / n
        assert result.score == pytest.approx(max(raw, 0.0), abs=1e-6), keep
        assert result.breakdown["unsupported_rows"] == n - keep
        assert result.correct_row_count == keep


def test_a_normal_answer_is_no_evidence(ep):
    """A detection call that answered normal for a (date, entity) supports no row of it."""
    row = ep.expected_rows[0]
    evidence = Evidence()
    evidence.record(row.detection_method, [{**row.model_dump(), "anomaly_type": "normal"}])
    result = grade([row.model_dump()], ep, evidence=evidence)
    assert result.score == 0.0
    scope = "this date and entity" if row.detection_method.startswith("compare_") else "this date"
    assert (
        f"row 0 ({row.key}): unsupported: {row.detection_method} answered normal on {scope}" in result.issues
    )


def test_evidence_is_recorded_per_method_date_and_entity(ep):
    row = ep.expected_rows[0]
    evidence = Evidence()
    evidence.record(row.detection_method, [row.model_dump()])
    assert evidence.supports(row)
    other_day = row.model_copy(update={"date": ep.dates[(ep.dates.index(row.date) + 1) % len(ep.dates)]})
    other_method = row.model_copy(update={"detection_method": "rows_for_date"})
    assert not evidence.supports(other_day) and not evidence.supports(other_method)
    assert evidence.flagged() == [(row.detection_method, row.key)]


def _mask(issues: list[str], keys: list[str]) -> list[str]:
    masked = []
    for issue in issues:
        for key in keys:
            issue = issue.replace(key, "<row>")
        masked.append(issue)
    return masked


def _not_expected_twins(ep: episode.Episode, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each row, one of the same entity type and detection method whose key is not expected."""
    taken = {row.key for row in ep.expected_rows}
    twins = []
    for row in rows:
        for date in ep.dates:
            twin = {**row, "date": date}
            if key_of(twin) not in taken:
                taken.add(key_of(twin))
                twins.append(twin)
                break
    return twins


@pytest.mark.parametrize("task_id", EPISODES)
def test_feedback_is_the_same_whichever_unsupported_rows_are_true(task_id):
    """Two submissions that differ only in which unsupported rows they hold (true anomalies in
    one, rows that are not in the other) get the same score and the same feedback, byte for
    byte once each row's own key is masked: nothing said depends on the truth of a row the
    agent has no evidence for."""
    ep = _episode(task_id)
    n = len(ep.expected_rows)
    confirmed = max(n // 2, 1)
    rows, evidence = _unconfirmed(ep, confirmed)
    true_unsupported = rows[confirmed:]
    false_unsupported = _not_expected_twins(ep, true_unsupported)
    assert len(false_unsupported) == len(true_unsupported)
    base = rows[:confirmed]
    with_true = grade([*base, *true_unsupported], ep, evidence=evidence)
    with_false = grade([*base, *false_unsupported], ep, evidence=evidence)
    assert with_true.score == with_false.score
    assert with_true.breakdown == with_false.breakdown
    assert _mask(with_true.issues, [key_of(r) for r in true_unsupported]) == _mask(
        with_false.issues, [key_of(r) for r in false_unsupported]
    )


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_truth_of_unsupported_rows_never_moves_score_or_feedback(data):
    """The same submission and evidence, graded against two truths of the same size that agree
    on the supported rows: the same score, breakdown and feedback, byte for byte."""
    ep = _episode(data.draw(st.sampled_from(EPISODES)))
    rows = data.draw(submissions(ep))
    truth = list(ep.expected_rows)
    confirmed = data.draw(st.lists(st.sampled_from(truth), unique=True)) if truth else []
    evidence = Evidence.confirming(confirmed)
    # another truth: every unconfirmed expected row replaced by a row nobody submitted
    taken = {
        key_of(r) for r in rows if isinstance(r, dict) and {"date", "entity_type", "entity_name"} <= set(r)
    }
    stand_ins = [
        AnomalyRow.model_validate(r)
        for r in extra_rows(ep, 60, seed=data.draw(st.integers(0, 100)))
        if key_of(r) not in taken
    ]
    other_truth = [row if row in confirmed else stand_ins.pop() for row in truth]
    one = grade(rows, ep, truth, evidence)
    other = grade(rows, ep, other_truth, evidence)
    assert (one.score, one.breakdown, one.issues) == (other.score, other.breakdown, other.issues)


def test_a_supported_row_with_guessed_values_is_told_which_fields_differ(ep):
    row = ep.expected_rows[0]
    guessed = {**row.model_dump(), "observed_value": row.observed_value + 1e6, "delta_value": 1e6}
    result = grade([guessed], ep, evidence=Evidence.confirming([row]))
    assert (
        f"row 0 ({row.key}): differs from {row.detection_method}'s answer in observed_value, delta_value"
        in result.issues
    )


def test_exact_supported_rows_are_not_named(ep):
    """A supported row that matches its detection answer needs no note."""
    result = grade(expected_dicts(ep), ep)
    assert not any(issue.startswith("row ") for issue in result.issues)


# --- feedback never reveals hidden rows -------------------------------------------------


def _assert_no_leak(result: grading.GradeResult, ep: episode.Episode, submitted: list[Any]) -> None:
    """No key or value of an expected row that the submission did not itself hold."""
    own = {
        key_of(r)
        for r in submitted
        if isinstance(r, dict) and {"date", "entity_type", "entity_name"} <= set(r)
    }
    issues = list(result.issues)
    breakdown_text = json.dumps(result.breakdown)
    text = "\n".join(issues) + "\n" + breakdown_text
    for row in ep.expected_rows:
        if row.key in own:
            continue
        assert row.key not in text
        for issue in issues:
            assert not (row.entity_name in issue and row.date in issue), issue
        for value in (row.observed_value, row.baseline_value, row.delta_value):
            if float(value).is_integer() and abs(value) <= C.MAX_SUBMISSION_ROWS:
                continue  # small integers are indistinguishable from counts
            assert repr(value) not in text and f"{value:.4f}" not in text


def _near_misses(ep: episode.Episode) -> list[dict[str, Any]]:
    """The expected rows moved by one day (same entity, same values): all wrong."""
    expected = {row.key for row in ep.expected_rows}
    out = []
    for row in expected_dicts(ep):
        day = ep.dates.index(row["date"])
        moved = {**row, "date": ep.dates[day + 1 if day + 1 < len(ep.dates) else day - 1]}
        if key_of(moved) not in expected:
            out.append(moved)
    return out


@pytest.mark.parametrize("task_id", EPISODES)
def test_feedback_never_reveals_hidden_rows(task_id):
    ep = _episode(task_id)
    empty = grade([], ep, evidence=Evidence())
    _assert_no_leak(empty, ep, [])
    assert empty.breakdown["missing_rows"] == len(ep.expected_rows)
    wrong = _near_misses(ep) + extra_rows(ep, 3)
    result = grade(wrong, ep, evidence=Evidence())
    assert result.breakdown["matched_rows"] == 0
    _assert_no_leak(result, ep, wrong)
    # invalid rows are described by their own content only
    odd = [None, {"date": "x"}, *_near_misses(ep)]
    _assert_no_leak(grade(odd, ep, evidence=Evidence()), ep, odd)


# --- the reward shape: every correct row counts -----------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_an_exact_subset_scores_its_share(seed):
    """j of the E expected rows, exact and alone, score j/E within 0.15."""
    ep = episode.build_episode(tasks.config_for(seed=800 + seed, anomaly_density="high", difficulty="hard"))
    rows = expected_dicts(ep)
    n = len(rows)
    shares = []
    for j in range(n + 1):
        score = grade(rows[:j], ep).score
        assert abs(score - j / n) <= 0.15, (j, n, score)
        assert score == pytest.approx(W["precision"] * (j > 0) + ROW * j / n, abs=1e-6)
        shares.append(score)
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    assert len(set(shares)) == n + 1  # every row moves the score
