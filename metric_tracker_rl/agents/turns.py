"""One episode played through tool calls: what the model is told and what it gets back.

``ToolTurns`` runs a model's tool calls (an analysis method, or ``submit_report``) against an
environment session and returns each result as the model sees it: compact JSON with the
steps left, an error object for a call that cannot run (bad JSON, an unknown tool, a budget
that cannot pay while nothing is graded yet). It keeps the step accounting and the graded
observation that counts. The OpenAI-compatible agent (``agents/llm.py``), the TRL
environment and the Inspect AI task play through it, and the SFT trajectories are rendered
with it, so every harness shows the model the same words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metric_tracker_rl.agents.base import EnvHandle, analysis_left
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.arguments import SUBMIT_ARGUMENTS
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tools import SUBMIT_REPORT

# A tool result longer than this is cut (lists shortened). Every analysis result fits at its
# largest arguments (tests/test_llm_agent.py), so no call is charged for rows it does not show.
DEFAULT_MAX_RESULT_CHARS = 20000
MAX_ISSUES_SHOWN = 20
ACTION_LABEL_CHARS = 100

SYSTEM_PROMPT = """\
You are a careful product-analytics investigator. Four weeks of product-funnel metrics \
(app_opens -> menu_opens -> product_added_to_cart -> orders_placed -> payment_successful, \
daily and hourly) contain seeded incidents. You see the data only through the read-only \
analysis tools. Every tool call spends budget units (its cost is in its description); the \
budget is small, so spend it where the evidence points. The last unit is always kept for \
the report.

Facts about the data: an incident often moves several statistics at once, and each statistic \
that crosses its threshold is a row to report (a step that converts worse moves the rates \
through it and the counts after it; an event logged twice also shows as impossible counts). \
Two incidents can share a date. Unusual days that are not incidents rank high too. Where the \
episode does not give expected_row_count (it is null), the number of rows is not told, only \
the number of incidents in the config, and one graded submission is allowed.

The rule of grading: only evidence earns credit. A reported row counts only if, earlier in \
this episode, its detection_method was called on the row's date (and on its entity, for \
compare_rate_to_median and compare_count_to_median) and flagged that date and entity. Any \
other row earns nothing and costs as much as a wrong row, even if it is a real anomaly. \
Rankings, raw rows, statistics and the get_*_rows generators only point at candidates; \
payload_generators only format rows, they confirm nothing.

Tools:
- task_overview: the anomaly families with their detection methods, and the public \
threshold of every entity (beyond it: anomaly; inside it: noise).
- list_suspicious_dates ranks dates by their most unusual statistics (with entity_type, by \
one entity type's only). A ranking is a hint, not a verdict: unusual days that are not \
anomalies rank high too.
- Detection methods: compare_rate_to_median / compare_count_to_median judge one rate or \
count on one date; detect_funnel_break, check_impossible_counts and hourly_rows_for_date \
judge every funnel step, step pair or the traffic mix of a date. A non-normal assessment is \
a row in the submission schema, with the exact values; rows_for_date shows all daily counts \
and rates of a date next to their medians.
- submit_report grades the confirmed rows (copy the assessments exactly). Each exactly \
right row earns its share of the score; unsupported and wrong rows cost.

Feedback on a submission names each unsupported row and the call it lacks, and each field of \
a supported row that differs from its detection answer; you may resubmit while submissions \
remain. A long tool result is cut and says so under "truncated". When you are finished, \
reply without a tool call."""


def truncation_hint(method: str | None) -> str:
    """How to narrow a call whose result was cut, naming only arguments the method takes."""
    fields = set(REGISTRY[method].args_model.model_fields) if method in REGISTRY else set()
    ways = []
    if "metric_name" in fields:
        ways.append("metric_name or metric_names")
    if "threshold_multiplier" in fields:
        ways.append("a higher threshold_multiplier")
    if "limit" in fields:
        ways.append("a smaller limit")
    if "rows" in fields:
        ways.append("fewer rows")
    how = f" Narrow the call ({', '.join(ways)})." if ways else ""
    return f"The result was too long: lists were cut to their first items.{how}"


@dataclass(frozen=True)
class StepEvent:
    """One environment step, for progress output (``on_step``)."""

    step: int  # 1-based count of environment steps in the episode
    action: str  # a short one-line label, e.g. ``compare_rate_to_median(date=...,entity_name=...)``
    reward: float
    done: bool
    error: str | None  # the environment's message when the step was an error


def json_text(value: Any) -> str:
    """Compact JSON, as every result reaches the model."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _longest_list(node: Any, path: str = "") -> tuple[int, str, Any, Any] | None:
    """(serialized length, path, holder, key) of the longest non-empty list inside ``node``."""
    best: tuple[int, str, Any, Any] | None = None
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        child_path = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
        child_path = child_path.lstrip(".")
        if isinstance(child, list) and child:
            size = len(json_text(child))
            if best is None or size > best[0]:
                best = (size, child_path, node, key)
        found = _longest_list(child, child_path)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def compact_json(value: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS, method: str | None = None) -> str:
    """Compact JSON of ``value``; when too long, the longest lists are cut (first items kept)
    until it fits, and a ``truncated`` note says what was cut and how to narrow ``method``'s
    call. The output stays valid JSON."""
    text = json_text(value)
    if len(text) <= max_chars:
        return text
    data = json.loads(text)  # a private copy with plain JSON types
    cut: dict[str, tuple[int, int]] = {}

    def render() -> str:
        note = {
            "lists": {path: f"{shown} of {total} items shown" for path, (shown, total) in cut.items()},
            "hint": truncation_hint(method),
        }
        wrapped = (
            {"truncated": note, **data} if isinstance(data, dict) else {"truncated": note, "value": data}
        )
        return json_text(wrapped)

    while len(text := render()) > max_chars:
        found = _longest_list(data)
        if found is None:
            break
        _, path, holder, key = found
        items = holder[key]
        total = cut.get(path, (len(items), len(items)))[1]
        low, high, keep = 0, len(items) - 1, 0  # keep as many items as fit, at least one fewer
        while low <= high:
            middle = (low + high) // 2
            holder[key], cut[path] = items[:middle], (middle, total)
            if len(render()) <= max_chars:
                keep, low = middle, middle + 1
            else:
                high = middle - 1
        holder[key], cut[path] = items[:keep], (keep, total)
    if len(text) > max_chars:  # no list left to cut: a plain cut, no longer JSON
        return text[: max_chars - 15] + "...(truncated)"
    return text


class ToolTurns:
    """The tool calls of one episode after its reset (``first``): answers, accounting, outcome."""

    def __init__(
        self,
        env: EnvHandle,
        first: MetricTrackerRlObservation,
        *,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> None:
        self.env = env
        self.first = first
        self.last = first
        self.graded: MetricTrackerRlObservation | None = None
        self.steps = 0
        self.max_result_chars = max_result_chars
        self.on_step = on_step
        self.max_steps = int(first.budget.get("max_steps", 0))
        self.costs = {m["name"]: int(m.get("cost", 1)) for m in first.available_methods}
        self.steps_before = int(first.budget.get("steps_used", 0))

    def briefing(self) -> str:
        """The first user message: the instruction and the episode's public facts."""
        first = self.first
        facts = {
            "task_id": first.task_id,
            "config": first.config,
            "expected_row_count": first.expected_row_count,
            "budget": first.budget,
            "conversion_metric_definitions": first.conversion_metric_definitions,
        }
        return f"{first.instruction}\n\nEpisode: {json_text(facts)}\n\nBegin with task_overview."

    @property
    def done(self) -> bool:
        return bool(self.last.done)

    def final(self) -> MetricTrackerRlObservation:
        """The observation that counts: the last graded one (or the last, if the episode ended)."""
        return self.last if self.last.done or self.graded is None else self.graded

    def reward(self) -> float:
        """The episode's score: the counted submission's reward, 0 if nothing was graded."""
        return 0.0 if self.graded is None else float(self.final().reward or 0.0)

    def steps_left(self) -> int:
        used = self.last.budget.get("steps_used", self.steps_before + self.steps)
        return int(self.last.budget.get("max_steps", self.max_steps)) - int(used)

    def analysis_left(self) -> int:
        """Units analysis may still spend: the environment keeps the last one for the report."""
        return analysis_left(self.last.budget, self.steps_left())

    # --- one tool call ----------------------------------------------------------------------

    def answer(self, name: str, raw_arguments: Any) -> str:
        """Run one tool call (arguments as JSON text or an object); the result as JSON text."""
        arguments, error = parse_arguments(raw_arguments)
        if self.last.done:
            return self._json({"error": "the episode is finished; no further tool calls are run"})
        if error is not None:
            return self._json({"error": f"tool {name!r} not run: {error}"})
        if name == SUBMIT_REPORT:
            return self._json(self.submit(arguments))
        if name not in REGISTRY:
            return self._json({"error": f"unknown tool {name!r}; available: {[*REGISTRY, SUBMIT_REPORT]}"})
        cost = self.costs.get(name, 1)
        if cost > self.analysis_left():
            return self._json(
                {
                    "error": f"budget: {name} costs {cost} units and {self.analysis_left()} are left for "
                    "analysis (the last unit is kept for the report); call a cheaper tool or "
                    "submit_report now",
                    "steps_left": self.steps_left(),
                }
            )
        obs = self.step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments))
        result = obs.analysis_result or {}
        if "result" in result:
            return self._json({"result": result["result"], "steps_left": self.steps_left()}, name)
        reply = {"error": result.get("error") or obs.message, "steps_left": self.steps_left()}
        if "arguments" in result:
            reply["arguments_schema"] = result["arguments"]
        return self._json(reply, name)

    def submit(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Grade a submission; the aggregate feedback (or an error) as an object."""
        error = submission_error(arguments)
        if error is not None:
            return {"error": error}
        if self.steps_left() < 1:
            return {"error": "no step left for a submission"}
        obs = self.step(
            MetricTrackerRlAction(
                classifications=arguments.get("classifications") or [],
                payload_generators=arguments.get("payload_generators") or [],
            )
        )
        if obs.status != "graded":
            return {"error": obs.message, "steps_left": self.steps_left()}
        budget = obs.budget
        return {
            "score": obs.reward,
            "done": obs.done,
            "message": obs.message,
            "expected_row_count": obs.expected_row_count,
            "correct_row_count": obs.correct_row_count,
            "reward_breakdown": obs.reward_breakdown,
            "submission_issues": obs.submission_issues[:MAX_ISSUES_SHOWN],
            "submissions_left": budget.get("max_submissions", 0) - budget.get("submissions_used", 0),
            "steps_left": self.steps_left(),
        }

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        obs = self.env.step(action)
        self.steps += 1
        self.last = obs
        if obs.status == "graded":
            self.graded = obs
        if self.on_step is not None:
            self.on_step(
                StepEvent(
                    step=self.steps,
                    action=action_label(action),
                    reward=float(obs.reward or 0.0),
                    done=bool(obs.done),
                    error=obs.message if obs.status == "error" else None,
                )
            )
        return obs

    def _json(self, value: Any, method: str | None = None) -> str:
        return compact_json(value, self.max_result_chars, method)


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as an object, or an error message for the model."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError) as err:
        return {}, f"arguments are not valid JSON ({err}); send a JSON object"
    if parsed is None:
        return {}, None
    if not isinstance(parsed, dict):
        return {}, f"arguments must be a JSON object, got {type(parsed).__name__}"
    return parsed, None


def submission_error(arguments: dict[str, Any]) -> str | None:
    unknown = sorted(set(arguments) - set(SUBMIT_ARGUMENTS))
    if unknown:
        return f"submit_report takes classifications and/or payload_generators, not {unknown}"
    for field in SUBMIT_ARGUMENTS:
        value = arguments.get(field)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{field} must be a list of objects"
    return None


def action_label(action: MetricTrackerRlAction) -> str:
    """A short one-line label, e.g. ``get_median_filter_rows(threshold_multiplier=0.0)``."""
    if action.analysis_method is not None:
        given = {k: v for k, v in action.analysis_args.items() if v is not None}  # null: the default
        args = ",".join(f"{k}={_label_value(v)}" for k, v in given.items())
        label = f"{action.analysis_method}({args})"
    else:
        label = (
            f"{SUBMIT_REPORT}(classifications={len(action.classifications)},"
            f"payload_generators={len(action.payload_generators)})"
        )
    label = "".join(label.split())
    return label if len(label) <= ACTION_LABEL_CHARS else label[: ACTION_LABEL_CHARS - 3] + "..."


def _label_value(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)
