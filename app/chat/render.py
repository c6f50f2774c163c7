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


def tool_call(server: str | None, tool: str, arguments: str | dict[str, Any], hosted: bool = False) -> RenderableType:
    """`⚙ server.tool(args)` as a line; calls OpenAI makes on a hosted server are marked so."""
    text = Text("⚙ ", style="cyan")
    text.append(f"{server}." if server else "", style="dim")
    text.append(tool, style="bold cyan")
    text.append(f"({format_arguments(arguments)})", style="dim")
    if hosted:
        text.append("  hosted", style="magenta")
    return text


def tool_result(ok: bool, duration_ms: float | None, output: str, waited_ms: float | None = None) -> RenderableType:
    """`  ✓ 12 ms  preview…` or a red error panel; time spent waiting for an approval is shown apart."""
    took = f"{duration_ms:.0f} ms" if duration_ms is not None else ""
    if waited_ms:
        took += f" (approval took {waited_ms / 1000:.1f} s)"
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


def handoff(target: str, reason: str | None = None) -> RenderableType:
    """`→ billing`, with the reason the model gave when it gave one."""
    text = Text(f"→ {target}", style="bold magenta")
    if reason:
        text.append(f": {shorten(reason, MAX_PREVIEW)}", style="magenta")
    return text


def markdown(text: str) -> RenderableType:
    """Assistant text as Markdown that keeps line breaks and angle-bracketed text."""
    from app.chat.markdown import markdown as faithful

    return faithful(text)


def error(message: str) -> RenderableType:
    return Panel(Text(message), title="error", border_style="red", expand=False)


def text_of(content: Any) -> str:
    """The text of a message or tool output, whatever its shape."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    if isinstance(content, dict):
        if content.get("type") == "input_image":
            return "\n[image attached]"
        return str(content.get("text") or content.get("output") or "")
    return "" if content is None else str(content)


def transcript(items: list[Any], session: str, markdown: bool, nested: dict[str, list[str]] | None = None) -> str:
    """A stored conversation as text (Markdown for /save), tool calls included."""
    from app.offline.rules import call_output_text

    lines = [f"# agentdeck session {session}", ""] if markdown else []

    def said(who: str, content: Any) -> None:
        lines.extend([f"**{who}:** {text_of(content)}" if markdown else f"{who.lower()}: {text_of(content)}", ""])

    def called(what: str, call: str) -> None:
        lines.append(f"- {what} `{call}`" if markdown else f"  {what} {call}")

    def result(output: str) -> None:
        if markdown:  # a saved conversation keeps every result whole
            fence = "~~~~" if "```" in output else "```"
            lines.extend(
                ["- tool result:", "", f"  {fence}", *(f"  {line}" for line in output.splitlines()), f"  {fence}", ""]
            )
        else:
            lines.extend([f"  tool result: {shorten(output, 300)}", ""])

    for item in items:
        kind, role = item.get("type"), item.get("role")
        if role == "user":
            said("You", item.get("content"))
        elif role == "assistant" or kind == "message":
            said("Assistant", item.get("content"))
        elif kind == "function_call":
            called("tool call", f"{item.get('name')}({item.get('arguments')})")
        elif kind == "function_call_output":
            for line in (nested or {}).get(str(item.get("call_id")), []):
                called("call inside", line)
            result(text_of(item.get("output")))
        elif kind == "mcp_call":
            called("hosted tool call", f"{item.get('server_label')}.{item.get('name')}({item.get('arguments')})")
            result(call_output_text(item))
    return "\n".join(lines).rstrip() + "\n"
