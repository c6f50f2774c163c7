"""What goes into an audit record: who, which run, which call, and how much of its data."""

from __future__ import annotations

import fnmatch
import getpass
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.audit.writer import AuditWriter
from app.config.governance import AuditConfig, is_regex
from app.config.redact import MASK, mask_known, redact

PREVIEW_CHARS = 200


def caller_identity(user: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--user, else $AGENTDECK_USER, else the login name."""
    env = os.environ if environ is None else environ
    if user:
        return user
    if env.get("AGENTDECK_USER"):
        return env["AGENTDECK_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def audit_path(config: AuditConfig, resolve: Any, state: Path) -> Path:
    """Where the trail is written: audit.path (relative to the config's folder) or the state directory."""
    if config.path is not None:
        return Path(resolve(config.path))
    return state / ("audit.sqlite" if config.format == "sqlite" else "audit.jsonl")


def now_iso() -> str:
    """UTC with milliseconds, the timestamp of every record."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditTrail:
    """One command's audit trail: who is calling, where records go, and what of each call is kept."""

    def __init__(
        self,
        config: AuditConfig,
        path: Path,
        user: str,
        session: str | None = None,
        secrets: Iterable[str] = (),
        source: str = "cli",
    ) -> None:
        self.config = config
        self.user = user
        self.session = session
        self.source = source  # cli, gateway
        self.secrets = frozenset(secrets)
        self._globs = [p.lower() for p in config.redact if not is_regex(p)]
        self._regexes = [re.compile(p[1:-1], re.IGNORECASE) for p in config.redact if is_regex(p)]
        self.writer = AuditWriter(path, config.format, config.rotate)

    def run(
        self, agent: str | None, row: str | None = None, user: str | None = None, session: str | None = None
    ) -> AuditRun:
        """A new run (a question, a chat turn, a batch row, a gateway call) to attribute records to.

        `user` and `session` replace the trail's own (the gateway's callers are many).
        """
        return AuditRun(self, agent, row, user, session)

    def emit(self, kind: str, fields: dict[str, Any]) -> None:
        """Queue one record with the trail's identity."""
        record = {"ts": now_iso(), "kind": kind, "user": self.user, "source": self.source}
        if self.session is not None:
            record["session"] = self.session
        record.update({k: v for k, v in fields.items() if v is not None})
        self.writer.write(record)

    def close(self) -> str | None:
        """Flush and close; the failure to show, if writing failed after the trail opened."""
        self.writer.close()
        return self.writer.failure

    def arguments(self, arguments: Any) -> Any:
        """The arguments as this trail keeps them (None: not kept)."""
        mode = self.config.include_arguments
        if mode is False:
            return None
        if mode is True:
            return mask_known(arguments, self.secrets)
        return redact(self._mask_keys(arguments), self.secrets)

    def _mask_keys(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: MASK if self._listed(str(k)) else self._mask_keys(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask_keys(v) for v in value]
        return value

    def _listed(self, key: str) -> bool:
        lowered = key.lower()
        return any(fnmatch.fnmatchcase(lowered, g) for g in self._globs) or any(r.search(key) for r in self._regexes)

    def content(self, text: str | None) -> dict[str, Any] | None:
        """Size, hash and (as configured) a preview or all of a result's text, secrets masked."""
        mode = self.config.include_results
        if text is None or mode == "none":
            return None
        raw = text.encode("utf-8", "replace")
        out: dict[str, Any] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        if mode == "preview":
            out["preview"] = str(redact(text[:PREVIEW_CHARS], self.secrets))
        elif mode == "full":
            out["text"] = str(redact(text, self.secrets))
        return out


class AuditRun:
    """The records of one run, sharing its id."""

    def __init__(
        self, trail: AuditTrail, agent: str | None, row: str | None, user: str | None = None, session: str | None = None
    ) -> None:
        self.trail = trail
        self.agent = agent
        self.row = row
        self.user = user
        self.session = session
        self.id = uuid.uuid4().hex
        self._started = time.perf_counter()

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        who = {"user": self.user, "session": self.session}
        self.trail.emit(kind, {**who, "run_id": self.id, "agent": self.agent, "row": self.row, **fields})

    def start(self, question: Any) -> None:
        """The run begins."""
        self._started = time.perf_counter()
        self._emit("run_start", {"input": self.trail.content(input_text(question))})

    def end(self, status: str, output: str | None = None, usage: dict[str, int] | None = None, **extra: Any) -> None:
        """The run is over: ok, error or cancelled."""
        ms = round((time.perf_counter() - self._started) * 1000, 1)
        fields = {"status": status, "duration_ms": ms, "output": self.trail.content(output), "usage": usage}
        if extra.get("error"):
            extra["error"] = str(redact(extra["error"], self.trail.secrets))
        self._emit("run_end", {**fields, **extra})

    def tool_call(self, record: Any, result: Any = None) -> None:
        """One tool call (a telemetry.ToolCallRecord) and what it returned."""
        status = (
            "declined" if record.declined else "ok" if record.ok else "unreachable" if record.unreachable else "error"
        )
        fields: dict[str, Any] = {
            "server": record.server,
            "tool": record.tool,
            "status": status,
            "arguments": self.trail.arguments(record.arguments),
            "result": self.trail.content(result_text(result)) if result is not None else None,
            "error": self._error(record, result),
            "duration_ms": None if record.duration_ms is None else round(record.duration_ms, 1),
            "approval": record.approval,
            "hosted": True if record.hosted else None,
            "via": record.via,
        }
        self._emit("tool_call", fields)

    def denied(
        self, tool: str, arguments: Any, reason: str, status: str = "denied", approval: dict[str, str] | None = None
    ) -> None:
        """A call refused before it reached any server (the gateway's rules, rate limits and approvals)."""
        self._emit("tool_call", {"tool": tool, "status": status, "arguments": self.trail.arguments(arguments),
                                 "error": reason, "approval": approval})  # fmt: skip

    def _error(self, record: Any, result: Any) -> str | None:
        """Why a call failed: the transport's error, else the start of the tool's error result."""
        text = record.error or (result_text(result)[:PREVIEW_CHARS] if not record.ok and result is not None else None)
        return str(redact(text, self.trail.secrets)) if text else None

    def model_call(self, model: str, seconds: float, usage: Any, error: str | None) -> None:
        """One request to a model (the run's own, or one answering a server's sampling request)."""
        fields: dict[str, Any] = {
            "model": model,
            "status": "error" if error else "ok",
            "duration_ms": round(seconds * 1000, 1),
            "error": str(redact(error, self.trail.secrets)) if error else None,
        }
        if usage is not None:
            fields["input_tokens"] = getattr(usage, "input_tokens", None)
            fields["output_tokens"] = getattr(usage, "output_tokens", None)
        self._emit("model_call", fields)


def input_text(question: Any) -> str:
    """A run's input as text: the question, or the text parts of its messages."""
    if isinstance(question, str):
        return question
    return json.dumps(question, default=str, ensure_ascii=False)


def result_text(result: Any) -> str:
    """The text a tool result carries: its text blocks, other blocks as JSON."""
    if isinstance(result, str):
        return result
    content = getattr(result, "content", None)
    if content is None:
        return json.dumps(result, default=str, ensure_ascii=False)
    parts = []
    for block in content:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            dump = (
                block.model_dump(mode="json", by_alias=True, exclude_none=True)
                if hasattr(block, "model_dump")
                else block
            )
            parts.append(json.dumps(dump, default=str, ensure_ascii=False))
    return "\n".join(parts)
