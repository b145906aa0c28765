"""The web debugger at ``/web``, built once the server answers.

Building it (importing Gradio, laying out the page) takes seconds, which a server must not
spend before it answers ``/health``. ``install`` mounts a stand-in at ``/web`` whose build
runs in a background thread once started (``start()``: the server does it after it answers;
otherwise the first visit does); a visit before the build is done waits for it. The log says
when the build starts and when the debugger is ready.

The page needs nothing from outside the server: the theme is OpenEnv's with the system's
fonts instead of Google Fonts, and ``/favicon.ico`` is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from metric_tracker_rl.notices import notice
from metric_tracker_rl.web import DEBUGGER_TITLE

PATH = "/web"
FAVICON = Path(__file__).with_name("favicon.ico")
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
_BUILDING = threading.Lock()


def offline_theme() -> Any:
    """OpenEnv's Gradio theme with system fonts: the page loads no font from the internet."""
    import gradio as gr
    from openenv.core.env_server.gradio_theme import OPENENV_GRADIO_THEME

    schema = OPENENV_GRADIO_THEME.to_dict()
    settings = schema["theme"]
    settings.update(
        font=", ".join(SYSTEM_FONTS),
        font_mono=", ".join(SYSTEM_MONO_FONTS),
        _font=[gr.themes.Font(name) for name in SYSTEM_FONTS],
        _font_mono=[gr.themes.Font(name) for name in SYSTEM_MONO_FONTS],
        _stylesheets=[],
        _font_css=[],
    )
    return gr.themes.Base.from_dict(schema)


def build_debugger_app(debug: bool = False) -> tuple[FastAPI, Any]:
    """The debugger's Gradio app (with the debug panel if ``debug``), mounted as OpenEnv mounts
    it, and the app whose lifespan starts it (Gradio's queue and startup events)."""
    import gradio as gr
    from openenv.core.env_server.gradio_theme import OPENENV_GRADIO_CSS

    from metric_tracker_rl.web.app import build_debugger

    with _BUILDING:  # Gradio lays out one Blocks at a time (its layout context is global)
        blocks = build_debugger(title=DEBUGGER_TITLE, debug=debug)
        theme = offline_theme()
        holder = gr.mount_gradio_app(FastAPI(), blocks, path=PATH, theme=theme, css=OPENENV_GRADIO_CSS)
    (mount,) = [route for route in holder.routes if getattr(route, "path", None) == PATH]
    return holder, mount.app


class DeferredDebugger:
    """ASGI app at ``/web``: the debugger once built; until then a request waits for it."""

    def __init__(self, build: Callable[[], tuple[FastAPI, Any]]) -> None:
        self._build = build
        self._app: Any = None
        self._error: BaseException | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start building (once), from the server's event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        if not self._ready.is_set():
            self._task.cancel()  # still building: the thread finishes on its own
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _run(self) -> None:
        started = time.monotonic()
        notice(f"building the web debugger at {PATH} in the background")
        try:
            holder, app = await _in_thread(self._build)
        except Exception as err:
            self._error = err
            self._ready.set()
            notice(f"the web debugger could not be built: {err!r}")
            return
        async with holder.router.lifespan_context(holder):
            self._app = app
            self._ready.set()
            seconds = time.monotonic() - started
            notice(f"the web debugger is ready at {PATH} (built in {seconds:.1f} s)")
            await self._stopping.wait()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            self.start()
            await self._ready.wait()
        if self._app is None:
            detail = f"the web debugger could not be built: {self._error}"
            await JSONResponse({"detail": detail}, status_code=503)(scope, receive, send)
            return
        await self._app(scope, receive, send)


async def _in_thread(function: Callable[[], Any]) -> Any:
    """``function()`` in a daemon thread of its own: a server stopped mid-build need not wait."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        result, error = None, None
        try:
            result = function()
        except BaseException as err:  # handed to the awaiting coroutine
            error = err
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=run, name="metric-tracker-web-build", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def install(app: FastAPI, build: Callable[[], tuple[FastAPI, Any]] | None = None) -> DeferredDebugger:
    """Mount the debugger at ``/web`` (the root redirects there), to be built in the background
    (by ``build``, default ``build_debugger_app``); serve ``/favicon.ico``. The debug panel is
    there if the operator's variable is on now, as the app is made."""
    from metric_tracker_rl.environment import debug_enabled_from_env

    debugger = DeferredDebugger(build or partial(build_debugger_app, debug_enabled_from_env()))

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse(url=f"{PATH}/")

    @app.get(PATH, include_in_schema=False)
    async def _web_no_slash() -> RedirectResponse:
        return RedirectResponse(url=f"{PATH}/")

    @app.get("/favicon.ico", include_in_schema=False)
    async def _favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/x-icon")

    app.mount(PATH, debugger)
    return debugger
