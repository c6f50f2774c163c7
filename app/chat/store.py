"""Chat sessions persisted in SQLite under the user's state directory."""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SESSIONS_TABLE = "agent_sessions"
MESSAGES_TABLE = "agent_messages"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def valid_session_name(name: str) -> bool:
    """Letters, digits, '.', '_' and '-' (64 characters at most)."""
    return bool(_NAME.match(name))


def new_session_name() -> str:
    return time.strftime("chat-%Y%m%d-%H%M%S")


@dataclass
class SessionInfo:
    name: str
    messages: int
    updated: str


class SessionStore:
    """Wraps the Agents SDK's SQLiteSession tables with listing and per-session handles."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "sessions.db"

    def open(self, name: str) -> Any:
        """The SDK session object for `name` (created on first write)."""
        from agents import SQLiteSession

        return SQLiteSession(name, db_path=self.path, sessions_table=SESSIONS_TABLE, messages_table=MESSAGES_TABLE)

    def list(self) -> list[SessionInfo]:
        """Sessions, most recently updated first."""
        if not self.path.exists():
            return []
        conn = sqlite3.connect(self.path)
        try:
            rows = conn.execute(
                f"SELECT s.session_id, COUNT(m.id), COALESCE(MAX(m.created_at), s.updated_at) AS u "
                f"FROM {SESSIONS_TABLE} s LEFT JOIN {MESSAGES_TABLE} m ON m.session_id = s.session_id "
                "GROUP BY s.session_id ORDER BY u DESC"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()
        return [SessionInfo(r[0], r[1], str(r[2])) for r in rows]
