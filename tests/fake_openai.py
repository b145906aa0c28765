"""A scripted OpenAI-compatible chat-completions server for the LLM agent's tests.

``POST /v1/chat/completions`` answers in the real response format (``chat.completion``,
``tool_calls`` with JSON-string arguments, ``finish_reason``, ``usage``). The "model" is a
policy that reads the conversation like a model would: the solving policy calls
task_overview, scans get_median_filter_rows (raising threshold_multiplier while the result
comes back truncated), keeps the rows beyond the public thresholds, confirms each with its
detection method (parallel tool calls) and submits the confirmed assessments. Like the
real API, a request whose strict tools break strict mode's rules gets 400, and arguments
to a strict tool come with every property (null where the policy leaves one out).
``faults`` replace the first replies with malformed ones (bad JSON, unknown tool, text
only, HTTP 500, ...). Every request body is recorded. Loopback only, a free port, a daemon
thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai_strict import as_strict_model_sends, strict_errors

from metric_tracker_rl.agents.solver import beyond_public_threshold
from metric_tracker_rl.rows import ROW_FIELDS

SCAN_METHOD = "get_median_filter_rows"
SCAN_MULTIPLIERS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0)  # raised while the scan comes back truncated
POLICIES = ("solve", "text", "loop")

# One malformed reply each; the policy plays on afterwards.
FAULTS: dict[str, dict[str, Any]] = {
    "bad_json": {"tool_calls": [("task_overview", '{"oops": ')]},
    "not_object": {"tool_calls": [("task_overview", "[1, 2]")]},
    "unknown_tool": {"tool_calls": [("drop_database", "{}")]},
    "missing_args": {"tool_calls": [("compare_rate_to_median", "{}")]},
    "bad_submit": {"tool_calls": [("submit_report", '{"classifications": "everything"}')]},
    "no_tool_call": {"content": "The data looks fine to me."},
    "http_500": {"status": 500},
    "slow": {"sleep": 3.0},
}


class FakeOpenAI:
    """``with FakeOpenAI(policy="solve", faults=["bad_json"]) as fake: fake.base_url``.

    ``accept_seed=False`` answers 400 to requests that carry ``seed``, as some servers do.
    """

    def __init__(self, policy: str = "solve", faults: Sequence[str] = (), accept_seed: bool = True) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; expected some of {list(FAULTS)}")
        self.policy = policy
        self.faults = list(faults)
        self.accept_seed = accept_seed
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
            error = {"message": "injected server error", "type": "server_error", "code": None}
            return fault["status"], {"error": error}
        if "sleep" in fault:
            time.sleep(fault["sleep"])
            fault = {}
        if "tool_calls" in fault:
            reply: str | list[tuple[str, Any]] = fault["tool_calls"]
        elif "content" in fault:
            reply = fault["content"]
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
            self._send(status, payload)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
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


# --- the policies --------------------------------------------------------------------------


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


def _confirmation(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = row["detection_method"]
    if method in ("compare_rate_to_median", "compare_count_to_median"):
        return method, {"date": row["date"], "entity_name": row["entity_name"]}
    return method, {"date": row["date"]}


def solve(messages: list[dict[str, Any]], forced: str | None) -> str | list[tuple[str, Any]]:
    """Overview, scan, threshold filter, targeted confirmation, minimal submission."""
    done = history(messages)
    if any(name == "submit_report" and "score" in result for name, _, result in done):
        return "Report submitted."
    overview = next((r["result"] for n, _, r in done if n == "task_overview" and "result" in r), None)
    candidates: list[dict[str, Any]] | None = None
    if overview is not None:
        scans = [(args, r) for n, args, r in done if n == SCAN_METHOD and "result" in r]
        if scans and ("truncated" not in scans[-1][1] or scans[-1][0]["threshold_multiplier"] >= 3.0):
            thresholds = overview["thresholds"]
            rows = scans[-1][1]["result"]["rows"]
            candidates = [r for r in rows if beyond_public_threshold(r, thresholds[r["entity_name"]])]
    answers = {(n, json.dumps(a, sort_keys=True)): r.get("result") for n, a, r in done}
    confirmed, missing = [], []
    for row in candidates or []:
        method, arguments = _confirmation(row)
        key = (method, json.dumps(arguments, sort_keys=True))
        if key not in answers:
            if (method, arguments) not in missing:
                missing.append((method, arguments))
            continue
        result = answers[key] or {}
        for answer in result.get("assessments", [result]):
            if answer.get("entity_name") == row["entity_name"] and answer.get("anomaly_type") != "normal":
                confirmed.append({k: answer[k] for k in ROW_FIELDS})
    if forced == "submit_report" or (candidates is not None and not missing):
        return [("submit_report", {"classifications": confirmed})]
    if overview is None:
        return [("task_overview", {})]
    if candidates is None:
        used = [args["threshold_multiplier"] for n, args, r in done if n == SCAN_METHOD and "result" in r]
        multiplier = next((m for m in SCAN_MULTIPLIERS if not used or m > max(used)), SCAN_MULTIPLIERS[-1])
        return [(SCAN_METHOD, {"threshold_multiplier": multiplier})]
    return missing
