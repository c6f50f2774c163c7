"""Build agents.Agent objects (with handoffs and agents-as-tools) from a validated config."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, Handoff, RunContextWrapper, handoff
from agents.mcp import MCPUtil
from pydantic import BaseModel, Field

from app.config.loader import LoadedConfig
from app.errors import AgentdeckError, ConfigError
from app.filters import UNSAFE_CHARS, check_collisions, prefixed_name
from app.hosted.spec import Listing, hosted_spec, tool_config
from app.providers import Models
from app.telemetry import attributed

DEFAULT_INSTRUCTIONS = "You are a helpful assistant. Use the tools you are given when they help."


@dataclass
class DeckAgent(Agent[Any]):
    """An Agent that can name MCP tools `server__tool` and reuses converted tools between turns.

    The SDK lists, deep-copies and converts every MCP tool on every model turn; with many concurrent
    runs (batch) that dominates the CPU. While a server's cached list is unchanged and its filter does
    not depend on the run, the converted tools are reused.
    """

    prefix_tool_names: bool = False
    _tool_cache: dict[int, tuple[tuple[int, int], list[Any]]] = field(default_factory=dict, repr=False, compare=False)

    async def get_mcp_tools(self, run_context: RunContextWrapper[Any]) -> list[Any]:
        from agents.exceptions import UserError

        tools: list[Any] = []
        names: set[str] = set()
        for index, server in enumerate(self.mcp_servers):
            batch = await self._server_tools(index, server, run_context)
            duplicates = sorted(names & {t.name for t in batch})
            if duplicates:
                raise UserError(f"Duplicate tool names found across MCP servers: {', '.join(duplicates)}")
            names.update(t.name for t in batch)
            tools.extend(batch)
        return tools

    async def _server_tools(self, index: int, server: Any, run_context: RunContextWrapper[Any]) -> list[Any]:
        from agents._public_agent import get_public_agent
        from agents.tool import default_tool_error_function

        cached = self._tool_cache.get(index)
        key = _reuse_key(server)
        if cached is not None and key is not None and cached[0] == key:
            return list(cached[1])

        def rename(tool: Any, server_name: str = server.name) -> str:
            return prefixed_name(server_name, tool.name)

        converted = await MCPUtil.get_function_tools(
            server,
            self.mcp_config.get("convert_schemas_to_strict", False),
            run_context,
            get_public_agent(self),
            failure_error_function=self.mcp_config.get("failure_error_function", default_tool_error_function),
            tool_name_override=rename if self.prefix_tool_names else None,
            server_index=index,
        )
        key = _reuse_key(server)
        if key is not None:
            self._tool_cache[index] = (key, converted)
        return list(converted)


def _reuse_key(server: Any) -> tuple[int, int] | None:
    """Identifies the server's current cached tool list, or None when converted tools cannot be reused."""
    from app.filters import ServerToolFilter

    generation = getattr(server, "cache_generation", None)
    current = generation() if generation is not None else None
    tool_filter = getattr(server, "tool_filter", None)
    run_independent = tool_filter is None or (isinstance(tool_filter, ServerToolFilter) and tool_filter.custom is None)
    return (id(server), current) if current is not None and run_independent else None


def agent_order(loaded: LoadedConfig) -> list[str]:
    """Agents ordered so that every as_tools target comes before its user, and handoff targets but for cycles."""
    # Handoffs are wired once all agents exist (build_agents), so only as_tools links need the order.
    agents = loaded.config.agents
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        # as_tools first: validation rejects any cycle through an as_tools link, so a depth-first
        # walk never meets an as_tools target that is still being visited.
        for dep in [*agents[name].as_tools, *agents[name].handoffs]:
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
    if agent.instructions is not None and not isinstance(agent.instructions, str):
        return DEFAULT_INSTRUCTIONS  # replaced by the prompt's text once its server is up (Deck)
    return agent.instructions or DEFAULT_INSTRUCTIONS


def hosted_tools(loaded: LoadedConfig, agent: str, listings: dict[str, Listing]) -> tuple[list[Any], dict[str, str]]:
    """The agent's hosted MCP tools, and server_label -> server name for recording their calls."""
    from app.hosted.runtime import hosted_tool

    tools, labels = [], {}
    for server in loaded.config.agents[agent].servers:
        spec = hosted_spec(loaded, server)
        if spec is not None:
            tools.append(hosted_tool(tool_config(loaded, spec, agent, listings.get(server)), server))
            labels[spec.label] = server
    return tools, labels


def build_agents(
    loaded: LoadedConfig,
    models: Models,
    servers: dict[str, Any],
    only: list[str] | None = None,
    listings: dict[str, Listing] | None = None,
    unavailable: dict[str, str] | None = None,
    existing: dict[str, DeckAgent] | None = None,
) -> dict[str, DeckAgent]:
    """The agents (all, or `only` these, added to `existing`), wired to the connected servers they name.

    `listings` holds what agentdeck saw of hosted servers, to turn filters into tool names. With
    `unavailable`, an agent that cannot be built (nor those that use it or hand off to it) is left out
    and the reason recorded there, instead of failing the whole build.
    """
    from app.hosted.runtime import HostedCallRecorder

    built: dict[str, DeckAgent] = dict(existing or {})
    new: list[str] = []
    for name in agent_order(loaded):
        if (only is not None and name not in only) or name in built:
            continue
        try:
            built[name] = _build_one(loaded, models, servers, name, built, listings or {}, HostedCallRecorder)
            new.append(name)
        except AgentdeckError as exc:
            if unavailable is None:
                raise
            unavailable[name] = exc.message
    # Handoffs may form cycles, so they are wired once every agent exists. An agent whose handoff
    # target is missing is itself unavailable, and so is every agent that uses that one.
    for name in _cut_off(loaded, new, built, unavailable):
        del built[name]
        new.remove(name)
    for name in new:
        built[name].handoffs = [reasoned_handoff(built[other]) for other in loaded.config.agents[name].handoffs]
    return built


def _cut_off(
    loaded: LoadedConfig, new: list[str], built: dict[str, DeckAgent], unavailable: dict[str, str] | None
) -> list[str]:
    """The newly built agents that hand off to (or use as a tool) an agent that is missing or cut off.

    Their reasons go to `unavailable`; without it, the first one is raised.
    """
    agents = loaded.config.agents
    dropped: list[str] = []
    changed = True
    while changed:
        changed = False
        for name in new:
            if name in dropped:
                continue
            spec = agents[name]
            gone = [o for o in [*spec.as_tools, *spec.handoffs] if o not in built or o in dropped]
            if not gone:
                continue
            why = f"it uses agent '{gone[0]}', which is unavailable"
            if unavailable is None:
                raise ConfigError(why)
            unavailable[name] = why
            dropped.append(name)
            changed = True
    return dropped


def _build_one(
    loaded: LoadedConfig,
    models: Models,
    servers: dict[str, Any],
    name: str,
    built: dict[str, DeckAgent],
    listings: dict[str, Listing],
    recorder: Any,
) -> DeckAgent:
    cfg = loaded.config
    spec = cfg.agents[name]
    missing = [other for other in spec.as_tools if other not in built]
    if missing:
        raise ConfigError(f"it uses agent '{missing[0]}', which is unavailable")
    hosted, labels = hosted_tools(loaded, name, listings)
    as_tools = [
        agent_tool(
            built[other],
            UNSAFE_CHARS.sub("_", f"ask_{other}"),
            cfg.agents[other].description or f"Ask the {other} agent.",
            cfg.agents[other].max_turns,
        )
        for other in spec.as_tools
    ]
    agent = DeckAgent(
        name=name,
        instructions=instructions_for(loaded, name),
        handoff_description=spec.description,
        model=models.model_for(name),
        model_settings=models.settings_for(name),
        mcp_servers=[servers[s] for s in spec.servers if s in servers],
        tools=[*hosted, *as_tools],
        prefix_tool_names=spec.prefix_tool_names,
        hooks=recorder(labels) if labels else None,
    )
    agent.tools += _resource_tools(loaded, name, agent)
    return agent


def _resource_tools(loaded: LoadedConfig, name: str, agent: DeckAgent) -> list[Any]:
    """list_resources / read_resource for the agent's servers with resources_as_tools, filtered like tools."""
    from app.config.models import HostedServerConfig
    from app.filters import passes_globs
    from app.resources import resource_tools

    spec = loaded.config.agents[name]
    wanted = [
        s
        for s in spec.servers
        if not isinstance(loaded.config.servers[s], HostedServerConfig)
        and getattr(loaded.config.servers[s], "resources_as_tools", False)
    ]
    tools: list[Any] = []
    for server in wanted:
        cfg = loaded.config.servers[server]
        # Plain names for one server; several (or prefixed agents) need them told apart.
        prefixed = spec.prefix_tool_names or len(wanted) > 1
        names = tuple(prefixed_name(server, t) if prefixed else t for t in ("list_resources", "read_resource"))

        def find(server: str = server) -> Any:
            # The agent's servers are rewired on /reconnect and when a slow server joins.
            return next((s for s in agent.mcp_servers if s.name == server), None)

        for tool in resource_tools(names, server, find):  # type: ignore[arg-type]
            raw = tool.name.rpartition("__")[2] if prefixed else tool.name
            if passes_globs(raw, getattr(cfg, "tools", None)) and passes_globs(raw, spec.tools):
                tools.append(tool)
    return tools


# The arguments of every `transfer_to_<agent>` call. Its docstring and description are what the model reads.
class HandoffReason(BaseModel):
    """Why the conversation is handed over."""

    reason: str | None = Field(default=None, description="Why you hand off, in a few words, for the user to see.")


def reasoned_handoff(target: DeckAgent) -> Handoff[Any, Any]:
    """A handoff to `target` whose call may carry a short reason: `{"reason": "..."}` in its arguments."""
    from agents.exceptions import ModelBehaviorError

    def on_handoff(context: RunContextWrapper[Any], data: HandoffReason) -> None:
        # Nothing to do: the reason stays in the call's arguments, where the chat reads it.
        return None

    made = handoff(target, input_type=HandoffReason, on_handoff=on_handoff)
    strict = made.on_invoke_handoff

    async def lenient(context: RunContextWrapper[Any], arguments: str) -> Any:
        # The reason is decoration: a model that sends no JSON or a malformed reason still hands off.
        try:
            return await strict(context, arguments)
        except ModelBehaviorError:
            return await strict(context, "{}")

    made.on_invoke_handoff = lenient
    return made


def agent_tool(agent: DeckAgent, tool_name: str, description: str, max_turns: int) -> FunctionTool:
    """`agent` as the tool `tool_name`, its inner calls attributed (`via`) and its events sent to a listener."""
    # Two SDK tools share one name: the streamed one runs only while app.nested has a listener.
    from app.nested import current_listener, forward

    quiet = agent.as_tool(tool_name=tool_name, tool_description=description, max_turns=max_turns)
    streamed = agent.as_tool(
        tool_name=tool_name,
        tool_description=description,
        max_turns=max_turns,
        on_stream=functools.partial(forward, tool_name),
        # A slow UI must not fail the tool call: keep every event until the listener catches up.
        on_stream_max_pending_events=None,
    )
    run_quiet, run_streamed = quiet.on_invoke_tool, streamed.on_invoke_tool

    async def invoke(context: Any, arguments: str) -> Any:
        # Streaming only when someone listens keeps `run`, `batch` and experiments as they were.
        with attributed(tool_name):
            run = run_streamed if current_listener() is not None else run_quiet
            return await run(context, arguments)

    quiet.on_invoke_tool = invoke
    return quiet


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
        rows = [(public, server) for public, server, _ in await offered_tools(agent, servers)]
        check_collisions(loaded, name, rows)
