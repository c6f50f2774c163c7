"""Knowing when a connected MCP server has gone, and telling the model the same thing the user sees.

A stdio server's process exiting (or an SSE stream ending) closes the transport's read stream;
watching that stream marks the server down at once, without waiting for the next failing call.
Streamable HTTP has no standing connection, so it is marked down when a request cannot reach it
(or when `probe` pings it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

# A down server's tools still reach the model from the cached list; this is what it is told.
RETRY_ADVICE = "Retrying will not help until it is reconnected (in chat: /reconnect {name})."
# ...unless agentdeck reconnects it by itself (`restart: on_failure`, the default over HTTP).
RECOVER_ADVICE = "agentdeck reconnects it on the next call, so retrying later may work."


class WatchedReadStream:
    """A transport's read stream that reports its end (EOF or breakage) once."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:
        # Anything else the dispatcher reads (`last_context`) comes from the real stream.
        return getattr(self._inner, name)

    async def __aenter__(self) -> WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)

    def __aiter__(self) -> WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        return await self._watch(self._inner.__anext__())

    async def receive(self) -> Any:
        return await self._watch(self._inner.receive())

    async def _watch(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except asyncio.CancelledError:
            raise
        except BaseException:  # EOF (StopAsyncIteration, EndOfStream) or a broken stream
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def watched(streams: AbstractAsyncContextManager[Any], on_end: Callable[[], None]) -> AbstractAsyncContextManager[Any]:
    """The transport context manager `streams`, with its read stream watched for its end."""

    @asynccontextmanager
    async def wrap() -> AsyncIterator[Any]:
        async with streams as transport:
            read, *rest = transport
            yield (WatchedReadStream(read, on_end), *rest)

    return wrap()


_CONNECTION_ERRORS = (
    "ConnectError",
    "ConnectTimeout",
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ClosedResourceError",
    "BrokenResourceError",
    "EndOfStream",
    "BrokenPipeError",
    "ConnectionResetError",
    "ConnectionRefusedError",
)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception inside it: group members, causes and contexts, each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        if isinstance(err, BaseExceptionGroup):
            stack.extend(err.exceptions)
        stack.extend(e for e in (err.__cause__, err.__context__) if e is not None)


def is_connection_loss(exc: BaseException) -> bool:
    """True when an error means the server cannot be reached at all (not a tool or protocol error)."""
    from mcp_types import CONNECTION_CLOSED

    return any(
        type(err).__name__ in _CONNECTION_ERRORS
        or getattr(getattr(err, "error", None), "code", None) == CONNECTION_CLOSED
        for err in chain(exc)
    )


def down_message(name: str, tool: str | None, cause: str, recovers: bool = False) -> str:
    """The model's and the user's text for a call to a server that is down."""
    what = f"The tool {tool} could not run: " if tool else ""
    advice = RECOVER_ADVICE if recovers else RETRY_ADVICE.format(name=name)
    return f"{what}MCP server '{name}' is down ({cause}). " + advice


def failed_message(name: str, tool: str | None, cause: str) -> str:
    """The model's and the user's text for a call that failed on a server that is still up."""
    return f"The tool {tool or '?'} on MCP server '{name}' failed: {cause}"
