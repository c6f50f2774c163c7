"""`agentdeck run`: one question, one answer."""

from __future__ import annotations

import asyncio
import json
import sys

from app.approvals import ApprovalRequest, Approver, approve_all, decline_all
from app.commands.common import load, run_async, stderr, stdout
from app.deck import Deck, DeckOptions
from app.errors import UsageError
from app.runner import run_question


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


def run_command(
    question: str, *, agent: str | None, model: str | None, json_out: bool, approve: str | None, config: str | None
) -> None:
    """Load, connect, run and print."""
    if not question.strip():
        raise UsageError("the question is empty", hint='agentdeck run "What is in my notes?"')
    loaded = load(config)
    approver = pick_approver(approve)

    async def go() -> None:
        async with Deck(loaded, DeckOptions(agent=agent, model_override=model)) as deck:
            for warning in deck.warnings():
                stderr().print(f"[yellow]warning:[/] {warning}")
            if deck.models.is_offline(deck.agent.name) and not json_out:
                hint = "" if deck.loaded.env.get("OPENAI_API_KEY") else "; set OPENAI_API_KEY to use OpenAI"
                stderr().print(f"[dim]Using the offline model ({deck.models.model_label(deck.agent.name)}){hint}.[/]")
            outcome = await run_question(deck, question, approver)
        for warning in outcome.warnings:
            stderr().print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
        if json_out:
            print(json.dumps(outcome.as_dict(), ensure_ascii=False))
        else:
            stdout().print(outcome.output, markup=False)

    run_async(go())
