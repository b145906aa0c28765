"""Where a server records its kept episodes and MCP sessions: one SQLite database.

In memory by default (one process's own). Given a file (``metric-tracker serve --records PATH``
or ``METRIC_TRACKER_RECORDS``), every process that opens it shares the records: the workers of
``metric-tracker serve --workers N`` (which makes one such file for its run) or replicas on one
machine that mount one volume. Any of them then answers any kept episode or MCP session, and
rebuilds what it has not seen by replaying the record (an episode is a pure function of its
reset arguments and actions, ``episodes.EpisodeRecord``).

A record is small JSON (the reset arguments, then one short line per action, the step budget
bounding their number), so the file stays small; SQLite's write-ahead log lets readers go on
while one process writes, and a write waits for another (``BUSY_TIMEOUT_S``) instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RECORDS_ENV_VAR = "METRIC_TRACKER_RECORDS"
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write before giving up

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY,
    reset_arguments TEXT NOT NULL,      -- JSON
    actions INTEGER NOT NULL DEFAULT 0, -- how many actions the episode has taken
    done INTEGER NOT NULL DEFAULT 0,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    episode_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    action TEXT NOT NULL,               -- JSON
    PRIMARY KEY (episode_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mcp_sessions (
    session_id TEXT PRIMARY KEY,
    episode_id TEXT,                    -- the kept episode the session plays by default
    last_used REAL NOT NULL
);
"""


def records_path_from_env() -> str | None:
    """The records file the operator named in ``METRIC_TRACKER_RECORDS`` (None: in memory)."""
    return os.environ.get(RECORDS_ENV_VAR) or None


class Records:
    """One connection to the records database, shared by this process's threads (one at a time)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if self.path is None else str(self.path)
        self._db = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        with self._lock:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # records outlive a crash of this process
            self._db.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of reads and writes: no other thread or process writes meanwhile."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
