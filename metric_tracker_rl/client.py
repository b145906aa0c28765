"""Typed OpenEnv client: one WebSocket session per client, one episode at a time.

with MetricTrackerRlEnv(base_url="http://localhost:8000").sync() as env:
    result = env.reset(task_id="hard_mixed_multi")
    result = env.step(MetricTrackerRlAction(analysis_method="list_suspicious_dates"))

For several servers, ``ServerPool(urls).episode()`` is an agent's handle that plays each
episode on the next server in turn and replays it on another when its server stops answering.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from metric_tracker_rl.arguments import OPENENV_RESET_ARGUMENTS, RESET_ARGUMENTS
from metric_tracker_rl.models import (
    MetricTrackerRlAction,
    MetricTrackerRlObservation,
    MetricTrackerRlState,
)


class MetricTrackerRlEnv(EnvClient[MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState]):
    """Client for a metric_tracker_rl server (``.sync()`` for synchronous use)."""

    def reset(self, task_id: str | None = None, **config: Any) -> Any:
        """Start an episode. ``config`` takes the other ``ResetArgs`` (seed, scenario_family,
        difficulty, anomaly_density, anomaly_count, anomalies, end_date, split, index) and
        OpenEnv's episode_id; arguments left at None are not sent (server defaults apply).
        An unknown name is a ``TypeError`` here; values are checked by the server."""
        allowed = [*RESET_ARGUMENTS, *OPENENV_RESET_ARGUMENTS]
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise TypeError(f"unknown reset arguments {unknown}; allowed: {allowed}")
        config = {"task_id": task_id, **config}
        return super().reset(**{k: v for k, v in config.items() if v is not None})

    def _step_payload(self, action: MetricTrackerRlAction) -> dict[str, Any]:
        return action.model_dump(exclude_defaults=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MetricTrackerRlObservation]:
        data = dict(payload.get("observation", {}))
        data["reward"] = payload.get("reward")
        data["done"] = payload.get("done", False)
        observation = MetricTrackerRlObservation.model_validate(data)
        return StepResult(
            observation=observation,
            reward=payload.get("reward"),
            done=payload.get("done", False),
            metadata=payload.get("metadata"),
        )

    def _parse_state(self, payload: dict[str, Any]) -> MetricTrackerRlState:
        return MetricTrackerRlState.model_validate(payload)


# --- several servers: episodes spread over them, replayed elsewhere when one stops answering ---

RETRY_AFTER_S = 5.0  # a server that stopped answering is passed over this long
MOVE_ATTEMPTS = 6  # servers tried, one after another, before an episode is given up
MOVE_BACKOFF_S = 0.25  # the wait before the n-th attempt is n times this
CAPACITY_CODE = "CAPACITY_REACHED"  # OpenEnv's error code for a server with no room for a session


class EpisodeMoveError(ConnectionError):
    """No server could take the episode over: every attempt failed (the last error is its cause)."""


class SessionLost(ConnectionError):
    """The server answered that the session holds no episode: the connection was lost and the
    client opened a new session in its place (OpenEnv's client reconnects by itself)."""


class EpisodeReplayError(RuntimeError):
    """An episode replayed on another server did not end where it was (servers that differ)."""


class ServerPool:
    """Servers of this benchmark (replicas, or one load balancer's address): each new episode
    goes to the next in turn; one that stopped answering is passed over for ``retry_after_s``
    seconds while others answer. Thread-safe: many episodes share one pool.

    >>> pool = ServerPool(["http://a:8000", "http://b:8000"])
    >>> with pool.episode() as env:  # an agent's handle: reset() and step() give observations
    ...     first = env.reset(task_id="easy_single_spike")
    """

    def __init__(
        self,
        urls: Sequence[str] | str,
        retry_after_s: float = RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        urls = [urls] if isinstance(urls, str) else list(dict.fromkeys(urls))
        if not urls:
            raise ValueError("ServerPool needs at least one server URL")
        self.urls = urls
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._turn = itertools.count()
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def next_url(self, avoid: str | None = None) -> str:
        """The next server in turn, passing over ``avoid`` and those that stopped answering
        recently (unless no other is left)."""
        with self._lock:
            now = self.clock()
            start = next(self._turn)
            order = [self.urls[(start + k) % len(self.urls)] for k in range(len(self.urls))]
            for url in order:
                if url != avoid and self._down_until.get(url, 0.0) <= now:
                    return url
            others = [url for url in order if url != avoid]
            return min(others or order, key=lambda url: self._down_until.get(url, 0.0))

    def mark_down(self, url: str) -> None:
        """``url`` stopped answering: pass it over for a while."""
        with self._lock:
            self._down_until[url] = self.clock() + self.retry_after_s

    def episode(self) -> PooledEpisode:
        return PooledEpisode(self)


class PooledEpisode:
    """An agent's handle (``reset``/``step`` give observations) that plays each episode on the
    pool's next server, over a WebSocket session.

    When the server stops answering (a dropped connection, a refused connect, a timeout, no
    room for a session), the episode moves: on another server it is reset with the same
    config and every action so far is replayed, then the action that failed is sent. Episodes
    are deterministic, so it goes on exactly where it was (checked: the replay must end on the
    observation last received). ``moves`` counts the moves of the current episode.
    """

    def __init__(self, pool: ServerPool) -> None:
        self.pool = pool
        self.url: str | None = None
        self.moves = 0
        self._client: Any = None
        self._config: dict[str, Any] = {}
        self._actions: list[MetricTrackerRlAction] = []
        self._last: MetricTrackerRlObservation | None = None

    def reset(self, **config: Any) -> MetricTrackerRlObservation:
        self._config, self._actions, self._last, self.moves = dict(config), [], None, 0
        url = self.pool.next_url()
        try:
            self._last = self._on(url).reset(**config).observation
        except Exception as err:
            if not server_failed(err):
                raise
            self._last = self._move(url, err, None)
        return self._last

    def step(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        if self._client is None:
            raise RuntimeError("no episode: call reset() first")
        try:
            observation = self._stepped(action)
        except Exception as err:
            if not server_failed(err):
                raise
            observation = self._move(self.url, err, action)
        self._actions.append(action)
        self._last = observation
        return observation

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def __enter__(self) -> PooledEpisode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on(self, url: str) -> Any:
        """The session with ``url`` (a new one when the episode changes server)."""
        if self._client is None or url != self.url:
            self.close()
            self._client = MetricTrackerRlEnv(base_url=url).sync()
            self.url = url
        return self._client

    def _stepped(self, action: MetricTrackerRlAction) -> MetricTrackerRlObservation:
        """The server's answer to ``action`` in this episode's session."""
        observation = self._client.step(action).observation
        if observation.status == "error" and not observation.budget:  # an episode's answers carry its budget
            raise SessionLost(f"the session on {self.url} holds no episode any more: {observation.message}")
        return observation

    def _move(
        self, failed: str | None, error: Exception, pending: MetricTrackerRlAction | None
    ) -> MetricTrackerRlObservation:
        """Replay the episode on another server, then send ``pending`` (the action that failed);
        the observation that answers it (the reset's, without one)."""
        for attempt in range(1, MOVE_ATTEMPTS + 1):
            if failed is not None:
                self.pool.mark_down(failed)
            self.close()
            time.sleep(MOVE_BACKOFF_S * attempt)
            url = self.pool.next_url(avoid=failed)
            try:
                observation = self._on(url).reset(**self._config).observation
                for action in self._actions:
                    observation = self._stepped(action)
                if self._last is not None and observation != self._last:
                    raise EpisodeReplayError(
                        f"the episode replayed on {url} does not end where it was: do all servers run "
                        "the same version with the same settings (--max-steps)?"
                    )
                if pending is not None:
                    observation = self._stepped(pending)
            except Exception as err:
                if not server_failed(err):
                    raise
                failed, error = url, err
                continue
            self.moves += 1
            return observation
        raise EpisodeMoveError(
            f"the episode could not move: {MOVE_ATTEMPTS} attempts on {', '.join(self.pool.urls)} failed "
            f"(last: {type(error).__name__}: {error})"
        ) from error


def server_failed(error: BaseException) -> bool:
    """Whether ``error`` says the server is gone or full (then the episode moves), rather than
    that the request was wrong."""
    from websockets.exceptions import WebSocketException

    if isinstance(error, OSError | WebSocketException):  # OSError: ConnectionError, TimeoutError too
        return True
    return isinstance(error, RuntimeError) and CAPACITY_CODE in str(error)
