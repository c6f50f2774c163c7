"""Start-up that overlaps: stdio servers spawned before the Agents SDK is imported.

Importing the SDK costs a second or more, and a Python MCP server about as long to start. The
children are spawned first so the two overlap; each SDK-backed server then talks to its waiting
child (`early_streams`) instead of spawning another. Nothing here imports the SDK or `mcp` at load
time: either would delay the spawn by most of what it saves.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from app.config.loader import LoadedConfig
from app.config.models import StdioServerConfig
from app.mcp_direct import StderrLog, stdio_params

log = logging.getLogger("agentdeck.startup")

# What mcp.client.stdio hands a child from this environment on POSIX; the entry's env goes on top.
_INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
# How long a child may take to exit once its stdin closes, and again after SIGTERM (as mcp allows).
_EXIT_GRACE = 2.0
_FLUSH_GRACE = 0.5


@dataclass
class EarlyProcess:
    """A stdio child spawned ahead of its SDK server object, and the file its stderr goes to."""

    name: str
    process: Any  # anyio.abc.Process
    errlog: StderrLog


class EarlyServers:
    """Children spawned ahead: each is taken by its server, or stopped when this closes."""

    def __init__(self) -> None:
        self._waiting: dict[str, EarlyProcess] = {}

    def peek(self, name: str) -> EarlyProcess | None:
        """The child waiting for `name`, left in place."""
        return self._waiting.get(name)

    def take(self, name: str) -> EarlyProcess | None:
        """Hand the child over to the server that will talk to it (None when there is none)."""
        return self._waiting.pop(name, None)

    async def aclose(self) -> None:
        """Stop every child no server took."""
        waiting, self._waiting = list(self._waiting.values()), {}
        for early in waiting:
            await stop_process(early.process)
            early.errlog.file.close()

    async def __aenter__(self) -> EarlyServers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The environment mcp's stdio client would give the child."""
    base = {k: v for k in _INHERITED if (v := os.environ.get(k)) is not None and not v.startswith("()")}
    return base | extra


async def spawn_one(loaded: LoadedConfig, name: str) -> EarlyProcess | None:
    """Spawn one stdio server now; None when it is not stdio or cannot be spawned (its server retries)."""
    import anyio

    cfg = loaded.config.servers.get(name)
    if sys.platform == "win32" or not isinstance(cfg, StdioServerConfig):  # mcp uses a Job Object on Windows
        return None
    params = stdio_params(loaded, cfg)
    errlog = StderrLog(name)
    try:
        process = await anyio.open_process(
            [params["command"], *params["args"]],
            env=child_environment(params["env"]),
            stderr=errlog.file,
            cwd=params["cwd"],
            start_new_session=True,
        )
    except (OSError, ValueError):
        # The server's own connect spawns it again and reports the failure with its usual hint.
        errlog.file.close()
        return None
    return EarlyProcess(name, process, errlog)


def cpu_ticks(pid: int) -> int | None:
    """User + system CPU time of a process in clock ticks (Linux /proc); None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


async def settled(process: Any, poll: float = 0.03) -> None:
    """Until a child stops using CPU (it waits for its client), exits, or cannot be watched."""
    import anyio

    last = None
    while process.returncode is None:
        await anyio.sleep(poll)
        ticks = cpu_ticks(process.pid)
        if ticks is None or ticks == last:
            return
        last = ticks


def cores() -> int:
    """The CPUs this process may run on (its affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parallel_starts() -> int:
    """How many children may start at once beside the SDK import: one core stays the import's."""
    return max(1, cores() - 1)


def _load_sdk() -> None:
    began = time.perf_counter()
    importlib.import_module("app.deck")  # and with it the Agents SDK
    log.debug("the Agents SDK loaded in %.0f ms", (time.perf_counter() - began) * 1000)


@asynccontextmanager
async def early_started(loaded: LoadedConfig, names: Iterable[str]) -> AsyncIterator[EarlyServers]:
    """Import the SDK (via app.deck) while the stdio servers start; stop the ones no server took on exit.

    The import takes one core. On the others the children start a few at a time, the next as soon as
    one is up and idle, and all that remain once the import is done: started all at once on a small
    machine they would share the import's core and slow it down by a third.
    """
    import asyncio

    early = EarlyServers()
    pending = list(names)
    importing = asyncio.ensure_future(asyncio.to_thread(_load_sdk))
    starting: set[asyncio.Future[Any]] = set()
    try:
        while pending:
            if importing.done() or len(starting) < parallel_starts():
                spawned = await spawn_one(loaded, pending.pop(0))
                if spawned is not None:
                    log.debug("spawned %s early (pid %d)", spawned.name, spawned.process.pid)
                    early._waiting[spawned.name] = spawned
                    starting.add(asyncio.ensure_future(settled(spawned.process)))
                continue
            await asyncio.wait({importing, *starting}, return_when=asyncio.FIRST_COMPLETED)
            starting = {task for task in starting if not task.done()}
        await importing
        yield early
    finally:
        for task in starting:
            task.cancel()
        if not importing.done():
            importing.cancel()
        await early.aclose()


async def stop_process(process: Any) -> None:
    """Close the child's stdin, give it time to exit, then end its process group."""
    import anyio

    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    if not await _exited(process, _EXIT_GRACE):
        from mcp.os.posix.utilities import terminate_posix_process_tree

        await terminate_posix_process_tree(process, _EXIT_GRACE)
        await _exited(process, _EXIT_GRACE)
    # Not process.wait() unbounded: a grandchild holding the pipes would make it hang.
    with anyio.move_on_after(_FLUSH_GRACE), suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.aclose()


async def _exited(process: Any, timeout: float) -> bool:
    import anyio

    with anyio.move_on_after(timeout):
        while process.returncode is None:
            await anyio.sleep(0.01)
    return process.returncode is not None


@asynccontextmanager
async def early_streams(
    early: EarlyProcess, encoding: str = "utf-8", errors: str = "strict"
) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) message streams of a running child, as mcp's stdio client gives a new one."""
    import anyio
    import mcp_types
    from anyio.streams.text import TextReceiveStream
    from mcp.shared.message import SessionMessage

    process = early.process
    to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()
    gone = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError, OSError)

    def parse(line: str) -> SessionMessage | Exception:
        try:
            return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError as exc:
            return exc

    async def read_child() -> None:
        # After the session goes, keep draining: a child blocked on a full stdout cannot see its stdin close.
        listening = True
        buffer = ""
        async with to_session:
            with suppress(*gone):
                async for chunk in TextReceiveStream(process.stdout, encoding=encoding, errors=errors):
                    *lines, buffer = (buffer + chunk).split("\n")
                    for line in lines:
                        if not listening or not line.strip():
                            continue
                        try:
                            await to_session.send(parse(line))
                        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                            listening = False

    async def write_child() -> None:
        try:
            async with from_session:
                async for message in from_session:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(text.encode(encoding, errors))
        except gone:
            await to_session.aclose()  # the session sees the end instead of waiting forever
        finally:
            writer_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_child)
        tg.start_soon(write_child)
        try:
            yield read_stream, write_stream
        finally:
            # Bounded and shielded: a cancelled caller must neither leak the child nor hang on it.
            with anyio.CancelScope(shield=True):
                read_stream.close()
                write_stream.close()
                with anyio.move_on_after(_FLUSH_GRACE):
                    await writer_done.wait()
                await stop_process(process)
            tg.cancel_scope.cancel()


class StartupLine:
    """One transient line on a terminal while agentdeck starts: the SDK loading, each server connecting."""

    def __init__(self, console: Any | None, servers: Iterable[str]) -> None:
        self.console = console  # None when there is no terminal to draw on: nothing is shown
        self.states: dict[str, str] = {name: "…" for name in servers}
        self.sdk = "…"
        self._status: Any = None

    def text(self) -> str:
        """The line as shown, e.g. `starting  Agents SDK ✓ · files ✓ 0.4s · customers …`."""
        parts = [f"Agents SDK {self.sdk}", *(f"{name} {state}" for name, state in self.states.items())]
        return "starting  " + " · ".join(parts)

    def start(self) -> None:
        if self.console is not None and self._status is None:
            self._status = self.console.status(self.text(), spinner="dots")
            self._status.start()

    def _show(self) -> None:
        if self._status is not None:
            self._status.update(self.text())

    def sdk_loaded(self) -> None:
        self.sdk = "✓"
        self._show()

    def server_ready(self, slot: Any) -> None:
        """Pool listener: mark a server connected (with its start time) or failed."""
        if slot.name in self.states:
            took = f" {slot.start_ms / 1000:.1f}s" if slot.start_ms is not None else ""
            self.states[slot.name] = f"✓{took}" if slot.connected else "✗"
            self._show()

    def stop(self) -> None:
        """Erase the line (the terminal is the command's again)."""
        if self._status is not None:
            self._status.stop()
            self._status = None


@asynccontextmanager
async def opened_deck(
    loaded: LoadedConfig, agent: str | None, *, status_console: Any | None, **options: Any
) -> AsyncIterator[Any]:
    """A Deck whose stdio servers start while the SDK loads; the start-up line goes to `status_console`."""
    from app.config.checks import pick_agent, servers_used
    from app.config.models import runs_hosted

    name = pick_agent(loaded, agent)
    names = servers_used(loaded, name, bool(options.get("all_agents")))
    local = [n for n in names if not runs_hosted(loaded.config.servers[n])]
    line = StartupLine(status_console, local)
    line.start()
    try:
        async with early_started(loaded, local) as early:
            line.sdk_loaded()
            from app.deck import Deck, DeckOptions

            async with Deck(loaded, DeckOptions(agent=name, **options), early, line.server_ready) as deck:
                line.stop()
                deck.listener = None
                yield deck
    finally:
        line.stop()
