"""The standard MCP server over streamable HTTP at ``/mcp``, beside OpenEnv's dialect.

OpenEnv 0.10 answers ``POST /mcp`` in its own JSON-RPC dialect (``tools/list``,
``tools/call``, ``openenv/session/*``; no handshake). The standard protocol takes every
request that carries an ``Mcp-Session-Id`` header, every ``GET`` and ``DELETE`` (a
session's stream and its end) and the ``initialize`` request that opens a session; any
other request reaches OpenEnv unchanged.

Sessions live in the server's records (``sessions.McpSessions``), not in a process: each
request is answered by a transport and a server session of its own (the SDK's stateless way,
under the session's id), so a worker or replica that shares the records answers any request
of any session, and a session survives the process that opened it. At most ``max_sessions``
are open at once (a further ``initialize`` gets HTTP 503), and a session without a request
for ``idle_timeout`` seconds is closed (its id then gets 404). The server sends nothing
unprompted, so it offers no GET stream (405, which the protocol allows). The episodes the
sessions start are kept by handle (``metric_tracker_rl.episodes``) and outlive them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from metric_tracker_rl.asgi import buffer_body, send_response
from metric_tracker_rl.records import Records

MCP_PATH = "/mcp"
SESSION_HEADER = b"mcp-session-id"
__all__ = ["McpDispatch", "StandardMcp", "install"]


class StandardMcp:
    """``server.build_server()`` over streamable HTTP, its sessions in ``records``; it runs
    while ``running()`` is entered (the app's lifespan)."""

    def __init__(
        self,
        max_sessions: int,
        idle_timeout: float,
        new_environment: Callable[[], Any] | None = None,
        records: Records | None = None,
    ) -> None:
        from metric_tracker_rl.mcp.sessions import McpSessions

        self.sessions = McpSessions(records or Records(), max_sessions, idle_timeout)
        self.new_environment = new_environment
        self._server: Any = None
        self._tasks: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        import anyio

        from metric_tracker_rl.mcp.server import build_server

        self._server = build_server(self.new_environment, self.sessions)
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._tasks is None:
            await _json_error(
                send, 503, "the MCP session manager is not running (serve the app with its lifespan)"
            )
            return
        session_id = dict(scope["headers"]).get(SESSION_HEADER)
        method = scope["method"]
        if session_id is None:
            if method != "POST":
                await _json_error(send, 400, "Bad Request: Missing session ID", code=-32600)
                return
            await self._open(scope, receive, send)
            return
        session_id = session_id.decode("latin-1")
        if not self.sessions.use(session_id):
            await _json_error(send, 404, "Session not found", code=-32600)
        elif method == "DELETE":
            self.sessions.close(session_id)
            await send_response(send, 200, b"", [])
        elif method == "GET":  # nothing is ever sent unprompted: no stream to offer
            await send_response(send, 405, b"", [(b"allow", b"POST, DELETE")])
        else:
            await self._answer(session_id, scope, receive, send)

    async def _open(self, scope: dict, receive: Any, send: Any) -> None:
        """An ``initialize`` request: a new session, kept if the request succeeds."""
        session_id = self.sessions.open()
        if session_id is None:
            message = f"Too many open sessions (at most {self.sessions.max_sessions}); try again later"
            await _json_error(send, 503, message)
            return
        status = await self._answer(session_id, scope, receive, send)
        if status is None or status >= 400:
            self.sessions.close(session_id)

    async def _answer(self, session_id: str, scope: dict, receive: Any, send: Any) -> int | None:
        """Answer one request with a transport and a server session of its own; the status sent."""
        import anyio
        from mcp.server.streamable_http import StreamableHTTPServerTransport

        transport = StreamableHTTPServerTransport(mcp_session_id=session_id, is_json_response_enabled=True)
        server = self._server

        async def run(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            async with transport.connect() as (read_stream, write_stream):
                task_status.started()
                await server.run(
                    read_stream, write_stream, server.create_initialization_options(), stateless=True
                )

        status: int | None = None

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._tasks.start(run)
            await transport.handle_request(scope, receive, watch)
        finally:
            with anyio.CancelScope(shield=True):
                await transport.terminate()
        return status


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


async def _json_error(send: Any, status: int, message: str, code: int = -32603) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}).encode()
    await send_response(send, status, body, [(b"content-type", b"application/json")])


def install(
    app: Any,
    *,
    max_sessions: int,
    idle_timeout: float,
    new_environment: Callable[[], Any] | None = None,
    records: Records | None = None,
) -> StandardMcp:
    """Serve the standard protocol on ``app``'s ``/mcp`` (a FastAPI app from ``create_app``);
    ``new_environment`` makes each request's environment (the default one by default), and
    ``records`` keeps the sessions (this process's memory by default)."""
    standard = StandardMcp(max_sessions, idle_timeout, new_environment, records)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with standard.running(), inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan
    app.add_middleware(McpDispatch, standard=standard)
    return standard
