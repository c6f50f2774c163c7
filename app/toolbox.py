"""Toolbox: connected servers and what an agent is offered, without a model or the Agents SDK.

The commands that only talk to servers (`tools list`, `tools call`, `servers check`) use this
instead of the Deck: the same servers, filters and hosted listings, reached with the `mcp`
client directly, so they start in a fraction of the time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from app.config.checks import pick_agent
from app.config.loader import LoadedConfig
from app.config.models import HostedServerConfig
from app.config.redact import known_secrets
from app.connect import ServerPool, ServerSlot
from app.errors import ServerStartError
from app.filters import (
    FilterContext,
    ServerToolFilter,
    build_tool_filter,
    check_collisions,
    prefixed_name,
    runs_only_as_task,
    task_only_warning,
)
from app.hosted.spec import HostedSpec, Listing, hosted_spec, list_hosted, unreachable_warnings
from app.mcp_direct import DirectServer, missing_root
from app.server_requests import Interaction, LazyModels, hooks_for


@dataclass
class Offered:
    """One tool an agent is offered: its public name, its server, the MCP tool."""

    name: str
    server: str
    tool: Any


class Toolbox:
    """Async context manager: connect the named servers (or an agent's) and list hosted ones."""

    def __init__(
        self,
        loaded: LoadedConfig,
        servers: list[str],
        *,
        agent: str | None = None,
        all_optional: bool = False,
        probe_hosted: bool = True,
        interaction: Interaction | None = None,
    ) -> None:
        self.loaded = loaded
        # Who answers servers' questions (nobody by default: forms are declined) and for which agent.
        self.interaction = interaction or Interaction()
        if self.interaction.agent is None and loaded.config.agents:
            self.interaction.agent = agent or pick_agent(loaded, None)
        self.agent = agent
        self.names = list(dict.fromkeys(servers))
        self.all_optional = all_optional
        # Found while listing (task-only tools left out); shown after the list.
        self.later_warnings: list[str] = []
        # Hosted http entries are connected like local ones unless they are to be looked at as OpenAI would.
        self.probe_hosted = probe_hosted
        self.pool = ServerPool([])
        self.servers: dict[str, DirectServer] = {}
        self.hosted: dict[str, HostedSpec] = {}
        self.listings: dict[str, Listing] = {}

    async def __aenter__(self) -> Toolbox:
        cfg = self.loaded.config
        slots = []
        for name in self.names:
            server_cfg = cfg.servers[name]
            spec = hosted_spec(self.loaded, name)
            if spec is not None and (self.probe_hosted or isinstance(server_cfg, HostedServerConfig)):
                self.hosted[name] = spec
                continue
            assert not isinstance(server_cfg, HostedServerConfig)
            # A server the command names is needed even when the config marks it optional.
            required = not self.all_optional and (self.agent is None or server_cfg.required)
            server = DirectServer(self.loaded, name, server_cfg)
            server.hooks = hooks_for(self.loaded, name, server_cfg, self.interaction, LazyModels(self.loaded))
            hint = missing_root(self.loaded, name, server_cfg)
            slots.append(ServerSlot(name, server, server_cfg.start_timeout, required, hint=hint))
        self.pool = ServerPool(slots, secrets=known_secrets(self.loaded))
        listings = await self.pool.open_alongside(asyncio.gather(*map(list_hosted, self.hosted.values())))
        self.listings = dict(zip(self.hosted, listings, strict=True))
        self.servers = self.pool.connected()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.close()

    def server(self, name: str) -> DirectServer:
        """A connected server; a failed one is a ServerStartError that says why."""
        if name not in self.servers:
            slot = self.pool.slots[name]
            raise ServerStartError(
                slot.failure_message(), hint=slot.hint or "`agentdeck servers check` tests every server"
            )
        return self.servers[name]

    def warnings(self) -> list[str]:
        """Optional servers that failed, and hosted servers OpenAI could not reach."""
        agents = [self.agent] if self.agent else []
        return self.pool.warnings() + unreachable_warnings(self.loaded, self.hosted, agents)

    async def server_tools(self, name: str, agent: str | None = None) -> list[Any]:
        """One server's tools after its own filters, and the agent's when one is given."""
        server_cfg = self.loaded.config.servers[name]
        assert not isinstance(server_cfg, HostedServerConfig)
        keep: ServerToolFilter = build_tool_filter(self.loaded, name, server_cfg)
        # Filter functions see what the SDK gives them: the agent (here by name) and the server.
        probe = SimpleNamespace(name=agent or "(server)")
        ctx = FilterContext(run_context=SimpleNamespace(context=None), agent=probe, server_name=name)
        return [tool for tool in await self.server(name).list_tools() if await keep(ctx, tool)]

    async def offered(self, agent: str) -> list[Offered]:
        """The local tools an agent is offered after every filter, in the order its servers are listed."""
        spec = self.loaded.config.agents[agent]
        out: list[Offered] = []
        for name in spec.servers:
            if name not in self.servers:
                continue
            tools = await self.server_tools(name, agent)
            task_only = [t.name for t in tools if runs_only_as_task(t)]
            if task_only:
                self.later_warnings.append(task_only_warning(name, task_only))
            for tool in tools:
                if tool.name in task_only:
                    continue
                public = prefixed_name(name, tool.name) if spec.prefix_tool_names else tool.name
                out.append(Offered(public, name, tool))
        if not spec.prefix_tool_names:
            check_collisions(self.loaded, agent, [(o.name, o.server) for o in out])
        return out
