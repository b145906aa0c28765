"""The OpenEnv server app: ``create_app`` around the environment, plus guards.

``server/app.py`` (OpenEnv's entry point) and ``metric-tracker serve`` both build the app
here, so there is one server.
"""

from __future__ import annotations

import math
import threading
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from openenv.core.env_server.http_server import create_app
from starlette.exceptions import HTTPException as StarletteHTTPException

from metric_tracker_rl.asgi import BodyTooLarge, buffer_body
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.episodes import EpisodeLimitError, EpisodeStore
from metric_tracker_rl.generator import warm_up
from metric_tracker_rl.limits import idle_timeout_from_env, max_sessions_from_env
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)
from metric_tracker_rl.web import DEBUGGER_TITLE, build_debugger

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 1_000_000  # larger request bodies get 413


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
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot carry) by their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def build_app(
    max_sessions: int | None = None, max_steps: int | None = None, mcp_idle_timeout: float | None = None
) -> FastAPI:
    """The FastAPI app: OpenEnv's HTTP + WebSocket + MCP routes for this environment, and the
    standard MCP protocol on the same /mcp (same session limit; idle MCP sessions close).
    Every environment it makes reaches one store of kept episodes (same limits), so a
    handle works over every route.

    ``max_steps`` replaces every episode's default step budget (the operator's choice;
    clients cannot change it)."""
    from metric_tracker_rl.mcp import http as mcp_http

    max_sessions = max_sessions or max_sessions_from_env()
    idle_timeout = mcp_idle_timeout or idle_timeout_from_env()
    plain = (
        partial(MetricTrackerRlEnvironment, max_steps=max_steps) if max_steps else MetricTrackerRlEnvironment
    )
    episodes = EpisodeStore(plain, max_episodes=max_sessions, idle_timeout=idle_timeout)
    environment = partial(plain, episodes=episodes)
    app = create_app(
        environment,
        MetricTrackerRlAction,
        MetricTrackerRlObservation,
        env_name="metric_tracker_rl",
        max_concurrent_envs=max_sessions,
        state_cls=MetricTrackerRlState,
        # Mounted at /web only when ENABLE_WEB_INTERFACE is set (`metric-tracker serve` sets it):
        # the debugger alone, instead of OpenEnv's generic playground.
        gradio_builder=build_debugger,
        show_default_tab=False,
        title_override=DEBUGGER_TITLE,
    )

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
    )
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)  # outermost: bodies are capped first
    # The generator's compiled kernels load (or, on a first run, compile) while the server
    # starts answering, not in the first reset.
    threading.Thread(target=warm_up, name="metric-tracker-warm-up", daemon=True).start()
    return app


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_sessions: int | None = None,
    max_steps: int | None = None,
    mcp_idle_timeout: float | None = None,
) -> None:
    """Serve the app with uvicorn (blocking)."""
    import uvicorn

    app = build_app(max_sessions, max_steps, mcp_idle_timeout)
    uvicorn.run(app, host=host, port=port, log_level="info")
