"""The OpenEnv server app: OpenEnv's ``create_fastapi_app`` around the environment, the web
debugger at /web (built after the server answers), plus guards.

``server/app.py`` (OpenEnv's entry point) and ``metric-tracker serve`` both build the app
here, so there is one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from openenv.core.env_server.http_server import create_fastapi_app
from starlette.exceptions import HTTPException as StarletteHTTPException

from metric_tracker_rl import kernel_paths
from metric_tracker_rl.asgi import BodyTooLarge, buffer_body, send_response
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeLimitError, EpisodeStore
from metric_tracker_rl.limits import (
    IDLE_TIMEOUT_ENV_VAR,
    MAX_SESSIONS_ENV_VAR,
    MAX_STEPS_ENV_VAR,
    idle_timeout_from_env,
    max_sessions_from_env,
    max_steps_from_env,
)
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)
from metric_tracker_rl.records import RECORDS_ENV_VAR, Records, records_path_from_env

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 1_000_000  # larger request bodies get 413
OPEN_FILES_WANTED = 65_536  # the open-files limit asked for when the hard limit is unlimited
START_AFTER_S = 0.5  # background work starts at the first request, or this long after start-up
KERNELS_FIRST_S = 10.0  # at most this long, the debugger's build waits for the kernels' import
# Whether /web serves the debugger: OpenEnv's variable, which `metric-tracker serve` sets.
WEB_ENV_VAR = "ENABLE_WEB_INTERFACE"


class BodySizeLimit:
    """ASGI middleware: refuse HTTP request bodies over ``limit`` bytes with 413."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server stops at Content-Length
            return
        # No Content-Length (chunked): read the body up to the limit first, then replay it.
        try:
            _, replayed = await buffer_body(receive, self.limit)
        except BodyTooLarge:
            await _too_large(send, self.limit)
            return
        await self.app(scope, replayed, send)


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send_response(send, 413, body, [(b"content-type", b"application/json")])


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot carry) by their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def web_enabled() -> bool:
    """Whether the web debugger is mounted, read as OpenEnv reads its variable."""
    return os.environ.get(WEB_ENV_VAR, "false").strip().lower() in ("true", "1", "yes")


def build_app(
    max_sessions: int | None = None,
    max_steps: int | None = None,
    mcp_idle_timeout: float | None = None,
    records_path: str | None = None,
) -> FastAPI:
    """The FastAPI app: OpenEnv's HTTP + WebSocket + MCP routes for this environment, and the
    standard MCP protocol on the same /mcp (same session limit; idle MCP sessions close).
    Every environment it makes reaches one store of kept episodes (same limits), so a
    handle works over every route.

    ``max_steps`` replaces every episode's default step budget (the operator's choice;
    clients cannot change it). ``records_path``: the file of kept episodes and MCP sessions
    that several workers or replicas share (``records``; by default this process's memory).
    Each setting left at None is read from its environment variable, which is how the
    workers of ``run(workers=N)`` get them."""
    from metric_tracker_rl.mcp import http as mcp_http

    max_sessions = max_sessions or max_sessions_from_env()
    idle_timeout = mcp_idle_timeout or idle_timeout_from_env()
    max_steps = max_steps or max_steps_from_env()
    plain = (
        partial(MetricTrackerRlEnvironment, max_steps=max_steps) if max_steps else MetricTrackerRlEnvironment
    )
    records = Records(records_path or records_path_from_env())
    episodes = EpisodeStore(plain, max_episodes=max_sessions, idle_timeout=idle_timeout, records=records)
    environment = partial(plain, episodes=episodes)
    # OpenEnv's app without its web interface: the debugger alone is mounted at /web below
    # (instead of OpenEnv's generic playground), built after the server answers.
    app = create_fastapi_app(
        environment,
        MetricTrackerRlAction,
        MetricTrackerRlObservation,
        max_concurrent_envs=max_sessions,
        env_name="metric_tracker_rl",
        state_cls=MetricTrackerRlState,
    )
    debugger = None
    if web_enabled():
        from metric_tracker_rl.web import deferred

        debugger = deferred.install(app)

    @app.exception_handler(ConfigError)
    async def _config_error(request: Request, err: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(err)})

    @app.exception_handler(EpisodeLimitError)
    async def _no_room(request: Request, err: EpisodeLimitError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(err)})

    # Validation errors echo the input; NaN/Infinity there must not turn a 422 into a 500.
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(err.errors()))})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = _json_safe(jsonable_encoder(err.detail))
        return JSONResponse(status_code=err.status_code, content={"detail": detail}, headers=err.headers)

    mcp_http.install(
        app,
        max_sessions=max_sessions,
        idle_timeout=idle_timeout,
        new_environment=environment,
        records=records,
    )
    # Episodes never wait for the generator's compiled kernels: plain Python until they are
    # loaded (or, after an install, compiled in a separate process) once the server answers.
    kernel_paths.serve_plain_until_compiled()
    work = StartupWork(debugger)
    app.add_middleware(StartOnFirstRequest, work=work)
    _run_after_start_up(app, work)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)  # outermost: bodies are capped first
    return app


class StartupWork:
    """What a server prepares once it answers, so that nothing delays its first answers: the
    compiled kernels, then the web debugger (when there is one)."""

    def __init__(self, debugger: Any | None) -> None:
        self.debugger = debugger
        self.started = False

    def start(self) -> None:
        """Start, from the event loop; once."""
        if self.started:
            return
        self.started = True
        kernel_paths.prepare_in_background()
        if self.debugger is not None:
            asyncio.get_running_loop().create_task(self._debugger_once_kernels_settle())

    async def _debugger_once_kernels_settle(self) -> None:
        # The first episodes need the kernels' import; the debugger's build can come after it.
        deadline = time.monotonic() + KERNELS_FIRST_S
        while not kernel_paths.settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.debugger.start()

    async def stop(self) -> None:
        if self.debugger is not None:
            await self.debugger.stop()


class StartOnFirstRequest:
    """ASGI middleware: the first request (a client polling /health, say) starts the work."""

    def __init__(self, app: Any, work: StartupWork) -> None:
        self.app = app
        self.work = work

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if not self.work.started and scope["type"] in ("http", "websocket"):
            self.work.start()
        await self.app(scope, receive, send)


def _run_after_start_up(app: FastAPI, work: StartupWork) -> None:
    """Start the work shortly after start-up if no request came first; stop it at shutdown."""
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with outer(application) as state:
            asyncio.get_running_loop().call_later(START_AFTER_S, work.start)
            try:
                yield state
            finally:
                await work.stop()

    app.router.lifespan_context = lifespan


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_sessions: int | None = None,
    max_steps: int | None = None,
    mcp_idle_timeout: float | None = None,
    workers: int = 1,
    records_path: str | None = None,
) -> None:
    """Serve the app with uvicorn (blocking). A port that cannot be listened on is a
    ``ServeError``, raised before anything is built.

    ``workers`` > 1: that many worker processes answer on the one socket (uvicorn's
    supervisor restarts one that dies), each with the limits given; they share one records
    file (``records_path``, or one made for the run), so any of them answers any MCP session
    or kept episode. A WebSocket session stays on the worker that accepted it."""
    import uvicorn

    sock = listening_socket(host, port)
    raise_open_files_limit()
    port = sock.getsockname()[1]  # the port the system chose, for --port 0
    where = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if workers > 1:
        _run_workers(sock, where, workers, max_sessions, max_steps, mcp_idle_timeout, records_path)
        return
    app = build_app(max_sessions, max_steps, mcp_idle_timeout, records_path)

    class Server(uvicorn.Server):
        """uvicorn's server on the socket bound above; it says where it listens, as uvicorn does
        for a socket it binds itself."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                logging.getLogger("uvicorn.error").info("Uvicorn running on %s (Press CTRL+C to quit)", where)

    Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run(sockets=[sock])


def _run_workers(
    sock: socket.socket,
    where: str,
    workers: int,
    max_sessions: int | None,
    max_steps: int | None,
    mcp_idle_timeout: float | None,
    records_path: str | None,
) -> None:
    """uvicorn's supervisor over ``workers`` processes; each builds the app from the settings
    passed in its environment (``build_app`` as a factory)."""
    import tempfile

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = {
        MAX_SESSIONS_ENV_VAR: max_sessions,
        MAX_STEPS_ENV_VAR: max_steps,
        IDLE_TIMEOUT_ENV_VAR: mcp_idle_timeout,
        RECORDS_ENV_VAR: records_path,
    }
    os.environ.update({name: str(value) for name, value in settings.items() if value is not None})
    with tempfile.TemporaryDirectory(prefix="metric-tracker-records-") as folder:
        os.environ.setdefault(RECORDS_ENV_VAR, os.path.join(folder, "records.sqlite"))
        config = uvicorn.Config(
            f"{__name__}:build_app",
            factory=True,
            workers=workers,
            log_level="info",
            timeout_graceful_shutdown=5,
        )
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on %s with %d workers (Press CTRL+C to quit)", where, workers
        )
        Multiprocess(config, sockets=[sock]).run()


def raise_open_files_limit() -> None:
    """Let this process open as many files as the system allows it (the soft limit up to the
    hard one): every WebSocket session holds a socket, and the usual soft limit of 1,024
    would cap the sessions below what a worker holds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class ServeError(OSError):
    """The server cannot listen where it was asked to: one line says why."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds one), or a ``ServeError`` naming the
    problem: a port out of range, a port in use, an unknown host."""
    if not 0 <= port <= 65535:
        raise ServeError(f"port {port} is not a TCP port (0 to 65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise ServeError(f"cannot listen on {host!r}: no such host or address ({err.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the port is in use (another server?); choose another port",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "this machine has no such address",
        }.get(err.errno or 0, err.strerror or str(err))
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock
