"""The standard MCP server over streamable HTTP at ``/mcp``, beside OpenEnv's dialect.

OpenEnv 0.10 answers ``POST /mcp`` in its own JSON-RPC dialect (``tools/list``,
``tools/call``, ``openenv/session/*``; no handshake). The standard protocol takes every
request that carries an ``Mcp-Session-Id`` header, every ``GET`` and ``DELETE`` (a
session's stream and its end) and the ``initialize`` request that opens a session; any
other request reaches OpenEnv unchanged.

The SDK's session manager keeps the sessions: one environment each (the server's
lifespan), at most ``max_sessions`` at once (a further ``initialize`` gets HTTP 503), and a
session with no request in flight for ``idle_timeout`` seconds is closed (its id then gets
404). The episodes they start are kept by handle (``metric_tracker_rl.episodes``) and
outlive the session that started them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from metric_tracker_rl.asgi import buffer_body
from metric_tracker_rl.limits import DEFAULT_IDLE_TIMEOUT, IDLE_TIMEOUT_ENV_VAR, idle_timeout_from_env

MCP_PATH = "/mcp"
SESSION_HEADER = b"mcp-session-id"
__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "IDLE_TIMEOUT_ENV_VAR",
    "McpDispatch",
    "StandardMcp",
    "idle_timeout_from_env",
    "install",
]


class StandardMcp:
    """The SDK's streamable-HTTP session manager around ``server.build_server()``; it runs
    while ``running()`` is entered (the app's lifespan)."""

    def __init__(
        self, max_sessions: int, idle_timeout: float, new_environment: Callable[[], Any] | None = None
    ) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.new_environment = new_environment
        self._manager: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from metric_tracker_rl.mcp.server import build_server

        _quiet_session_ends()
        server = build_server() if self.new_environment is None else build_server(self.new_environment)
        manager = StreamableHTTPSessionManager(
            server,
            json_response=True,
            session_idle_timeout=self.idle_timeout,
            max_sessions=self.max_sessions,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._manager is None:
            await _json_error(
                send, 503, "the MCP session manager is not running (serve the app with its lifespan)"
            )
            return
        await self._manager.handle_request(scope, receive, send)


class _SessionEndNoise(logging.Filter):
    """Drops the SDK's traceback for a session's GET stream closed under its writer, which
    every client that ends its session (DELETE) causes: an expected end, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != "Error in standalone SSE writer" or not record.exc_info:
            return True
        import anyio

        return not isinstance(record.exc_info[1], anyio.ClosedResourceError | anyio.BrokenResourceError)


def _quiet_session_ends() -> None:
    logger = logging.getLogger("mcp.server.streamable_http")
    if not any(isinstance(known, _SessionEndNoise) for known in logger.filters):
        logger.addFilter(_SessionEndNoise())


class McpDispatch:
    """ASGI middleware: requests to ``/mcp`` in the standard protocol go to ``standard``."""

    def __init__(self, app: Any, standard: StandardMcp) -> None:
        self.app = app
        self.standard = standard

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != MCP_PATH:
            await self.app(scope, receive, send)
            return
        if any(name == SESSION_HEADER for name, _ in scope["headers"]) or scope["method"] in (
            "GET",
            "DELETE",
        ):
            await self.standard(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, replayed = await buffer_body(receive)
        target = self.standard if _opens_session(body) else self.app
        await target(scope, replayed, send)


def _opens_session(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


async def _json_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(
    app: Any, *, max_sessions: int, idle_timeout: float, new_environment: Callable[[], Any] | None = None
) -> StandardMcp:
    """Serve the standard protocol on ``app``'s ``/mcp`` (a FastAPI app from ``create_app``);
    ``new_environment`` makes each session's environment (the default one by default)."""
    standard = StandardMcp(max_sessions, idle_timeout, new_environment)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with standard.running(), inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan
    app.add_middleware(McpDispatch, standard=standard)
    return standard
