"""The chat loop: prompt, stream a turn with tool panels and approvals, handle slash commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app.approvals import ApprovalRequest
from app.chat import render
from app.chat.approvals import RememberedApprovals
from app.chat.commands import Command, help_text
from app.chat.servers import reconnect, show_servers, wait_for_servers
from app.chat.store import SessionStore, new_session_name
from app.chat.view import TurnDisplay, TurnView, keys_unechoed, stream_run
from app.deck import Deck
from app.runner import audited_run, describe_run_error, usage_dict
from app.telemetry import ToolCallLog, recording


class ChatApp:
    """One chat process: a connected Deck, a session, and the current agent."""

    def __init__(self, deck: Deck, store: SessionStore, session_name: str, console: Console, interactive: bool) -> None:
        self.deck = deck
        self.store = store
        self.session_name = session_name
        self.session = store.open(session_name)
        self.console = console
        self.interactive = interactive
        self.agent_name = deck.agent.name
        self.remembered = RememberedApprovals()
        self.usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self.tool_calls = 0
        self.hosted_calls = 0
        self.approvals = 0
        # The turn being shown, so an approval asked mid-stream (hosted) can pause its live text.
        self.view: TurnView | None = None
        self.prompt_session: Any = None
        # "ask" prompts in the terminal; "yes"/"no" decide every call (the only choices without a terminal).
        self.approve_mode = "ask" if interactive else "no"
        self.cost = 0.0
        self.unpriced = False
        self.attachments: list[Any] = []
        # agent-as-tool call id -> the calls made inside it (kept for /save; the session holds only the outer call)
        self.nested: dict[str, list[str]] = {}
        self.warned: set[str] = set()

    # ----- input -----

    async def ask(self, message: str) -> str:
        """A one-line answer from the user (approval questions)."""
        if self.prompt_session is None:
            return ""
        from prompt_toolkit import PromptSession

        return await PromptSession().prompt_async(message)

    # ----- commands -----

    async def command(self, cmd: Command) -> bool:
        """Run a slash command; False means exit."""
        out = self.console
        if cmd.name == "/exit":
            return False
        if cmd.name == "/help":
            out.print(help_text(), markup=False)
        elif cmd.name == "/agents":
            for name, spec in self.deck.loaded.config.agents.items():
                mark = "*" if name == self.agent_name else " "
                out.print(f"{mark} {name}  {spec.description or ''}".rstrip(), markup=False)
        elif cmd.name == "/agent":
            if cmd.arg in self.deck.unavailable:
                out.print(f"agent {cmd.arg!r} is unavailable: {self.deck.unavailable[cmd.arg]}", style="red")
            elif cmd.arg not in self.deck.agents:
                known = ", ".join(self.deck.agents)
                out.print(f"unknown agent {cmd.arg!r}; agents: {known}", style="red")
            else:
                self.agent_name = cmd.arg
                out.print(render.handoff(cmd.arg))
        elif cmd.name == "/tools":
            await self.show_tools()
        elif cmd.name == "/servers":
            await show_servers(self.deck, self.console)
        elif cmd.name == "/reconnect":
            await reconnect(self.deck, self.console, cmd.arg or "")
        elif cmd.name == "/clear":
            self.session_name = new_session_name()
            self.session = self.store.open(self.session_name)
            self.remembered = RememberedApprovals()  # "always" and "never" belong to the conversation
            out.print(f"new conversation: session {self.session_name}", style="dim")
        elif cmd.name == "/approvals":
            self.approvals_command(cmd.arg)
        elif cmd.name == "/history":
            out.print(await self.transcript(), markup=False, highlight=False)
        elif cmd.name == "/sessions":
            for info in self.store.list():
                mark = "*" if info.name == self.session_name else " "
                out.print(f"{mark} {info.name}  {info.messages} items  {info.updated}", markup=False)
        elif cmd.name in ("/save", "/save!"):
            await self.save(cmd.arg or "", force=cmd.name == "/save!")
        elif cmd.name == "/attach":
            self.attach(cmd.arg or "")
        elif cmd.name in ("/resources", "/resource", "/prompts", "/prompt", "/logs", "/roots"):
            from app.chat import extras

            if cmd.name == "/logs":
                extras.show_logs(self, cmd.arg)
            elif cmd.name == "/roots":
                await extras.roots(self, cmd.arg)
            elif cmd.name == "/resources":
                await extras.show_resources(self)
            elif cmd.name == "/resource":
                await extras.attach_resource(self, cmd.arg or "")
            elif cmd.name == "/prompts":
                await extras.show_prompts(self)
            else:
                await extras.send_prompt(self, cmd.arg or "")
        elif cmd.name == "/usage":
            u = self.usage
            cost = "n/a (a model without a price: add it to defaults.prices)" if self.unpriced else f"${self.cost:.4f}"
            out.print(
                f"requests {u['requests']}, input tokens {u['input_tokens']}, output tokens {u['output_tokens']}, "
                f"total {u['total_tokens']}, estimated cost {cost}, tool calls {self.tool_calls} "
                f"({self.hosted_calls} hosted), approvals asked {self.approvals}",
                markup=False,
            )
        return True

    async def save(self, arg: str, force: bool) -> None:
        """Write the conversation as Markdown, full tool results included; an existing file needs force."""
        words = arg.split()
        if "--force" in words:
            force, words = True, [w for w in words if w != "--force"]
        path = Path(" ".join(words)).expanduser()
        text = await self.transcript(markdown=True)
        try:
            with path.open("w" if force else "x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            self.console.print(f"{path} exists; /save! {path} (or /save {path} --force) replaces it", style="red")
        except OSError as exc:
            self.console.print(f"cannot write {path}: {exc.strerror}", style="red")
        else:
            self.console.print(f"saved to {path}", style="dim")

    def attach(self, arg: str) -> None:
        """Read a file now and send it with the next message."""
        from app.attachments import load_attachment
        from app.errors import UsageError

        try:
            attachment = load_attachment(arg)
        except UsageError as exc:
            self.console.print(exc.message, style="red", markup=False)
            return
        self.attachments.append(attachment)
        names = ", ".join(a.name for a in self.attachments)
        self.console.print(f"attached {attachment.name}; it goes with your next message ({names})", style="dim")

    def approvals_command(self, arg: str | None) -> None:
        """`/approvals` lists remembered answers; `/approvals reset [TOOL]` forgets them."""
        words = (arg or "").split()
        if not words:
            lines = self.remembered.lines()
            self.console.print(
                "\n".join(lines) if lines else "no remembered approvals in this session", markup=False, style="dim"
            )
        elif words[0] == "reset" and len(words) <= 2:
            tool = words[1] if len(words) == 2 else None
            gone = self.remembered.reset(tool)
            if gone:
                self.console.print(f"forgot: {', '.join(gone)}", markup=False, style="dim")
            elif tool is not None:
                self.console.print(f"nothing remembered for {tool!r}; /approvals lists what is", style="red")
            else:
                self.console.print("no remembered approvals in this session", style="dim")
        else:
            self.console.print("usage: /approvals  or  /approvals reset [TOOL]", style="red")

    async def show_tools(self) -> None:
        from app.build import offered_tools
        from app.commands.tools import _kind

        table = Table(box=None, pad_edge=False)
        for col in ("tool", "server", "kind"):
            table.add_column(col)
        try:
            for public, server, tool in await offered_tools(self.deck.agents[self.agent_name], self.deck.servers):
                table.add_row(public, server, _kind(tool))
        except Exception as exc:  # noqa: BLE001 - a dead server must not end the chat
            self.console.print(render.error(f"listing tools failed: {describe_run_error(exc)}"))
            return
        self.console.print(table)

    # ----- history -----

    async def transcript(self, markdown: bool = False) -> str:
        """The conversation as text (Markdown for /save), tool calls included."""
        return render.transcript(await self.session.get_items(), self.session_name, markdown, self.nested)

    # ----- turns -----

    async def approve(self, request: ApprovalRequest) -> tuple[bool, str | None]:
        """The chat's approver: remembered answers, --approve, or y / a / n (+reason) / N."""
        remembered = self.remembered.decided(request)
        if remembered is not None:
            return remembered, None
        if self.approve_mode != "ask":
            approved = self.approve_mode == "yes"
            if not approved:
                self.show_declined(request.tool, None)
            return approved, None
        if self.view is not None:
            self.view.flush()
        if request.hosted:
            # OpenAI asks before the call shows in the stream, so say here what is being approved.
            self.console.print(render.tool_call(request.server, request.tool, request.arguments, hosted=True))
        while True:
            answer = (await self.ask("  allow? [y]es once / [a]lways / [n]o / [N]ever: ")).strip()
            if answer in ("y", "yes", "Y"):
                return True, None
            if answer in ("a", "always"):
                self.remembered.remember(request, True)
                return True, None
            if answer == "N":
                self.remembered.remember(request, False)
                self.show_declined(request.tool, None)
                return False, None
            if answer in ("n", "no"):
                reason = (await self.ask("  reason (optional, sent to the model): ")).strip() or None
                self.show_declined(request.tool, reason)
                return False, reason

    def show_declined(self, tool: str, reason: str | None) -> None:
        if self.interactive:
            self.console.print(render.declined(tool, reason))

    async def turn(self, text: str, items: list[dict[str, Any]] | None = None) -> None:
        """One user message (or a prompt's `items`): stream the answer, show tools, resolve approvals, save."""
        from agents import RunConfig

        from app.tracing import configure

        if not await wait_for_servers(self.deck, self.console, self.agent_name, self.interactive):
            return
        agent = self.deck.agents[self.agent_name]
        self.deck.interaction.agent = self.agent_name  # whose model answers servers' sampling requests
        history = await self.session.get_items()
        from app.attachments import user_message

        message = user_message(text, self.attachments)
        turn_input = [{"role": "user", "content": text}] if isinstance(message, str) else message
        if items is not None:  # a server's prompt: its messages, then anything attached
            turn_input = [*items, *(turn_input if self.attachments else [])]
        start_input: Any = [*history, *turn_input]
        view = self.view = TurnView(self.console, self.interactive)
        self.deck.interaction.progress = view.status  # servers' progress notifications, under the running call
        display = TurnDisplay(self.console, self.deck, view, panels=self.interactive)
        run_config = RunConfig(
            tracing_disabled=not configure(self.deck.loaded, self.deck.agents), workflow_name="agentdeck chat"
        )
        max_turns = self.deck.loaded.config.agents[self.agent_name].max_turns
        echo = keys_unechoed(sys.stdin) if self.interactive else contextlib.nullcontext()
        with recording() as log, echo, audited_run(self.deck, self.agent_name, turn_input, log, None) as audit:
            try:
                stream = await stream_run(
                    agent,
                    start_input,
                    display=display,
                    approver=self.approve,
                    log=log,
                    max_turns=max_turns,
                    run_config=run_config,
                )
            except (asyncio.CancelledError, KeyboardInterrupt):
                if display.stream is not None:
                    display.stream.cancel()
                view.flush()
                self.console.print("turn cancelled; nothing from it was saved", style="yellow")
                audit.fail("cancelled")
                return
            except Exception as exc:  # noqa: BLE001 - a failed turn is shown, the chat goes on
                view.flush()
                self.console.print(render.error(describe_run_error(exc)))
                audit.fail("error", describe_run_error(exc))
                return
            finally:
                self.view = None
                self.deck.interaction.progress = None
            final = stream.final_output
            audit.finish(
                final if isinstance(final, str) else json.dumps(final, default=str),
                usage_dict(stream.context_wrapper.usage),
                stream.last_agent.name,
            )
        self.attachments = []  # sent with this message, which is now part of the conversation
        self.nested.update(display.nested_calls)
        for warning in log.warnings:
            if warning not in self.warned:  # once per chat, however many turns meet it
                self.warned.add(warning)
                self.console.print(f"warning: {warning}", style="yellow", markup=False)
        self.count(log, display, stream)
        if self.agent_name != stream.last_agent.name:
            self.agent_name = stream.last_agent.name
        await self.session.add_items(stream.to_input_list()[len(history) :])
        if not self.interactive:
            self.console.print(
                stream.final_output if isinstance(stream.final_output, str) else json.dumps(stream.final_output),
                markup=False,
                highlight=False,
            )

    def count(self, log: ToolCallLog, display: TurnDisplay, stream: Any) -> None:
        """Add a finished turn to /usage: tokens, estimated cost and calls (hosted ones timed from the stream)."""
        from app.prices import PriceTable
        from app.runner import add_sampling, usage_dict

        for record in log.calls:
            times = display.hosted_times.get(record.item_id or "")
            if record.hosted and times is not None and len(times) == 2:
                record.duration_ms = (times[1] - times[0]) * 1000
        self.tool_calls += len(log.calls)
        self.hosted_calls += sum(1 for r in log.calls if r.hosted)
        self.approvals += log.approvals
        usage = add_sampling(usage_dict(stream.context_wrapper.usage), self.deck.interaction.take_usage())
        for key in self.usage:
            self.usage[key] += usage[key]
        prices = PriceTable(self.deck.loaded.config.defaults.prices)
        cost = prices.cost(self.deck.models.model_name(stream.last_agent.name), usage)
        if cost is None:
            self.unpriced = True
        else:
            self.cost += cost
