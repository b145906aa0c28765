"""A scripted OpenAI-compatible chat-completions server for the LLM agent's tests.

``POST /v1/chat/completions`` answers in the real response format (``chat.completion``,
``tool_calls`` with JSON-string arguments, ``finish_reason``, ``usage``). The "model" is a
policy that reads the conversation like a model would: the solving policy reads the
episode from the briefing and makes the reference solver's calls in its order (a few at a
time, as parallel tool calls), then submits what the solver submits. The replaying policy
plays recorded tool calls instead, one a reply: the script whose marker the conversation's
first user message holds, at the position the conversation has reached. Like the real API,
a request whose strict tools break strict mode's rules gets 400, arguments to a strict tool
come with every property (null where the policy leaves one out), and ``"stream": true`` is
answered with server-sent events (``chat.completion.chunk``s, then ``[DONE]``). ``faults``
replace the first replies with malformed ones (bad JSON, unknown tool, text only, HTTP 500,
...). Every request body is recorded. Loopback only, a free port, a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai_strict import as_strict_model_sends, strict_errors
from solver_calls import solver_play

POLICIES = ("solve", "text", "loop", "replay")
Call = tuple[str, dict[str, Any]]

# One malformed reply each; the policy plays on afterwards.
FAULTS: dict[str, dict[str, Any]] = {
    "bad_json": {"tool_calls": [("task_overview", '{"oops": ')]},
    "not_object": {"tool_calls": [("task_overview", "[1, 2]")]},
    "unknown_tool": {"tool_calls": [("drop_database", "{}")]},
    "missing_args": {"tool_calls": [("compare_rate_to_median", "{}")]},
    "bad_submit": {"tool_calls": [("submit_report", '{"classifications": "everything"}')]},
    "no_tool_call": {"content": "The data looks fine to me."},
    "http_500": {"status": 500},
    "http_400": {"status": 400},
    "slow": {"sleep": 3.0},
}


class FakeOpenAI:
    """``with FakeOpenAI(policy="solve", faults=["bad_json"]) as fake: fake.base_url``.

    ``accept_seed=False`` answers 400 to requests that carry ``seed``, as some servers do.
    ``replays`` (the ``replay`` policy): marker -> the tool calls to play, in order, in the
    conversations whose first user message contains the marker.
    """

    def __init__(
        self,
        policy: str = "solve",
        faults: Sequence[str] = (),
        accept_seed: bool = True,
        replays: dict[str, list[Call]] | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
        if (policy == "replay") != bool(replays):
            raise ValueError("the replay policy, and only it, takes replays")
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; expected some of {list(FAULTS)}")
        self.policy = policy
        self.faults = list(faults)
        self.accept_seed = accept_seed
        self.replays = dict(replays or {})
        self.requests: list[dict[str, Any]] = []  # the JSON bodies, in arrival order
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- one request ------------------------------------------------------------------

    def respond(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            number = len(self.requests)
            self.requests.append(body)
            self.headers.append(headers)
        if not self.accept_seed and "seed" in body:
            message = "Unrecognized request argument supplied: seed"
            return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "seed"}}
        for tool in body.get("tools") or []:
            function = tool.get("function", {})
            errors = strict_errors(function.get("parameters", {})) if function.get("strict") else []
            if errors:
                message = f"Invalid schema for function '{function.get('name')}': {errors[0]}"
                return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "tools"}}
        fault = FAULTS[self.faults[number]] if number < len(self.faults) else {}
        if "status" in fault:
            kind = "invalid_request_error" if fault["status"] < 500 else "server_error"
            error = {"message": f"injected {kind}", "type": kind, "code": None}
            return fault["status"], {"error": error}
        if "sleep" in fault:
            time.sleep(fault["sleep"])
            fault = {}
        if "tool_calls" in fault:
            reply: str | list[tuple[str, Any]] = fault["tool_calls"]
        elif "content" in fault:
            reply = fault["content"]
        elif self.policy == "replay":
            try:
                reply = replay(self.replays, body)
            except LookupError as err:
                return 400, {"error": {"message": str(err), "type": "invalid_request_error"}}
        else:
            reply = play(self.policy, body.get("messages", []), _forced_tool(body))
        return 200, completion(number, body.get("model", ""), reply, body)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
            status, payload = fake.respond(body, {k.lower(): v for k, v in self.headers.items()})
            if status == 200 and body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self._send(status, payload, stream_events(payload, usage))
            self._send(status, payload)

        def _send(self, status: int, payload: dict[str, Any], events: bytes | None = None) -> None:
            data = json.dumps(payload).encode() if events is None else events
            try:
                self.send_response(status)
                kind = "application/json" if events is None else "text/event-stream"
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                if status >= 500:
                    self.send_header("retry-after-ms", "20")  # the client's retries stay quick
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _forced_tool(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name")
    return None


def completion(
    number: int, model: str, reply: str | list[tuple[str, Any]], body: dict[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion`` object: text, or tool calls with JSON-string arguments."""
    if isinstance(reply, str):
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        finish = "stop"
    else:
        strict = {
            t["function"]["name"]: t["function"]["parameters"]
            for t in body.get("tools") or []
            if t.get("function", {}).get("strict")
        }
        reply = [
            (name, as_strict_model_sends(arguments, strict[name]) if name in strict else arguments)
            for name, arguments in reply
        ]
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{number}_{k}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                    },
                }
                for k, (name, arguments) in enumerate(reply)
            ],
        }
        finish = "tool_calls"
    prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
    completion_tokens = len(json.dumps(message)) // 4
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def stream_events(completion: dict[str, Any], include_usage: bool) -> bytes:
    """A ``chat.completion`` as the streamed API sends it: the message as one delta (tool calls
    indexed), a chunk with the finish reason, the usage when asked for, then ``[DONE]``."""
    head = {k: v for k, v in completion.items() if k not in ("choices", "usage", "object")}
    head["object"] = "chat.completion.chunk"
    choice = completion["choices"][0]
    delta = dict(choice["message"])
    if delta.get("tool_calls"):
        delta["tool_calls"] = [{"index": k, **call} for k, call in enumerate(delta["tool_calls"])]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
    ]
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks) + b"data: [DONE]\n\n"


# --- the policies --------------------------------------------------------------------------


def replay(replays: dict[str, list[Call]], body: dict[str, Any]) -> str | list[tuple[str, Any]]:
    """The next recorded call of the conversation's script (with every property of the tool's
    schema, null where the call leaves one out, as a model following it sends), or a closing
    text once the script is played."""
    messages = body.get("messages", [])
    first = next((m for m in messages if m.get("role") == "user"), {})
    text = first.get("content") if isinstance(first.get("content"), str) else json.dumps(first.get("content"))
    scripts = [calls for marker, calls in replays.items() if marker in (text or "")]
    if len(scripts) != 1:
        raise LookupError(f"{len(scripts)} replay scripts match this conversation; expected one")
    played = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
    if played >= len(scripts[0]):
        return "Report submitted."
    name, arguments = scripts[0][played]
    schemas = {t["function"]["name"]: t["function"].get("parameters", {}) for t in body.get("tools") or []}
    if name not in schemas:
        raise LookupError(f"the request offers no tool {name!r}")
    return [(name, as_strict_model_sends(arguments, schemas[name]))]


def history(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(tool name, arguments, parsed result) of every answered tool call, in order."""
    results = {m.get("tool_call_id"): m.get("content") for m in messages if m.get("role") == "tool"}
    out = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            if call["id"] not in results:
                continue
            try:
                arguments = json.loads(call["function"]["arguments"] or "{}")
                result = json.loads(results[call["id"]])
            except ValueError:
                continue
            if isinstance(arguments, dict) and isinstance(result, dict):
                out.append((call["function"]["name"], arguments, result))
    return out


def play(policy: str, messages: list[dict[str, Any]], forced: str | None) -> str | list[tuple[str, Any]]:
    if policy == "text":
        return "I would rather not use tools."
    if policy == "loop":
        return [("submit_report", {"classifications": []})] if forced else [("list_dates", {})]
    return solve(messages, forced)


CALLS_PER_TURN = 4  # tool calls per reply, made in parallel


def reset_arguments(briefing: str) -> tuple[dict[str, Any], int]:
    """The reset arguments and step budget of the episode a briefing describes."""
    facts = json.loads(briefing.split("Episode: ", 1)[1].split("\n\n", 1)[0])
    config, budget = facts["config"], int(facts["budget"]["max_steps"])
    if config.get("task_id"):
        return {"task_id": config["task_id"]}, budget
    keys = ("seed", "scenario_family", "difficulty", "end_date")
    arguments = {k: config[k] for k in keys if config.get(k) is not None}
    if config.get("injections"):
        return {**arguments, "anomalies": config["injections"]}, budget
    size = "anomaly_density" if config.get("anomaly_density") else "anomaly_count"
    return {**arguments, size: config[size]}, budget


@lru_cache(maxsize=64)
def solver_script(reset: str, max_steps: int) -> tuple[tuple[str, str], ...]:
    """The reference solver's tool calls for an episode (reset arguments as JSON), in order:
    (tool name, JSON arguments), the report last."""
    calls, _ = solver_play(json.loads(reset), max_steps)
    # the analysis calls' arguments sorted, as ``solve`` compares them; the report's as sent
    return tuple(
        (name, json.dumps(arguments)) if name == "submit_report" else _key((name, arguments))
        for name, arguments in calls[1:]
    )


def solve(messages: list[dict[str, Any]], forced: str | None) -> str | list[tuple[str, Any]]:
    """The reference solver's calls, a few a reply, that the conversation has not answered yet."""
    done = history(messages)
    if any(name == "submit_report" and "score" in result for name, _, result in done):
        return "Report submitted."
    briefing = next(m["content"] for m in messages if m.get("role") == "user")
    reset, budget = reset_arguments(briefing)
    script = solver_script(json.dumps(reset, sort_keys=True), budget)
    answered = [_key((name, args)) for name, args, result in done if "result" in result]
    upcoming = list(script)
    for call in answered:
        if call in upcoming:
            upcoming.remove(call)
    report = next(json.loads(args) for name, args in script if name == "submit_report")
    analysis = [(name, json.loads(args)) for name, args in upcoming if name != "submit_report"]
    if forced == "submit_report" or not analysis:
        return [("submit_report", report)]
    return analysis[:CALLS_PER_TURN]


def _key(call: tuple[str, dict[str, Any]]) -> tuple[str, str]:
    return call[0], json.dumps(call[1], sort_keys=True)
