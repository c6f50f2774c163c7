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
        listed = [Root(uri=path.resolve().as_uri(), name=path.name or str(path)) for path in roots]  # type: ignore[arg-type]
        return ListRootsResult(roots=listed)

    return list_roots


class DrivenSession:
    """The client's session for the SDK, with input-required calls run through the client's loop."""

    def __init__(self, client: Any, name: str, hooks: ClientHooks) -> None:
        self._client = client
        self._session = client.session
        self._name = name
        self._hooks = hooks

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._session, attr)

    @property
    def raw(self) -> Any:
        """The mcp ClientSession itself (for subscriptions)."""
        return self._session

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        progress = self._hooks.progress
        callback = None
        if progress is not None:

            async def callback(done: float, total: float | None, message: str | None) -> None:
                progress(self._name, name, done, total, message)

        return await self._client.call_tool(name, arguments, progress_callback=callback, meta=kwargs.get("meta"))

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
    from mcp_types import SamplingCapability, SamplingToolsCapability

    # Each callback given declares its capability to the server; None leaves it out.
    callbacks: dict[str, Any] = {
        "elicitation_callback": hooks.elicitation,
        "sampling_callback": hooks.sampling,
        "list_roots_callback": _roots_callback(hooks.roots) if hooks.roots else None,
        "logging_callback": hooks.log,
        "log_level": hooks.log_level,
    }
    client = Client(
        transport,
        mode="auto",
        cache=None,
        read_timeout_seconds=read_timeout,
        message_handler=message_handler,
        client_info=client_info(),
        sampling_capabilities=SamplingCapability(tools=SamplingToolsCapability()) if hooks.sampling_tools else None,
        **callbacks,
    )
    ready: asyncio.Future[DrivenSession] = asyncio.get_running_loop().create_future()
    close = asyncio.Event()

    async def own() -> None:
        try:
            async with client as connected:
                ready.set_result(DrivenSession(connected, name, hooks))
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
