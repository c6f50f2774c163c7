"""What a hosted MCP server is, and its `mcp` tool config for one agent.

A hosted server is a `transport: hosted` entry, or an sse/streamable_http entry with `hosted: true`
(then OpenAI reaches it at `public_url`, through `tunnel_id`, or at `url`). agentdeck's filters and
approval policy become `allowed_tools` and `require_approval`: exactly, by tool name, when
agentdeck could list the server's tools; otherwise only what needs no list can be expressed
(exact names, `read_only`), and anything else is a config error that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.config.loader import LoadedConfig
from app.config.models import ApprovalRules, HostedServerConfig, SseServerConfig, ToolGlobs, runs_hosted
from app.errors import ConfigError
from app.filters import is_destructive, matches_any, passes_globs, passes_policy

_GLOB_CHARS = set("*?[")
PROBE_TIMEOUT = 10.0


@dataclass
class HostedSpec:
    """One hosted server as agentdeck hands it to OpenAI."""

    name: str
    label: str
    server_url: str | None = None
    connector_id: str | None = None
    tunnel_id: str | None = None
    # Where agentdeck itself can look at the server (None: only OpenAI can reach it).
    probe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    authorization: str | None = None
    description: str | None = None
    allowed_tools: list[str] | None = None
    tools: ToolGlobs | None = None
    policy: str | None = None
    approval: str | ApprovalRules = "always"


@dataclass
class Listing:
    """What agentdeck saw when it listed a hosted server: its tools, or why it could not."""

    tools: list[Any] | None = None
    error: str | None = None
    status: int | None = None
    unreachable: bool = False


def hosted_spec(loaded: LoadedConfig, name: str) -> HostedSpec | None:
    """The hosted spec of a server entry, or None when agentdeck connects to it itself."""
    cfg = loaded.config.servers[name]
    if not runs_hosted(cfg):
        return None
    assert isinstance(cfg, HostedServerConfig | SseServerConfig)
    common: dict[str, Any] = {
        "name": name,
        "label": cfg.label or name,
        "headers": dict(cfg.headers),
        "description": cfg.description,
        "tools": cfg.tools,
        "policy": cfg.policy,
        "approval": cfg.approval,
    }
    if isinstance(cfg, HostedServerConfig):
        return HostedSpec(
            **common,
            server_url=cfg.server_url,
            connector_id=cfg.connector_id,
            tunnel_id=cfg.tunnel_id,
            probe_url=cfg.server_url,
            authorization=cfg.authorization,
            allowed_tools=cfg.allowed_tools,
        )
    server_url = None if cfg.tunnel_id else (cfg.public_url or cfg.url)
    return HostedSpec(**common, server_url=server_url, tunnel_id=cfg.tunnel_id, probe_url=cfg.url)


async def list_hosted(spec: HostedSpec, timeout: float = PROBE_TIMEOUT) -> Listing:
    """The server's tools as agentdeck sees them, or why it cannot see them."""
    from app.remote_mcp import RemoteMcpError, list_remote_tools, request_headers

    if spec.probe_url is None:
        return Listing(error="only OpenAI can reach it (connector or tunnel)", unreachable=True)
    try:
        tools = await list_remote_tools(spec.probe_url, request_headers(spec.headers, spec.authorization), timeout)
    except RemoteMcpError as exc:
        return Listing(error=exc.message, status=exc.status, unreachable=exc.unreachable)
    return Listing(tools=tools)


def unreachable_warnings(loaded: LoadedConfig, hosted: dict[str, HostedSpec], agents: list[str]) -> list[str]:
    """Hosted servers at a local URL that an agent running on OpenAI itself would hand to OpenAI."""
    from app.config.checks import runs_on_openai
    from app.remote_mcp import is_local_url

    out = []
    for name, spec in hosted.items():
        users = [a for a in agents if name in loaded.config.agents[a].servers]
        if spec.server_url and is_local_url(spec.server_url) and any(runs_on_openai(loaded, a) for a in users):
            out.append(
                f"hosted server '{name}' is at {spec.server_url}, which OpenAI cannot reach; "
                "set public_url (e.g. a tunnel) or tunnel_id"
            )
    return out


def agent_globs(loaded: LoadedConfig, agent: str | None) -> ToolGlobs | None:
    """An agent's own `tools` globs (None for none, or when no agent is given)."""
    return loaded.config.agents[agent].tools if agent else None


def wants_listing(spec: HostedSpec, agent: ToolGlobs | None) -> bool:
    """Whether the tool list makes the config exact (approval: destructive has a cruder fallback)."""
    return spec.approval == "destructive" or needs_listing(spec, agent)


def needs_listing(spec: HostedSpec, agent: ToolGlobs | None) -> bool:
    """Whether the config can only be expressed with the server's tool list."""
    if spec.policy == "no_destructive":
        return True
    patterns: list[str] = []
    for globs in (spec.tools, agent):
        if globs is not None:
            patterns += [*(globs.allow or []), *(globs.block or [])]
            if globs.block:
                return True
    if isinstance(spec.approval, ApprovalRules):
        patterns += [*spec.approval.always, *spec.approval.never]
    return any(_GLOB_CHARS & set(p) for p in patterns)


def tool_config(loaded: LoadedConfig, spec: HostedSpec, agent: str | None, listing: Listing | None) -> dict[str, Any]:
    """The Responses API `mcp` tool for this server as `agent` sees it; ConfigError when inexpressible."""
    config: dict[str, Any] = {"type": "mcp", "server_label": spec.label}
    for key in ("server_url", "connector_id", "tunnel_id"):
        if getattr(spec, key):
            config[key] = getattr(spec, key)
    if spec.headers:
        config["headers"] = dict(spec.headers)
    if spec.authorization:
        config["authorization"] = spec.authorization
    if spec.description:
        config["server_description"] = spec.description
    globs = agent_globs(loaded, agent)
    if listing is not None and listing.tools is not None:
        names = [t.name for t in listing.tools if passes_filters(spec, globs, t)]
        if spec.policy == "read_only":
            config["allowed_tools"] = {"tool_names": names, "read_only": True}
        elif len(names) < len(listing.tools) or spec.allowed_tools is not None:
            config["allowed_tools"] = names
        kept = [t for t in listing.tools if t.name in names]
        config["require_approval"] = _approval_by_name(spec.approval, kept)
        return config
    if needs_listing(spec, globs):
        raise ConfigError(
            _unlistable(loaded, spec, agent, listing),
            hint="name the tools exactly in tools.allow (no globs, no block list), or make the server reachable",
        )
    allowed = _exact_allowed(spec, globs)
    if spec.policy == "read_only":
        config["allowed_tools"] = {"read_only": True} | ({"tool_names": allowed} if allowed is not None else {})
    elif allowed is not None:
        config["allowed_tools"] = allowed
    config["require_approval"] = _approval_without_list(spec.approval)
    return config


def passes_filters(spec: HostedSpec, agent: ToolGlobs | None, tool: Any) -> bool:
    """The server's allowed_tools, tools globs and policy, then the agent's globs."""
    if spec.allowed_tools is not None and tool.name not in spec.allowed_tools:
        return False
    return passes_globs(tool.name, spec.tools) and passes_globs(tool.name, agent) and passes_policy(spec.policy, tool)


def _exact_allowed(spec: HostedSpec, agent: ToolGlobs | None) -> list[str] | None:
    """Allow-lists intersected, in the order first given; None when nothing restricts the names."""
    lists = [spec.allowed_tools] + [g.allow for g in (spec.tools, agent) if g is not None]
    given = [names for names in lists if names is not None]
    if not given:
        return None
    out = [n for n in given[0] if all(n in other for other in given[1:])]
    return list(dict.fromkeys(out))


def _approval_by_name(setting: str | ApprovalRules, tools: list[Any]) -> Any:
    if setting in ("never", "always"):
        return setting
    if setting == "destructive":
        ask = [t.name for t in tools if is_destructive(t)]
    else:
        assert isinstance(setting, ApprovalRules)
        ask = [t.name for t in tools if matches_any(t.name, setting.always) and not matches_any(t.name, setting.never)]
    # Only the tools that need no approval are named: a tool the list did not show (added later, or
    # different behind public_url) is on neither list, and OpenAI asks for it.
    safe = [t.name for t in tools if t.name not in ask]
    return {"never": {"tool_names": safe}} if safe else "always"


def _approval_without_list(setting: str | ApprovalRules) -> Any:
    if setting in ("never", "always"):
        return setting
    if setting == "destructive":
        # Without the list, read-only annotations are all OpenAI can go by; everything else asks.
        return {"never": {"read_only": True}}
    assert isinstance(setting, ApprovalRules)
    ask = [n for n in setting.always if n not in setting.never]
    return {"always": {"tool_names": ask}} if ask else "never"


def _unlistable(loaded: LoadedConfig, spec: HostedSpec, agent: str | None, listing: Listing | None) -> str:
    """Why the config needs the tool list, and why agentdeck has none."""
    if spec.policy == "no_destructive":
        key, what = ("servers", spec.name, "policy"), "policy no_destructive"
    elif isinstance(spec.approval, ApprovalRules) and needs_listing(
        HostedSpec(spec.name, spec.label, approval=spec.approval), None
    ):
        key, what = ("servers", spec.name, "approval"), "approval globs"
    elif agent and needs_listing(HostedSpec(spec.name, spec.label), agent_globs(loaded, agent)):
        key, what = ("agents", agent, "tools"), f"agent '{agent}' tool globs or block list"
    else:
        key, what = ("servers", spec.name, "tools"), "tool globs or a block list"
    if listing is not None and listing.error:
        cause = f"agentdeck could not list its tools ({listing.error})"
    elif spec.probe_url is None:
        cause = "only OpenAI can reach it (connector or tunnel), so agentdeck cannot list its tools"
    else:
        cause = "its tools were not listed"
    return f"{loaded.where(*key)}: {what} on hosted server '{spec.name}' needs its tool list, but {cause}"
