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

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.turns import (
    DEFAULT_MAX_RESULT_CHARS,
    SYSTEM_PROMPT,
    StepEvent,
    ToolTurns,
    json_text,
    parse_arguments,
    submission_error,
)
from metric_tracker_rl.models import MetricTrackerRlObservation
from metric_tracker_rl.tools import SUBMIT_REPORT, episode_tools

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
MAX_TEXT_REPLIES = 2  # consecutive replies without a tool call before the agent gives up

TEXT_REPLY_NUDGE = (
    "No tool call received. Continue the investigation with a tool call, or call submit_report "
    "with your rows."
)
FINAL_SUBMISSION_PROMPT = (
    "The investigation budget is spent. Call submit_report now with the rows you are confident about."
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


# --- tools ------------------------------------------------------------------------------


def agent_tools() -> list[dict[str, Any]]:
    """Every analysis method of the registry, then ``submit_report``, as strict functions
    (the harness starts the episode, so ``start_episode`` is not offered)."""
    return [tool.openai() for tool in episode_tools()]


# --- the agent --------------------------------------------------------------------------


def _settings(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        "base_url": environ.get(API_BASE_URL_VAR, "").strip(),
        "model": environ.get(MODEL_NAME_VAR, "").strip(),
        "api_key": next((environ[v].strip() for v in API_KEY_VARS if environ.get(v, "").strip()), ""),
    }


def missing_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """The endpoint variables that are not set: API_BASE_URL, MODEL_NAME, "HF_TOKEN or OPENAI_API_KEY"."""
    settings = _settings(os.environ if environ is None else environ)
    missing = [
        name for name, key in ((API_BASE_URL_VAR, "base_url"), (MODEL_NAME_VAR, "model")) if not settings[key]
    ]
    if not settings["api_key"]:
        missing.append(" or ".join(API_KEY_VARS))
    return missing


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base_url``, ``model`` and ``api_key`` from API_BASE_URL, MODEL_NAME, HF_TOKEN/OPENAI_API_KEY."""
    environ = os.environ if environ is None else environ
    settings = _settings(environ)
    missing = missing_settings(environ)
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
    """The state of one played episode: the conversation, and the tool turns it drives."""

    def __init__(self, agent: LLMAgent, env: EnvHandle, first: MetricTrackerRlObservation) -> None:
        self.agent = agent
        self.turns = ToolTurns(env, first, max_result_chars=agent.max_result_chars, on_step=agent.on_step)
        self.requests = 0
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": self.turns.briefing()},
        ]

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> MetricTrackerRlObservation:
        turns = self.turns
        endpoint_ok = True
        text_replies = 0
        for _ in range(self.agent.max_rounds):
            if turns.done or (turns.graded is None and turns.analysis_left() == 0):
                break  # only the report's unit is left: it is asked for below
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
                if turns.graded is not None:
                    break  # the model is done after a graded submission
                text_replies += 1
                if text_replies > MAX_TEXT_REPLIES:
                    break
                self.messages.append({"role": "user", "content": TEXT_REPLY_NUDGE})
                continue
            text_replies = 0
            for call in calls:
                content = turns.answer(call.name, call.arguments)
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        if turns.graded is None and not turns.done:
            self._final_submission(ask_model=endpoint_ok)
        final = turns.final()
        logger.info(
            "%s: score %.4f after %d steps and %d model requests",
            final.task_id,
            final.reward or 0.0,
            turns.steps,
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
                    parsed, error = parse_arguments(call.arguments)
                    if call.name == SUBMIT_TOOL and error is None and submission_error(parsed) is None:
                        arguments = parsed
                        break
            except _openai().OpenAIError as err:
                failure = _endpoint_failure(err)
                if failure is not None:
                    raise failure from err
                logger.warning("the endpoint refused the final request, submitting an empty report: %s", err)
        logger.info("final submission: %d rows", len(arguments.get("classifications") or []))
        self.turns.submit(arguments)


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
    return "{}" if arguments is None else json_text(arguments)
