"""agentdeck's MCP client under the Agents SDK's server classes.

The SDK opens its `mcp.Client` with no callbacks and no name, so a server that asks for input
(elicitation, sampling, roots) fails the call, and every server sees a client called "mcp". This
module opens the client agentdeck wants — its own name and version, the callbacks of the command
that runs (`ClientHooks`) — and hands the SDK a session whose calls that can come back
input-required (tools/call, prompts/get, resources/read) go through the client's retry loop, so
protocol 2026-07-28 input-required results and older servers' pushed requests are answered alike.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (server, tool, progress, total, message) -> None: a progress notification for a running call
ProgressHook = Callable[[str, str, float, float | None, str | None], None]


class ServerLog:
    """The last log messages a server sent (MCP logging), for /logs."""

    def __init__(self, keep: int = 500) -> None:
        self.lines: deque[str] = deque(maxlen=keep)

    async def __call__(self, params: Any) -> None:
        data = params.data if isinstance(params.data, str) else json.dumps(params.data, default=str)
        where = f" {params.logger}:" if params.logger else ""
        self.lines.append(f"{time.strftime('%H:%M:%S')} {params.level}{where} {data}")


class OwnTime:
    """Time spent answering a server's requests: a person filling in a form, a model sampling.

    A call's timeout measures the server; while the server waits on agentdeck the clock stops, or
    a form that takes a minute to fill in would fail the call that asked for it.
    """

    def __init__(self) -> None:
        self._done = 0.0
        self._open: dict[int, float] = {}
        self._ids = 0

    @property
    def active(self) -> bool:
        """Whether an answer is being prepared now."""
        return bool(self._open)

    def spent(self) -> float:
        """Seconds spent answering so far (answers still open included)."""
        now = time.monotonic()
        return self._done + sum(now - start for start in self._open.values())

    def wrap(
        self, callback: Callable[[Any, Any], Awaitable[Any]] | None
    ) -> Callable[[Any, Any], Awaitable[Any]] | None:
        """`callback`, with the time it takes counted here."""
        if callback is None:
            return None
        answer = callback

        async def timed(context: Any, params: Any) -> Any:
            self._ids += 1
            key = self._ids
            self._open[key] = time.monotonic()
            try:
                return await answer(context, params)
            finally:
                self._done += time.monotonic() - self._open.pop(key)

        return timed


async def within(call: Awaitable[Any], timeout: float | None, own: OwnTime, what: str) -> Any:
    """Await `call` for at most `timeout` seconds of the server's time (see OwnTime)."""
    task = asyncio.ensure_future(call)
    if timeout is None:
        return await task
    start, base = time.monotonic(), own.spent()
    try:
        while True:
            left = start + timeout + (own.spent() - base) - time.monotonic()
            if left <= 0 and not own.active:
                raise TimeoutError(f"Request '{what}' timed out after {timeout:g} s")
            done, _ = await asyncio.wait({task}, timeout=0.5 if own.active else max(left, 0.01))
            if task in done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class ClientHooks:
    """What one server's client answers with; None leaves that capability undeclared."""

    # (context, params) -> ElicitResult | ErrorData, as mcp's ElicitationFnT
    elicitation: Callable[[Any, Any], Awaitable[Any]] | None = None
    # (context, params) -> CreateMessageResult | ErrorData, as mcp's SamplingFnT
    sampling: Callable[[Any, Any], Awaitable[Any]] | None = None
    sampling_tools: bool = False
    roots: list[Path] = field(default_factory=list)
    progress: ProgressHook | None = None
    # Where the server's log messages go, and the level asked for (2026-07-28 servers send none without it).
    log: ServerLog = field(default_factory=ServerLog)
    log_level: str | None = "info"
    own: OwnTime = field(default_factory=OwnTime)


def client_info() -> Any:
    """`agentdeck` and its installed version, as servers see the client."""
    from importlib.metadata import PackageNotFoundError, version

    from mcp_types import Implementation

    try:
        installed = version("agentdeck")
    except PackageNotFoundError:
        installed = "0"
    return Implementation(name="agentdeck", version=installed)


def _roots_callback(roots: list[Path]) -> Callable[[Any], Awaitable[Any]]:
    from mcp_types import ListRootsResult, Root

    async def list_roots(context: Any) -> Any:
        # Read at each request: chat's /roots changes the list while the server is connected.
        resolved = [path.resolve() for path in roots]
        listed = [Root(uri=path.as_uri(), name=path.name or str(path)) for path in resolved]  # type: ignore[arg-type]
        return ListRootsResult(roots=listed)

    return list_roots


def client_callbacks(hooks: ClientHooks) -> dict[str, Any]:
    """`mcp.Client` keyword arguments for the hooks: each callback given declares its capability."""
    from mcp_types import SamplingCapability, SamplingToolsCapability

    return {
        "elicitation_callback": hooks.own.wrap(hooks.elicitation),
        "sampling_callback": hooks.own.wrap(hooks.sampling),
        "sampling_capabilities": SamplingCapability(tools=SamplingToolsCapability()) if hooks.sampling_tools else None,
        "list_roots_callback": _roots_callback(hooks.roots) if hooks.roots else None,
        "logging_callback": hooks.log,
        "log_level": hooks.log_level,
    }


def progress_callback(hooks: ClientHooks, server: str, tool: str) -> Callable[..., Awaitable[None]] | None:
    """The progress callback of one call, reporting to `hooks.progress` (None when nobody shows progress)."""
    progress = hooks.progress
    if progress is None:
        return None

    async def report(done: float, total: float | None, message: str | None) -> None:
        progress(server, tool, done, total, message)

    return report


async def answering_url_errors(call: Callable[[], Awaitable[Any]], hooks: ClientHooks) -> Any:
    """Run `call`; when the server answers "open these URLs first" (error -32042), ask, then retry once.

    The 2025-11-25 way to send someone to a URL mid-call (a sign-in page, a payment): the request
    fails with the URLs, and the client retries after the user has been there.
    """
    from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError
    from mcp_types import URL_ELICITATION_REQUIRED

    try:
        return await call()
    except MCPError as exc:
        if exc.error.code != URL_ELICITATION_REQUIRED or hooks.elicitation is None:
            raise
        for params in UrlElicitationRequiredError.from_error(exc.error).elicitations:
            answer = await hooks.elicitation(None, params)
            if getattr(answer, "action", None) != "accept":
                message = f"{exc.error.message} (the user did not open {params.url})"
                raise MCPError(code=exc.error.code, message=message) from None
    return await call()


async def call_with(
    client: Any,
    server: str,
    tool: str,
    arguments: dict[str, Any] | None,
    hooks: ClientHooks,
    timeout: float | None,
    meta: Any = None,
) -> Any:
    """tools/call through the client's input-required loop: progress reported, URL errors answered,
    and the timeout counting only the server's time."""
    report = progress_callback(hooks, server, tool)

    async def call() -> Any:
        # The client's own timer would count a person's answer against the server: `within` times it.
        pending = client.call_tool(tool, arguments, math.inf, progress_callback=report, meta=meta)
        return await within(pending, timeout, hooks.own, "tools/call")

    return await answering_url_errors(call, hooks)


class DrivenSession:
    """The client's session for the SDK, with input-required calls run through the client's loop."""

    def __init__(self, client: Any, name: str, hooks: ClientHooks, timeout: float | None = None) -> None:
        self._client = client
        self._session = client.session
        self._name = name
        self._hooks = hooks
        self._timeout = timeout

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._session, attr)

    @property
    def raw(self) -> Any:
        """The mcp ClientSession itself (for subscriptions)."""
        return self._session

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        return await call_with(
            self._client, self._name, name, arguments, self._hooks, self._timeout, kwargs.get("meta")
        )

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return await self._client.get_prompt(name, arguments, meta=kwargs.get("meta"))

    async def read_resource(self, uri: Any, **kwargs: Any) -> Any:
        return await self._client.read_resource(str(uri), meta=kwargs.get("meta"))


@asynccontextmanager
async def client_session(
    transport: Any, name: str, *, read_timeout: float | None, message_handler: Any, hooks: ClientHooks
) -> AsyncIterator[DrivenSession]:
    """Connect an `mcp.Client` over `transport` and yield its driven session until the context exits.

    The client lives in its own task, as in the SDK: anyio's scopes must be left by the task that
    entered them, and the SDK may clean up from another task than the one that connected.
    """
    from mcp import Client

    client = Client(
        transport,
        mode="auto",
        cache=None,
        read_timeout_seconds=read_timeout,
        message_handler=message_handler,
        client_info=client_info(),
        **client_callbacks(hooks),
    )
    ready: asyncio.Future[DrivenSession] = asyncio.get_running_loop().create_future()
    close = asyncio.Event()

    async def own() -> None:
        try:
            async with client as connected:
                ready.set_result(DrivenSession(connected, name, hooks, read_timeout))
                await close.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
                return
            raise

    task = asyncio.create_task(own(), name=f"mcp-client:{name}")
    try:
        try:
            session = await asyncio.shield(ready)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        except BaseException:
            await asyncio.gather(task, return_exceptions=True)
            raise
        yield session
    finally:
        close.set()
        await asyncio.gather(task, return_exceptions=True)
