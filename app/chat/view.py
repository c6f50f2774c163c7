"""One turn on the terminal: live answer text, tool panels, handoffs; shared by chat and `run`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.padding import Padding
from rich.text import Text

from app.build import prefixed_name
from app.chat import render
from app.deck import Deck
from app.nested import NestedEvent, listening
from app.offline.rules import call_output_text
from app.runner import resolve_approvals, server_of
from app.telemetry import ToolCallLog, ToolCallRecord


@contextlib.contextmanager
def keys_unechoed(stream: Any) -> Iterator[None]:
    """While a turn streams, typed keys and Ctrl-C's `^C` are not echoed into the live answer.

    The echo lands inside the region rich's Live redraws, so after Ctrl-C the last frame was drawn
    one line off and the answer's first line showed twice.
    """
    try:
        import termios

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except Exception:  # noqa: BLE001 - no termios, no file descriptor, or not a terminal: nothing to quiet
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


class TurnView:
    """Streams assistant text as live Markdown and prints panels between text segments."""

    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.use_live = live
        self.live: Live | None = None
        self.buffer = ""
        # A running call's latest progress notification, drawn until the next panel or text.
        self.progress: Live | None = None

    def status(self, text: str) -> None:
        """Show (or update) one transient line of progress under the running call."""
        if not self.use_live:
            return
        line = Text("  ⋯ " + text, style="dim")
        if self.progress is None:
            if self.live is not None:
                self.live.stop()
                self.live = None
                self.buffer = ""
            self.progress = Live(line, console=self.console, refresh_per_second=12, transient=True)
            self.progress.start()
        else:
            self.progress.update(line)

    def delta(self, text: str) -> None:
        self._end_status()
        self.buffer += text
        if not self.use_live:
            return
        if self.live is None:
            self.live = Live(
                render.markdown(""), console=self.console, refresh_per_second=12, vertical_overflow="visible"
            )
            self.live.start()
        self.live.update(render.markdown(self.buffer))

    def _end_status(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def flush(self) -> None:
        self._end_status()
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.buffer = ""

    def show(self, renderable: Any) -> None:
        self.flush()
        self.console.print(renderable)


@dataclass
class _Started:
    began: float
    server: str | None
    name: str
    arguments: str
    parent: str | None = None  # the enclosing agent-as-tool call's id


@dataclass
class TurnDisplay:
    """Turns a run's stream events into what the user sees; tracks what each call took."""

    console: Console
    deck: Deck
    view: TurnView
    panels: bool = True
    started: dict[str, _Started] = field(default_factory=dict)
    consumed: set[int] = field(default_factory=set)
    declined_ids: set[str] = field(default_factory=set)
    # call id -> seconds the user took to answer its approval question (not part of the call's time)
    waits: dict[str, float] = field(default_factory=dict)
    # item id -> (started, finished) of hosted calls, from the stream's output_item events.
    hosted_times: dict[str, list[float]] = field(default_factory=dict)
    stream: Any = None
    log: ToolCallLog = field(default_factory=ToolCallLog)
    # agent-as-tool call id -> one line per call made inside it, for /save
    nested_calls: dict[str, list[str]] = field(default_factory=dict)

    def on_event(self, ev: Any) -> None:
        """One event of `Runner.run_streamed(...).stream_events()`."""
        from openai.types.responses import ResponseTextDeltaEvent

        if ev.type == "raw_response_event":
            if isinstance(ev.data, ResponseTextDeltaEvent):
                self.view.delta(ev.data.delta)
            else:
                self.on_hosted_event(ev.data)
        elif ev.type == "run_item_stream_event":
            self.show_item(ev)

    def on_hosted_event(self, event: Any) -> None:
        """Show what OpenAI does on hosted servers as the stream reports it, and time each call."""
        item: Any = getattr(event, "item", None)
        kind = getattr(item, "type", None)
        if kind == "mcp_call" and event.type == "response.output_item.added":
            self.hosted_times[item.id] = [time.perf_counter()]
        elif kind == "mcp_call" and event.type == "response.output_item.done":
            self.hosted_times.setdefault(item.id, []).append(time.perf_counter())
            if self.panels:
                self.show_hosted_call(item)
        elif kind == "mcp_list_tools" and event.type == "response.output_item.done" and item.error and self.panels:
            self.view.show(render.error(f"hosted server {self.hosted_name(item.server_label)}: {item.error}"))

    def on_nested(self, nested: NestedEvent) -> None:
        """A tool call inside an agent used as a tool: drawn indented under its `ask_<agent>` line."""
        if getattr(nested.event, "type", None) == "run_item_stream_event":
            self.show_item(nested.event, via=nested.via, parent=nested.call_id)

    def show(self, renderable: Any, via: str | None) -> None:
        """Print a line or panel; one from inside an agent used as a tool is indented under its call."""
        if via is None:
            self.view.show(renderable)
        elif isinstance(renderable, Text):
            self.view.show(Padding(Text.assemble(Text(f"{via} › ", style="dim"), renderable), (0, 0, 0, 2)))
        else:
            self.view.show(Padding(Group(Text(f"{via} ›", style="dim"), renderable), (0, 0, 0, 2)))

    def show_item(self, ev: Any, via: str | None = None, parent: str | None = None) -> None:
        """Tool-call, tool-result and handoff lines from run item events."""
        if not self.panels:
            return
        raw: Any = getattr(ev.item, "raw_item", None)
        if ev.name == "tool_called" and getattr(raw, "type", None) == "mcp_call":
            return  # shown from the stream, where it happened (on_hosted_event)
        if ev.name == "handoff_requested" and via is None:
            self.show_handoff(raw)
        elif ev.name == "tool_called":
            name = _field(raw, "name")
            if not name or name.startswith("transfer_to_"):
                return
            call_id = _field(raw, "call_id") or ""
            args = _field(raw, "arguments") or "{}"
            server = server_of(self.deck, name)
            self.started[call_id] = _Started(time.perf_counter(), server, name, args, parent)
            self.show(render.tool_call(server, name, args), via)
        elif ev.name == "tool_output":
            call_id = _field(raw, "call_id") or ""
            if call_id not in self.started or call_id in self.declined_ids:
                return
            call = self.started.pop(call_id)
            output = render.text_of(getattr(ev.item, "output", ""))
            record = match_record(self.log, self.consumed, call.server, call.name, call.arguments)
            wait = self.waits.pop(call_id, 0.0)
            took = record.duration_ms if record is not None and record.duration_ms is not None else None
            if took is None:
                took = max(0.0, time.perf_counter() - call.began - wait) * 1000
            ok = record.ok if record is not None else True
            if record is not None and record.error:
                output = record.error  # the very text the model was given
            if call.parent is not None:
                where = f"{call.server}." if call.server else ""
                self.nested_calls.setdefault(call.parent, []).append(
                    f"{via}: {where}{call.name}({call.arguments}) -> {output}"
                )
            self.show(render.tool_result(ok, took, output, waited_ms=wait * 1000 if wait else None), via)

    def show_handoff(self, raw: Any) -> None:
        """`→ billing: the reason the model gave`, from the transfer call's arguments."""
        name = _field(raw, "name") or ""
        reason = None
        try:
            args = json.loads(_field(raw, "arguments") or "{}")
            reason = args.get("reason") if isinstance(args, dict) else None
        except ValueError:
            pass
        target = self.deck_agent_for_transfer(name)
        if target:
            self.view.show(render.handoff(target, reason if isinstance(reason, str) else None))

    def deck_agent_for_transfer(self, tool_name: str) -> str | None:
        """The agent a `transfer_to_*` tool hands to."""
        for agent in self.deck.agents.values():
            for handoff in getattr(agent, "handoffs", []):
                if getattr(handoff, "tool_name", None) == tool_name:
                    return str(getattr(handoff, "agent_name", None) or tool_name.removeprefix("transfer_to_"))
        return tool_name.removeprefix("transfer_to_") or None

    def hosted_name(self, label: str) -> str:
        """The agents.yaml name of a hosted server, from the label OpenAI reports."""
        for name, spec in self.deck.hosted.items():
            if spec.label == label:
                return name
        return label

    def show_hosted_call(self, raw: Any) -> None:
        """A call OpenAI made: its line, then its result (it has already finished)."""
        server = self.hosted_name(raw.server_label)
        self.view.show(render.tool_call(server, raw.name, raw.arguments or "{}", hosted=True))
        times = self.hosted_times.get(raw.id) or []
        took = (times[-1] - times[0]) * 1000 if len(times) == 2 else None
        failed = raw.error is not None or raw.status == "failed"
        output = call_output_text(raw)
        self.view.show(
            render.tool_result(not failed, took, f"{server}.{raw.name} failed: {output}" if failed else output)
        )


def _field(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


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


async def stream_run(
    agent: Any,
    start_input: Any,
    *,
    display: TurnDisplay,
    approver: Any,
    log: ToolCallLog,
    max_turns: int,
    run_config: Any,
) -> Any:
    """Stream a run to `display`, asking `approver` at each interruption; returns the finished stream.

    The stream in progress is kept in `display.stream` so a cancelled turn can stop it.
    """
    from agents import Runner

    from app.approvals import RunContext

    target: Any = start_input
    display.log = log
    while True:
        # Registered before the run starts, so the run's tasks (agent-as-tool calls) inherit it.
        with listening(display.on_nested) if display.panels else contextlib.nullcontext():
            stream = display.stream = Runner.run_streamed(
                agent, target, context=RunContext(approver), max_turns=max_turns, run_config=run_config
            )
            async for ev in stream.stream_events():
                display.on_event(ev)
        display.view.flush()
        if not stream.interruptions:
            return stream
        target, decided = await resolve_approvals(stream, display.deck, approver)
        for call_id, approved, seconds in decided:
            display.waits[call_id] = seconds
            if not approved:
                display.declined_ids.add(call_id)
