"""Read an audit trail back: records in order, filters, per-tool statistics, and following new records."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.audit.writer import rotated
from app.errors import UsageError

# Statuses of tool calls that failed, and of calls refused before they ran (by a person, a flag or the gateway).
FAILED = ("error", "unreachable")
REFUSED = ("declined", "denied", "rate_limited")
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`90s`, `15m`, `1h`, `2d`, `1w` ago, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    match = _AGO.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a date", hint="use e.g. 30m, 1h, 2d or 2026-11-23T09:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def record_time(record: dict[str, Any]) -> datetime | None:
    """When a record was written (None for a record without a readable timestamp)."""
    try:
        return datetime.fromisoformat(str(record.get("ts", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Query:
    """Which records to show: every given field must match (globs for tool, server and agent)."""

    since: datetime | None = None
    kind: str | None = None
    server: str | None = None
    tool: str | None = None
    status: str | None = None
    user: str | None = None
    agent: str | None = None
    run: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        """True when the record passes every filter."""
        if self.since is not None:
            when = record_time(record)
            if when is None or when < self.since:
                return False
        for field in ("kind", "status", "user", "run"):
            wanted = getattr(self, field)
            key = "run_id" if field == "run" else field
            if wanted is not None and record.get(key) != wanted:
                return False
        for field in ("server", "tool", "agent"):
            wanted = getattr(self, field)
            if wanted is not None and not fnmatch.fnmatchcase(str(record.get(field) or ""), wanted):
                return False
        return True


class Trail:
    """An audit trail on disk: a JSONL file (with its rotated predecessors) or an sqlite database."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self.skipped = 0  # lines that are not whole JSON records (a record torn by a full disk)
        self._last_id = 0  # sqlite: the last row read (follow reads on from there)

    def _check(self) -> None:
        if not self.path.exists():
            raise UsageError(
                f"no audit trail at {self.path} yet",
                hint="it is created by the first audited run, tool call or gateway request",
            )

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first."""
        self._check()
        if self.format == "sqlite":
            yield from self._rows(0)
            return
        files = []
        n = 1
        while rotated(self.path, n).exists():
            files.append(rotated(self.path, n))
            n += 1
        for path in [*reversed(files), self.path]:
            with open(path, "rb") as f:
                for line in f:
                    record = self._parse(line)
                    if record is not None:
                        yield record

    def _parse(self, line: bytes) -> dict[str, Any] | None:
        if not line.strip():
            return None
        try:
            record = json.loads(line)
        except ValueError:
            self.skipped += 1
            return None
        return record if isinstance(record, dict) else None

    def _rows(self, after: int) -> Iterator[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            for row_id, text in db.execute("SELECT id, record FROM records WHERE id > ? ORDER BY id", (after,)):
                self._last_id = row_id
                record = self._parse(text.encode())
                if record is not None:
                    yield record
        except sqlite3.Error as exc:
            raise UsageError(f"cannot read the audit database {self.path}: {exc}") from None
        finally:
            db.close()

    def follow(self, poll: float = 0.5, stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
        """Records written from now on, as they arrive (across rotations), until `stop()`."""
        self._check()
        if self.format == "sqlite":
            for _ in self._rows(self._last_id):
                pass
            while not stop():
                yield from self._rows(self._last_id)
                time.sleep(poll)
            return
        f = open(self.path, "rb")  # noqa: SIM115 - reopened when the file is rotated
        try:
            f.seek(0, os.SEEK_END)
            pending = b""
            while not stop():
                chunk = f.read()
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        record = self._parse(line)
                        if record is not None:
                            yield record
                    continue
                if self._rotated_away(f):
                    f.close()
                    f = open(self.path, "rb")  # noqa: SIM115
                    continue
                time.sleep(poll)
        finally:
            f.close()

    def _rotated_away(self, f: Any) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            return False


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def tool_stats(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls, errors and p50/p95 duration per (server, tool), busiest first."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("kind") != "tool_call":
            continue
        key = (str(record.get("server") or "-"), str(record.get("tool")))  # "-": refused before any server
        group = groups.setdefault(key, {"calls": 0, "errors": 0, "declined": 0, "durations": []})
        group["calls"] += 1
        status = record.get("status")
        if status in FAILED:
            group["errors"] += 1
        elif status in REFUSED:
            group["declined"] += 1
        if isinstance(record.get("duration_ms"), int | float):
            group["durations"].append(float(record["duration_ms"]))
    rows = []
    for (server, tool), group in groups.items():
        durations = group.pop("durations")
        rows.append(
            {
                "server": server,
                "tool": tool,
                **group,
                "p50_ms": round(percentile(durations, 50), 1) if durations else None,
                "p95_ms": round(percentile(durations, 95), 1) if durations else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["calls"], r["server"], r["tool"]))
