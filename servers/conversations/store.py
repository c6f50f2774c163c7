"""What the conversations server keeps itself, in SQLite: what OpenAI no longer keeps for it.

Assistant profiles (OpenAI retired assistant and prompt objects), the index of threads
(conversations have no list endpoint) and of runs (a run is a chain of responses), and metadata
for messages and runs (conversation items cannot be changed). Every statement is parameterised.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS assistants (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, created_at INTEGER NOT NULL, record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id, created_at);
CREATE TABLE IF NOT EXISTS message_metadata (
    id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, metadata TEXT NOT NULL
);
"""
TABLES = {"assistants", "threads", "runs"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Store:
    """One SQLite file; safe to use from the server's threads (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- assistants ---

    def put_assistant(self, assistant_id: str, profile: dict[str, Any], created_at: int | None = None) -> None:
        created = created_at or int(time.time())
        self._run(
            "INSERT INTO assistants (id, created_at, profile) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET profile = excluded.profile",
            (assistant_id, created, json.dumps(profile)),
        )

    def assistant(self, assistant_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT id, created_at, profile FROM assistants WHERE id = ?", (assistant_id,))
        if not rows:
            return None
        return {"id": rows[0][0], "object": "assistant", "created_at": rows[0][1], **json.loads(rows[0][2])}

    def delete(self, table: str, key: str) -> bool:
        assert table in TABLES  # table names cannot be parameters; only these three are ever used
        with self._lock:
            return self._db.execute(f"DELETE FROM {table} WHERE id = ?", (key,)).rowcount > 0  # noqa: S608

    def page(
        self, table: str, limit: int, order: str, after: str | None, thread_id: str | None = None
    ) -> dict[str, Any]:
        """A page of ids, newest first (desc) or oldest first (asc), after the given id."""
        assert table in TABLES and order in ("asc", "desc")
        where, params = ("WHERE thread_id = ?", [thread_id]) if thread_id else ("", [])
        ids = [
            r[0]
            for r in self._run(f"SELECT id FROM {table} {where} ORDER BY created_at {order}, id {order}", tuple(params))
        ]  # noqa: S608
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        shown = ids[:limit]
        return {"ids": shown, "has_more": len(ids) > limit}

    # --- threads ---

    def put_thread(self, thread_id: str, created_at: int, metadata: dict[str, str]) -> None:
        self._run(
            "INSERT INTO threads (id, created_at, metadata) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET metadata = excluded.metadata",
            (thread_id, created_at, json.dumps(metadata)),
        )

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT id, created_at, metadata FROM threads WHERE id = ?", (thread_id,))
        if not rows:
            return None
        return {"id": rows[0][0], "object": "thread", "created_at": rows[0][1], "metadata": json.loads(rows[0][2])}

    # --- runs ---

    def put_run(self, record: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO runs (id, thread_id, created_at, record) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET record = excluded.record",
            (record["id"], record["thread_id"], record["created_at"], json.dumps(record)),
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT record FROM runs WHERE id = ?", (run_id,))
        return json.loads(rows[0][0]) if rows else None

    # --- message metadata ---

    def message_metadata(self, message_id: str) -> dict[str, str]:
        rows = self._run("SELECT metadata FROM message_metadata WHERE id = ?", (message_id,))
        return json.loads(rows[0][0]) if rows else {}

    def put_message_metadata(self, message_id: str, thread_id: str, metadata: dict[str, str]) -> None:
        self._run(
            "INSERT INTO message_metadata (id, thread_id, metadata) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET metadata = excluded.metadata",
            (message_id, thread_id, json.dumps(metadata)),
        )
