"""MCP over stdin/stdout pipes served from the event loop, without a thread hand-off per line.

The SDK's stdio transport reads and writes the standard streams through anyio worker threads: two
or three hand-offs between threads per request, which cost more CPU than a small request itself (in
a batch, the bundled servers share the cores with the agents driving them). When both standard
streams are pipes or sockets, as when any MCP client starts a stdio server, they are served here as
non-blocking pipes on the loop; otherwise (a terminal, a regular file) the SDK's transport is used.

The wire stays as clean as the SDK keeps it: while serving, fd 0 reads the null device and fd 1
writes to stderr, so a handler or a child process that prints cannot corrupt the JSON-RPC stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

# A request line can be as large as a file the client writes; this only bounds one line in memory.
LINE_LIMIT = 1 << 30


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def pipes_available() -> bool:
    """Whether stdin and stdout are both pipes or sockets, which the event loop can serve."""
    # Windows' loop takes pipe handles, not descriptors: the SDK's transport serves it.
    return sys.platform != "win32" and _is_pipe(0) and _is_pipe(1)


class _Lines:
    """The incoming side as the SDK's transport iterates it: decoded lines until EOF."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Out:
    """The outgoing side: write a line; flush waits until the pipe has room again.

    A client that stops reading has gone away: the server then ends as if stdin had closed, quietly.
    """

    def __init__(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        self._writer = writer
        self._reader = reader

    async def write(self, text: str) -> None:
        try:
            self._writer.write(text.encode("utf-8"))
        except (BrokenPipeError, ConnectionResetError):
            self._gone()

    async def flush(self) -> None:
        try:
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._gone()

    def _gone(self) -> NoReturn:
        import anyio

        self._reader.feed_eof()
        raise anyio.ClosedResourceError


@contextlib.contextmanager
def _claimed() -> Iterator[tuple[int, int]]:
    """Private copies of fds 0 and 1 for the wire, with fd 0 on /dev/null and fd 1 on stderr meanwhile."""
    wire = (os.dup(0), os.dup(1))  # os.dup makes them close-on-exec: no child inherits the wire
    saved = (os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    try:
        yield wire
    finally:
        for fd, copy in zip((0, 1), saved, strict=True):
            with contextlib.suppress(OSError):
                os.dup2(copy, fd)
            os.close(copy)


async def serve_pipes(mcp: MCPServer) -> None:
    """Serve `mcp` over this process's stdin and stdout pipes until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    loop = asyncio.get_running_loop()
    with _claimed() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        transports: list[Any] = []
        try:
            read_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
            )
            transports.append(read_transport)
            write_transport, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
            )
            transports.append(write_transport)
            writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
            # The SDK's own run_stdio_async does exactly this with its thread-backed streams.
            server = mcp._lowlevel_server
            streams: Any = (_Lines(reader), _Out(writer, reader))
            async with stdio_server(*streams) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            for transport in transports:
                transport.close()
