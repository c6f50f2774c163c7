"""Prompt and resource lists kept with a server's tool cache (same switch, same TTL).

Chat lists prompts and resources for /prompts, /resources and their completion on every keystroke
that needs them; a server with `cache_tools` answers those from here until its TTL passes or the
server says the list changed (a list_changed notification or a subscriptions/listen event).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

# Which cached lists one kind of change makes stale.
STALE_ON = {"prompts": ("prompts",), "resources": ("resources", "templates")}


class ListCache:
    """Cached list results by kind ("prompts", "resources", "templates")."""

    def __init__(self, enabled: bool, ttl: float | None) -> None:
        self.enabled = enabled
        self.ttl = ttl
        self.fetches: dict[str, int] = {}
        self._entries: dict[str, tuple[float, Any]] = {}

    async def get(self, kind: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The cached list of `kind`, fetched when missing, expired or disabled."""
        entry = self._entries.get(kind)
        if entry is not None and (self.ttl is None or time.monotonic() - entry[0] <= self.ttl):
            return entry[1]
        result = await fetch()
        self.fetches[kind] = self.fetches.get(kind, 0) + 1
        if self.enabled:
            self._entries[kind] = (time.monotonic(), result)
        return result

    def changed(self, what: str) -> None:
        """The server said its `what` ("prompts" or "resources") list changed."""
        for kind in STALE_ON[what]:
            self._entries.pop(kind, None)

    def clear(self) -> None:
        """Forget everything (a reconnect may have reached another version of the server)."""
        self._entries.clear()
