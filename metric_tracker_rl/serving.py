"""The OpenEnv server app: ``create_app`` around the environment, plus guards.

``server/app.py`` (OpenEnv's entry point) and ``metric-tracker serve`` both build the app
here, so there is one server.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from openenv.core.env_server.http_server import create_app

from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import MetricTrackerRlEnvironment
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 256
MAX_SESSIONS_ENV_VAR = "METRIC_TRACKER_MAX_SESSIONS"
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
        received = 0
        response_started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


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


def max_sessions_from_env() -> int:
    raw = os.environ.get(MAX_SESSIONS_ENV_VAR)
    if raw is None:
        return DEFAULT_MAX_SESSIONS
    value = int(raw)
    if value < 1:
        raise ValueError(f"{MAX_SESSIONS_ENV_VAR} must be a positive integer, got {raw!r}")
    return value


def build_app(max_sessions: int | None = None) -> FastAPI:
    """The FastAPI app: OpenEnv's HTTP + WebSocket + MCP routes for this environment."""
    app = create_app(
        MetricTrackerRlEnvironment,
        MetricTrackerRlAction,
        MetricTrackerRlObservation,
        env_name="metric_tracker_rl",
        max_concurrent_envs=max_sessions or max_sessions_from_env(),
        state_cls=MetricTrackerRlState,
    )

    @app.exception_handler(ConfigError)
    async def _config_error(request: Request, err: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(err)})

    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    return app


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, max_sessions: int | None = None) -> None:
    """Serve the app with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(build_app(max_sessions), host=host, port=port, log_level="info")
