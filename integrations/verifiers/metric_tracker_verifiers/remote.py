"""Talking to a running metric_tracker_rl server.

Over HTTP: its health, the Task API's splits, a reset's first observation (a fresh
environment each time) and the tool catalog (``tools/list`` in OpenEnv's MCP dialect at
``POST /mcp``). Over OpenEnv's MCP WebSocket (``/mcp``): an ``EpisodeSession``, which owns
one environment on the server for as long as the connection is open, so an episode ends
with the process that played it, however that process ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import httpx

ENV_NAME = "metric_tracker_rl"  # the server's name, the prefix of its Task API routes
START_EPISODE = "start_episode"
SUBMIT_REPORT = "submit_report"
HTTP_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 5.0


class ServerError(RuntimeError):
    """The server is not there, or answered something other than what was asked for."""


def server_urls(base_url: str | Sequence[str]) -> list[str]:
    """One URL or a pool of them, without trailing slashes; at least one."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    cleaned = [url.strip().rstrip("/") for url in urls if isinstance(url, str) and url.strip()]
    if not cleaned or len(cleaned) != len(urls):
        raise ValueError(f"base_url must be a server URL or a list of them, got {base_url!r}")
    return cleaned


def _json(response: httpx.Response, what: str) -> Any:
    if response.status_code != 200:
        raise ServerError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


def _post(url: str, path: str, body: dict[str, Any], what: str) -> Any:
    try:
        response = httpx.post(f"{url}{path}", json=body, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as err:
        raise ServerError(f"{what}: no answer from {url} ({type(err).__name__}: {err})") from err
    return _json(response, f"{what} at {url}")


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=HEALTH_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def split_names(url: str) -> list[str]:
    """The splits the server's Task API publishes (``named``, ``eval``)."""
    try:
        response = httpx.get(f"{url}/{ENV_NAME}/splits", timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as err:
        raise ServerError(f"no metric_tracker_rl server answers at {url} ({type(err).__name__})") from err
    splits = _json(response, f"the splits at {url}")
    listed = splits if isinstance(splits, list) else splits.get("splits", [])
    return [split["name"] for split in listed if isinstance(split, dict)]


def split_tasks(url: str, split: str) -> list[dict[str, Any]]:
    """The tasks of a published split: ``{"id", "split", "index", "reset"}`` each."""
    return _post(url, f"/{ENV_NAME}/tasks", {"split": split}, f"the tasks of split {split!r}")["tasks"]


def first_observation(url: str, reset: dict[str, Any]) -> dict[str, Any]:
    """The observation a reset with these arguments starts from (the server's briefing)."""
    return _post(url, "/reset", reset, f"reset {reset}")["observation"]


def tool_catalog(url: str) -> list[dict[str, Any]]:
    """The server's tools: ``{"name", "description", "inputSchema"}`` each."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    reply = _post(url, "/mcp", request, "tools/list")
    if "result" not in reply:
        raise ServerError(f"tools/list at {url} failed: {reply.get('error')}")
    return reply["result"]["tools"]


class EpisodeSession:
    """One environment on the server, held by an open WebSocket: ``tools/list`` and
    ``tools/call`` as JSON-RPC requests, one at a time. A call answers the observation."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._socket: Any = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def open(self) -> EpisodeSession:
        import websockets

        address = "ws" + self.url.removeprefix("http") + "/mcp"
        try:
            self._socket = await websockets.connect(address, max_size=None, open_timeout=HTTP_TIMEOUT_S)
        except (OSError, websockets.WebSocketException, TimeoutError) as err:
            problem = f"{type(err).__name__}: {err}"
            raise ServerError(f"cannot open an episode session at {address} ({problem})") from err
        return self

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """The result of one JSON-RPC request; a JSON-RPC error or a lost connection raises."""
        import websockets

        async with self._lock:
            request_id = next(self._ids)
            message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            try:
                await self._socket.send(json.dumps(message))
                reply = json.loads(await self._socket.recv())
            except websockets.WebSocketException as err:
                raise ServerError(f"the episode session at {self.url} was lost ({err})") from err
        if "error" in reply:
            raise ServerError(f"{method} failed: {reply['error'].get('message')}")
        return reply["result"]

    async def list_tools(self) -> list[dict[str, Any]]:
        return (await self.request("tools/list", {}))["tools"]

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": arguments})
