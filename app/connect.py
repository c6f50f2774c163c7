"""Connect MCP servers concurrently, each in its own task that also cleans it up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.errors import ServerStartError

log = logging.getLogger("agentdeck.connect")
T = TypeVar("T")


@dataclass
class ServerSlot:
    """One server's connection state inside a pool."""

    name: str
    server: Any
    start_timeout: float
    required: bool
    connected: bool = False
    error: str | None = None
    start_ms: float | None = None
    # What to do about a failure, when agentdeck can tell from the config (replaces the generic hint).
    hint: str | None = None
    # Values masked wherever this slot's errors and stderr are shown.
    secrets: frozenset[str] = frozenset()
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def failure_message(self) -> str:
        """One paragraph naming the server, its command or URL, the cause and its stderr tail."""
        from app.config.redact import redact

        describe = getattr(self.server, "describe", "")
        msg = f"MCP server '{self.name}' ({describe}) failed to start: {self.error}"
        tail = self.stderr_tail()
        if tail:
            msg += "\n  stderr:\n" + "\n".join("    " + line for line in tail.splitlines())
        return str(redact(msg, self.secrets))

    def stderr_tail(self, max_lines: int = 12) -> str:
        """The server's last stderr lines, secrets masked."""
        from app.config.redact import redact

        tail = self.server.stderr_tail(max_lines=max_lines) if hasattr(self.server, "stderr_tail") else ""
        return str(redact(tail, self.secrets)) if tail else ""


def describe_exception(exc: BaseException) -> str:
    """A short, human cause for a connection failure (unwraps exception groups and causes)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause).strip() and str(cause) not in text:
        text += f" ({describe_exception(cause)})"
    return text.splitlines()[0]


def hint_of(exc: BaseException) -> str | None:
    """What to do about a failure, when an error in its chain says (a missing OAuth login does)."""
    from app.liveness import chain

    hints = (getattr(err, "hint", None) for err in chain(exc))
    return next((hint for hint in hints if isinstance(hint, str) and hint), None)


class ServerPool:
    """Async context manager: connect all servers concurrently; clean each up in its own task."""

    def __init__(
        self,
        slots: list[ServerSlot],
        secrets: set[str] | frozenset[str] = frozenset(),
        listener: Callable[[ServerSlot], None] | None = None,
    ) -> None:
        self.secrets = frozenset(secrets)
        for slot in slots:
            slot.secrets = self.secrets
        self.slots = {slot.name: slot for slot in slots}
        # Told when a slot has connected or failed (start-up status, servers joining a running chat).
        self.listener = listener

    async def _run(self, slot: ServerSlot) -> None:
        started = time.perf_counter()
        try:
            try:
                await asyncio.wait_for(slot.server.connect(), timeout=slot.start_timeout)
            except TimeoutError:
                slot.error = f"did not start within {slot.start_timeout:g}s (start_timeout)"
            except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
                from app.config.redact import redact

                slot.error = str(redact(describe_exception(exc), slot.secrets))
                slot.hint = hint_of(exc) or slot.hint
            else:
                slot.connected = True
                slot.start_ms = (time.perf_counter() - started) * 1000
            slot.ready.set()
            if self.listener is not None:
                try:
                    self.listener(slot)
                except Exception as exc:  # noqa: BLE001 - a display problem must not take the server down
                    log.debug("listener for %s failed: %r", slot.name, exc)
            if slot.connected:
                watching = hasattr(slot.server, "start_watching")
                if watching:
                    slot.server.start_watching()
                try:
                    await slot.stop.wait()
                finally:
                    if watching:
                        await slot.server.stop_watching()
        finally:
            slot.ready.set()
            slot.connected = False
            try:
                await slot.server.cleanup()
            except BaseException as exc:  # noqa: BLE001 - cleanup must not mask the real outcome
                log.debug("cleanup of %s failed: %r", slot.name, exc)

    def start(self) -> None:
        """Start connecting every server, each in its own task, without waiting."""
        for slot in self.slots.values():
            if slot.task is None:
                slot.task = asyncio.create_task(self._run(slot), name=f"mcp:{slot.name}")

    def starting(self) -> list[str]:
        """Servers still connecting."""
        return [name for name, slot in self.slots.items() if not slot.ready.is_set()]

    async def wait(self, names: list[str] | None = None, timeout: float | None = None) -> None:
        """Until the named servers (all by default) have connected or failed, or `timeout` passes."""
        slots = [self.slots[n] for n in names if n in self.slots] if names is not None else list(self.slots.values())
        waits = [slot.ready.wait() for slot in slots]
        if timeout is None:
            await asyncio.gather(*waits)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), timeout)

    async def __aenter__(self) -> ServerPool:
        self.start()
        try:
            await self.wait()
        except BaseException:
            await self.close()
            raise
        failed = [s for s in self.slots.values() if s.required and not s.connected]
        if failed:
            await self.close()
            raise ServerStartError(
                failed[0].failure_message(),
                hint=failed[0].hint
                or "fix the server (or mark it required: false) and try again; "
                "`agentdeck servers check` tests every server",
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open_alongside(self, other: Awaitable[T]) -> T:
        """Connect every server while `other` runs (hosted listings); on any failure neither is left running."""
        task = asyncio.ensure_future(other)
        try:
            await self.__aenter__()
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        try:
            return await task
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop every server and wait for its task to clean it up."""
        for slot in self.slots.values():
            slot.stop.set()
        tasks = [s.task for s in self.slots.values() if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def reconnect(self, name: str, server: Any) -> ServerSlot:
        """Stop a server (if it still runs) and connect a fresh server object in its place."""
        old = self.slots[name]
        old.stop.set()
        if old.task is not None:
            await asyncio.gather(old.task, return_exceptions=True)
        slot = ServerSlot(name, server, old.start_timeout, old.required, hint=old.hint, secrets=self.secrets)
        self.slots[name] = slot
        slot.task = asyncio.create_task(self._run(slot), name=f"mcp:{name}")
        await slot.ready.wait()
        return slot

    def connected(self) -> dict[str, Any]:
        """Name -> connected server object."""
        return {n: s.server for n, s in self.slots.items() if s.connected}

    def warnings(self) -> list[str]:
        """One line per optional server that failed."""
        return [
            f"optional server '{s.name}' is unavailable: {s.error}"
            for s in self.slots.values()
            if not s.required and not s.connected and s.error
        ]
