"""Ad-hoc read-only SQL for analysts: a separate mode=ro connection, an authorizer that admits only
reads and an allow-list of functions, no ATTACH, a row cap and a time limit."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALLOWED_FUNCTIONS = {
    "abs", "avg", "bm25", "changes", "char", "coalesce", "count", "date", "datetime", "dense_rank", "first_value",
    "format", "glob", "group_concat", "hex", "highlight", "ifnull", "iif", "instr", "json", "json_array",
    "json_extract", "json_group_array", "json_group_object", "json_object", "julianday", "lag", "last_value", "lead",
    "length", "like", "lower", "ltrim", "max", "min", "nth_value", "ntile", "nullif", "percent_rank", "printf",
    "quote", "rank", "replace", "round", "row_number", "rtrim", "sign", "snippet", "strftime", "string_agg",
    "substr", "substring", "sum", "time", "total", "trim", "typeof", "unicode", "unixepoch", "upper", "cume_dist",
    "concat", "concat_ws", "octet_length",
}  # fmt: skip


class QueryRejected(Exception):
    """The statement is not a plain read, or it broke a limit."""


@dataclass
class QueryLimits:
    max_rows: int = 500
    seconds: float = 2.0


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ):
        return sqlite3.SQLITE_OK
    if action == getattr(sqlite3, "SQLITE_RECURSIVE", 33):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in ALLOWED_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def read_query(path: Path, sql: str, limits: QueryLimits) -> dict[str, Any]:
    """Run one read-only statement; return {columns, rows, row_count, truncated}."""
    if "\x00" in sql:
        raise QueryRejected("the query contains a NUL byte")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
        conn.set_authorizer(_authorizer)
        deadline = time.monotonic() + limits.seconds
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            cur = conn.execute(sql)
            rows = cur.fetchmany(limits.max_rows + 1)
        except sqlite3.ProgrammingError as exc:
            raise QueryRejected(f"only one statement at a time: {exc}") from None
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "authoriz" in text or "prohibited" in text:
                raise QueryRejected("only SELECT statements that read this database are allowed") from None
            if "interrupted" in text:
                raise QueryRejected(f"the query took longer than {limits.seconds:g}s and was stopped") from None
            raise QueryRejected(f"SQL error: {text}") from None
        except sqlite3.DatabaseError as exc:
            if "authoriz" in str(exc):
                raise QueryRejected("only SELECT statements that read this database are allowed") from None
            raise QueryRejected(f"SQL error: {exc}") from None
        if cur.description is None:
            raise QueryRejected("only SELECT statements are allowed")
        columns = [d[0] for d in cur.description]
        truncated = len(rows) > limits.max_rows
        rows = rows[: limits.max_rows]
        return {"columns": columns, "rows": [list(r) for r in rows], "row_count": len(rows), "truncated": truncated}
    finally:
        conn.close()
