"""The LLM baseline: an OpenAI-compatible tool-calling agent.

The model sees the reset instruction, calls the analysis methods as tools plus
``submit_report`` (strict function schemas from the one tool catalog, ``tools.py``), and
gets every result back as compact JSON. The loop is bounded by rounds and by the environment's step
budget, and never crashes on a bad reply: malformed tool calls get an error message back,
a request the endpoint refuses (400, 413, 422: too long a conversation, say) ends the
episode, and a model that never submits gets one final submission so the episode is
graded. An endpoint that is down, rate-limits or errs after the client's retries (with
backoff) raises ``EndpointError``: that is no score of the model's, and an evaluation
records the episode as failed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.analysis import REGISTRY
from metric_tracker_rl.arguments import SUBMIT_ARGUMENTS
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation
from metric_tracker_rl.tools import START_EPISODE, SUBMIT_REPORT, tool_catalog

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)


def _openai() -> Any:
    """The openai package, imported on first use (it takes half a second to import)."""
    import openai

    return openai


API_BASE_URL_VAR = "API_BASE_URL"
MODEL_NAME_VAR = "MODEL_NAME"
API_KEY_VARS = ("HF_TOKEN", "OPENAI_API_KEY")  # the first one set wins

SUBMIT_TOOL = SUBMIT_REPORT
DEFAULT_MAX_RETRIES = 4  # the openai client's retries (exponential backoff) before EndpointError
DEFAULT_MAX_ROUNDS = 30  # chat-completion requests per episode, before the final submission
DEFAULT_MAX_RESULT_CHARS = 8000  # a tool result longer than this is cut (lists shortened)
MAX_TEXT_REPLIES = 2  # consecutive replies without a tool call before the agent gives up
MAX_ISSUES_SHOWN = 20
ACTION_LABEL_CHARS = 100

SYSTEM_PROMPT = """\
You are a careful product-analytics investigator. Four weeks of product-funnel metrics \
(app_opens -> menu_opens -> product_added_to_cart -> orders_placed -> payment_successful, \
daily and hourly) contain a known number of seeded anomalies. You see the data only through \
the read-only analysis tools. Every tool call spends budget units (its cost is in its \
description); the budget is small, so spend it where the evidence points.

How to work:
1. task_overview gives the expected row count, the anomaly families with their detection \
methods, and the public threshold of every entity (beyond it: anomaly; inside it: noise).
2. list_suspicious_dates ranks the dates by their most unusual statistics (with entity_type, \
by one entity type's only: useful when the config's scenario_family names one family). A \
ranking is a hint, not a verdict: unusual days that are not anomalies (decoys) rank high too.
3. Examine the most promising dates with the method their signals call for: \
compare_rate_to_median / compare_count_to_median for one rate or count, rows_for_date for all \
daily counts and rates of a date, detect_funnel_break, check_impossible_counts and \
hourly_rows_for_date for hour-level problems. A non-normal assessment is a row in the \
submission schema, with the exact values.
4. Call submit_report with the confirmed rows (values copied exactly). Each exactly right \
row earns its share of the score; extra rows cost. Keep one unit for the submission.

Feedback on a submission is aggregate (how many rows matched, were extra or missing); you \
may resubmit while submissions remain. A long tool result is cut and says so under \
"truncated". When you are finished, reply without a tool call."""

TEXT_REPLY_NUDGE = (
    "No tool call received. Continue the investigation with a tool call, or call submit_report "
    "with your rows."
)
FINAL_SUBMISSION_PROMPT = (
    "The investigation budget is spent. Call submit_report now with the rows you are confident about."
)
TRUNCATION_HINT = (
    "The result was too long: lists were cut to their first items. Narrow the call (metric_name or "
    "metric_names, a higher threshold_multiplier, one date)."
)


class LLMConfigError(ValueError):
    """The endpoint configuration (base URL, model, API key) is incomplete."""


class EndpointError(RuntimeError):
    """The model endpoint failed (unreachable, timing out, rate-limiting, 5xx, refusing the
    credentials) after the client's retries: the episode could not be played."""


REFUSED_REQUEST_STATUSES = (400, 413, 422)  # the request itself: an end of the episode, graded


def _endpoint_failure(err: Exception) -> EndpointError | None:
    """The EndpointError for an infrastructure failure; None for a refused request."""
    status = getattr(err, "status_code", None)
    if status in REFUSED_REQUEST_STATUSES:
        return None
    shown = f"HTTP {status}: {err}" if status is not None else f"{type(err).__name__}: {err}"
    return EndpointError(f"the model endpoint failed after its retries ({shown})")


@dataclass(frozen=True)
class StepEvent:
    """One environment step, for progress output (``on_step``)."""

    step: int  # 1-based count of environment steps in the episode
    action: str  # a short one-line label, e.g. ``compare_rate_to_median(date=...,entity_name=...)``
    reward: float
    done: bool
    error: str | None  # the environment's message when the step was an error


# --- tools ------------------------------------------------------------------------------


def agent_tools() -> list[dict[str, Any]]:
    """Every analysis method of the registry, then ``submit_report``, as strict functions
    (the harness starts the episode, so ``start_episode`` is not offered)."""
    return [tool.openai() for tool in tool_catalog() if tool.name != START_EPISODE]


# --- compact results --------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _longest_list(node: Any, path: str = "") -> tuple[int, str, Any, Any] | None:
    """(serialized length, path, holder, key) of the longest non-empty list inside ``node``."""
    best: tuple[int, str, Any, Any] | None = None
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        child_path = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
        child_path = child_path.lstrip(".")
        if isinstance(child, list) and child:
            size = len(_dumps(child))
            if best is None or size > best[0]:
                best = (size, child_path, node, key)
        found = _longest_list(child, child_path)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def compact_json(value: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS) -> str:
    """Compact JSON of ``value``; when too long, the longest lists are cut (first items kept)
    until it fits, and a ``truncated`` note says what was cut. The output stays valid JSON."""
    text = _dumps(value)
    if len(text) <= max_chars:
        return text
    data = json.loads(text)  # a private copy with plain JSON types
    cut: dict[str, tuple[int, int]] = {}

    def render() -> str:
        note = {
            "lists": {path: f"{shown} of {total} items shown" for path, (shown, total) in cut.items()},
            "hint": TRUNCATION_HINT,
        }
        wrapped = (
            {"truncated": note, **data} if isinstance(data, dict) else {"truncated": note, "value": data}
        )
        return _dumps(wrapped)

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


# --- the agent --------------------------------------------------------------------------


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base_url``, ``model`` and ``api_key`` from API_BASE_URL, MODEL_NAME, HF_TOKEN/OPENAI_API_KEY."""
    environ = os.environ if environ is None else environ
    settings = {
        "base_url": environ.get(API_BASE_URL_VAR, "").strip(),
        "model": environ.get(MODEL_NAME_VAR, "").strip(),
        "api_key": next((environ[v].strip() for v in API_KEY_VARS if environ.get(v, "").strip()), ""),
    }
    missing = [
        name for name, key in ((API_BASE_URL_VAR, "base_url"), (MODEL_NAME_VAR, "model")) if not settings[key]
    ]
    if not settings["api_key"]:
        missing.append(" or ".join(API_KEY_VARS))
    if missing:
        raise LLMConfigError(
            f"the LLM agent needs {', '.join(missing)}: set them in the environment or in .env.inference "
            "(see .env.inference.example)"
        )
    return settings


class LLMAgent:
    """Plays one episode by letting a chat model call the analysis methods as tools.

    Without arguments the endpoint comes from API_BASE_URL, MODEL_NAME and HF_TOKEN (or
    OPENAI_API_KEY); pass ``client`` to reuse an ``openai.OpenAI`` client.
    """

    name = "llm"
    requires_endpoint = True  # cannot play offline, unlike the other baselines

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        temperature: float = 0.0,
        seed: int | None = 0,
        timeout: float = 120.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> None:
        if model is None or (client is None and (base_url is None or api_key is None)):
            found = settings_from_env()
            base_url, model, api_key = (
                base_url or found["base_url"],
                model or found["model"],
                api_key or found["api_key"],
            )
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.model = model
        self.client = client or _openai().OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
        )
        self.max_rounds = max_rounds
        self.max_result_chars = max_result_chars
        self.temperature = temperature
        self.seed = seed
        self.on_step = on_step
        self.tools = agent_tools()

    def play(self, env: EnvHandle, config: dict[str, Any]) -> MetricTrackerRlObservation:
        """Reset, let the model investigate and submit; return the final (graded) observation."""
        first = env.reset(**config)
        episode = _Episode(self, env, first)
        return episode.run()

    # --- requests -----------------------------------------------------------------------

    def complete(self, messages: list[dict[str, Any]], tool_choice: Any = "auto") -> Any:
        """One chat completion (temperature 0, a seed unless the server rejects it); the message."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "tools": self.tools,
            "tool_choice": tool_choice,
            "temperature": self.temperature,
        }
        if self.seed is not None:
            request["seed"] = self.seed
        try:
            response = self.client.chat.completions.create(**request)
        except _openai().BadRequestError as err:
            if self.seed is None or "seed" not in str(err).lower():
                raise
            logger.warning("the endpoint rejects 'seed'; retrying without it")
            self.seed = None
            request.pop("seed")
            response = self.client.chat.completions.create(**request)
        if response.usage is not None:
            logger.debug(
                "tokens: %s prompt, %s completion",
                response.usage.prompt_tokens,
                response.usage.completion_tokens,
            )
        if not response.choices:
            return None
        return response.choices[0].message


class _Episode:
    """The state of one played episode: conversation, observations, step accounting."""

    def __init__(self, agent: LLMAgent, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.agent = agent
        self.env = env
        self.last = first
        self.graded: MetricTrackerRlObservation | None = None
        self.steps = 0
        self.requests = 0
        self.max_steps = int(first.budget.get("max_steps", 0))
        self.costs = {m["name"]: int(m.get("cost", 1)) for m in first.available_methods}
        self.steps_before = int(first.budget.get("steps_used", 0))
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": self._briefing(first)},
        ]

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> MetricTrackerRlObservation:
        endpoint_ok = True
        text_replies = 0
        for _ in range(self.agent.max_rounds):
            if self.last.done or self.steps_left() <= self._reserve():
                break
            try:
                self.requests += 1
                message = self.agent.complete(self.messages)
            except _openai().OpenAIError as err:
                failure = _endpoint_failure(err)
                if failure is not None:
                    raise failure from err
                logger.warning("the endpoint refused the request, ending the episode: %s", err)
                endpoint_ok = False
                break
            calls = _tool_calls(message)
            self.messages.append(_assistant_message(message, calls))
            if not calls:
                if self.graded is not None:
                    break  # the model is done after a graded submission
                text_replies += 1
                if text_replies > MAX_TEXT_REPLIES:
                    break
                self.messages.append({"role": "user", "content": TEXT_REPLY_NUDGE})
                continue
            text_replies = 0
            for call in calls:
                content = self._answer(call)
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        if self.graded is None and not self.last.done:
            self._final_submission(ask_model=endpoint_ok)
        final = self.last if self.last.done or self.graded is None else self.graded
        logger.info(
            "%s: score %.4f after %d steps and %d model requests",
            final.task_id,
            final.reward or 0.0,
            self.steps,
            self.requests,
        )
        return final

    def _final_submission(self, ask_model: bool) -> None:
        """The model never submitted: ask it once (submit_report forced), else submit nothing."""
        arguments: dict[str, Any] = {}
        if ask_model:
            forced = {"type": "function", "function": {"name": SUBMIT_TOOL}}
            prompt = {"role": "user", "content": FINAL_SUBMISSION_PROMPT}
            try:
                self.requests += 1
                message = self.agent.complete([*self.messages, prompt], tool_choice=forced)
                for call in _tool_calls(message):
                    parsed, error = _parse_arguments(call.arguments)
                    if call.name == SUBMIT_TOOL and error is None and _submission_error(parsed) is None:
                        arguments = parsed
                        break
            except _openai().OpenAIError as err:
                failure = _endpoint_failure(err)
                if failure is not None:
                    raise failure from err
                logger.warning("the endpoint refused the final request, submitting an empty report: %s", err)
        logger.info("final submission: %d rows", len(arguments.get("classifications") or []))
        self._submit(arguments)

    # --- one tool call ----------------------------------------------------------------------

    def _answer(self, call: _ToolCall) -> str:
        """Run one tool call; return the tool message content (always JSON)."""
        name = call.name
        arguments, error = _parse_arguments(call.arguments)
        if self.last.done:
            return self._json({"error": "the episode is finished; no further tool calls are run"})
        if error is not None:
            return self._json({"error": f"tool {name!r} not run: {error}"})
        if name == SUBMIT_TOOL:
            return self._json(self._submit(arguments))
        if name not in REGISTRY:
            return self._json({"error": f"unknown tool {name!r}; available: {[*REGISTRY, SUBMIT_TOOL]}"})
        cost = self.costs.get(name, 1)
        if self.steps_left() - cost < self._reserve():
            return self._json(
                {
                    "error": f"budget: {name} costs {cost} units and {self.steps_left()} are left, "
                    "one of them for the submission; call a cheaper tool or submit_report now",
                    "steps_left": self.steps_left(),
                }
            )
        obs = self._step(MetricTrackerRlAction(analysis_method=name, analysis_args=arguments))
        result = obs.analysis_result or {}
        if "result" in result:
            return self._json({"result": result["result"], "steps_left": self.steps_left()})
        reply = {"error": result.get("error") or obs.message, "steps_left": self.steps_left()}
        if "arguments" in result:
            reply["arguments_schema"] = result["arguments"]
        return self._json(reply)

    def _submit(self, arguments: dict[str, Any]) -> dict[str, Any]:
        error = _submission_error(arguments)
        if error is not None:
            return {"error": error}
        if self.steps_left() < 1:
            return {"error": "no step left for a submission"}
        obs = self._step(
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

    def _step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        obs = self.env.step(action)
        self.steps += 1
        self.last = obs
        if obs.status == "graded":
            self.graded = obs
        if self.agent.on_step is not None:
            self.agent.on_step(
                StepEvent(
                    step=self.steps,
                    action=action_label(action),
                    reward=float(obs.reward or 0.0),
                    done=bool(obs.done),
                    error=obs.message if obs.status == "error" else None,
                )
            )
        return obs

    # --- helpers ----------------------------------------------------------------------------

    def steps_left(self) -> int:
        used = self.last.budget.get("steps_used", self.steps_before + self.steps)
        return int(self.last.budget.get("max_steps", self.max_steps)) - int(used)

    def _reserve(self) -> int:
        """Steps kept back for the final submission while nothing is graded yet."""
        return 0 if self.graded is not None else 1

    def _json(self, value: Any) -> str:
        return compact_json(value, self.agent.max_result_chars)

    @staticmethod
    def _briefing(first: MetricTrackerRlObservation) -> str:
        facts = {
            "task_id": first.task_id,
            "config": first.config,
            "expected_row_count": first.expected_row_count,
            "budget": first.budget,
            "conversion_metric_definitions": first.conversion_metric_definitions,
        }
        return f"{first.instruction}\n\nEpisode: {_dumps(facts)}\n\nBegin with task_overview."


def _parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
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


def _submission_error(arguments: dict[str, Any]) -> str | None:
    unknown = sorted(set(arguments) - set(SUBMIT_ARGUMENTS))
    if unknown:
        return f"submit_report takes classifications and/or payload_generators, not {unknown}"
    for field in SUBMIT_ARGUMENTS:
        value = arguments.get(field)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{field} must be a list of objects"
    return None


@dataclass(frozen=True)
class _ToolCall:
    id: str
    name: str
    arguments: Any  # the raw arguments (normally a JSON string)


def _tool_calls(message: Any) -> list[_ToolCall]:
    """The message's tool calls, tolerant of missing ids, names or arguments."""
    calls = []
    for number, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = getattr(call, "function", None)
        calls.append(
            _ToolCall(
                id=getattr(call, "id", None) or f"call_{number}",
                name=getattr(function, "name", None) or "",
                arguments=getattr(function, "arguments", None),
            )
        )
    return calls


def _assistant_message(message: Any, calls: list[_ToolCall]) -> dict[str, Any]:
    """The assistant turn as sent back to the endpoint (tool calls with their ids)."""
    content = getattr(message, "content", None)
    turn: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
    if calls:
        turn["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": _arguments_text(call.arguments),
                },
            }
            for call in calls
        ]
    return turn


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return "{}" if arguments is None else _dumps(arguments)


def action_label(action: MetricTrackerRlAction) -> str:
    """A short one-line label, e.g. ``get_median_filter_rows(threshold_multiplier=0.0)``."""
    if action.analysis_method is not None:
        given = {k: v for k, v in action.analysis_args.items() if v is not None}  # null: the default
        args = ",".join(f"{k}={_label_value(v)}" for k, v in given.items())
        label = f"{action.analysis_method}({args})"
    else:
        label = (
            f"{SUBMIT_TOOL}(classifications={len(action.classifications)},"
            f"payload_generators={len(action.payload_generators)})"
        )
    label = "".join(label.split())
    return label if len(label) <= ACTION_LABEL_CHARS else label[: ACTION_LABEL_CHARS - 3] + "..."


def _label_value(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)
