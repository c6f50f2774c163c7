"""The chat loop: prompt, stream a turn with tool panels and approvals, handle slash commands."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table

from app.approvals import ApprovalRequest, RunContext, ask, declined_message
from app.build import prefixed_name
from app.chat import render
from app.chat.commands import Command, help_text
from app.chat.store import SessionStore, new_session_name
from app.deck import Deck
from app.offline.rules import call_output_text
from app.runner import describe_run_error, server_of
from app.telemetry import ToolCallLog, ToolCallRecord, recording


class TurnView:
    """Streams assistant text as live Markdown and prints panels between text segments."""

    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.use_live = live
        self.live: Live | None = None
        self.buffer = ""

    def delta(self, text: str) -> None:
        self.buffer += text
        if not self.use_live:
            return
        if self.live is None:
            self.live = Live(Markdown(""), console=self.console, refresh_per_second=12, vertical_overflow="visible")
            self.live.start()
        self.live.update(Markdown(self.buffer))

    def flush(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.buffer = ""

    def show(self, renderable: Any) -> None:
        self.flush()
        self.console.print(renderable)


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
        self.always: set[str] = set()
        self.never: set[str] = set()
        self.usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self.tool_calls = 0
        self.hosted_calls = 0
        self.approvals = 0
        # The turn being shown, so an approval asked mid-stream (hosted) can pause its live text.
        self.view: TurnView | None = None
        # item id -> (started, finished) of hosted calls, from the stream's output_item events.
        self.hosted_times: dict[str, list[float]] = {}
        self.prompt_session: Any = None
        # "ask" prompts in the terminal; "yes"/"no" decide every call (the only choices without a terminal).
        self.approve_mode = "ask" if interactive else "no"
        self.declined_ids: set[str] = set()
        self.consumed: set[int] = set()

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
            self.show_servers()
        elif cmd.name == "/reconnect":
            await self.reconnect(cmd.arg or "")
        elif cmd.name == "/clear":
            self.session_name = new_session_name()
            self.session = self.store.open(self.session_name)
            out.print(f"new conversation: session {self.session_name}", style="dim")
        elif cmd.name == "/history":
            out.print(await self.transcript(), markup=False, highlight=False)
        elif cmd.name == "/sessions":
            for info in self.store.list():
                mark = "*" if info.name == self.session_name else " "
                out.print(f"{mark} {info.name}  {info.messages} items  {info.updated}", markup=False)
        elif cmd.name == "/save":
            path = Path(cmd.arg or "").expanduser()
            try:
                path.write_text(await self.transcript(markdown=True), encoding="utf-8")
            except OSError as exc:
                out.print(f"cannot write {path}: {exc.strerror}", style="red")
            else:
                out.print(f"saved to {path}", style="dim")
        elif cmd.name == "/usage":
            u = self.usage
            out.print(
                f"requests {u['requests']}, input tokens {u['input_tokens']}, output tokens {u['output_tokens']}, "
                f"total {u['total_tokens']}, tool calls {self.tool_calls} ({self.hosted_calls} hosted), "
                f"approvals asked {self.approvals}",
                markup=False,
            )
        return True

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

    def show_servers(self) -> None:
        assert self.deck.pool is not None
        table = Table(box=None, pad_edge=False)
        for col in ("server", "status", "tools", "last error"):
            table.add_column(col, overflow="fold")
        for name, slot in self.deck.pool.slots.items():
            server = slot.server
            error = getattr(server, "last_error", None) or slot.error
            status = "failed" if (not slot.connected or getattr(server, "last_error", None)) else "connected"
            names = server.cached_tool_names() if slot.connected else None
            tools = len(names) if names is not None else "-"
            table.add_row(name, status, str(tools), error or "")
        for name in self.deck.hosted:
            listing = self.deck.listings.get(name)
            tools = str(len(listing.tools)) if listing and listing.tools is not None else "-"
            table.add_row(name, "hosted (OpenAI connects)", tools, (listing.error if listing else None) or "")
        self.console.print(table)

    async def reconnect(self, name: str) -> None:
        if name in self.deck.hosted:
            self.console.print(
                f"{name} is hosted: OpenAI connects to it, so there is nothing to reconnect", style="red"
            )
            return
        if self.deck.pool is None or name not in self.deck.pool.slots:
            names = ", ".join(self.deck.pool.slots) if self.deck.pool else ""
            self.console.print(f"unknown server {name!r}; servers: {names}", style="red")
            return
        with self.console.status(f"reconnecting {name}…"):
            error = await self.deck.reconnect(name)
        if error:
            self.console.print(render.error(f"{name}: {error}"))
        else:
            self.console.print(f"{name} reconnected", style="green")

    # ----- history -----

    async def transcript(self, markdown: bool = False) -> str:
        """The conversation as text (Markdown for /save), tool calls included."""
        return render.transcript(await self.session.get_items(), self.session_name, markdown)

    # ----- turns -----

    async def approve(self, request: ApprovalRequest) -> tuple[bool, str | None]:
        """The chat's approver: remembered answers, --approve, or y / a / n (+reason) / N."""
        key = f"{request.server}.{request.tool}"
        if key in self.always:
            return True, None
        if key in self.never:
            return False, None
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
                self.always.add(key)
                return True, None
            if answer == "N":
                self.never.add(key)
                self.show_declined(request.tool, None)
                return False, None
            if answer in ("n", "no"):
                reason = (await self.ask("  reason (optional, sent to the model): ")).strip() or None
                self.show_declined(request.tool, reason)
                return False, reason

    def show_declined(self, tool: str, reason: str | None) -> None:
        if self.interactive:
            self.console.print(render.declined(tool, reason))

    async def turn(self, text: str) -> None:
        """One user message: stream the answer, show tools, resolve approvals, save on success."""
        from agents import RunConfig, Runner
        from openai.types.responses import ResponseTextDeltaEvent

        from app.tracing import configure

        agent = self.deck.agents[self.agent_name]
        history = await self.session.get_items()
        start_input: Any = [*history, {"role": "user", "content": text}]
        view = self.view = TurnView(self.console, self.interactive)
        run_config = RunConfig(
            tracing_disabled=not configure(self.deck.loaded, self.deck.agents), workflow_name="agentdeck chat"
        )
        max_turns = self.deck.loaded.config.agents[self.agent_name].max_turns
        started: dict[str, tuple[float, str | None, str, str]] = {}
        stream: Any = None
        self.consumed = set()
        self.hosted_times = {}
        with recording() as log:
            try:
                target: Any = start_input
                while True:
                    stream = Runner.run_streamed(
                        agent, target, context=RunContext(self.approve), max_turns=max_turns, run_config=run_config
                    )
                    async for ev in stream.stream_events():
                        if ev.type == "raw_response_event":
                            if isinstance(ev.data, ResponseTextDeltaEvent):
                                view.delta(ev.data.delta)
                            else:
                                self.on_hosted_event(ev.data, view)
                        elif ev.type == "agent_updated_stream_event" and ev.new_agent.name != self.agent_name:
                            view.show(render.handoff(ev.new_agent.name))
                        elif ev.type == "run_item_stream_event":
                            self.show_item(ev, view, started, log)
                    view.flush()
                    if not stream.interruptions:
                        break
                    state = stream.to_state()
                    for item in stream.interruptions:
                        tool = item.tool_name or "?"
                        request = ApprovalRequest(tool, server_of(self.deck, tool), item.arguments or "{}")
                        ok, reason = await ask(self.approve, request)
                        if ok:
                            state.approve(item)
                        else:
                            self.declined_ids.add(getattr(item.raw_item, "call_id", None) or "")
                            state.reject(item, rejection_message=declined_message(reason))
                    target = state
            except (asyncio.CancelledError, KeyboardInterrupt):
                if stream is not None:
                    stream.cancel()
                view.flush()
                self.console.print("turn cancelled; nothing from it was saved", style="yellow")
                return
            except Exception as exc:  # noqa: BLE001 - a failed turn is shown, the chat goes on
                view.flush()
                self.console.print(render.error(describe_run_error(exc)))
                return
            finally:
                self.view = None
        self.count(log)
        usage = stream.context_wrapper.usage
        for key in self.usage:
            self.usage[key] += getattr(usage, key)
        if self.agent_name != stream.last_agent.name:
            self.agent_name = stream.last_agent.name
        await self.session.add_items(stream.to_input_list()[len(history) :])
        if not self.interactive:
            self.console.print(
                stream.final_output if isinstance(stream.final_output, str) else json.dumps(stream.final_output),
                markup=False,
                highlight=False,
            )

    def count(self, log: ToolCallLog) -> None:
        """Add a finished turn's calls to /usage; hosted calls get the durations the stream showed."""
        for record in log.calls:
            times = self.hosted_times.get(record.item_id or "")
            if record.hosted and times is not None and len(times) == 2:
                record.duration_ms = (times[1] - times[0]) * 1000
        self.tool_calls += len(log.calls)
        self.hosted_calls += sum(1 for r in log.calls if r.hosted)
        self.approvals += log.approvals

    def on_hosted_event(self, event: Any, view: TurnView) -> None:
        """Show what OpenAI does on hosted servers as the stream reports it, and time each call."""
        item: Any = getattr(event, "item", None)
        kind = getattr(item, "type", None)
        if kind == "mcp_call" and event.type == "response.output_item.added":
            self.hosted_times[item.id] = [time.perf_counter()]
        elif kind == "mcp_call" and event.type == "response.output_item.done":
            self.hosted_times.setdefault(item.id, []).append(time.perf_counter())
            if self.interactive:
                self.show_hosted_call(item, view)
        elif kind == "mcp_list_tools" and event.type == "response.output_item.done" and item.error and self.interactive:
            view.show(render.error(f"hosted server {self.hosted_name(item.server_label)}: {item.error}"))

    def show_item(
        self, ev: Any, view: TurnView, started: dict[str, tuple[float, str | None, str, str]], log: ToolCallLog
    ) -> None:
        """Tool-call and tool-result panels from run item events."""
        if not self.interactive:
            return
        raw: Any = getattr(ev.item, "raw_item", None)
        if ev.name == "tool_called" and getattr(raw, "type", None) == "mcp_call":
            return  # shown from the stream, where it happened (on_hosted_event)
        if ev.name == "tool_called":
            name = getattr(raw, "name", None) or (raw.get("name") if isinstance(raw, dict) else None)
            if not name or name.startswith("transfer_to_"):
                return
            call_id = getattr(raw, "call_id", None) or ""
            args = getattr(raw, "arguments", None) or "{}"
            server = server_of(self.deck, name)
            started[call_id] = (time.perf_counter(), server, name, args)
            view.show(render.tool_call(server, name, args))
        elif ev.name == "tool_output":
            call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", "")
            if call_id not in started or call_id in self.declined_ids:
                return
            began, server, name, args = started.pop(call_id)
            took = (time.perf_counter() - began) * 1000
            output = render.text_of(getattr(ev.item, "output", ""))
            record = match_record(log, self.consumed, server, name, args)
            ok = record.ok if record is not None else True
            if record is not None and record.error:
                output = f"{record.server}.{record.tool} failed: {record.error}"
            view.show(render.tool_result(ok, took, output))

    def hosted_name(self, label: str) -> str:
        """The agents.yaml name of a hosted server, from the label OpenAI reports."""
        for name, spec in self.deck.hosted.items():
            if spec.label == label:
                return name
        return label

    def show_hosted_call(self, raw: Any, view: TurnView) -> None:
        """A call OpenAI made: its line, then its result (it has already finished)."""
        server = self.hosted_name(raw.server_label)
        view.show(render.tool_call(server, raw.name, raw.arguments or "{}", hosted=True))
        times = self.hosted_times.get(raw.id) or []
        took = (times[-1] - times[0]) * 1000 if len(times) == 2 else None
        failed = raw.error is not None or raw.status == "failed"
        output = call_output_text(raw)
        view.show(render.tool_result(not failed, took, f"{server}.{raw.name} failed: {output}" if failed else output))


def match_record(
    log: ToolCallLog, consumed: set[int], server: str | None, public_name: str, arguments: str
) -> ToolCallRecord | None:
    """The recorder entry for one finished call, by server, tool and arguments (parallel calls finish in any order)."""
    try:
        wanted = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        wanted = None
    candidates = [
        (i, rec)
        for i, rec in enumerate(log.calls)
        if i not in consumed
        and (server is None or rec.server == server)
        and public_name in (rec.tool, prefixed_name(rec.server, rec.tool))
    ]
    exact = [(i, rec) for i, rec in candidates if rec.arguments == wanted]
    for i, rec in exact or candidates:
        consumed.add(i)
        return rec
    return None
