"""MCP sessions over streamable HTTP, kept in the server's records (``records.Records``).

A session is its id (``Mcp-Session-Id``, minted at ``initialize``), when it was last used, and
the kept episode that its calls without an ``episode_id`` play. Nothing else of it lives in a
process, so whichever worker or replica reads the same records answers its next request:
the session's episode is rebuilt from its record there (``episodes.EpisodeStore``).

At most ``max_sessions`` are open at once (a further ``initialize`` is refused); one without a
request for ``idle_timeout`` seconds is closed (its id then answers 404, as an unknown one does).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable

from metric_tracker_rl.records import Records

SESSION_ID_BYTES = 16  # random bytes of a session id: 32 hexadecimal characters


class McpSessions:
    """The open MCP sessions, by id."""

    def __init__(
        self,
        records: Records,
        max_sessions: int,
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.clock = clock

    def open(self) -> str | None:
        """A new session's id, or None when ``max_sessions`` are open."""
        with self.records.transaction() as db:
            self._drop_idle(db)
            if db.execute("SELECT COUNT(*) FROM mcp_sessions").fetchone()[0] >= self.max_sessions:
                return None
            session_id = secrets.token_hex(SESSION_ID_BYTES)
            db.execute(
                "INSERT INTO mcp_sessions (session_id, last_used) VALUES (?, ?)", (session_id, self.clock())
            )
        return session_id

    def use(self, session_id: str) -> bool:
        """Whether the session is open; if so, it has just been used."""
        with self.records.transaction() as db:
            self._drop_idle(db)
            used = db.execute(
                "UPDATE mcp_sessions SET last_used = ? WHERE session_id = ?", (self.clock(), session_id)
            )
            return used.rowcount == 1

    def episode(self, session_id: str) -> str | None:
        """The kept episode the session plays (None: none yet, or the session is not open)."""
        with self.records.transaction() as db:
            found = db.execute(
                "SELECT episode_id FROM mcp_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return None if found is None else found[0]

    def follow(self, session_id: str, episode_id: str | None) -> None:
        """From now on the session plays the kept episode ``episode_id``."""
        with self.records.transaction() as db:
            db.execute(
                "UPDATE mcp_sessions SET episode_id = ? WHERE session_id = ?", (episode_id, session_id)
            )

    def close(self, session_id: str) -> None:
        with self.records.transaction() as db:
            db.execute("DELETE FROM mcp_sessions WHERE session_id = ?", (session_id,))

    def __len__(self) -> int:
        with self.records.transaction() as db:
            self._drop_idle(db)
            return db.execute("SELECT COUNT(*) FROM mcp_sessions").fetchone()[0]

    def _drop_idle(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM mcp_sessions WHERE last_used < ?", (self.clock() - self.idle_timeout,))
