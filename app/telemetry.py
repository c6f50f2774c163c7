"""Per-run record of tool calls, attributed through a context variable (shared servers, many runs)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ToolCallRecord:
    server: str
    tool: str
    arguments: dict[str, Any]
    ok: bool
    duration_ms: float
    declined: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["error"] is None:
            del out["error"]
        out["duration_ms"] = round(self.duration_ms, 1)
        return out


@dataclass
class ToolCallLog:
    calls: list[ToolCallRecord] = field(default_factory=list)


_current: contextvars.ContextVar[ToolCallLog | None] = contextvars.ContextVar("agentdeck_tool_calls", default=None)


@contextmanager
def recording(log: ToolCallLog | None = None) -> Iterator[ToolCallLog]:
    """Collect the tool calls made by code running inside this block (and its tasks)."""
    log = ToolCallLog() if log is None else log
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def record_tool_call(
    server: str,
    tool: str,
    arguments: dict[str, Any],
    ok: bool,
    seconds: float,
    declined: bool = False,
    error: str | None = None,
) -> None:
    """Add a call to the active log, if any."""
    log = _current.get()
    if log is not None:
        log.calls.append(ToolCallRecord(server, tool, dict(arguments), ok, seconds * 1000, declined, error))
