"""`agentdeck audit tail|query|stats`: read the audit trail as tables or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from app.audit.reading import FAILED, REFUSED, Query, Trail, tool_stats
from app.commands.common import load, stderr, stdout
from app.errors import ConfigError


def open_trail_file(config: str | None, path: str | None) -> Trail:
    """The trail named by --path, else by the config's `audit:` section."""
    if path is not None:
        p = Path(path)
        return Trail(p, "sqlite" if p.suffix in (".sqlite", ".sqlite3", ".db") else "jsonl")
    loaded = load(config)
    settings = loaded.config.audit
    if settings is None:
        raise ConfigError(
            f"{loaded.path} has no audit: section, so nothing is audited",
            hint="add `audit: {path: audit.jsonl}` to it, or read a trail with --path FILE",
        )
    from app.audit.trail import audit_path
    from app.state import state_dir

    return Trail(audit_path(settings, loaded.resolve_path, state_dir()), settings.format)


def _what(record: dict[str, Any]) -> str:
    kind = record.get("kind")
    if kind == "tool_call":
        return f"{record.get('server')}.{record.get('tool')}"
    if kind == "model_call":
        tokens = f" {record.get('input_tokens', '?')}→{record.get('output_tokens', '?')} tok"
        return f"{record.get('model')}{tokens if 'input_tokens' in record else ''}"
    return str(kind)


def _detail(record: dict[str, Any]) -> str:
    if record.get("error"):
        text = " ".join(str(record["error"]).split())  # one line, however the server formatted it
        return text if len(text) <= 120 else text[:119] + "…"
    approval = record.get("approval")
    parts = []
    if isinstance(approval, dict):
        parts.append(f"{approval.get('decision')} by {approval.get('by')}")
    if "arguments" in record:
        parts.append(json.dumps(record["arguments"], ensure_ascii=False)[:80])
    return "; ".join(parts)


def _duration(record: dict[str, Any]) -> str:
    ms = record.get("duration_ms")
    return _ms(ms) if isinstance(ms, int | float) else ""


def line_of(record: dict[str, Any]) -> str:
    """One record on one line (tail)."""
    ts = str(record.get("ts", ""))[:23].replace("T", " ")
    who = record.get("user", "?")
    agent = f" [{record['agent']}]" if record.get("agent") else ""
    status = record.get("status", "")
    took = _duration(record)
    detail = _detail(record)
    tail = f"  {detail}" if detail else ""
    return f"{ts}  {who}{agent}  {_what(record)}  {status}{'  ' + took if took else ''}{tail}"


def _print_json_lines(records: Iterable[dict[str, Any]]) -> None:
    for record in records:
        print(json.dumps(record, ensure_ascii=False), flush=True)


def _warn_skipped(trail: Trail) -> None:
    if trail.skipped:
        stderr().print(f"[yellow]warning:[/] {trail.skipped} line(s) of {trail.path} are not whole records; skipped")


def tail_command(config: str | None, path: str | None, lines: int, follow: bool, json_out: bool) -> None:
    """The last records, then (with -f) each new one as it is written."""
    trail = open_trail_file(config, path)
    last: list[dict[str, Any]] = []
    for record in trail.records():
        last.append(record)
        if len(last) > lines:
            last.pop(0)
    show = _print_json_lines if json_out else lambda rs: [print(line_of(r), flush=True) for r in rs]
    show(last)
    _warn_skipped(trail)
    if follow:
        try:
            show(trail.follow())
        except KeyboardInterrupt:
            return


def query_command(config: str | None, path: str | None, query: Query, limit: int | None, json_out: bool) -> None:
    """The records matching every filter, oldest first (the last --limit of them)."""
    trail = open_trail_file(config, path)
    found = [r for r in trail.records() if query.matches(r)]
    if limit is not None:
        found = found[-limit:]
    _warn_skipped(trail)
    if json_out:
        _print_json_lines(found)
        return
    out = stdout()
    if not found:
        out.print("no matching records", style="dim")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("time (UTC)", "user", "agent", "call", "status", "took", "detail"):
        wrap = column in ("detail", "call")
        table.add_column(column, overflow="fold", no_wrap=not wrap, justify="right" if column == "took" else "left")
    for r in found:
        status = str(r.get("status", ""))
        style = "red" if status in FAILED else "yellow" if status in REFUSED else ""
        cells = [str(r.get("ts", ""))[:19].replace("T", " "), str(r.get("user", "")), str(r.get("agent") or "")]
        cells += [_what(r), status, _duration(r), _detail(r)]
        table.add_row(*(Text(c) for c in cells), style=style or None)
    out.print(table)
    out.print(f"{len(found)} record(s)", style="dim")


def stats_command(config: str | None, path: str | None, query: Query, json_out: bool) -> None:
    """Calls, errors and p50/p95 per server and tool."""
    trail = open_trail_file(config, path)
    rows = tool_stats(r for r in trail.records() if query.matches(r))
    _warn_skipped(trail)
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    out = stdout()
    if not rows:
        out.print("no tool calls recorded", style="dim")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("server", "tool", "calls", "errors", "declined", "p50", "p95"):
        table.add_column(column, justify="left" if column in ("server", "tool") else "right")
    for row in rows:
        cells = [row["server"], row["tool"], str(row["calls"]), str(row["errors"]), str(row["declined"])]
        cells += [_ms(row["p50_ms"]), _ms(row["p95_ms"])]
        table.add_row(*(Text(c) for c in cells), style="red" if row["errors"] else None)
    out.print(table)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"
