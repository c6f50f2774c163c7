"""Build agents.Agent objects (with handoffs and agents-as-tools) from a validated config."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from agents import Agent, RunContextWrapper
from agents.mcp import MCPUtil

from app.config.loader import LoadedConfig
from app.config.models import HostedServerConfig
from app.errors import ConfigError
from app.mcp_servers import build_hosted_tool
from app.providers import Models

DEFAULT_INSTRUCTIONS = "You are a helpful assistant. Use the tools you are given when they help."
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def prefixed_name(server: str, tool: str) -> str:
    """`server__tool`, made safe for function-calling APIs (64 characters at most)."""
    name = _UNSAFE.sub("_", f"{server}__{tool}")
    if len(name) > 64:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


@dataclass
class DeckAgent(Agent[Any]):
    """An Agent that can name MCP tools `server__tool`."""

    prefix_tool_names: bool = False

    async def get_mcp_tools(self, run_context: RunContextWrapper[Any]) -> list[Any]:
        if not self.prefix_tool_names:
            return await super().get_mcp_tools(run_context)
        from agents.tool import default_tool_error_function

        failure = self.mcp_config.get("failure_error_function", default_tool_error_function)
        strict = self.mcp_config.get("convert_schemas_to_strict", False)
        tools: list[Any] = []
        for index, server in enumerate(self.mcp_servers):

            def rename(tool: Any, server_name: str = server.name) -> str:
                return prefixed_name(server_name, tool.name)

            tools.extend(
                await MCPUtil.get_function_tools(
                    server,
                    strict,
                    run_context,
                    self,
                    failure_error_function=failure,
                    tool_name_override=rename,
                    server_index=index,
                )
            )
        return tools


def agent_order(loaded: LoadedConfig) -> list[str]:
    """Agents ordered so that every handoff/as_tools target is built before its user."""
    agents = loaded.config.agents
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in [*agents[name].handoffs, *agents[name].as_tools]:
            visit(dep)
        order.append(name)

    for name in agents:
        visit(name)
    return order


def instructions_for(loaded: LoadedConfig, name: str) -> str:
    """The agent's instructions, read from instructions_file when given."""
    agent = loaded.config.agents[name]
    if agent.instructions_file:
        path = loaded.resolve_path(agent.instructions_file)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{loaded.where('agents', name, 'instructions_file')}: cannot read {path}: {exc.strerror}"
            ) from None
    return agent.instructions or DEFAULT_INSTRUCTIONS


def build_agents(
    loaded: LoadedConfig, models: Models, servers: dict[str, Any], only: list[str] | None = None
) -> dict[str, DeckAgent]:
    """The agents (all, or `only` these), wired to the connected servers they name."""
    cfg = loaded.config
    built: dict[str, DeckAgent] = {}
    for name in agent_order(loaded):
        if only is not None and name not in only:
            continue
        spec = cfg.agents[name]
        hosted = [
            build_hosted_tool(s, srv) for s in spec.servers if isinstance(srv := cfg.servers[s], HostedServerConfig)
        ]
        as_tools = [
            built[other].as_tool(
                tool_name=_UNSAFE.sub("_", f"ask_{other}"),
                tool_description=cfg.agents[other].description or f"Ask the {other} agent.",
                max_turns=cfg.agents[other].max_turns,
            )
            for other in spec.as_tools
        ]
        built[name] = DeckAgent(
            name=name,
            instructions=instructions_for(loaded, name),
            handoff_description=spec.description,
            model=models.model_for(name),
            model_settings=models.settings_for(name),
            mcp_servers=[servers[s] for s in spec.servers if s in servers],
            tools=[*hosted, *as_tools],
            handoffs=[built[other] for other in spec.handoffs],
            prefix_tool_names=spec.prefix_tool_names,
        )
    return built


async def offered_tools(agent: DeckAgent, servers: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(public name, server name, MCP tool) for every MCP tool the agent is offered after filters."""
    ctx = RunContextWrapper(context=None)
    out = []
    for server in agent.mcp_servers:
        for tool in await server.list_tools(ctx, agent):
            public = prefixed_name(server.name, tool.name) if agent.prefix_tool_names else tool.name
            out.append((public, server.name, tool))
    return out


async def check_tool_collisions(agents: dict[str, DeckAgent], servers: dict[str, Any], loaded: LoadedConfig) -> None:
    """Two servers offering one tool name to one agent is a config error unless names are prefixed."""
    for name, agent in agents.items():
        if agent.prefix_tool_names or len(agent.mcp_servers) < 2:
            continue
        owner: dict[str, str] = {}
        for public, server, _ in await offered_tools(agent, servers):
            if public in owner and owner[public] != server:
                raise ConfigError(
                    f"{loaded.where('agents', name, 'servers')}: servers '{owner[public]}' and "
                    f"'{server}' both offer a tool named '{public}' to agent '{name}'",
                    hint="set prefix_tool_names: true on the agent, or block the tool on one server",
                )
            owner[public] = server
