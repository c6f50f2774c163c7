"""Deck: config -> connected servers -> built agents, as one async context manager."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.audit import open_trail
from app.build import DeckAgent, build_agents, check_tool_collisions
from app.config.checks import agent_closure, pick_agent, servers_used
from app.config.loader import LoadedConfig
from app.config.models import HostedServerConfig, LocalServerConfig, SseServerConfig
from app.config.redact import known_secrets
from app.connect import ServerPool, ServerSlot
from app.errors import AgentdeckError
from app.hosted.spec import HostedSpec, Listing, agent_globs, hosted_spec, wants_listing
from app.mcp_client import ClientHooks
from app.mcp_direct import missing_root
from app.mcp_servers import build_local_server
from app.otel import start_telemetry
from app.providers import Models
from app.server_requests import Interaction, hooks_for
from app.startup import EarlyServers

if TYPE_CHECKING:
    from app.audit.trail import AuditTrail


@dataclass
class DeckOptions:
    agent: str | None = None
    servers: list[str] | None = None
    model_override: str | None = None
    apply_filters: bool = True
    with_models: bool = True
    all_optional: bool = False
    # List every hosted server from here (tools list, servers check), not only those whose filters need it.
    list_hosted: bool = False
    # Build (and connect the servers of) every agent, not only the chosen one's closure (chat switches);
    # servers only other agents use are then optional.
    all_agents: bool = False
    # Connect the named servers from here even when they are handed to OpenAI (tools call).
    direct: bool = False
    # Return once servers have had `grace` seconds to connect; slower ones join the agents when ready
    # (chat). Their failures are then the caller's to show: nothing is raised for them.
    background: bool = False
    grace: float = 0.3
    # Record tool calls, model calls and runs in the config's audit trail (commands that run agents or tools),
    # as this caller (--user) and session.
    audited: bool = False
    user: str | None = None
    session: str | None = None


class Deck:
    """Connects what a command needs and builds its agents; cleans everything up on exit."""

    def __init__(
        self,
        loaded: LoadedConfig,
        options: DeckOptions | None = None,
        early: EarlyServers | None = None,
        listener: Callable[[ServerSlot], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.options = options or DeckOptions()
        # stdio children already spawned (app.startup), and who to tell as each server connects or fails
        self.early = early
        self.listener = listener
        self._collisions_checked = False
        self._prompted: set[str] = set()  # agents whose instructions were fetched from a server prompt
        # Who answers servers' elicitation and sampling requests (the command sets its asker).
        self.interaction = Interaction()
        # Where OAuth logins are kept; commands never start a browser login themselves (`auth login` does).
        self.state: Path | None = None
        self.models = Models(loaded, self.options.model_override)
        self.agent_name: str | None = None
        self.agents: dict[str, DeckAgent] = {}
        self.pool: ServerPool | None = None
        self.servers: dict[str, Any] = {}
        self.hosted: dict[str, HostedSpec] = {}
        self.listings: dict[str, Listing] = {}
        # Agents outside the chosen one's closure that could not be built (all_agents), and why.
        self.unavailable: dict[str, str] = {}
        self.audit: AuditTrail | None = None
        self._stop_telemetry: Callable[[], None] | None = None

    def _agent_names(self) -> list[str]:
        """The agents this deck builds."""
        if self.agent_name is None:
            return []
        if self.options.all_agents:
            return list(self.loaded.config.agents)
        return agent_closure(self.loaded, self.agent_name)

    def _server_names(self) -> list[str]:
        if self.options.servers is not None:
            return list(dict.fromkeys(self.options.servers))
        return servers_used(self.loaded, self.agent_name, self.options.all_agents)

    def _needed_servers(self) -> set[str]:
        """Servers whose failure stops the command: all it names, or those of the chosen agent's closure."""
        if self.agent_name is None:
            return set(self._server_names())
        cfg = self.loaded.config
        return {s for a in agent_closure(self.loaded, self.agent_name) for s in cfg.agents[a].servers}

    def _listing_wanted(self, spec: HostedSpec) -> bool:
        if self.options.list_hosted:
            return True
        agents = self._agent_names()
        users: list[str | None] = [a for a in agents if spec.name in self.loaded.config.agents[a].servers]
        return any(wants_listing(spec, agent_globs(self.loaded, a)) for a in users or [None])

    async def _list_hosted(self) -> None:
        from app.hosted.spec import list_hosted

        wanted = [spec for spec in self.hosted.values() if self._listing_wanted(spec)]
        listings = await asyncio.gather(*(list_hosted(spec) for spec in wanted))
        self.listings = {spec.name: listing for spec, listing in zip(wanted, listings, strict=True)}

    async def __aenter__(self) -> Deck:
        cfg = self.loaded.config
        if self.options.audited:
            # Before anything starts: a run that must be audited never runs unaudited.
            self.audit = self.models.audit = open_trail(self.loaded, self.options.user, self.options.session)
            self._stop_telemetry = start_telemetry(self.loaded)
            self.models.traced = self._stop_telemetry is not None
        if self.options.servers is None:
            self.agent_name = self.interaction.agent = pick_agent(self.loaded, self.options.agent)
        slots = []
        needed = self._needed_servers()
        secrets = frozenset(known_secrets(self.loaded))
        for name in self._server_names():
            server_cfg = cfg.servers[name]
            spec = hosted_spec(self.loaded, name)
            if spec is not None and not (self.options.direct and not isinstance(server_cfg, HostedServerConfig)):
                self.hosted[name] = spec
                continue
            assert not isinstance(server_cfg, HostedServerConfig)
            server = build_local_server(
                self.loaded, name, server_cfg, apply_filters=self.options.apply_filters, secrets=secrets,
                early=self.early, hooks=self._hooks(name, server_cfg), auth=self._auth(name, server_cfg),
            )  # fmt: skip
            required = server_cfg.required and not self.options.all_optional and name in needed
            hint = missing_root(self.loaded, name, server_cfg)
            slots.append(ServerSlot(name, server, server_cfg.start_timeout, required, hint=hint))
        self.pool = ServerPool(slots, secrets=secrets, listener=self._slot_ready)
        # Hosted servers are listed (when their filters need it) while local ones start.
        try:
            if self.options.background:
                self.pool.start()
                await self._list_hosted()
                await self.pool.wait(timeout=self.options.grace)
            else:
                await self.pool.open_alongside(self._list_hosted())
        except BaseException:
            await self.pool.close()
            self.close_audit()
            raise
        try:
            self.servers = self.pool.connected()
            if self.agent_name is not None:
                models = self.models if self.options.with_models else _PlaceholderModels(self.loaded)
                closure = agent_closure(self.loaded, self.agent_name)
                built = build_agents(self.loaded, models, self.servers, only=closure, listings=self.listings)
                if self.options.all_agents:
                    # The other agents are there to switch to: one that cannot be built is reported, not fatal.
                    built = build_agents(
                        self.loaded, models, self.servers, None, self.listings, self.unavailable, existing=built
                    )
                self.agents = built
                self._rewire()  # servers that connected while the agents were built
                await self._prompt_instructions()
                if not self.pool.starting():
                    await self._check_collisions()
        except BaseException:
            await self.pool.close()
            self.close_audit()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.pool is not None:
                await self.pool.close()
        finally:
            self.close_audit()

    def close_audit(self) -> None:
        """Write out the audit trail (a failure to write it is reported on stderr) and the last spans."""
        stop, self._stop_telemetry = self._stop_telemetry, None
        if stop is not None:
            stop()
        if self.audit is None:
            return
        failure, self.audit = self.audit.close(), None
        if failure:
            print(f"warning: {failure}", file=sys.stderr)

    @property
    def agent(self) -> DeckAgent:
        """The agent the command runs."""
        assert self.agent_name is not None
        return self.agents[self.agent_name]

    def _auth(self, name: str, cfg: LocalServerConfig) -> Any:
        """The OAuth login of a URL server with `auth:` (None for the rest)."""
        if getattr(cfg, "auth", None) is None:
            return None
        from app.oauth.flow import auth_for
        from app.state import state_dir

        assert isinstance(cfg, SseServerConfig)
        return auth_for(self.state or state_dir(), name, cfg)

    async def reconnect(self, name: str) -> str | None:
        """Restart one server and rewire the agents that use it; return the error, if any."""
        assert self.pool is not None
        cfg = self.loaded.config.servers[name]
        assert not isinstance(cfg, HostedServerConfig)
        server = build_local_server(
            self.loaded, name, cfg, apply_filters=self.options.apply_filters, secrets=self.pool.secrets,
            hooks=self._hooks(name, cfg), auth=self._auth(name, cfg),
        )  # fmt: skip
        slot = await self.pool.reconnect(name, server)
        if not slot.connected:
            return slot.error
        try:
            await self._prompt_instructions(refetch=name)
        except AgentdeckError as exc:
            return exc.message
        return None

    async def _prompt_instructions(self, refetch: str | None = None) -> None:
        """Agents whose instructions are a server's prompt get its text, from servers that are up.

        Fetched once per connection: `refetch` names a server that just reconnected. For an agent
        outside the chosen one's closure a failure makes it unavailable instead of stopping the command.
        """
        from app.resources import prompt_instructions

        closure = agent_closure(self.loaded, self.agent_name) if self.agent_name else []
        for agent_name, agent in self.agents.items():
            spec = self.loaded.config.agents[agent_name].instructions
            if spec is None or isinstance(spec, str) or spec.server not in self.servers:
                continue
            if agent_name in self._prompted and spec.server != refetch:
                continue
            where = self.loaded.where("agents", agent_name, "instructions")
            try:
                text = await prompt_instructions(self.servers[spec.server], spec.server, spec.prompt, spec.args, where)
            except AgentdeckError as exc:
                if agent_name in closure:
                    raise
                self.unavailable[agent_name] = exc.message
                continue
            agent.instructions = text
            self._prompted.add(agent_name)

    def _hooks(self, name: str, cfg: LocalServerConfig) -> ClientHooks:
        models = self.models if self.options.with_models else None
        return hooks_for(self.loaded, name, cfg, self.interaction, models)

    def _slot_ready(self, slot: ServerSlot) -> None:
        """A server connected or failed: rewire the agents to what is connected now, then tell the listener."""
        self._rewire()
        if self.listener is not None:
            self.listener(slot)

    def _rewire(self) -> None:
        if self.pool is not None:
            self.servers = self.pool.connected()
            for agent_name, agent in self.agents.items():
                wanted = [s for s in self.loaded.config.agents[agent_name].servers if s in self.servers]
                agent.mcp_servers = [self.servers[s] for s in wanted]

    def starting(self, agent_name: str | None = None) -> list[str]:
        """Servers still connecting (those an agent's closure uses, when one is named)."""
        if self.pool is None:
            return []
        names = self.pool.starting()
        if agent_name is None:
            return names
        used = servers_used(self.loaded, agent_name)
        return [n for n in names if n in used]

    async def settle(self, agent_name: str) -> None:
        """Wait for the servers an agent uses that are still starting; check tool names once all are up."""
        assert self.pool is not None
        await self.pool.wait(self.starting(agent_name))
        await self._prompt_instructions()
        if not self.pool.starting():
            await self._check_collisions()

    async def _check_collisions(self) -> None:
        if not self._collisions_checked:
            await check_tool_collisions(self.agents, self.servers, self.loaded)
            self._collisions_checked = True

    def warnings(self) -> list[str]:
        """Warnings worth showing before a run: optional servers that failed, unreachable hosted URLs."""
        from app.hosted.spec import unreachable_warnings

        out = self.pool.warnings() if self.pool else []
        out += [f"agent '{name}' is unavailable: {why}" for name, why in self.unavailable.items()]
        return out + unreachable_warnings(self.loaded, self.hosted, list(self.agents))


class _PlaceholderModels(Models):
    """For commands that list tools: agents get the offline model, which is never called."""

    def model_for(self, agent_name: str) -> Any:
        from app.offline.model import OfflineModel
        from app.offline.rules import RuleSet

        return OfflineModel(RuleSet())
