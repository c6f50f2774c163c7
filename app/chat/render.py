"""How tool calls, results, handoffs and errors look in the terminal."""

from __future__ import annotations

import json
from typing import Any

from rich.console import RenderableType
from rich.panel import Panel
from rich.text import Text

MAX_VALUE = 60
MAX_PREVIEW = 160


def shorten(value: str, limit: int) -> str:
    """One line, at most `limit` characters, with an ellipsis when cut."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_arguments(arguments: str | dict[str, Any]) -> str:
    """`key=value` pairs with long values shortened."""
    if isinstance(arguments, str):
        raw = arguments
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return shorten(raw, MAX_VALUE * 2)
    if not isinstance(arguments, dict):
        return shorten(json.dumps(arguments, ensure_ascii=False), MAX_VALUE * 2)
    parts = []
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={shorten(repr(shown) if isinstance(value, str) else shown, MAX_VALUE)}")
    return ", ".join(parts)


def tool_call(server: str | None, tool: str, arguments: str | dict[str, Any]) -> RenderableType:
    """`⚙ server.tool(args)` as a line."""
    text = Text("⚙ ", style="cyan")
    text.append(f"{server}." if server else "", style="dim")
    text.append(tool, style="bold cyan")
    text.append(f"({format_arguments(arguments)})", style="dim")
    return text


def tool_result(ok: bool, duration_ms: float | None, output: str) -> RenderableType:
    """`  ✓ 12 ms  preview…` or a red error panel."""
    took = f"{duration_ms:.0f} ms" if duration_ms is not None else ""
    if ok:
        line = Text("  ✓ ", style="green")
        line.append(took, style="dim")
        line.append("  " + shorten(output, MAX_PREVIEW), style="dim")
        return line
    return Panel(
        Text(shorten(output, MAX_PREVIEW * 2)), title=f"tool error {took}".strip(), border_style="red", expand=False
    )


def declined(tool: str, reason: str | None) -> RenderableType:
    text = Text(f"  ✗ {tool} declined", style="yellow")
    if reason:
        text.append(f": {reason}", style="dim")
    return text


def handoff(target: str) -> RenderableType:
    return Text(f"→ {target}", style="bold magenta")


def error(message: str) -> RenderableType:
    return Panel(Text(message), title="error", border_style="red", expand=False)
