"""Deck: config -> connected servers -> built agents, as one async context manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.build import DeckAgent, build_agents, check_tool_collisions
from app.config.loader import LoadedConfig
from app.config.models import HostedServerConfig
from app.connect import ServerPool, ServerSlot
from app.errors import UsageError
from app.mcp_servers import build_local_server
from app.providers import Models


def agent_closure(loaded: LoadedConfig, root: str) -> list[str]:
    """The agent and every agent it can hand off to or call as a tool."""
    agents = loaded.config.agents
    out: list[str] = []
    stack = [root]
    while stack:
        name = stack.pop()
        if name in out:
            continue
        out.append(name)
        stack.extend([*agents[name].handoffs, *agents[name].as_tools])
    return out


def pick_agent(loaded: LoadedConfig, requested: str | None) -> str:
    """--agent, else defaults.agent, else the first agent in the file."""
    from app.config.loader import did_you_mean

    agents = loaded.config.agents
    name = requested or loaded.config.defaults.agent or next(iter(agents))
    if name not in agents:
        raise UsageError(
            f"unknown agent '{name}'{did_you_mean(name, set(agents))}",
            hint=f"agents in {loaded.path}: {', '.join(agents)}",
        )
    return name


@dataclass
class DeckOptions:
    agent: str | None = None
    servers: list[str] | None = None
    model_override: str | None = None
    apply_filters: bool = True
    with_models: bool = True
    all_optional: bool = False


class Deck:
    """Connects what a command needs and builds its agents; cleans everything up on exit."""

    def __init__(self, loaded: LoadedConfig, options: DeckOptions | None = None) -> None:
        self.loaded = loaded
        self.options = options or DeckOptions()
        self.models = Models(loaded, self.options.model_override)
        self.agent_name: str | None = None
        self.agents: dict[str, DeckAgent] = {}
        self.pool: ServerPool | None = None
        self.servers: dict[str, Any] = {}

    def _server_names(self) -> list[str]:
        cfg = self.loaded.config
        if self.options.servers is not None:
            names = self.options.servers
        elif self.agent_name is not None:
            names = [s for a in agent_closure(self.loaded, self.agent_name) for s in cfg.agents[a].servers]
        else:
            names = list(cfg.servers)
        seen: list[str] = []
        for n in names:
            if n not in seen and not isinstance(cfg.servers[n], HostedServerConfig):
                seen.append(n)
        return seen

    async def __aenter__(self) -> Deck:
        cfg = self.loaded.config
        if self.options.servers is None:
            self.agent_name = pick_agent(self.loaded, self.options.agent)
        slots = []
        for name in self._server_names():
            server_cfg = cfg.servers[name]
            assert not isinstance(server_cfg, HostedServerConfig)
            server = build_local_server(self.loaded, name, server_cfg, apply_filters=self.options.apply_filters)
            required = server_cfg.required and not self.options.all_optional
            slots.append(ServerSlot(name, server, server_cfg.start_timeout, required))
        self.pool = ServerPool(slots)
        await self.pool.__aenter__()
        try:
            self.servers = self.pool.connected()
            if self.agent_name is not None:
                wanted = agent_closure(self.loaded, self.agent_name)
                models = self.models if self.options.with_models else _PlaceholderModels(self.loaded)
                built = build_agents(self.loaded, models, self.servers, only=wanted)
                self.agents = built
                await check_tool_collisions(built, self.servers, self.loaded)
        except BaseException:
            await self.pool.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.close()

    @property
    def agent(self) -> DeckAgent:
        """The agent the command runs."""
        assert self.agent_name is not None
        return self.agents[self.agent_name]

    async def reconnect(self, name: str) -> str | None:
        """Restart one server and rewire the agents that use it; return the error, if any."""
        assert self.pool is not None
        cfg = self.loaded.config.servers[name]
        assert not isinstance(cfg, HostedServerConfig)
        server = build_local_server(self.loaded, name, cfg, apply_filters=self.options.apply_filters)
        slot = await self.pool.reconnect(name, server)
        self.servers = self.pool.connected()
        for agent_name, agent in self.agents.items():
            wanted = [s for s in self.loaded.config.agents[agent_name].servers if s in self.servers]
            agent.mcp_servers = [self.servers[s] for s in wanted]
        return None if slot.connected else slot.error

    def warnings(self) -> list[str]:
        """Warnings worth showing before a run (optional servers that failed)."""
        return self.pool.warnings() if self.pool else []


class _PlaceholderModels(Models):
    """For commands that list tools: agents get the offline model, which is never called."""

    def model_for(self, agent_name: str) -> Any:
        from app.offline.model import OfflineModel
        from app.offline.rules import RuleSet

        return OfflineModel(RuleSet())
