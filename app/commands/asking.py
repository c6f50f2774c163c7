"""Answering servers on a terminal: their forms and questions (TerminalAsker), their progress (ProgressLine)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from rich.console import Console

from app.commands.common import stderr
from app.errors import UsageError
from app.server_requests import Asker, Declining, PromptAsker


class TerminalAsker(PromptAsker):
    """Servers' questions on the terminal: prompts on standard error, answers from standard input."""

    def __init__(self) -> None:
        console = stderr()
        # Set while an answer streams: called first, so a question is not drawn into the live text.
        self.pause: Any = None

        def show(text: str) -> None:
            if self.pause is not None:
                self.pause()
            console.print(text, markup=False)

        async def ask(prompt: str) -> str:
            if self.pause is not None:
                self.pause()
            console.print(prompt, end="", markup=False)
            return (await asyncio.to_thread(sys.stdin.readline)).rstrip("\n")

        super().__init__(ask, show)


def pick_asker(elicit: str | None) -> Asker:
    """--elicit: ask on a terminal (the default there), decline otherwise."""
    interactive = sys.stdin.isatty()
    mode = elicit or ("ask" if interactive else "decline")
    if mode == "ask" and not interactive:
        raise UsageError("--elicit ask needs a terminal on standard input", hint="use --elicit decline")
    return TerminalAsker() if mode == "ask" else Declining()


class ProgressLine:
    """Progress notifications on one line of standard error, redrawn in place and erased when done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown = False

    def __call__(self, text: str) -> None:
        width = max(self.console.width - 1, 20)
        self.console.file.write("\r\x1b[K" + text[:width])
        self.console.file.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (before the answer or an error is printed)."""
        if self.shown:
            self.console.file.write("\r\x1b[K")
            self.console.file.flush()
            self.shown = False


def progress_line() -> ProgressLine | None:
    """A progress line when standard error is a terminal, else None (progress is then not shown)."""
    console = stderr()
    return ProgressLine(console) if console.is_terminal else None
