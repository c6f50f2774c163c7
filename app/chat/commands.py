"""Slash commands: parsing, help text and suggestions."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

COMMANDS: dict[str, tuple[str, str]] = {
    "/help": ("", "show this help"),
    "/agents": ("", "list the agents"),
    "/agent": ("NAME", "switch agent (the conversation is kept)"),
    "/tools": ("", "the tools the current agent is offered"),
    "/servers": ("", "status of each server"),
    "/reconnect": ("NAME", "restart or reconnect a server"),
    "/clear": ("", "start a new conversation (a new session)"),
    "/history": ("", "show this conversation"),
    "/sessions": ("", "list saved sessions"),
    "/save": ("FILE", "write the conversation as Markdown (never over an existing file)"),
    "/save!": ("FILE", "write it even over an existing FILE (or: /save FILE --force)"),
    "/attach": ("PATH", "attach a text file or an image to your next message"),
    "/resources": ("", "the resources and templates the current agent's servers offer"),
    "/resource": ("URI", "attach a server's resource to your next message"),
    "/prompts": ("", "the prompts the current agent's servers offer"),
    "/prompt": ("NAME [k=v …]", "send a server's prompt as your next message"),
    "/logs": ("[NAME]", "a server's latest log messages (or how many each sent)"),
    "/roots": ("[NAME [+DIR|-DIR]]", "the folders each server may use; add or remove one (the server is told)"),
    "/approvals": ("[reset [TOOL]]", "remembered always/never answers; reset forgets them (all, or TOOL's)"),
    "/usage": ("", "tokens, estimated cost and tool calls so far"),
    "/exit": ("", "leave (Ctrl-D works too)"),
}
NEEDS_ARG = {name for name, (arg, _) in COMMANDS.items() if arg and not arg.startswith("[")}


@dataclass
class Command:
    name: str
    arg: str | None


class CommandError(Exception):
    """An unknown command or a missing argument, with a suggestion."""


def is_command(text: str) -> bool:
    return text.startswith("/") and not text.startswith("//")


def parse(text: str) -> Command:
    """`/agent support` -> Command('/agent', 'support'); unknown names get a did-you-mean."""
    try:
        parts = shlex.split(text.strip())
    except ValueError:
        parts = text.strip().split()
    name = parts[0].lower() if parts else "/"
    arg = " ".join(parts[1:]) or None
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise CommandError(f"unknown command {name}{hint} (type /help for the list)")
    if name in NEEDS_ARG and not arg:
        raise CommandError(f"{name} needs {COMMANDS[name][0]}: {name} {COMMANDS[name][0]}")
    return Command(name, arg)


def help_text() -> str:
    lines = [f"{name + (' ' + arg if arg else ''):<18} {desc}" for name, (arg, desc) in COMMANDS.items()]
    lines.append("")
    lines.append("After a handoff the prompt names the agent now answering; /agent NAME switches back.")
    lines.append("Enter sends; Esc then Enter inserts a new line. Ctrl-C cancels a running turn.")
    return "\n".join(lines)
