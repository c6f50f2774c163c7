"""The chat's view of its servers: /servers, /reconnect, and servers that join after the prompt appears."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from app.chat import render
from app.connect import ServerSlot
from app.deck import Deck
from app.errors import AgentdeckError
from app.server_requests import PromptAsker


async def show_servers(deck: Deck, console: Console) -> None:
    """/servers: each server's state (starting, connected, failed and why), tool count and last error."""
    assert deck.pool is not None
    slots = deck.pool.slots
    # A ping finds a streamable HTTP server that went away; stdio and SSE ones are already known.
    await asyncio.gather(*(s.server.probe() for s in slots.values() if s.connected and hasattr(s.server, "probe")))
    table = Table(box=None, pad_edge=False)
    for col in ("server", "status", "tools", "last error"):
        table.add_column(col, overflow="fold")
    for name, slot in slots.items():
        server = slot.server
        down = getattr(server, "down", None) if slot.connected else None
        if not slot.ready.is_set():
            status, error = "starting", None
        elif not slot.connected:
            status, error = "failed", slot.error
        elif down:
            status, error = "failed", f"down: {down} (/reconnect {name})"
        else:
            status, error = "connected", getattr(server, "last_error", None)
        names = server.cached_tool_names() if slot.connected else None
        tools = len(names) if names is not None else "-"
        table.add_row(name, status, str(tools), error or "")
    for name in deck.hosted:
        listing = deck.listings.get(name)
        tools = str(len(listing.tools)) if listing and listing.tools is not None else "-"
        table.add_row(name, "hosted (OpenAI connects)", tools, (listing.error if listing else None) or "")
    console.print(table)


async def reconnect(deck: Deck, console: Console, name: str) -> None:
    """/reconnect NAME: restart one local server and rewire the agents to it."""
    if name in deck.hosted:
        console.print(f"{name} is hosted: OpenAI connects to it, so there is nothing to reconnect", style="red")
        return
    if deck.pool is None or name not in deck.pool.slots:
        names = ", ".join(deck.pool.slots) if deck.pool else ""
        console.print(f"unknown server {name!r}; servers: {names}", style="red")
        return
    if not deck.pool.slots[name].ready.is_set():
        console.print(f"{name} is still starting; /servers shows when it is up", style="red")
        return
    with console.status(f"reconnecting {name}…"):
        error = await deck.reconnect(name)
    if error:
        console.print(render.error(f"{name}: {error}"))
    else:
        console.print(f"{name} reconnected", style="green")


def failed_at_start(deck: Deck) -> list[str]:
    """Failure paragraphs for required servers that did not start (optional ones are warnings)."""
    if deck.pool is None:
        return []
    return [s.failure_message() for s in deck.pool.slots.values() if s.ready.is_set() and s.required and s.error]


class LateServers:
    """Servers still starting when the prompt appeared: a bottom toolbar names them; a failure is printed."""

    def __init__(self, deck: Deck, console: Console) -> None:
        self.deck = deck
        self.console = console
        self.session: Any = None  # the prompt_toolkit session, once the prompt is up

    def toolbar(self) -> str:
        return f" starting: {', '.join(self.deck.starting())}… (their tools join when ready; /servers)"

    def attach(self, session: Any) -> None:
        """Show the toolbar on this prompt session while servers are starting, and listen for them."""
        self.session = session
        if self.deck.starting():
            session.bottom_toolbar = self.toolbar
            self.deck.listener = self.ready

    def ready(self, slot: ServerSlot) -> None:
        """Pool listener: a late server connected or failed."""
        from prompt_toolkit.application import run_in_terminal
        from prompt_toolkit.application.current import set_app

        if not self.deck.starting():
            self.deck.listener = None  # later failures (a /reconnect) are reported where they happen
            if self.session is not None:
                self.session.bottom_toolbar = None
        app = self.session.app if self.session is not None else None
        if not slot.connected and slot.error:
            message = slot.failure_message() + f"\n  (/reconnect {slot.name} tries again)"
            if app is not None and app.is_running:
                # The pool's tasks began before the prompt: say which application to print above.
                with set_app(app):
                    run_in_terminal(lambda: self.console.print(render.error(message)))
            else:
                self.console.print(render.error(message))
        if app is not None and app.is_running:
            app.invalidate()


async def wait_for_servers(deck: Deck, console: Console, agent_name: str, interactive: bool) -> bool:
    """Before a turn: wait for the servers the agent uses that are still starting. False: do not run it."""
    starting = deck.starting(agent_name)
    try:
        if starting and interactive:
            with console.status(f"waiting for {', '.join(starting)} to start… (Ctrl-C cancels)"):
                await deck.settle(agent_name)
        else:
            await deck.settle(agent_name)
    except AgentdeckError as exc:  # two servers offering one tool name: a config error, shown, not fatal
        console.print(render.error(exc.message + (f"\n  {exc.hint}" if exc.hint else "")))
        return False
    return True


def chat_asker(app: Any) -> PromptAsker:
    """Servers' questions at the chat prompt, with the streaming turn paused first."""

    def pause() -> None:
        if app.view is not None:
            app.view.flush()

    def show(text: str) -> None:
        pause()
        app.console.print(text, markup=False, highlight=False)

    async def ask(prompt: str) -> str:
        pause()
        return str(await app.ask(prompt))

    return PromptAsker(ask, show)
