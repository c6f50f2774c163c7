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

    for name, agent in cfg.agents.items():
        base = ("agents", name)
        if agent.provider and agent.provider not in providers:
            fail(
                base + ("provider",),
                f"unknown provider '{agent.provider}'{did_you_mean(agent.provider, providers)}",
                hint="declare it under providers: or use auto, openai or offline",
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

    for key in ("handoffs", "as_tools"):
        cycle = find_cycle({n: getattr(a, key) for n, a in cfg.agents.items()})
        if cycle:
            fail(
                ("agents", cycle[0], key),
                f"{key} form a cycle: {' -> '.join(cycle)}",
                hint="an agent cannot reach itself again; remove one of the links",
            )


def check_rules_file(path: Path) -> None:
    """The offline model's rules file, read as `run` will read it, with the bounds and locations of agents.yaml."""
    from app.offline.rules import load_rules

    load_rules(path)


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
