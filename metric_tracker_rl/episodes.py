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
the server's settings (the step budget override, which every worker and replica shares). So
the store records exactly that (``EpisodeRecord``: JSON values, a few kilobytes, the step
budget bounding the actions) in its ``records.Records``, and keeps live environments only as
a cache: a process whose cache lacks an episode, or holds it a few actions behind (another
worker played them), rebuilds it by replaying the record. With records in a file that every
worker or replica opens, any of them answers any handle.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections import OrderedDict
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
from metric_tracker_rl.records import Records, records_path_from_env

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

    def begin(
        self, new_environment: Callable[[], MetricTrackerRlEnvironment]
    ) -> tuple[MetricTrackerRlEnvironment, MetricTrackerRlObservation]:
        """A new environment reset with the arguments (under the handle), and its first observation."""
        environment = new_environment()
        return environment, environment.reset(**self.reset_arguments, episode_id=self.episode_id)

    def replay(self, new_environment: Callable[[], MetricTrackerRlEnvironment]) -> MetricTrackerRlEnvironment:
        """The episode's environment, rebuilt: reset with the arguments, then every action."""
        environment, _ = self.begin(new_environment)
        for action in self.actions:
            environment.step(action)
        return environment


@dataclass
class _Row:
    """An episode's line in the records."""

    reset_arguments: dict[str, Any]
    actions: int
    done: bool


@dataclass
class _Live:
    """A kept episode's environment in this process, after its first ``actions`` actions."""

    environment: MetricTrackerRlEnvironment
    actions: int


class EpisodeStore:
    """Kept episodes by handle, with an idle expiry and a cap (see the module note).

    ``new_environment`` makes the environment of a kept episode (the server's settings,
    such as a step budget override, are in it; it must not keep episodes itself).
    ``records``: where the episodes are recorded (by default in this process's memory).
    Each call is one transaction of the records: a step is sub-millisecond work, and the
    server runs them on its event loop anyway.
    """

    def __init__(
        self,
        new_environment: Callable[[], MetricTrackerRlEnvironment],
        max_episodes: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        records: Records | None = None,
    ) -> None:
        if max_episodes < 1:
            raise ValueError(f"max_episodes must be a positive integer, got {max_episodes!r}")
        if not 0 < idle_timeout < float("inf"):
            raise ValueError(f"idle_timeout must be a positive number of seconds, got {idle_timeout!r}")
        self.new_environment = new_environment
        self.max_episodes = max_episodes
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.records = records if records is not None else Records()
        self._live: OrderedDict[str, _Live] = OrderedDict()  # the cache, least recently used first

    @classmethod
    def from_env(cls, new_environment: Callable[[], MetricTrackerRlEnvironment]) -> EpisodeStore:
        """A store with the limits and records the operator set in the environment variables."""
        return cls(
            new_environment,
            max_sessions_from_env(),
            idle_timeout_from_env(),
            records=Records(records_path_from_env()),
        )

    def __len__(self) -> int:
        with self.records.transaction() as db:
            self._drop_expired(db)
            return db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]

    def start(self, arguments: dict[str, Any]) -> MetricTrackerRlObservation:
        """Start a kept episode with these reset arguments; its observation carries the handle.

        Raises ``ConfigError`` for bad arguments (nothing is kept then) and
        ``EpisodeLimitError`` when the store is full of episodes in play.
        """
        record = EpisodeRecord(new_handle(), to_jsonable_python(arguments))
        environment, observation = record.begin(self.new_environment)
        with self.records.transaction() as db:
            self._make_room(db)
            db.execute(
                "INSERT INTO episodes (episode_id, reset_arguments, done, last_used) VALUES (?, ?, ?, ?)",
                (record.episode_id, json.dumps(record.reset_arguments), observation.done, self.clock()),
            )
        self._cache(record.episode_id, _Live(environment, 0))
        observation.episode_id = record.episode_id
        return observation

    def step(
        self, episode_id: str, action: MetricTrackerRlAction | dict[str, Any]
    ) -> MetricTrackerRlObservation:
        """Run one action on a kept episode; an unknown or expired handle is an error observation."""
        action = _without_handle(action)
        with self.records.transaction() as db:
            row = self._find(db, episode_id)
            if row is None:
                return self.unknown(episode_id)
            live = self._caught_up(db, episode_id, row)
            try:
                observation = live.environment.step(action)
            except BaseException:
                self._live.pop(episode_id, None)  # the transaction rolls back: rebuild next time
                raise
            if row.done:  # a finished episode answers without changing: nothing to record
                db.execute(
                    "UPDATE episodes SET last_used = ? WHERE episode_id = ?", (self.clock(), episode_id)
                )
            else:
                db.execute(
                    "INSERT INTO actions (episode_id, position, action) VALUES (?, ?, ?)",
                    (episode_id, row.actions, json.dumps(_as_json(action))),
                )
                db.execute(
                    "UPDATE episodes SET actions = ?, done = ?, last_used = ? WHERE episode_id = ?",
                    (row.actions + 1, observation.done, self.clock(), episode_id),
                )
                live.actions += 1
        observation.episode_id = episode_id
        return observation

    def state(self, episode_id: str) -> MetricTrackerRlState | None:
        with self.records.transaction() as db:
            row = self._find(db, episode_id)
            return None if row is None else self._caught_up(db, episode_id, row).environment.state

    def record(self, episode_id: str) -> EpisodeRecord | None:
        """A kept episode's record (what a worker or replica needs to rebuild it)."""
        with self.records.transaction() as db:
            row = self._find(db, episode_id)
            if row is None:
                return None
            return EpisodeRecord(episode_id, row.reset_arguments, self._actions(db, episode_id, 0))

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

    # --- internals (inside a transaction of the records) -----------------------------------

    def _find(self, db: sqlite3.Connection, episode_id: Any) -> _Row | None:
        if not isinstance(episode_id, str):
            return None
        found = db.execute(
            "SELECT reset_arguments, actions, done, last_used FROM episodes WHERE episode_id = ?",
            (episode_id,),
        ).fetchone()
        if found is None:
            self._live.pop(episode_id, None)
            return None
        if self.clock() - found[3] > self.idle_timeout:
            self._drop(db, [episode_id])
            return None
        return _Row(json.loads(found[0]), found[1], bool(found[2]))

    def _caught_up(self, db: sqlite3.Connection, episode_id: str, row: _Row) -> _Live:
        """The episode's live environment after all its recorded actions: the cached one, or one
        rebuilt from the record, with the actions it has not seen replayed."""
        live = self._live.get(episode_id)
        if live is None or live.actions > row.actions:
            record = EpisodeRecord(episode_id, row.reset_arguments, self._actions(db, episode_id, 0))
            live = _Live(record.replay(self.new_environment), row.actions)
        else:
            for action in self._actions(db, episode_id, live.actions):
                live.environment.step(action)
            live.actions = row.actions
        self._cache(episode_id, live)
        return live

    def _actions(self, db: sqlite3.Connection, episode_id: str, start: int) -> list[Any]:
        cursor = db.execute(
            "SELECT action FROM actions WHERE episode_id = ? AND position >= ? ORDER BY position",
            (episode_id, start),
        )
        return [json.loads(action) for (action,) in cursor]

    def _cache(self, episode_id: str, live: _Live) -> None:
        self._live[episode_id] = live
        self._live.move_to_end(episode_id)
        while len(self._live) > self.max_episodes:
            self._live.popitem(last=False)

    def _drop(self, db: sqlite3.Connection, episode_ids: list[str]) -> None:
        for episode_id in episode_ids:
            db.execute("DELETE FROM actions WHERE episode_id = ?", (episode_id,))
            db.execute("DELETE FROM episodes WHERE episode_id = ?", (episode_id,))
            self._live.pop(episode_id, None)

    def _drop_expired(self, db: sqlite3.Connection) -> None:
        cutoff = self.clock() - self.idle_timeout
        expired = db.execute("SELECT episode_id FROM episodes WHERE last_used < ?", (cutoff,)).fetchall()
        self._drop(db, [episode_id for (episode_id,) in expired])

    def _make_room(self, db: sqlite3.Connection) -> None:
        self._drop_expired(db)
        if db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] < self.max_episodes:
            return
        finished = db.execute(
            "SELECT episode_id FROM episodes WHERE done = 1 ORDER BY last_used LIMIT 1"
        ).fetchone()
        if finished is None:
            raise EpisodeLimitError(
                f"the server keeps at most {self.max_episodes} episodes and all are in play; finish one, "
                f"or wait until one has had no call for {self.idle_timeout:.0f} s, then start again"
            )
        self._drop(db, [finished[0]])


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
