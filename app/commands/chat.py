"""`agentdeck chat`: the interactive terminal chat (or line-by-line over a pipe)."""

from __future__ import annotations

import sys

from app.commands.common import load, run_async, status_console, stderr
from app.errors import UsageError


def chat_command(
    config: str | None, agent: str | None, session: str | None, new: bool, approve: str | None, user: str | None = None
) -> None:
    """Connect once, then chat until /exit, Ctrl-D or the end of standard input."""
    from rich.console import Console

    from app.chat.store import SessionStore, new_session_name, valid_session_name
    from app.startup import opened_deck
    from app.state import state_dir

    if session and new:
        raise UsageError("give --session NAME or --new, not both")
    if session is not None and not valid_session_name(session):
        raise UsageError(f"invalid session name {session!r}", hint="use letters, digits, '.', '_' and '-'")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if approve == "ask" and not interactive:
        raise UsageError("--approve ask needs a terminal", hint="use --approve yes or --approve no")
    loaded = load(config)
    store = SessionStore(state_dir())
    name = session or new_session_name()

    async def go() -> None:
        # Every agent can be switched to, so the deck builds them all (sharing the connected servers). On a
        # terminal the prompt comes up while slow servers are still starting; over a pipe all are waited for.
        async with opened_deck(
            loaded, agent, status_console=status_console(interactive), all_agents=True, background=interactive,
            audited=True, user=user, session=f"chat:{name}",
        ) as deck:  # fmt: skip
            from app.chat.app import ChatApp
            from app.chat.loop import interactive_loop, pipe_loop
            from app.chat.servers import LateServers, failed_at_start

            console = (
                Console(highlight=False) if interactive else Console(highlight=False, soft_wrap=True, no_color=True)
            )
            for warning in deck.warnings():
                stderr().print(f"[yellow]warning:[/] {warning}")
            app = ChatApp(deck, store, name, console, interactive)
            if approve is not None:
                app.approve_mode = approve
            if interactive:
                from app.chat import render
                from app.chat.servers import chat_asker

                deck.interaction.asker = chat_asker(app)  # servers' forms and URLs are asked at the prompt

                for failure in failed_at_start(deck):
                    console.print(render.error(failure))
                resumed = await app.session.get_items()
                label = deck.models.model_label(deck.agent.name)
                console.print(
                    f"[bold]agentdeck chat[/] — agent [cyan]{deck.agent.name}[/] on {label}; session "
                    f"[cyan]{name}[/]{' (resumed, ' + str(len(resumed)) + ' items)' if resumed else ''}. "
                    "/help for commands, Ctrl-D to exit."
                )
                await interactive_loop(app, LateServers(deck, console))
            else:
                await pipe_loop(app, sys.stdin)

    run_async(go())
