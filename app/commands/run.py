"""`agentdeck run`: one question, one answer."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from app.approvals import ApprovalRequest, Approver, approve_all, decline_all
from app.commands.asking import TerminalAsker, pick_asker, progress_line
from app.commands.common import load, run_async, status_console, stderr, stdout
from app.errors import UsageError
from app.server_requests import Asker
from app.startup import opened_deck


def tty_approver() -> Approver:
    """Prompt on the terminal for each tool call that needs approval."""
    console = stderr()

    async def ask(request: ApprovalRequest) -> tuple[bool, str | None]:
        arguments = request.arguments
        shown = arguments if len(arguments) <= 400 else arguments[:400] + "…"
        where = f"{request.server}." if request.server else ""
        hosted = " [dim](hosted)[/]" if request.hosted else ""
        console.print(f"[bold yellow]approve[/] {where}{request.tool} {shown}{hosted}", highlight=False)
        answer = await asyncio.to_thread(input, "Run this tool? [y]es / [n]o (or type a reason to decline): ")
        answer = answer.strip()
        if answer.lower() in ("y", "yes"):
            return True, None
        if answer.lower() in ("", "n", "no"):
            return False, None
        return False, answer

    return ask


def pick_approver(approve: str | None) -> Approver:
    """--approve, defaulting to ask on a terminal and no otherwise."""
    interactive = sys.stdin.isatty()
    mode = approve or ("ask" if interactive else "no")
    if mode == "ask" and not interactive:
        raise UsageError("--approve ask needs a terminal on standard input", hint="use --approve yes or --approve no")
    return {"yes": approve_all, "no": decline_all}.get(mode) or tty_approver()


def read_question(question: str | None) -> str:
    """The question argument, or standard input for `-` (and for no argument when input is piped)."""
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise UsageError(
                "no question given", hint='agentdeck run "What is in my notes?"  (or pipe it in: … | agentdeck run -)'
            )
        question = sys.stdin.read()
    if not question.strip():
        raise UsageError("the question is empty", hint='agentdeck run "What is in my notes?"')
    return question


def run_command(
    question: str | None,
    *,
    agent: str | None,
    model: str | None,
    json_out: bool,
    approve: str | None,
    config: str | None,
    files: list[str] | None = None,
    quiet: bool = False,
    elicit: str | None = None,
    resources: list[str] | None = None,
    user: str | None = None,
) -> None:
    """Load, connect, run and print: streamed with tool panels on a terminal, the answer alone otherwise."""
    from app.attachments import load_attachment, user_message

    text = read_question(question)
    attachments = [load_attachment(path) for path in files or []]
    loaded = load(config)
    approver = pick_approver(approve)
    asker = pick_asker(elicit)
    streamed = not json_out and not quiet and sys.stdout.isatty()

    async def go() -> None:
        async with opened_deck(
            loaded, agent, status_console=status_console(not quiet), model_override=model, audited=True, user=user
        ) as deck:
            deck.interaction.asker = asker
            for warning in deck.warnings():
                stderr().print(f"[yellow]warning:[/] {warning}")
            if deck.models.is_offline(deck.agent.name) and not json_out and not quiet:
                hint = "" if deck.loaded.env.get("OPENAI_API_KEY") else "; set OPENAI_API_KEY to use OpenAI"
                stderr().print(f"[dim]Using the offline model ({deck.models.model_label(deck.agent.name)}){hint}.[/]")
            from app.runner import run_question  # the SDK is loaded by now (app.startup)

            if resources:
                from app.resources import read_resource

                servers = {server.name: server for server in deck.agent.mcp_servers}
                for uri in resources:
                    hint = "check the URI; in `agentdeck chat`, /resources lists what each server offers"
                    attachments.append((await read_resource(servers, uri, hint))[1])

            drive = streamed_driver(deck, approver, asker) if streamed else None
            # Not streamed (--quiet, --json, output to a pipe): progress on standard error's own line.
            line = None if streamed else progress_line()
            if line is not None:
                deck.interaction.progress = line
                if isinstance(asker, TerminalAsker):
                    asker.pause = line.clear
            try:
                outcome = await run_question(deck, user_message(text, attachments), approver, drive=drive)
            finally:
                if line is not None:
                    line.clear()
        for warning in outcome.warnings:
            stderr().print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
        if json_out:
            print(json.dumps(outcome.as_dict(), ensure_ascii=False))
        elif not streamed:
            stdout().print(outcome.output, markup=False)

    run_async(go())


def streamed_driver(deck: Any, approver: Approver, asker: Asker | None = None) -> Any:
    """Run the question streamed: the answer appears as it is written, tool calls as panels (as in chat)."""
    from app.chat.view import TurnDisplay, TurnView, keys_unechoed, stream_run

    console = stdout()

    async def drive(agent: Any, question: Any, log: Any, max_turns: int, run_config: Any) -> Any:
        view = TurnView(console, live=True)
        deck.interaction.progress = view.status
        if isinstance(asker, TerminalAsker):
            asker.pause = view.flush
        display = TurnDisplay(console, deck, view)
        with keys_unechoed(sys.stdin):
            try:
                return await stream_run(
                    agent, question, display=display, approver=approver, log=log, max_turns=max_turns,
                    run_config=run_config,
                )  # fmt: skip
            finally:
                view.flush()

    return drive
