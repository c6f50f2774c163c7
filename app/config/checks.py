"""Cross-reference checks that a schema alone cannot express."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.config.models import (
    CompatibleProviderConfig,
    OfflineProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
    SseServerConfig,
    StdioServerConfig,
    runs_hosted,
)
from app.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from app.config.loader import LoadedConfig

BUILTIN_PROVIDERS = ("auto", "openai", "offline")


def resolve_provider(loaded: LoadedConfig, agent_name: str) -> tuple[str, ProviderConfig]:
    """The provider an agent uses: its own, else defaults.provider, else auto."""
    cfg = loaded.config
    name = cfg.agents[agent_name].provider or cfg.defaults.provider or "auto"
    if name in cfg.providers:
        return name, cfg.providers[name]
    if name == "auto":
        # A declared provider named openai/offline is what auto picks, so a config can ship rules.
        name = "openai" if loaded.env.get("OPENAI_API_KEY") else "offline"
        if name in cfg.providers:
            return name, cfg.providers[name]
    return provider_named(loaded, name)


def provider_named(loaded: LoadedConfig, name: str) -> tuple[str, ProviderConfig]:
    """A provider by name: a declared one, else the built-in openai or offline."""
    if name in loaded.config.providers:
        return name, loaded.config.providers[name]
    if name == "openai":
        return name, OpenAIProviderConfig(kind="openai")
    return name, OfflineProviderConfig(kind="offline")


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


def runs_on_openai(loaded: LoadedConfig, agent_name: str) -> bool:
    """True when the agent's model requests go to OpenAI itself (not a compatible or fake server)."""
    _, provider = resolve_provider(loaded, agent_name)
    if not isinstance(provider, OpenAIProviderConfig):
        return False
    base_url = provider.base_url or loaded.env.get("OPENAI_BASE_URL") or ""
    return base_url.rstrip("/") in ("", "https://api.openai.com/v1")


def provider_api(provider: ProviderConfig) -> str:
    """Which wire API a provider speaks: responses, chat_completions or offline."""
    if isinstance(provider, OpenAIProviderConfig | CompatibleProviderConfig):
        return provider.api
    return "offline"


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


def servers_used(loaded: LoadedConfig, agent_name: str | None, all_agents: bool = False) -> list[str]:
    """The servers a deck connects for an agent: its closure's (every agent's with all_agents; all without one)."""
    cfg = loaded.config
    if agent_name is None:
        return list(cfg.servers)
    agents = list(cfg.agents) if all_agents else agent_closure(loaded, agent_name)
    return list(dict.fromkeys(s for a in agents for s in cfg.agents[a].servers))


def check_references(loaded: LoadedConfig) -> None:
    """Raise ConfigError for the first broken reference, cycle or incompatible pairing."""
    from app.config.loader import did_you_mean

    cfg = loaded.config
    agents, servers = set(cfg.agents), set(cfg.servers)
    providers = set(cfg.providers) | set(BUILTIN_PROVIDERS)

    def fail(at: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        raise ConfigError(f"{loaded.where(*at)}: {message}", hint=hint)

    if cfg.defaults.agent and cfg.defaults.agent not in agents:
        fail(("defaults", "agent"), f"unknown agent '{cfg.defaults.agent}'{did_you_mean(cfg.defaults.agent, agents)}")
    if cfg.defaults.provider and cfg.defaults.provider not in providers:
        fail(
            ("defaults", "provider"),
            f"unknown provider '{cfg.defaults.provider}'{did_you_mean(cfg.defaults.provider, providers)}",
            hint="declare it under providers: or use auto, openai or offline",
        )
    for name, provider in cfg.providers.items():
        if isinstance(provider, OfflineProviderConfig) and provider.rules:
            rules = loaded.resolve_path(provider.rules)
            if not rules.is_file():
                fail(("providers", name, "rules"), f"rules file {rules} does not exist")
            check_rules_file(rules)
        if isinstance(provider, OfflineProviderConfig) and provider.log:
            log = loaded.resolve_path(provider.log)
            if log.is_dir() or not log.parent.is_dir():
                what = f"{log} is a folder" if log.is_dir() else f"the folder {log.parent} does not exist"
                fail(("providers", name, "log"), f"cannot write the call log: {what}")

    for name, entry in cfg.servers.items():
        # What `run` does when it connects a server, short of starting it: import its filter function.
        if isinstance(entry, StdioServerConfig | SseServerConfig) and entry.filter and not runs_hosted(entry):
            from app.filters import load_callable

            load_callable(entry.filter, loaded.base_dir, loaded.where("servers", name, "filter"))
        if isinstance(entry, StdioServerConfig) and entry.cwd:
            cwd = loaded.resolve_path(entry.cwd)
            if not cwd.is_dir():
                fail(("servers", name, "cwd"), f"the folder {cwd} does not exist")
        if isinstance(entry, StdioServerConfig | SseServerConfig):
            sampling = entry.sampling
            if not isinstance(sampling, str) and sampling.provider and sampling.provider not in providers:
                fail(
                    ("servers", name, "sampling", "provider"),
                    f"unknown provider '{sampling.provider}'{did_you_mean(sampling.provider, providers)}",
                    hint="declare it under providers: or use openai or offline",
                )
            for i, root in enumerate(entry.roots):
                if not loaded.resolve_path(root).is_dir():
                    fail(("servers", name, "roots", i), f"the folder {loaded.resolve_path(root)} does not exist")

    for name, agent in cfg.agents.items():
        base = ("agents", name)
        if agent.provider and agent.provider not in providers:
            fail(
                base + ("provider",),
                f"unknown provider '{agent.provider}'{did_you_mean(agent.provider, providers)}",
                hint="declare it under providers: or use auto, openai or offline",
            )
        prompt = agent.instructions
        if prompt is not None and not isinstance(prompt, str) and prompt.server not in agent.servers:
            fail(
                base + ("instructions", "server"),
                f"the prompt's server '{prompt.server}' is not one of the agent's servers",
                hint=f"add it to agents.{name}.servers (servers: {', '.join(agent.servers) or 'none'})",
            )
        if agent.instructions_file:
            path = loaded.resolve_path(agent.instructions_file)
            if not path.is_file():
                fail(base + ("instructions_file",), f"file {path} does not exist")
            try:
                path.read_text(encoding="utf-8")
            except OSError as exc:
                fail(base + ("instructions_file",), f"cannot read {path}: {exc.strerror}")
            except UnicodeDecodeError as exc:
                fail(
                    base + ("instructions_file",),
                    f"cannot read {path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                )
        for i, server in enumerate(agent.servers):
            if server not in servers:
                fail(
                    base + ("servers", i),
                    f"unknown server '{server}'{did_you_mean(server, servers)}",
                    hint=f"declared servers: {', '.join(sorted(servers)) or 'none'}",
                )
        for key in ("handoffs", "as_tools"):
            for i, other in enumerate(getattr(agent, key)):
                if other not in agents:
                    fail(base + (key, i), f"unknown agent '{other}'{did_you_mean(other, agents)}")
                if other == name:
                    fail(base + (key, i), f"agent '{name}' refers to itself")
        labels: dict[str, str] = {}
        for i, server in enumerate(agent.servers):
            cfg_server = cfg.servers[server]
            if runs_hosted(cfg_server):
                label = getattr(cfg_server, "label", None) or server
                if label in labels:
                    fail(
                        base + ("servers", i),
                        f"hosted servers '{labels[label]}' and '{server}' both use the label '{label}'",
                        hint="OpenAI tells hosted servers apart by label; give one of them another label",
                    )
                labels[label] = server
        _, provider = resolve_provider(loaded, name)
        for i, server in enumerate(agent.servers):
            if runs_hosted(cfg.servers[server]) and provider_api(provider) == "chat_completions":
                fail(
                    base + ("servers", i),
                    f"hosted server '{server}' needs the Responses API, but this agent's provider uses chat_completions",
                    hint="use a provider with api: responses, or a stdio/sse/streamable_http server",
                )

    # Handoff cycles are fine (triage -> billing -> triage): the run's max_turns bounds them. A cycle
    # through an as_tools link is not: each lap starts another nested run, with no bound on the depth.
    as_tools = {n: a.as_tools for n, a in cfg.agents.items()}
    cycle = find_cycle(as_tools)
    if cycle:
        fail(
            ("agents", cycle[0], "as_tools"),
            f"as_tools form a cycle: {' -> '.join(cycle)}",
            hint="agents used as tools cannot call each other in a circle; remove one of the links",
        )
    nesting = find_nesting_cycle(as_tools, {n: a.handoffs for n, a in cfg.agents.items()})
    if nesting:
        fail(
            ("agents", nesting[0], "as_tools", cfg.agents[nesting[0]].as_tools.index(nesting[1])),
            f"as_tools and handoffs form a cycle: {' -> '.join(nesting)}",
            hint=f"'{nesting[1]}', used as a tool by '{nesting[0]}', can lead back to it, so tool calls would nest "
            "without end (handoff cycles alone are fine); remove one of the links",
        )
    if cfg.gateway is not None:
        for i, server in enumerate(cfg.gateway.servers):
            if server not in servers:
                fail(("gateway", "servers", i), f"unknown server '{server}'{did_you_mean(server, servers)}")
            if runs_hosted(cfg.servers[server]):
                fail(
                    ("gateway", "servers", i),
                    f"server '{server}' is handed to OpenAI (hosted), so the gateway cannot connect to it",
                    hint="serve only stdio, sse and streamable_http servers that agentdeck connects to itself",
                )


def check_rules_file(path: Path) -> None:
    """The offline model's rules file, read as `run` will read it, with the bounds and locations of agents.yaml."""
    from app.offline.rules import load_rules

    load_rules(path)


def find_nesting_cycle(as_tools: dict[str, list[str]], handoffs: dict[str, list[str]]) -> list[str] | None:
    """A cycle of links that starts with an as_tools link, as [a, b, ..., a], or None."""
    links = {n: [*as_tools.get(n, []), *handoffs.get(n, [])] for n in {*as_tools, *handoffs}}
    for caller in sorted(as_tools):
        for used in as_tools[caller]:
            back = _shortest_path(links, used, caller)
            if back is not None:
                return [caller, *back]
    return None


def _shortest_path(graph: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """[start, ..., goal] along the graph's links, or None when goal cannot be reached."""
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:
        if node == goal:
            path: list[str] = []
            at: str | None = node
            while at is not None:
                path.append(at)
                at = came_from[at]
            return path[::-1]
        for nxt in graph.get(node, []):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
