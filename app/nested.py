"""Live events from agents used as tools (`as_tools`), for a UI that draws them as they happen.

A UI registers a listener around its run:

    with listening(on_nested):
        result = Runner.run_streamed(agent, text, ...)
        async for event in result.stream_events(): ...

While a listener is registered, each `ask_<agent>` call runs its agent streamed and hands every
stream event of that inner run to the listener as a NestedEvent. Without one, agents used as tools
run exactly as before (not streamed), so `run`, `batch` and experiments are unaffected. The listener
is found through a context variable: register it before the run starts, so the run's tasks inherit it.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.telemetry import current_via


@dataclass(frozen=True)
class NestedEvent:
    """One stream event of a run inside an agent-as-tool call."""

    # The enclosing agent-as-tool call(s), outermost first: "ask_billing", or "ask_b/ask_a" when nested.
    via: str
    # The enclosing tool call's id, to tell apart two calls of one tool in the same turn.
    call_id: str | None
    # The inner agent producing the event (it changes if the inner run hands off).
    agent: str
    # The SDK stream event: RunItemStreamEvent (tool_called, tool_output, message_output_created, ...),
    # RawResponsesStreamEvent or AgentUpdatedStreamEvent.
    event: Any


Listener = Callable[[NestedEvent], Awaitable[None] | None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("agentdeck_nested_listener", default=None)


@contextmanager
def listening(callback: Listener) -> Iterator[None]:
    """Send the events of agent-as-tool runs started inside this block (and its tasks) to `callback`."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def current_listener() -> Listener | None:
    """The registered listener, if any."""
    return _listener.get()


async def forward(tool_name: str, payload: Any) -> None:
    """The as_tool `on_stream` handler: pass one AgentToolStreamEvent on to the listener, if any."""
    listener = _listener.get()
    if listener is None:
        return
    tool_call = payload.get("tool_call")
    agent = payload.get("agent")
    event = NestedEvent(
        via=current_via() or tool_name,
        call_id=getattr(tool_call, "call_id", None),
        agent=getattr(agent, "name", "?"),
        event=payload.get("event"),
    )
    result = listener(event)
    if inspect.isawaitable(result):
        await result
