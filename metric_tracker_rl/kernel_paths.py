"""Which code runs the generator's kernels (``kernels.py``): compiled by Numba, or the very
same functions run as plain Python.

By default episodes run the compiled kernels, compiled on first use after an install or an
upgrade (10 to 40 s by the machine, once) and loaded from Numba's cache by every later
process. A server cannot make a client wait for that: it calls ``serve_plain_until_compiled()`` as it
is made and ``prepare_in_background()`` once it answers. Until the compiled kernels are loaded,
episodes run the kernel functions as plain Python (each dispatcher's ``py_func``, bound to one
another instead of to the compiled dispatchers), which give the same bytes at some 0.1 to
0.3 s a reset. A compile runs in a separate process, so that it takes nothing from the
interpreter that answers clients; the server loads its result from Numba's cache. The log
says which path serves the first episode and when the compiled kernels take over, once each.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from metric_tracker_rl.notices import notice

KERNELS_MODULE = "metric_tracker_rl.kernels"
PLAIN_NOTICE = (
    "episodes run the generator's kernels as plain Python (the same code, the same "
    "results, some 0.1 to 0.3 s a reset) until the compiled kernels are ready"
)
COMPILED_NOTICE = "the compiled kernels are ready ({how} in {seconds:.1f} s); episodes run them from now on"
# What the child process runs to compile the kernels into Numba's cache.
_COMPILE_IN_CHILD = "from metric_tracker_rl.kernel_paths import exercise_compiled; exercise_compiled()"

_lock = threading.Lock()
_ready = threading.Event()  # the compiled kernels are loaded
_settled = threading.Event()  # the plain path is imported and no compile runs in this process
_background = False  # a server's mode: plain Python until _ready
_started = False
_plain: types.SimpleNamespace | None = None
_plain_told = False
_local = threading.local()  # .compiled: this thread runs the compiled kernels regardless
_children: list[subprocess.Popen[bytes]] = []


def current() -> Any:
    """The kernels to call now: the compiled module, or, while a server is preparing it, the
    same functions as plain Python."""
    if not _background or _ready.is_set() or getattr(_local, "compiled", False):
        from metric_tracker_rl import kernels  # Numba loads on first use, not on import

        return kernels
    _tell_plain()
    return plain_python()


def plain_python() -> types.SimpleNamespace:
    """``kernels.py`` with every compiled function replaced by its Python source function, the
    functions calling one another as plain Python. Called from outside, each runs under
    NumPy's quiet error state, as Numba's ``error_model="numpy"`` runs it (no warnings, the
    same wrapped integers and infinities)."""
    global _plain
    with _lock:
        if _plain is None:
            from numba.core.dispatcher import Dispatcher

            from metric_tracker_rl import kernels

            namespace = dict(vars(kernels))
            for name, value in vars(kernels).items():
                if isinstance(value, Dispatcher):
                    source = value.py_func
                    function = types.FunctionType(
                        source.__code__, namespace, source.__name__, source.__defaults__, source.__closure__
                    )
                    function.__kwdefaults__ = source.__kwdefaults__
                    function.__doc__ = source.__doc__
                    namespace[name] = function
            _plain = types.SimpleNamespace(
                **{
                    name: _quiet(value) if isinstance(getattr(kernels, name), Dispatcher) else value
                    for name, value in namespace.items()
                    if not name.startswith("__")
                }
            )
        return _plain


def _quiet(function: Any) -> Any:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return run


def serve_plain_until_compiled() -> None:
    """A server's mode: episodes run the plain-Python kernels until ``prepare_in_background``
    has loaded the compiled ones, and never wait for a compile."""
    global _background
    _background = True


def prepare_in_background() -> None:
    """Load the compiled kernels in a background thread, compiling them first in a separate
    process when Numba's cache does not hold them (and take up the server's mode). Once per
    process."""
    global _started
    serve_plain_until_compiled()
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_prepare, name="metric-tracker-kernels", daemon=True).start()


def settled() -> bool:
    """Whether the background preparation is past its busy start: the plain-Python kernels are
    imported, and the compiled ones are loaded or compile in a separate process."""
    return _settled.is_set()


class _WouldCompile(Exception):
    """Numba was about to compile a kernel in this thread: the cache does not hold it."""


def _prepare() -> None:
    _local.compiled = True
    started = time.monotonic()
    try:
        plain_python()  # imports Numba and the kernels now, not in the first episode
        how = _load()
    except Exception as err:  # the server keeps serving on the plain-Python path
        _settled.set()
        notice(
            f"the compiled kernels could not be prepared ({err!r}); episodes keep running the kernels "
            "as plain Python"
        )
        return
    _ready.set()
    _settled.set()
    notice(COMPILED_NOTICE.format(how=how, seconds=time.monotonic() - started))


def _load() -> str:
    """Load every kernel from Numba's cache, compiling them first in a separate process when
    the cache does not hold them (or, if that fails or cannot be cached, here); how it went."""
    with contextlib.suppress(_WouldCompile):
        _exercise_from_cache()
        return "loaded from Numba's cache"
    if _compile_in_child():
        with contextlib.suppress(_WouldCompile):
            _exercise_from_cache()
            return "compiled in a separate process, then loaded"
    exercise_compiled()
    return "compiled in this process"


def exercise_compiled() -> None:
    """Run every kernel an episode calls, compiled: one generated episode (the placement
    kernel) and one with an explicit injection (clean drivers, statistics, verification)."""
    from metric_tracker_rl.config import resolve_config
    from metric_tracker_rl.generator import generate, warm_up

    _local.compiled = True
    warm_up()
    injection = {
        "method_name": "metric_stddev_shift",
        "metric_name": "orders_placed",
        "date": "2026-03-20",
        "stddev_factor": 10.0,
        "direction": "down",
    }
    generate(resolve_config(seed=7, anomalies=[injection]))


def _exercise_from_cache() -> None:
    """``exercise_compiled``, loading the kernels from Numba's cache; ``_WouldCompile`` when
    one would have to be compiled (Numba announces a compile only after its cache missed)."""
    from numba.core import event

    thread = threading.get_ident()

    class RefuseCompile(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            if threading.get_ident() == thread and ev.data["dispatcher"].py_func.__module__ == KERNELS_MODULE:
                raise _WouldCompile

        def on_end(self, ev: event.Event) -> None:
            pass

    with event.install_listener("numba:compile", RefuseCompile()):
        exercise_compiled()


def _compile_in_child() -> bool:
    """Compile the kernels into Numba's cache in a separate process (stopped if this one
    exits first); whether it succeeded."""
    if not sys.executable:
        return False
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    process = subprocess.Popen(
        [sys.executable, "-c", _COMPILE_IN_CHILD],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # a stdio MCP server's standard output is its protocol
        stderr=subprocess.PIPE,
    )
    _children.append(process)
    _settled.set()  # the compile is the child's: this process is free again
    _, errors = process.communicate()
    if process.returncode != 0:
        last = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        notice(f"the kernels' compile process failed ({last[0]})")
    return process.returncode == 0


@atexit.register
def _stop_children() -> None:
    for process in _children:
        if process.poll() is None:
            process.kill()


def _tell_plain() -> None:
    global _plain_told
    if not _plain_told:
        _plain_told = True
        notice(PLAIN_NOTICE)
