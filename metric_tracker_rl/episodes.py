"""Episodes the server keeps by handle, so that a client needs no session to play.

The MCP tool ``start_episode`` and ``POST /reset`` with ``keep_episode: true`` start an
episode here and answer its handle, ``episode_id``: 32 URL-safe characters from
``secrets`` (192 random bits), which nobody can guess. Every later call that carries the
handle (the tools' ``episode_id`` argument, the action's ``episode_id`` field of
``POST /step``) acts on that episode, whatever connection, MCP session or fresh environment
brings it, so one stateless HTTP request per call is enough; without the handle an
episode cannot be reached.

The limits are the sessions' (``metric_tracker_rl.limits``): at most ``max_episodes``
episodes are kept; one without a call for ``idle_timeout`` seconds is dropped; when the
store is full a finished episode gives its place (the least recently used first), and
with none finished a new episode is refused (``EpisodeLimitError``, HTTP 503). A handle
that is unknown or expired gets an error observation saying so; nothing tells the two
apart, so a handle reveals nothing about others.

Rebuilding anywhere: an episode is a pure function of its reset arguments and the
actions taken since (the data comes from the config; every step is deterministic), given
the server's settings (the step budget override, which every replica shares). So each kept
episode holds that ``EpisodeRecord`` (JSON values, a few kilobytes: every action costs budget
units, so the step budget bounds the list) beside its live environment, and
``EpisodeRecord.replay`` rebuilds the environment from it. Served by many
workers or replicas, the records would live in a shared store (a database, a cache) and a
worker that lacks an episode's environment would replay its record; the live environments
kept here are that cache.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from metric_tracker_rl.limits import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_SESSIONS,
    idle_timeout_from_env,
    max_sessions_from_env,
)
from metric_tracker_rl.models import MetricTrackerRlAction, MetricTrackerRlObservation, MetricTrackerRlState

if TYPE_CHECKING:
    from metric_tracker_rl.environment import MetricTrackerRlEnvironment

HANDLE_BYTES = 24  # random bytes of a handle: 32 URL-safe characters


class EpisodeLimitError(RuntimeError):
    """No room for a new kept episode: every place holds an episode still in play."""


def new_handle() -> str:
    return secrets.token_urlsafe(HANDLE_BYTES)


@dataclass
class EpisodeRecord:
    """All an episode is: its handle, its reset arguments and every action since (JSON)."""

    episode_id: str
    reset_arguments: dict[str, Any]
    actions: list[Any] = field(default_factory=list)

    def replay(self, new_environment: Callable[[], MetricTrackerRlEnvironment]) -> MetricTrackerRlEnvironment:
        """The episode's environment, rebuilt: reset with the arguments, then every action."""
        environment = new_environment()
        environment.reset(**self.reset_arguments, episode_id=self.episode_id)
        for action in self.actions:
            environment.step(action)
        return environment


@dataclass
class _Kept:
    record: EpisodeRecord
    environment: MetricTrackerRlEnvironment
    last_used: float
    done: bool = False


class EpisodeStore:
    """Kept episodes by handle, with an idle expiry and a cap (see the module note).

    ``new_environment`` makes the environment of a kept episode (the server's settings,
    such as a step budget override, are in it; it must not keep episodes itself). Calls
    run under one lock: a step is sub-millisecond work, and the server runs them on its
    event loop anyway.
    """

    def __init__(
        self,
        new_environment: Callable[[], MetricTrackerRlEnvironment],
        max_episodes: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_episodes < 1:
            raise ValueError(f"max_episodes must be a positive integer, got {max_episodes!r}")
        if not 0 < idle_timeout < float("inf"):
            raise ValueError(f"idle_timeout must be a positive number of seconds, got {idle_timeout!r}")
        self.new_environment = new_environment
        self.max_episodes = max_episodes
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, new_environment: Callable[[], MetricTrackerRlEnvironment]) -> EpisodeStore:
        """A store with the limits the operator set in the environment variables."""
        return cls(new_environment, max_sessions_from_env(), idle_timeout_from_env())

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._kept)

    def start(self, arguments: dict[str, Any]) -> MetricTrackerRlObservation:
        """Start a kept episode with these reset arguments; its observation carries the handle.

        Raises ``ConfigError`` for bad arguments (nothing is kept then) and
        ``EpisodeLimitError`` when the store is full of episodes in play.
        """
        record = EpisodeRecord(new_handle(), to_jsonable_python(arguments))
        environment = self.new_environment()
        with self._lock:
            self._make_room()
            observation = environment.reset(**record.reset_arguments, episode_id=record.episode_id)
            self._kept[record.episode_id] = _Kept(record, environment, self.clock(), observation.done)
        observation.episode_id = record.episode_id
        return observation

    def step(
        self, episode_id: str, action: MetricTrackerRlAction | dict[str, Any]
    ) -> MetricTrackerRlObservation:
        """Run one action on a kept episode; an unknown or expired handle is an error observation."""
        action = _without_handle(action)
        with self._lock:
            kept = self._find(episode_id)
            if kept is None:
                return self.unknown(episode_id)
            if not kept.done:  # a finished episode answers without changing: nothing to record
                kept.record.actions.append(_as_json(action))
            observation = kept.environment.step(action)
            kept.last_used, kept.done = self.clock(), observation.done
        observation.episode_id = episode_id
        return observation

    def state(self, episode_id: str) -> MetricTrackerRlState | None:
        with self._lock:
            kept = self._find(episode_id)
            return None if kept is None else kept.environment.state

    def record(self, episode_id: str) -> EpisodeRecord | None:
        """A copy of a kept episode's record (what a replica needs to rebuild it)."""
        with self._lock:
            kept = self._find(episode_id)
            if kept is None:
                return None
            record = kept.record
            return EpisodeRecord(record.episode_id, dict(record.reset_arguments), list(record.actions))

    def unknown(self, episode_id: Any) -> MetricTrackerRlObservation:
        return MetricTrackerRlObservation(
            status="error",
            message=(
                f"unknown or expired episode_id: a kept episode is dropped after {self.idle_timeout:.0f} s "
                "without a call (or, once finished, when the server needs its place). Start a new one: "
                "the MCP tool start_episode, or POST /reset with keep_episode: true."
            ),
            reward=None,
            done=False,
        )

    # --- internals (under the lock) ------------------------------------------------------

    def _find(self, episode_id: str) -> _Kept | None:
        kept = self._kept.get(episode_id) if isinstance(episode_id, str) else None
        if kept is not None and self.clock() - kept.last_used > self.idle_timeout:
            del self._kept[episode_id]
            return None
        return kept

    def _drop_expired(self) -> None:
        now = self.clock()
        for episode_id in [h for h, k in self._kept.items() if now - k.last_used > self.idle_timeout]:
            del self._kept[episode_id]

    def _make_room(self) -> None:
        self._drop_expired()
        if len(self._kept) < self.max_episodes:
            return
        finished = [(k.last_used, h) for h, k in self._kept.items() if k.done]
        if not finished:
            raise EpisodeLimitError(
                f"the server keeps at most {self.max_episodes} episodes and all are in play; finish one, "
                f"or wait until one has had no call for {self.idle_timeout:.0f} s, then start again"
            )
        del self._kept[min(finished)[1]]


def _without_handle(action: MetricTrackerRlAction | dict[str, Any]) -> MetricTrackerRlAction | dict[str, Any]:
    if isinstance(action, MetricTrackerRlAction):
        return action.model_copy(update={"episode_id": None}) if action.episode_id is not None else action
    if isinstance(action, dict) and "episode_id" in action:
        return {k: v for k, v in action.items() if k != "episode_id"}
    return action


def _as_json(action: Any) -> Any:
    if isinstance(action, MetricTrackerRlAction):
        return action.model_dump(mode="json", exclude_defaults=True)
    return to_jsonable_python(action, fallback=repr)
