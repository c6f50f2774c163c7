"""The gateway's upstream servers: connected once, shared by every caller, reconnected when they drop."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from dataclasses import dataclass
from typing import Any

from app.config.governance import GatewayConfig, GatewayProfile, Globs
from app.config.loader import LoadedConfig
from app.filters import is_read_only, passes_policy
from app.gateway.tokens import Identity

log = logging.getLogger("agentdeck.gateway")


@dataclass(frozen=True)
class Exposed:
    """One upstream tool as the gateway offers it."""

    name: str  # server + separator + tool
    server: str
    tool: Any  # the upstream's mcp.types.Tool


class Upstream:
    """One server of `gateway.servers`: its session, its tools, and whether it is up."""

    def __init__(self, loaded: LoadedConfig, name: str) -> None:
        from app.config.models import HostedServerConfig
        from app.mcp_direct import DirectServer

        cfg = loaded.config.servers[name]
        assert not isinstance(cfg, HostedServerConfig)
        self.name = name
        self.server = DirectServer(loaded, name, cfg)
        self.timeout = cfg.start_timeout
        self.tools: list[Any] = []
        self.down: str | None = "not connected yet"
        self._lock = asyncio.Lock()
        # Bumped on every (re)connect: a call that failed on an older session retries on the new one
        # instead of reconnecting again, so many failing calls cause one reconnect, not a storm.
        self.generation = 0
        self._ready = asyncio.Event()  # clear while (re)connecting: new calls wait instead of finding no session
        self._ready.set()
        # Called when the upstream goes down or comes back (its tools leave or rejoin every list).
        self.on_change: Any = None

    async def connect(self) -> None:
        """Connect (again) and list the tools; on failure the upstream is down and offers nothing."""
        async with self._lock:
            await self._connect_locked()

    async def _reconnect(self, seen: int) -> None:
        async with self._lock:
            if self.generation == seen:  # nobody has reconnected since that call's session
                await self._connect_locked()

    async def _connect_locked(self) -> None:
        from app.connect import describe_exception

        self.generation += 1
        self._ready.clear()
        was = self.down
        try:
            await self.server.cleanup()
            await asyncio.wait_for(self.server.connect(), self.timeout)
            self.tools = await self.server.list_tools()
            self.down = None
        except Exception as exc:  # noqa: BLE001 - a down upstream is reported, the gateway goes on
            await self.server.cleanup()
            self.tools, self.down = [], describe_exception(exc)
            log.warning("upstream %s is down: %s", self.name, self.down)
        finally:
            self._ready.set()
        if (was is None) != (self.down is None) and self.on_change is not None:
            await self.on_change()

    async def check(self, timeout: float = 2.0) -> None:
        """Look at an upstream: list its tools if up (2026-07-28 has no ping), else try to bring it back."""
        if self.down is not None:
            await self._reconnect(self.generation)
            return
        seen = self.generation
        try:
            await self._ready.wait()
            tools = await asyncio.wait_for(self.server.list_tools(), timeout)
        except Exception:  # noqa: BLE001 - no answer is the answer
            await self._reconnect(seen)
            return
        if seen == self.generation and [t.model_dump() for t in tools] != [t.model_dump() for t in self.tools]:
            self.tools = tools
            if self.on_change is not None:
                await self.on_change()

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """tools/call; a dropped session is reconnected once and the call re-sent when that is safe."""
        from app.liveness import is_connection_loss
        from app.recovery import never_delivered

        await self._ready.wait()
        if self.down is not None:
            await self._reconnect(self.generation)
            if self.down is not None:
                raise UpstreamDown(self.name, self.down)
        used = self.generation
        try:
            return await self.server.call_tool(tool, arguments)
        except Exception as exc:
            if not (is_connection_loss(exc) or never_delivered(exc)):
                raise
            repeatable = never_delivered(exc) or any(t.name == tool and is_read_only(t) for t in self.tools)
            await self._reconnect(used)
            if self.down is not None:
                raise UpstreamDown(self.name, self.down) from exc
            if not repeatable:
                raise
            return await self.server.call_tool(tool, arguments)

    async def close(self) -> None:
        """Close the session (and stop a stdio child)."""
        await self.server.cleanup()


class UpstreamDown(Exception):
    """The upstream cannot be reached now."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"server '{name}' is unavailable: {cause}")


def _matches(globs: list[str] | None, *names: str) -> bool:
    return any(fnmatch.fnmatchcase(n, g) for g in globs or [] for n in names)


def passes(globs: Globs | None, prefixed: str, original: str) -> bool:
    """allow/block on either spelling of a tool's name (rules written before prefixing still match)."""
    if globs is None:
        return True
    if globs.allow is not None and not _matches(globs.allow, prefixed, original):
        return False
    return not _matches(globs.block, prefixed, original)


def visible(
    gateway: GatewayConfig, upstreams: dict[str, Upstream], profile: GatewayProfile, identity: Identity
) -> dict[str, Exposed]:
    """The tools `identity` sees on `profile`: the profile's servers, globs and policy, then the identity's globs."""
    out: dict[str, Exposed] = {}
    for server in profile.servers or gateway.servers:
        upstream = upstreams.get(server)
        if upstream is None or upstream.down is not None:
            continue
        for tool in upstream.tools:
            name = f"{server}{gateway.separator}{tool.name}"
            if not passes_policy(profile.policy, tool):
                continue
            if passes(profile.tools, name, tool.name) and passes(identity.tools, name, tool.name):
                out[name] = Exposed(name, server, tool)
    return out


def check_collisions(gateway: GatewayConfig, upstreams: dict[str, Upstream]) -> str | None:
    """Why two upstream tools would get the same gateway name (a separator inside names), if they would."""
    seen: dict[str, str] = {}
    for server, upstream in upstreams.items():
        for tool in upstream.tools:
            name = f"{server}{gateway.separator}{tool.name}"
            if name in seen:
                return f"'{seen[name]}' and '{server}/{tool.name}' would both be served as '{name}'"
            seen[name] = f"{server}/{tool.name}"
    return None
