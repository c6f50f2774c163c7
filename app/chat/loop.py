"""Reading the user's input: prompt_toolkit on a terminal, one line per message from a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from app.chat.app import ChatApp
from app.chat.commands import CommandError, is_command, parse
from app.chat.servers import LateServers


async def interactive_loop(app: ChatApp, late: LateServers | None = None) -> None:
    """prompt_toolkit input with history and completion; Ctrl-C cancels turns, Ctrl-D exits."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    from app.chat.complete import ChatCompleter

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    history = FileHistory(str(app.store.path.parent / "history"))
    session: PromptSession[str] = PromptSession(history=history, completer=ChatCompleter(app), key_bindings=bindings)
    app.prompt_session = session
    if late is not None:
        late.attach(session)
    loop = asyncio.get_running_loop()
    while True:
        try:
            text = await session.prompt_async(f"{app.agent_name}> ")
        except KeyboardInterrupt:
            answer = ""
            with contextlib.suppress(KeyboardInterrupt, EOFError):
                answer = await PromptSession().prompt_async("exit agentdeck? [y/N] ")
            if answer.strip().lower() in ("y", "yes"):
                return
            continue
        except EOFError:
            return
        text = text.strip()
        if not text:
            continue
        if is_command(text):
            if not await run_command_line(app, text):
                return
            continue
        task = asyncio.create_task(app.turn(text))
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            app.console.print("turn cancelled; nothing from it was saved", style="yellow")
        finally:
            loop.remove_signal_handler(signal.SIGINT)


async def pipe_loop(app: ChatApp, stdin: Any) -> None:
    """Non-terminal input: one message (or command) per line, plain answers."""
    while True:
        raw = await asyncio.to_thread(stdin.readline)
        if not raw:
            return
        text = raw.strip()
        if not text:
            continue
        if is_command(text):
            if not await run_command_line(app, text):
                return
            continue
        await app.turn(text)


async def run_command_line(app: ChatApp, text: str) -> bool:
    """Parse and run one slash command; False means exit. Parse errors are shown, not raised."""
    try:
        return await app.command(parse(text))
    except CommandError as exc:
        app.console.print(str(exc), style="red")
        return True
