"""Open an MCP client session to a remote server URL, as OpenAI's hosted MCP does.

Streamable HTTP first, then SSE; HTTP failures keep their status code, because the MCP client
reports a 401 only as "Server returned an error response". Used by agentdeck to look at hosted
servers and by the fake OpenAI server to act as OpenAI's MCP client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Statuses after which SSE is worth a try: the URL does not speak streamable HTTP.
_TRY_SSE = {404, 405, 406, 415}


class RemoteMcpError(Exception):
    """Listing or connecting failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.unreachable = unreachable


@dataclass
class _StatusLog:
    statuses: list[int] = field(default_factory=list)

    async def __call__(self, response: Any) -> None:
        if response.status_code >= 400:
            self.statuses.append(response.status_code)


def is_local_url(url: str) -> bool:
    """True for loopback and private addresses, which OpenAI's servers cannot reach."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def http_reason(status: int) -> str:
    """`401 (Unauthorized)`."""
    from http import HTTPStatus

    try:
        return f"{status} ({HTTPStatus(status).phrase})"
    except ValueError:
        return str(status)


def request_headers(headers: Mapping[str, str] | None, authorization: str | None) -> dict[str, str]:
    """Headers as OpenAI sends them: the configured ones, and `authorization` as a bearer token."""
    out = dict(headers or {})
    if authorization:
        out = {k: v for k, v in out.items() if k.lower() != "authorization"}
        out["Authorization"] = f"Bearer {authorization}"
    return out


@asynccontextmanager
async def open_session(url: str, headers: Mapping[str, str], timeout: float = 15.0) -> AsyncIterator[Any]:
    """A connected `mcp.Client` (streamable HTTP, else SSE); raises RemoteMcpError on failure."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        client = await _connect(stack, url, dict(headers), timeout)
        yield client


async def _connect(stack: Any, url: str, headers: dict[str, str], timeout: float) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    log = _StatusLog()
    http = await stack.enter_async_context(
        httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks={"response": [log]})
    )
    try:
        return await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), cache=None))
    except Exception as exc:  # noqa: BLE001 - classified below
        first = _classify(exc, log)
    if first.unreachable or first.status not in _TRY_SSE:
        raise first

    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks={"response": [log]})

    log.statuses.clear()
    try:
        transport = sse_client(url, headers=headers, timeout=timeout, httpx_client_factory=factory)
        return await stack.enter_async_context(Client(transport, cache=None))
    except Exception as exc:  # noqa: BLE001 - classified below
        raise _classify(exc, log) from None


def _classify(exc: BaseException, log: _StatusLog) -> RemoteMcpError:
    import httpx2

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return RemoteMcpError(f"Http status code: {http_reason(exc.response.status_code)}", exc.response.status_code)
    if log.statuses:
        status = log.statuses[-1]
        return RemoteMcpError(f"Http status code: {http_reason(status)}", status)
    if isinstance(exc, httpx2.TimeoutException):
        return RemoteMcpError("the server did not answer in time", unreachable=True)
    if isinstance(exc, httpx2.TransportError):
        return RemoteMcpError(f"cannot connect: {exc or type(exc).__name__}", unreachable=True)
    return RemoteMcpError(str(exc).strip() or type(exc).__name__)


async def list_remote_tools(url: str, headers: Mapping[str, str], timeout: float = 15.0) -> list[Any]:
    """Every tool the server lists (all pages), as `mcp.types.Tool`; raises RemoteMcpError."""
    async with open_session(url, headers, timeout) as client:
        return await list_all(client)


async def list_all(client: Any) -> list[Any]:
    """tools/list through every page."""
    tools: list[Any] = []
    cursor = None
    for _ in range(100):
        try:
            page = await client.list_tools(cursor=cursor)
        except Exception as exc:  # noqa: BLE001 - reported as the listing error
            raise RemoteMcpError(f"tools/list failed: {exc}") from None
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools
