"""Reconnecting a server whose session, connection or process went away, on the next call that needs it.

A streamable HTTP server that restarts forgets its sessions (HTTP 404), a dropped connection leaves
the client with a dead transport, and a stdio server that exits leaves nothing to talk to. Rather
than failing every later call until someone types /reconnect, the next call reconnects first (with
backoff, for as long as the server is given to start) and then runs. A failed call is only run again
when the server provably never ran it (its session was unknown, the connection was refused) or the
tool says repeating it is harmless (read-only or idempotent), so a tool with side effects never runs
twice because of a reconnect.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

# The first reconnect waits this long (a restarting server needs a moment); each failure doubles it.
FIRST_DELAY = 0.2
MAX_DELAY = 8.0

_SESSION_GONE = re.compile(
    r"session (terminated|not found|expired|unknown)|unknown session|no valid session", re.IGNORECASE
)
_REFUSED = ("ConnectError", "ConnectionRefusedError")


class Recovery:
    """When one server may be reconnected, shared by every call in flight on it."""

    def __init__(self, enabled: bool, within: float = 20.0) -> None:
        self.enabled = enabled
        # How long one call keeps trying to reconnect before it fails (the server's start_timeout).
        self.within = within
        # Bumps on every reconnect: a call that failed on an older generation just retries.
        self.generation = 0
        self.reconnects = 0
        self.last_failure: str | None = None
        # After a call gave up, later calls fail at once until then, instead of each waiting again.
        self.not_before = 0.0
        self._lock = asyncio.Lock()

    async def recover(self, seen: int, reconnect: Callable[[], Awaitable[None]]) -> bool:
        """Reconnect unless a call already did since generation `seen`; False when the server stayed away.

        Attempts back off (0.2 s, doubling, at most 8 s apart) for up to `within` seconds. Calls that
        arrive meanwhile wait for the outcome rather than starting attempts of their own; calls
        soon after a failed episode fail at once.
        """
        async with self._lock:
            if self.generation != seen:
                return True
            if time.monotonic() < self.not_before:
                return False
            deadline = time.monotonic() + self.within
            delay = FIRST_DELAY
            while True:
                await asyncio.sleep(delay)
                if await self._attempt(reconnect):
                    self.generation += 1
                    self.reconnects += 1
                    self.last_failure = None
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.not_before = time.monotonic() + min(delay * 2, MAX_DELAY)
                    return False
                delay = min(delay * 2, MAX_DELAY, remaining)

    async def _attempt(self, reconnect: Callable[[], Awaitable[None]]) -> bool:
        # Shielded: a row that times out mid-reconnect must not leave the server half connected.
        attempt = asyncio.ensure_future(reconnect())
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            await asyncio.gather(attempt, return_exceptions=True)
            raise
        except Exception as exc:  # noqa: BLE001 - the cause is kept for the down message
            from app.connect import describe_exception

            self.last_failure = describe_exception(exc)
            return False
        return True


def never_delivered(exc: BaseException) -> bool:
    """True when the server cannot have run the request: its session was unknown or the connection refused."""
    from app.liveness import chain

    for err in chain(exc):
        if type(err).__name__ in _REFUSED:
            return True
        message = getattr(getattr(err, "error", None), "message", None)
        if isinstance(message, str) and _SESSION_GONE.search(message):
            return True
        if getattr(getattr(err, "response", None), "status_code", None) == 404:
            return True
    return False


def session_watching_client(on_rejected: Callable[[], None]) -> Callable[..., Any]:
    """An httpx client factory for streamable HTTP that reports when the server no longer knows our session.

    Servers say so differently (404 per the spec, 400 "No valid session ID" from others) and the mcp
    client turns some of those answers into a generic error, so the HTTP response is the one reliable
    place to see it.
    """
    import httpx2

    async def on_response(response: httpx2.Response) -> None:
        if "mcp-session-id" not in response.request.headers or response.status_code not in (400, 404):
            return
        body = (await response.aread())[:2000].decode("utf-8", "replace")
        if response.status_code == 404 or _SESSION_GONE.search(body):
            on_rejected()

    def create(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
        kwargs: dict[str, Any] = {"follow_redirects": False, "event_hooks": {"response": [on_response]}}
        if headers is not None:
            kwargs["headers"] = headers
        if timeout is not None:
            kwargs["timeout"] = timeout
        if auth is not None:
            kwargs["auth"] = auth
        return httpx2.AsyncClient(**kwargs)

    return create
