"""Append audit records from a background thread: the run loop only enqueues.

JSONL records are written with one `write` each on an O_APPEND descriptor, so concurrent writers
(batch workers, gateway requests, other processes) never interleave and a crash never leaves half
a record followed by another. SQLite records are committed in transactions.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.config.governance import AuditRotate
from app.errors import AgentdeckError

_STOP = object()
# Columns of the sqlite table that queries filter on; the whole record is kept as JSON beside them.
COLUMNS = ("ts", "kind", "run_id", "session", "agent", "user", "server", "tool", "status", "duration_ms")


class AuditUnwritable(AgentdeckError):
    """The audit trail cannot be written: nothing runs unaudited."""

    exit_code = 2


class AuditWriter:
    """Owns one audit file (or database); `write` never blocks, `close` waits for everything queued."""

    def __init__(self, path: Path, fmt: str, rotate: AuditRotate | None = None) -> None:
        self.path = path
        self.format = fmt
        self.rotate = rotate
        self.failure: str | None = None  # the first write that failed after opening, for the caller to show
        self.written = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._open_checked()
        self._thread = threading.Thread(target=self._drain, name="agentdeck-audit", daemon=True)
        self._thread.start()

    def _open_checked(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.format == "sqlite":
                self._db = open_database(self.path)
            else:
                self._fd = self._open_jsonl()
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AuditUnwritable(
                f"cannot write the audit trail {self.path}: {reason}",
                hint="fix audit.path (or its folder's permissions) in agents.yaml; runs are not started unaudited",
            ) from None

    def _open_jsonl(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size:
            # A record torn by a full disk or a power cut: start the next one on a line of its own.
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(fd, b"\n")
        return fd

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record (returns at once)."""
        self._queue.put(record)

    def close(self) -> None:
        """Write everything queued, then release the file."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def _drain(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while True:  # everything already waiting goes out together (one sqlite transaction)
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _STOP or _STOP in batch:
                stop = True
                batch = [r for r in batch if r is not _STOP]
            try:
                self._write_all(batch)
            except (OSError, sqlite3.Error) as exc:
                if self.failure is None:
                    self.failure = f"writing the audit trail {self.path} failed: {exc}"

    def _write_all(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self._db is not None:
            with self._db:
                self._db.executemany(
                    f"INSERT INTO records ({', '.join(COLUMNS)}, record) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                    [(*(r.get(c) for c in COLUMNS), json.dumps(r, default=str)) for r in records],
                )
            self.written += len(records)
            return
        for record in records:
            line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
            self._rotate_for(len(line))
            assert self._fd is not None
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
            self.written += 1

    def _rotate_for(self, incoming: int) -> None:
        assert self._fd is not None
        if self.rotate is None:
            return
        if not self._moved_away() and os.fstat(self._fd).st_size + incoming <= self.rotate.max_bytes:
            return
        # Several writers (processes) may share the trail: one rotates at a time, the others follow.
        with _locked(self.path.with_name(self.path.name + ".lock")):
            if self._moved_away():
                os.close(self._fd)
                self._fd = self._open_jsonl()
            size = os.fstat(self._fd).st_size
            if size == 0 or size + incoming <= self.rotate.max_bytes:
                return
            for n in range(self.rotate.keep - 1, 0, -1):
                older = rotated(self.path, n)
                if older.exists():
                    os.replace(older, rotated(self.path, n + 1))
            os.replace(self.path, rotated(self.path, 1))
            os.close(self._fd)
            self._fd = self._open_jsonl()

    def _moved_away(self) -> bool:
        """True when the file this writer appends to is no longer the trail's current file."""
        assert self._fd is not None
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (where the platform has flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: a single writer is assumed
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rotated(path: Path, n: int) -> Path:
    """The n-th older file of a rotated JSONL trail (1 is the newest)."""
    return path.with_name(f"{path.name}.{n}")


def open_database(path: Path) -> sqlite3.Connection:
    """The audit database, created with its table and indexes when new."""
    fresh = not path.exists()
    db = sqlite3.connect(path, check_same_thread=False)  # opened here, written from the audit thread
    if fresh:
        os.chmod(path, 0o600)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=5000")
    columns = ", ".join(f"{c} {'REAL' if c == 'duration_ms' else 'TEXT'}" for c in COLUMNS)
    with db:
        db.execute(f"CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, {columns}, record TEXT NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS records_ts ON records (ts)")
        db.execute("CREATE INDEX IF NOT EXISTS records_tool ON records (server, tool)")
    return db
