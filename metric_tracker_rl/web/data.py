"""Data preparation for the web debugger: plain functions, no Gradio, no Plotly.

Argument controls are derived from the method registry's JSON schemas; chart series are
read from the episode's public arrays (the same numbers the analysis methods return);
results and grading feedback become tables. Everything here is testable without a server.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from metric_tracker_rl import constants as C
from metric_tracker_rl import statistics as S
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.arguments import ResetArgs
from metric_tracker_rl.episode import Episode
from metric_tracker_rl.families import FAMILIES
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS

CUSTOM_TASK = "custom"  # the task picker's entry for a free (seed, family, ...) config
DEFAULT_CHOICE = "default"  # a reset dropdown left at its default sends nothing
ANY_CHOICE = "(any)"  # an optional choice argument left open sends nothing (the method's default)

ControlKind = Literal["date", "entity", "entities", "choice", "integer", "number", "json"]


# --- tasks and reset ---------------------------------------------------------------------


def task_choices() -> list[str]:
    """The task picker: every named task, then the free configuration."""
    return [*NAMED_TASKS, CUSTOM_TASK]


def task_table() -> tuple[list[str], list[list[Any]]]:
    """The named tasks as a table (headers, rows), for the landing view."""
    headers = ["task_id", "difficulty", "to find", "description"]
    rows = [[t.task_id, t.difficulty, t.size_text(), t.description] for t in NAMED_TASKS.values()]
    return headers, rows


def reset_choices() -> dict[str, list[str]]:
    """Dropdown choices of the reset controls (``default`` = let the task or config decide)."""
    names = ("scenario_family", "difficulty", "anomaly_density", "anomaly_count")
    return {name: [DEFAULT_CHOICE, *(str(v) for v in ResetArgs.choices(name))] for name in names}


def reset_arguments(
    task_id: str | None,
    seed: float | int | str | None = None,
    scenario_family: str | None = None,
    difficulty: str | None = None,
    anomaly_density: str | None = None,
    anomaly_count: float | int | str | None = None,
) -> dict[str, Any]:
    """The reset kwargs for the controls' values.

    With a named task, only values that differ from the task's own config are sent:
    re-sending the task's scenario_family would drop its fixed anomaly plan.
    """
    kwargs: dict[str, Any] = {}
    task = NAMED_TASKS.get(task_id or "")
    given: dict[str, Any] = {
        "seed": _as_int(seed),
        "scenario_family": _choice(scenario_family),
        "difficulty": _choice(difficulty),
        "anomaly_density": _choice(anomaly_density),
        "anomaly_count": _as_int(anomaly_count),
    }
    if task is not None:
        kwargs["task_id"] = task.task_id
        own = task.reset_arguments()
        given = {k: v for k, v in given.items() if v is not None and own.get(k) != v}
    return kwargs | {k: v for k, v in given.items() if v is not None}


def task_defaults(task_id: str | None) -> dict[str, Any]:
    """Control values that show a named task's config (the free config keeps its values)."""
    task = NAMED_TASKS.get(task_id or "")
    if task is None:
        return {}
    own = task.reset_arguments()
    return {
        "seed": own["seed"],
        "scenario_family": own["scenario_family"],
        "difficulty": own["difficulty"],
        "anomaly_density": own.get("anomaly_density", DEFAULT_CHOICE),
        "anomaly_count": str(own["anomaly_count"]) if own.get("anomaly_count") else DEFAULT_CHOICE,
    }


def _choice(value: str | None) -> str | None:
    return None if value in (None, "", DEFAULT_CHOICE) else value


def _as_int(value: float | int | str | None) -> Any:
    """An integer control's value; what is not a whole number is passed on for the config to refuse."""
    if value is None or value in ("", DEFAULT_CHOICE):
        return None
    if isinstance(value, str):
        return int(value) if value.strip().lstrip("-").isdigit() else value
    if isinstance(value, float) and not value.is_integer():
        return value
    return int(value)


# --- argument controls from the registry -------------------------------------------------


@dataclass(frozen=True)
class ArgumentControl:
    """One input of a method, read from its JSON schema."""

    name: str
    kind: ControlKind
    description: str
    required: bool
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # the allowed values of a "choice" argument

    @property
    def key(self) -> str:
        """Methods share a control when name and kind agree (``date``, ``limit``, ...)."""
        return f"{self.name}:{self.kind}"

    def dropdown_choices(self) -> list[str]:
        """A choice argument's dropdown: its values, led by ``(any)`` when it may be left out."""
        return list(self.choices) if self.required else [ANY_CHOICE, *self.choices]

    def accepted(self) -> str:
        """What a number field accepts, in words (for messages and placeholders)."""
        what = "a whole number" if self.kind == "integer" else "a number"
        if self.minimum is not None and self.maximum is not None:
            what += f" from {_number_text(self.minimum)} to {_number_text(self.maximum)}"
        elif self.minimum is not None:
            what += f" of at least {_number_text(self.minimum)}"
        elif self.maximum is not None:
            what += f" of at most {_number_text(self.maximum)}"
        if not self.required:
            what += " (empty: the default" + (
                f" {_number_text(self.default)})" if self.default is not None else ")"
            )
        return what


def _unwrap_optional(prop: dict[str, Any]) -> dict[str, Any]:
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if len(options) == 1:
        return {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def _control_kind(name: str, prop: dict[str, Any]) -> ControlKind:
    prop = _unwrap_optional(prop)
    kind = prop.get("type")
    if kind == "string" and "enum" in prop:
        return "choice"
    if kind == "string" and (name == "date" or name.endswith("_date")):
        return "date"
    if kind == "string" and name.endswith("_name"):
        return "entity"
    if kind == "array" and name.endswith("_names") and prop.get("items", {}).get("type") == "string":
        return "entities"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    return "json"


def argument_controls(method_name: str) -> list[ArgumentControl]:
    """The inputs of one method, in schema order."""
    schema = REGISTRY[method_name].arguments_schema()
    required = set(schema.get("required", []))
    controls = []
    for name, prop in schema["properties"].items():
        flat = _unwrap_optional(prop)
        controls.append(
            ArgumentControl(
                name=name,
                kind=_control_kind(name, prop),
                description=prop.get("description", ""),
                required=name in required,
                default=prop.get("default"),
                minimum=flat.get("minimum"),
                maximum=flat.get("maximum"),
                choices=tuple(flat.get("enum", ())),
            )
        )
    return controls


def number_text(control: ArgumentControl) -> str:
    """What a number field shows when its method is picked: the default, or nothing."""
    return "" if control.default is None else _number_text(control.default)


def _number_text(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def all_argument_controls() -> list[ArgumentControl]:
    """One control per distinct (name, kind) over the whole registry: the debugger's inputs."""
    seen: dict[str, ArgumentControl] = {}
    for name in REGISTRY:
        for control in argument_controls(name):
            seen.setdefault(control.key, control)
    return list(seen.values())


def method_choices() -> list[tuple[str, str]]:
    """(label, name) for the method picker, grouped by kind in registry order, with each price."""
    return [(f"{spec.kind} · {name} · {_price(spec)}", name) for name, spec in REGISTRY.items()]


def _price(spec: Any) -> str:
    return f"{spec.cost}+{spec.cost_per_row}/row" if spec.cost_per_row else str(spec.cost)


def entity_choices(method_name: str) -> list[str]:
    """Entities a method accepts: its families' entities, or every entity."""
    names: list[str] = []
    for family in FAMILIES:
        if method_name in (family.detection_method, family.generator_method):
            names.extend(n for n in family.entity_names if n not in names)
    return names or [e.entity_name for e in S.ENTITIES]


def json_example(method_name: str, control: ArgumentControl) -> str:
    """A starting value for a JSON argument, so the box shows the expected shape."""
    if control.name == "rows":
        return "[]"
    if control.name == "generator_methods":
        generator = next(n for n, s in REGISTRY.items() if s.kind == "generator")
        return json.dumps([{"method_name": generator, "threshold_multiplier": 2.0}], indent=2)
    return "null"


class ArgumentError(ValueError):
    """A debugger input that cannot become a method argument (bad JSON, not a number)."""


def parse_number(control: ArgumentControl, value: Any) -> int | float | None:
    """A number field's text (number fields are text boxes: the debugger parses them itself,
    so a typo is reported instead of being replaced by the default). Empty means the default
    (``None``); anything else that is not a number in range raises ``ArgumentError`` naming
    the field and what it accepts."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value.strip() if isinstance(value, str) else value
    if text == "":
        return None
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise ArgumentError(f"{control.name}: {text!r} is not a number; enter {control.accepted()}") from None
    whole = control.kind == "integer"
    if not math.isfinite(number) or (whole and not number.is_integer()):
        shown = f"{text!r}" if isinstance(text, str) else _number_text(number)
        kind = "a whole number" if whole else "a finite number"
        raise ArgumentError(f"{control.name}: {shown} is not {kind}; enter {control.accepted()}")
    too_low = control.minimum is not None and number < control.minimum
    too_high = control.maximum is not None and number > control.maximum
    if too_low or too_high:
        raise ArgumentError(
            f"{control.name}: {_number_text(number)} is out of range; enter {control.accepted()}"
        )
    return int(number) if whole else number


def method_arguments(method_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Turn the controls' values (by control key) into ``analysis_args`` for one method.

    Empty optional inputs are left out so the method's own defaults apply.
    """
    args: dict[str, Any] = {}
    for control in argument_controls(method_name):
        value = values.get(control.key)
        if control.kind == "json":
            text = (value or "").strip()
            if not text:
                value = None
            else:
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as err:
                    raise ArgumentError(f"{control.name}: not valid JSON ({err.msg})") from None
        elif control.kind in ("integer", "number"):
            value = parse_number(control, value)
        elif control.kind == "entities":
            value = list(value) if value else None
        elif value in ("", ANY_CHOICE):
            value = None
        if value is None and not control.required:
            continue
        args[control.name] = value
    return args


# --- results as tables -------------------------------------------------------------------


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat_list = all(not isinstance(v, dict | list) for v in value)
            out[name] = ", ".join(map(str, value)) if flat_list else json.dumps(value)
        else:
            out[name] = value
    return out


# The verdict leads a table: in a narrow window the columns after it scroll, it stays in view.
LEADING_COLUMNS = ("date", "anomaly_type", "entity_name")


def _records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    flat = [_flatten(r) for r in records]
    headers: list[str] = []
    for row in flat:
        headers.extend(k for k in row if k not in headers)
    headers = [h for h in LEADING_COLUMNS if h in headers] + [h for h in headers if h not in LEADING_COLUMNS]
    return headers, [[row.get(h) for h in headers] for row in flat]


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def result_table(result: Any) -> tuple[list[str], list[list[Any]]]:
    """A readable table for a method's result.

    A detector's assessments (its verdicts) become the rows; otherwise the first list of
    objects in the result (rows, dates, hourly rows, families); a single object (an
    assessment) becomes one row; anything else becomes field/value pairs. The full result
    stays available as JSON next to it.
    """
    if _is_records(result):
        return _records_table(result)
    if not isinstance(result, dict):
        return ["value"], [[json.dumps(result)]]
    if _is_records(result.get("assessments")):
        return _records_table(result["assessments"])
    for value in result.values():
        if _is_records(value):
            return _records_table(value)
    if "anomaly_type" in result and "entity_name" in result:
        return _records_table([result])
    paired = _paired_metrics(result)
    if paired is not None:
        return paired
    flat = _flatten(result)
    return ["field", "value"], [[k, v] for k, v in flat.items()]


def _paired_metrics(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """``{counts: {...}, median_counts: {...}}`` side by side: metric | value | median."""
    pairs = [k for k in result if isinstance(result[k], dict) and isinstance(result.get(f"median_{k}"), dict)]
    if not pairs:
        return None
    rows = []
    for key in pairs:
        for metric, value in result[key].items():
            rows.append([key, metric, value, result[f"median_{key}"].get(metric)])
    return ["group", "metric", "value", "median"], rows


def result_rows(result: Any) -> list[dict[str, Any]]:
    """Submission rows inside a result: generator rows, or assessments a detector flagged."""
    if not isinstance(result, dict):
        return []
    if isinstance(result.get("rows"), list) and "row_count" in result:  # generators (not raw data)
        return [dict(r) for r in result["rows"] if isinstance(r, dict) and "anomaly_type" in r]
    items = result.get("assessments") if isinstance(result.get("assessments"), list) else [result]
    return [
        _row_only(a) for a in items if isinstance(a, dict) and a.get("anomaly_type") not in (None, "normal")
    ]


def _row_only(assessment: dict[str, Any]) -> dict[str, Any]:
    return {k: assessment[k] for k in ROW_FIELDS if k in assessment}


DETECTION_METHODS = frozenset(f.detection_method for f in FAMILIES)
RANKING_METHOD = "list_suspicious_dates"
MarkKind = Literal["flagged", "hint"]


@dataclass(frozen=True)
class DateMark:
    """Why the charts mark a date: a detection method's verdict (``flagged``), or a hint
    (a ranking or a generator's threshold row), which is not a verdict."""

    kind: MarkKind
    method: str  # the analysis method that produced it
    reason: str  # one short line for the hover text

    @property
    def label(self) -> str:
        """The legend entry: verdicts by their detection method, hints as hints."""
        if self.kind == "flagged":
            return f"flagged by {self.method}"
        if self.method == RANKING_METHOD:
            return "ranked unusual (hint)"
        return "generator row (hint)"


Marks = dict[str, list[DateMark]]  # by date, in the order they were found


def date_marks(method_name: str, result: Any) -> Marks:
    """The dates a result points at.

    Only a detection method's non-``normal`` assessment flags a date; the ranking of
    ``list_suspicious_dates`` and the threshold rows of generators are hints.
    """
    out: Marks = {}
    if not isinstance(result, dict):
        return out
    if method_name == RANKING_METHOD:
        for rank, item in enumerate(result.get("dates", []), start=1):
            top = (item.get("signals") or [{}])[0]
            signal = f"{top['entity_name']} {top['direction']}" if top else "no signal"
            reason = f"ranked #{rank}: {signal} (z {item['score']:.1f})"
            out.setdefault(item["date"], []).append(DateMark("hint", method_name, reason))
        return out
    kind: MarkKind = "flagged" if method_name in DETECTION_METHODS else "hint"
    for row in result_rows(result):
        if "date" in row:
            reason = f"{row.get('anomaly_type')}: {row.get('entity_name')}"
            out.setdefault(row["date"], []).append(DateMark(kind, method_name, reason))
    return out


def merge_marks(into: Marks, new: Marks) -> Marks:
    """Union of the marks per date (no duplicates), sorted by date."""
    merged = {d: list(m) for d, m in into.items()}
    for date, marks in new.items():
        merged.setdefault(date, []).extend(m for m in marks if m not in merged.get(date, []))
    return dict(sorted(merged.items()))


def flagged_only(marks: Marks) -> Marks:
    """The dates a detection method flagged, with only those marks."""
    out = {d: [m for m in ms if m.kind == "flagged"] for d, ms in marks.items()}
    return {d: ms for d, ms in out.items() if ms}


# --- chart series ------------------------------------------------------------------------


@dataclass(frozen=True)
class DailySeries:
    """Daily counts per event and conversion rates per metric, with medians and bands."""

    dates: list[str]
    counts: dict[str, list[float]]
    count_medians: dict[str, float]
    rates: dict[str, list[float]]
    rate_medians: dict[str, float]
    rate_band: dict[str, tuple[float, float]]  # median -/+ the detector's threshold (pp)


def daily_series(episode: Episode) -> DailySeries:
    """The window's daily counts and rates (the values ``rows_for_date`` returns)."""
    values, base = episode.values, episode.base
    counts = {e: values[:, c].tolist() for e, c in zip(C.EVENTS, S.COUNT_COLS, strict=True)}
    rates = {
        m: values[:, c].round(C.ROUND_DIGITS).tolist()
        for m, c in zip(C.RATE_METRICS, S.RATE_COLS, strict=True)
    }
    rate_medians = {
        m: round(float(base[c]), C.ROUND_DIGITS) for m, c in zip(C.RATE_METRICS, S.RATE_COLS, strict=True)
    }
    band = {
        m: (rate_medians[m] - C.RATE_THRESHOLD_PP[m], rate_medians[m] + C.RATE_THRESHOLD_PP[m])
        for m in C.RATE_METRICS
    }
    return DailySeries(
        dates=list(episode.dates),
        counts=counts,
        count_medians={e: float(base[c]) for e, c in zip(C.EVENTS, S.COUNT_COLS, strict=True)},
        rates=rates,
        rate_medians=rate_medians,
        rate_band=band,
    )


@dataclass(frozen=True)
class HourlyProfile:
    """One event's 24 hourly counts on a date against the median of each hour."""

    date: str
    event: str
    hours: list[int]
    counts: list[int]
    median: list[float]
    daytime_share: float  # % of the day's events between 08:00 and 19:59
    median_daytime_share: float


def hourly_profile(episode: Episode, date: str, event: str = C.EVENTS[0]) -> HourlyProfile:
    """Hourly traffic of ``event`` on ``date`` and the window's median hourly profile."""
    day = episode.date_index[date]
    index = C.EVENTS.index(event)
    per_hour = episode.hourly[:, :, index].astype(np.float64)  # (days, 24)
    shares = 100.0 * per_hour[:, list(C.DAYTIME_HOURS)].sum(axis=1) / np.maximum(per_hour.sum(axis=1), 1.0)
    return HourlyProfile(
        date=date,
        event=event,
        hours=list(range(C.HOURS)),
        counts=[int(x) for x in episode.hourly[day, :, index]],
        median=np.median(per_hour, axis=0).tolist(),
        daytime_share=round(float(shares[day]), 2),
        median_daytime_share=round(float(np.median(shares)), 2),
    )


@dataclass(frozen=True)
class FunnelShape:
    """The day's count per funnel event against the median count, with step rates."""

    date: str
    events: list[str]
    counts: list[int]
    median: list[float]
    step_rates: list[float | None]  # % of the previous event reaching this one (None for the first)
    median_step_rates: list[float | None]


def funnel_shape(episode: Episode, date: str) -> FunnelShape:
    """The funnel on ``date`` against the median funnel of the window."""
    day = episode.date_index[date]
    counts = [int(episode.values[day, c]) for c in S.COUNT_COLS]
    median = [float(episode.base[c]) for c in S.COUNT_COLS]

    def steps(values: list[float]) -> list[float | None]:
        return [None] + [
            round(100.0 * b / a, 2) if a > 0 else None for a, b in zip(values[:-1], values[1:], strict=True)
        ]

    return FunnelShape(date, list(C.EVENTS), counts, median, steps(counts), steps(median))


# --- status and feedback -----------------------------------------------------------------


def budget_line(observation: Any) -> str:
    """One status line: task, budgets, last score, and the environment's message."""
    budget = observation.budget or {}
    task = observation.task_id or (observation.config or {}).get("scenario_family", "custom")
    parts = [
        f"**Task** `{task}`",
        f"**Budget** {budget.get('steps_left', 0)} of {budget.get('max_steps', 0)} units left",
        f"**Submissions** {budget.get('submissions_used', 0)}/{budget.get('max_submissions', 0)}",
        f"**Rows to find** {_count_text(observation.expected_row_count)}",
        f"**Status** {observation.status}{' (finished)' if observation.done else ''}",
    ]
    return " · ".join(parts) + (f"  \n{observation.message}" if observation.message else "")


BREAKDOWN_COMPONENTS = tuple(C.GRADE_WEIGHTS)
BREAKDOWN_PENALTIES = (
    "extra_row_penalty",
    "duplicate_row_penalty",
    "invalid_row_penalty",
    "mass_submission_penalty",
)
BREAKDOWN_COUNTS = (
    "submitted_rows",
    "valid_rows",
    "matched_rows",
    "unsupported_rows",
    "extra_rows",
    "duplicate_rows",
    "invalid_rows",
    "missing_rows",
    "expected_rows",
    "exact_rows",
)


def breakdown_table(breakdown: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The reward breakdown: each component with its weight and weighted points, then penalties."""
    rows: list[list[Any]] = []
    for name in BREAKDOWN_COMPONENTS:
        if name in breakdown:
            value = float(breakdown[name])
            weight = C.GRADE_WEIGHTS[name]
            rows.append(["component", name, round(value, 4), weight, round(value * weight, 4)])
    for name in BREAKDOWN_PENALTIES:
        if name in breakdown:
            rows.append(
                ["penalty", name, round(float(breakdown[name]), 4), None, -round(float(breakdown[name]), 4)]
            )
    for name in BREAKDOWN_COUNTS:
        if name in breakdown:
            rows.append(["count", name, breakdown[name], None, None])
    return ["kind", "name", "value", "weight", "points"], rows


def preview_markdown(observation: Any) -> str:
    """What ``preview_submission`` found, or why there is no preview (a refused call, a
    finished episode)."""
    preview = observation.submission_preview
    if observation.status == "error" or not preview:
        return f"**No preview ({observation.status}):** {observation.message}"
    lines = [
        f"**Preview:** {preview['rows']} row(s), {preview['valid_rows']} valid, "
        f"{preview['invalid_rows']} invalid, {preview['duplicate_rows']} duplicate."
    ]
    lines.extend(f"- {issue}" for issue in preview["issues"])
    return "\n".join(lines)


def _count_text(count: int | None) -> str:
    return "not given (this difficulty hides it)" if count is None else str(count)


def feedback_markdown(observation: Any) -> str:
    """Score headline and the grader's issues for a graded (or refused) submission."""
    if observation.status != "graded":
        return f"**{observation.status}**: {observation.message}"
    score = observation.reward_breakdown.get("score", observation.reward)
    breakdown = observation.reward_breakdown
    lines = [
        f"### Score {float(score):.4f}",
        f"{breakdown.get('matched_rows', 0)} of {breakdown.get('expected_rows', 0)} expected rows reported "
        "with evidence (a detection call of this episode flagged them); "
        f"{breakdown.get('unsupported_rows', 0)} unsupported (no credit, each costs as an extra row); "
        f"{observation.correct_row_count} fully correct. {observation.message}",
    ]
    if observation.submission_issues:
        lines.append("")
        lines.append(f"**Issues ({len(observation.submission_issues)})**")
        lines.extend(f"- {issue}" for issue in observation.submission_issues)
    else:
        lines.append("\nNo issues.")
    return "\n".join(lines)


# --- hand-typed rows ---------------------------------------------------------------------

NUMERIC_ROW_FIELDS = ("baseline_value", "observed_value", "delta_value")


def rows_from_table(table: list[list[Any]], headers: list[str]) -> list[dict[str, Any]]:
    """Rows typed into the submission table; blank lines are skipped, numbers parsed.

    A value that is not a number is kept as typed so the grader reports it precisely.
    """
    rows = []
    for line in table:
        cells = {h: v for h, v in zip(headers, line, strict=False)}
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells.values()):
            continue
        row: dict[str, Any] = {}
        for name, value in cells.items():
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "":
                continue
            if name in NUMERIC_ROW_FIELDS:
                with contextlib.suppress(TypeError, ValueError):
                    value = float(value)
            row[name] = value
        rows.append(row)
    return rows
