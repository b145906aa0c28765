"""The benchmark as a TRL ``environment_factory``: ``GRPOTrainer(environment_factory=MetricTrackerToolEnv)``.

TRL makes one instance per rollout with no arguments, calls ``reset(**row)`` with the
dataset row, appends the text it returns to the prompt's last message, offers every other
public method as a tool (its schema read from the type hints and the Google-style
``Args:`` of its docstring), and scores the rollout with ``get_reward()``.

The tool methods are generated from the one tool catalog (``tools.tool_catalog``): one per
analysis method of the registry, and ``submit_report``, with the catalog's descriptions and
argument descriptions, so the schema TRL renders names the same tools, arguments, types and
words as the MCP tools and the OpenAI agent's functions. A tool returns what the OpenAI
agent's model gets back (``agents.turns.ToolTurns``): compact JSON, an ``error`` object for
a call that cannot run. Nothing here imports TRL or torch.

The episode runs in process by default; ``MetricTrackerToolEnv(base_url=...)`` (through
``functools.partial`` for TRL) plays it on a server over OpenEnv's WebSocket protocol, and
``MetricTrackerToolEnv(urls=[...])`` on several: the instances share one ``client.ServerPool``
per list of URLs, so consecutive episodes go to the servers in turn, and an episode whose
server stops answering is replayed on another (the same tool results: episodes are
deterministic).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any, Literal

from metric_tracker_rl.agents.base import EnvHandle
from metric_tracker_rl.agents.turns import DEFAULT_MAX_RESULT_CHARS, ToolTurns, compact_json
from metric_tracker_rl.arguments import RESET_ARGUMENTS
from metric_tracker_rl.tools import Tool, episode_tools

RETURNS_TEXT = (
    'The result as compact JSON text: {"result": ..., "steps_left": ...}, the grading feedback of '
    'a submission, or {"error": ...} for a call that cannot run.'
)
NOT_STARTED = "no episode: call reset() first"
_JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_JSON_NAMES: dict[type, str] = {value: key for key, value in _JSON_TYPES.items()}


class MetricTrackerToolEnv:
    """One episode of metric_tracker_rl with the analysis methods and ``submit_report`` as tools.

    Safe to introspect before ``reset``: TRL discovers the tools on a fresh instance. With a
    ``base_url``, or ``urls`` (several servers, one episode each in turn), it holds one server
    session; ``with MetricTrackerToolEnv(url) as env:`` closes it.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        urls: Sequence[str] | None = None,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> None:
        if base_url is not None and urls is not None:
            raise ValueError("give base_url (one server) or urls (several), not both")
        if urls is not None and (isinstance(urls, str) or not urls):
            raise ValueError(f"urls must be a non-empty list of server URLs, got {urls!r}")
        if base_url is not None:
            urls = [base_url]
        self.urls = None if urls is None else list(urls)
        self.max_result_chars = max_result_chars
        self.turns: ToolTurns | None = None
        self.resets = 0
        self._env: EnvHandle | None = None
        self._episode: Any = None  # the server session (a client.PooledEpisode)

    def reset(self, **row: Any) -> str:
        """Start the episode of a dataset row and return its briefing.

        The row's reset arguments (task_id; or seed, scenario_family, difficulty and
        anomaly_density or anomaly_count; or split and index) pick the episode; other
        columns (the prompt, ...) and null values are ignored. When the row's prompt ends in
        a message with text, the briefing starts with a blank line, as TRL appends it there.
        """
        config = {k: v for k, v in row.items() if k in RESET_ARGUMENTS and v is not None}
        env = self._handle()
        self.turns = ToolTurns(env, env.reset(**config), max_result_chars=self.max_result_chars)
        self.resets += 1
        briefing = self.turns.briefing()
        return f"\n\n{briefing}" if _ends_in_text(row.get("prompt")) else briefing

    def get_reward(self) -> float:
        """The graded score of the episode's counted submission; 0.0 if nothing was graded."""
        return 0.0 if self.turns is None else self.turns.reward()

    # Not methods: TRL offers every public method as a tool.
    @property
    def reward_breakdown(self) -> dict[str, float | int]:
        """The rubric's components of the counted submission (empty if nothing was graded)."""
        if self.turns is None or self.turns.graded is None:
            return {}
        return dict(self.turns.final().reward_breakdown)

    def __enter__(self) -> MetricTrackerToolEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        """Close the server session, if there is one."""
        if self._episode is not None:
            self._episode.close()
            self._episode = None
            self._env = None

    def _handle(self) -> EnvHandle:
        if self._env is None:
            if self.urls is None:
                from metric_tracker_rl.environment import MetricTrackerRlEnvironment

                self._env = MetricTrackerRlEnvironment()
            else:
                self._episode = self._env = shared_pool(self.urls).episode()
        return self._env

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        if self.turns is None:
            return compact_json({"error": NOT_STARTED})
        return self.turns.answer(name, arguments)  # null is the default (the argument models say so)


_POOLS: dict[tuple[str, ...], Any] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(urls: Sequence[str]) -> Any:
    """The one ``client.ServerPool`` of this list of servers in this process, which every
    instance given the same ``urls`` shares (TRL makes one instance per rollout)."""
    from metric_tracker_rl.client import ServerPool

    key = tuple(urls)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ServerPool(key)
        return _POOLS[key]


def _ends_in_text(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return bool(prompt.strip())
    if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict):
        content = prompt[-1].get("content")
        return isinstance(content, str) and bool(content.strip())
    return False


# --- the tool methods, from the catalog ---------------------------------------------------------


def python_type(schema: dict[str, Any]) -> Any:
    """The Python type hint whose JSON schema (as transformers renders it) is ``schema``'s."""
    options = [option for option in schema.get("anyOf", [schema]) if option.get("type") != "null"]
    nullable = len(options) < len(schema.get("anyOf", [schema]))
    hints = [_one_type(option) for option in options]
    hint = hints[0]
    for other in hints[1:]:
        hint = hint | other
    return hint | None if nullable else hint


def _one_type(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    kind = schema.get("type")
    if kind == "array":
        return list[python_type(schema["items"])] if "items" in schema else list
    if kind == "object":
        return dict
    if kind in _JSON_TYPES:
        return _JSON_TYPES[kind]
    raise TypeError(f"no Python type for the schema {schema}")


def _split_arguments(tool: Tool) -> tuple[list[str], list[str]]:
    """The required arguments and the optional ones (nullable in the strict schema)."""
    properties = tool.input_schema["properties"]
    required = [n for n, p in properties.items() if {"type": "null"} not in p.get("anyOf", [])]
    return required, [n for n in properties if n not in required]


def _docstring_text(prop: dict[str, Any], name: str) -> str:
    return " ".join(prop.get("description", name.replace("_", " ")).split())


def _docstring(tool: Tool) -> str:
    lines = [tool.description, "", "Args:"]
    for name, prop in tool.input_schema["properties"].items():
        lines.append(f"    {name}: {_docstring_text(prop, name)}")
    return "\n".join([*lines, "", "Returns:", f"    {RETURNS_TEXT}"])


def _tool_method(tool: Tool) -> Any:
    """A method named as the tool, with its arguments as typed parameters (null: the default)."""
    properties = tool.input_schema["properties"]
    required, optional = _split_arguments(tool)
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=python_type(properties[n]))
        for n in required
    ]
    parameters += [
        inspect.Parameter(
            n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=python_type(properties[n])
        )
        for n in optional
    ]
    signature = inspect.Signature(parameters, return_annotation=str)

    def method(self: MetricTrackerToolEnv, *args: Any, **kwargs: Any) -> str:
        bound = signature.bind(self, *args, **kwargs)
        return self._call(tool.name, {k: v for k, v in bound.arguments.items() if k != "self"})

    method.__name__ = tool.name
    method.__qualname__ = f"{MetricTrackerToolEnv.__name__}.{tool.name}"
    method.__doc__ = _docstring(tool)
    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {"return": str}
    return method


def rubric_reward_functions() -> list[Any]:
    """One TRL reward function per rubric component and penalty, read from each rollout's
    environment (``reward_breakdown``): with ``GRPOConfig(reward_weights=[0.0] * n)`` they are
    logged (``rewards/<name>/mean``) and leave the reward, ``get_reward()``, as it is."""
    from metric_tracker_rl.grading import COMPONENTS, PENALTIES

    def reward_function(name: str) -> Any:
        def reward(environments: Any = None, **_: Any) -> list[float]:
            return [float(env.reward_breakdown.get(name, 0.0)) for env in environments or []]

        reward.__name__ = reward.__qualname__ = name
        return reward

    return [reward_function(name) for name in (*COMPONENTS, *PENALTIES)]


def trl_tool_schemas() -> list[dict[str, Any]]:
    """The tools as TRL renders them into the prompt (``transformers.utils.get_json_schema`` of
    each tool method, computed here without transformers), in TRL's order (by name, as
    ``inspect.getmembers`` lists the methods): the SFT data's ``tools`` column."""
    return [_trl_schema(tool) for tool in sorted(episode_tools(), key=lambda tool: tool.name)]


def _trl_schema(tool: Tool) -> dict[str, Any]:
    properties = tool.input_schema["properties"]
    required, optional = _split_arguments(tool)
    rendered = {
        n: {**_trl_property(properties[n]), "description": _docstring_text(properties[n], n)}
        for n in (*required, *optional)
    }
    parameters: dict[str, Any] = {"type": "object", "properties": rendered}
    if required:
        parameters["required"] = required
    function = {
        "name": tool.name,
        "description": tool.description,
        "parameters": parameters,
        "return": {"type": "string", "description": RETURNS_TEXT},
    }
    return {"type": "function", "function": function}


def _trl_property(schema: dict[str, Any]) -> dict[str, Any]:
    all_options = schema.get("anyOf", [schema])
    options = [option for option in all_options if option.get("type") != "null"]
    parts = [_trl_one(option) for option in options]
    if len(parts) == 1:
        out = parts[0]
    elif all(part.keys() == {"type"} and isinstance(part["type"], str) for part in parts):
        names = sorted({part["type"] for part in parts})
        out = {"type": names[0] if len(names) == 1 else names}
    else:
        out = {"anyOf": parts}
    if len(options) < len(all_options):
        out["nullable"] = True
    return out


def _trl_one(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema:
        values = list(schema["enum"])
        kinds = list(dict.fromkeys(_JSON_NAMES[type(value)] for value in values))
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}
    kind = schema["type"]
    if kind == "array":
        return (
            {"type": "array", "items": _trl_property(schema["items"])}
            if "items" in schema
            else {"type": "array"}
        )
    return {"type": kind}


def tool_names() -> list[str]:
    """The tools the environment offers: the registry's methods, then ``submit_report``."""
    return [tool.name for tool in episode_tools()]


for _tool in episode_tools():
    setattr(MetricTrackerToolEnv, _tool.name, _tool_method(_tool))
del _tool

__all__ = ["MetricTrackerToolEnv", "python_type", "rubric_reward_functions", "tool_names", "trl_tool_schemas"]
