"""What a server keeps for its clients, and for how long: one place for the limits.

WebSocket sessions, MCP sessions and kept episodes (``episodes.EpisodeStore``) each have
at most ``max_sessions`` at once (counted apart): WebSocket sessions in each worker process,
MCP sessions and kept episodes in the records the workers share (``records``). MCP sessions
and kept episodes are dropped after ``idle_timeout`` seconds without a request. The operator
sets them when serving (``metric-tracker serve --max-sessions --mcp-idle-timeout
--max-steps``) or through the environment variables below, which is how each worker of
``serve --workers N`` reads them.
"""

from __future__ import annotations

import os

DEFAULT_MAX_SESSIONS = 1024  # per worker: an idle WebSocket session holds about 0.1 MB (bench/scale.py)
MAX_SESSIONS_ENV_VAR = "METRIC_TRACKER_MAX_SESSIONS"
DEFAULT_IDLE_TIMEOUT = 30 * 60.0  # seconds without a request before a session or kept episode is dropped
IDLE_TIMEOUT_ENV_VAR = "METRIC_TRACKER_MCP_IDLE_TIMEOUT"
MAX_STEPS_ENV_VAR = "METRIC_TRACKER_MAX_STEPS"  # the step budget of every episode (default: each episode's)


def max_sessions_from_env() -> int:
    value = _positive_int_from_env(MAX_SESSIONS_ENV_VAR)
    return DEFAULT_MAX_SESSIONS if value is None else value


def idle_timeout_from_env() -> float:
    raw = os.environ.get(IDLE_TIMEOUT_ENV_VAR)
    if raw is None:
        return DEFAULT_IDLE_TIMEOUT
    value = float(raw)
    if not 0 < value < float("inf"):
        raise ValueError(f"{IDLE_TIMEOUT_ENV_VAR} must be a positive number of seconds, got {raw!r}")
    return value


def max_steps_from_env() -> int | None:
    """The step budget the operator set for every episode (None: each episode's own)."""
    return _positive_int_from_env(MAX_STEPS_ENV_VAR)


def _positive_int_from_env(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value
