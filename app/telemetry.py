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
    # None when unknown: OpenAI runs hosted calls and reports no timing outside a stream.
    duration_ms: float | None
    declined: bool = False
    error: str | None = None
    hosted: bool = False
    label: str | None = field(default=None, compare=False)
    item_id: str | None = field(default=None, compare=False)
    # The agent-as-tool call(s) this call was made inside, outermost first ("ask_b/ask_a"); None at top level.
    via: str | None = None
    # The call failed because its server could not be reached (not because the tool failed).
    unreachable: bool = field(default=False, compare=False)
    # Who approved or declined the call ({"decision", "by"}), for the audit trail; None when none was asked.
    approval: dict[str, str] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The `run --json` shape of one call."""
        out = asdict(self)
        for key in ("error", "label", "item_id", "via", "unreachable", "approval"):
            out.pop(key)
        if self.error is not None:
            out["error"] = self.error
        if self.via is not None:
            out["via"] = self.via
        if self.hosted:
            out["server_label"] = self.label or self.server
        out["duration_ms"] = None if self.duration_ms is None else round(self.duration_ms, 1)
        return out

    def row(self) -> dict[str, Any]:
        """The compact shape of batch and experiment rows."""
        out: dict[str, Any] = {"server": self.server, "tool": self.tool, "ok": self.ok}
        out["duration_ms"] = None if self.duration_ms is None else round(self.duration_ms, 1)
        if self.declined:
            out["declined"] = True
        if self.hosted:
            out["hosted"] = True
        if self.via is not None:
            out["via"] = self.via
        if self.unreachable:
            out["unreachable"] = True
        return out


@dataclass
class ToolCallLog:
    calls: list[ToolCallRecord] = field(default_factory=list)
    approvals: int = 0
    warnings: list[str] = field(default_factory=list)
    # The run's audit records (an app.audit.trail.AuditRun) when the config asks for an audit trail.
    audit: Any = None
    # Approvals granted and not yet matched to the call they allowed: (tool, arguments, decision).
    approved: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    # The run's turns as spans (an app.otel.Turns), set while an audited run is in progress.
    turns: Any = None

    def take_approval(self, tool: str, arguments: dict[str, Any]) -> dict[str, str] | None:
        """The approval given for this call, if one was asked (each approval matches one call)."""
        for i, (name, args, decision) in enumerate(self.approved):
            if name == tool and args == arguments:
                del self.approved[i]
                return decision
        return None


_current: contextvars.ContextVar[ToolCallLog | None] = contextvars.ContextVar("agentdeck_tool_calls", default=None)
_via: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentdeck_via", default=None)


def record_warning(text: str) -> None:
    """A warning for the run being recorded (shown once however often it happens)."""
    log = _current.get()
    if log is not None and text not in log.warnings:
        log.warnings.append(text)


@contextmanager
def recording(log: ToolCallLog | None = None) -> Iterator[ToolCallLog]:
    """Collect the tool calls made by code running inside this block (and its tasks)."""
    log = ToolCallLog() if log is None else log
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def current_log() -> ToolCallLog | None:
    """The log of the run this code belongs to, if one is recording."""
    return _current.get()


@contextmanager
def attributed(tool: str) -> Iterator[None]:
    """Attribute the calls made inside this block (and its tasks) to the agent-as-tool call `tool`."""
    outer = _via.get()
    token = _via.set(f"{outer}/{tool}" if outer else tool)
    try:
        yield
    finally:
        _via.reset(token)


def current_via() -> str | None:
    """The agent-as-tool call(s) this code runs inside ("ask_b/ask_a"), or None at the top level."""
    return _via.get()


def record_tool_call(
    server: str,
    tool: str,
    arguments: dict[str, Any],
    ok: bool,
    seconds: float | None,
    declined: bool = False,
    error: str | None = None,
    hosted: bool = False,
    label: str | None = None,
    item_id: str | None = None,
    unreachable: bool = False,
    result: Any = None,
    approval: dict[str, str] | None = None,
) -> None:
    """Add a call (local, hosted, or declined) to the active log, if any, and to its audit trail."""
    log = _current.get()
    if log is None:
        return
    duration = None if seconds is None else seconds * 1000
    if approval is None and not declined:
        approval = log.take_approval(tool, dict(arguments))
    record = ToolCallRecord(
        server, tool, dict(arguments), ok, duration, declined, error, hosted, label, item_id, _via.get(), unreachable,
        approval,
    )  # fmt: skip
    log.calls.append(record)
    if log.audit is not None:
        log.audit.tool_call(record, result)
