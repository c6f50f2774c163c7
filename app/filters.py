"""Tool filters: static globs, annotation policies and user callables, composed per server."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config.models import ToolGlobs
from app.errors import ConfigError

if TYPE_CHECKING:
    from app.config.loader import LoadedConfig
    from app.config.models import LocalServerConfig

UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def prefixed_name(server: str, tool: str) -> str:
    """`server__tool`, made safe for function-calling APIs (64 characters at most)."""
    name = UNSAFE_CHARS.sub("_", f"{server}__{tool}")
    if len(name) > 64:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


def check_collisions(loaded: LoadedConfig, agent: str, offered: Iterable[tuple[str, str]]) -> None:
    """Two servers offering one public tool name to one agent is a config error."""
    owner: dict[str, str] = {}
    for public, server in offered:
        if public in owner and owner[public] != server:
            raise ConfigError(
                f"{loaded.where('agents', agent, 'servers')}: servers '{owner[public]}' and "
                f"'{server}' both offer a tool named '{public}' to agent '{agent}'",
                hint="set prefix_tool_names: true on the agent, or block the tool on one server",
            )
        owner[public] = server


def matches_any(name: str, patterns: list[str] | None) -> bool:
    """True if the tool name matches one of the (case-sensitive) globs."""
    return any(fnmatchcase(name, p) for p in patterns or [])


def passes_globs(name: str, globs: ToolGlobs | None) -> bool:
    """Allow-list first (when set), then block-list."""
    if globs is None:
        return True
    if globs.allow is not None and not matches_any(name, globs.allow):
        return False
    return not matches_any(name, globs.block)


def is_read_only(tool: Any) -> bool:
    """The tool declares readOnlyHint: true."""
    ann = getattr(tool, "annotations", None)
    return bool(ann is not None and ann.read_only_hint)


def is_destructive(tool: Any) -> bool:
    """MCP semantics: a tool that is not read-only is destructive unless it says otherwise."""
    if is_read_only(tool):
        return False
    ann = getattr(tool, "annotations", None)
    hint = None if ann is None else ann.destructive_hint
    return hint is not False


def passes_policy(policy: str | None, tool: Any) -> bool:
    """read_only keeps only read-only tools; no_destructive drops destructive ones."""
    if policy == "read_only":
        return is_read_only(tool)
    if policy == "no_destructive":
        return not is_destructive(tool)
    return True


def load_callable(ref: str, base_dir: Path, what: str) -> Callable[..., Any]:
    """Import `package.module:function`, looking beside the config file first."""
    module_name, _, attr = ref.partition(":")
    added = str(base_dir.resolve())
    if added not in sys.path:
        sys.path.insert(0, added)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is the user's config problem
        # One line: the exception's type and the first line of its message (a SyntaxError names file and line).
        first = (str(exc).strip().splitlines() or [""])[0]
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise ConfigError(f"{what}: cannot import module '{module_name}': {reason}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{what}: module '{module_name}' has no function '{attr}'")
    return fn


@dataclass
class FilterContext:
    """What a filter function is given outside a run: the fields of the SDK's ToolFilterContext."""

    run_context: Any
    agent: Any
    server_name: str


class ServerToolFilter:
    """One server's composed dynamic filter: server globs, agent globs, policy, then callable."""

    def __init__(
        self,
        server_globs: ToolGlobs | None,
        agent_globs: Mapping[str, ToolGlobs | None],
        policy: str | None,
        custom: Callable[..., Any] | None,
    ) -> None:
        self.server_globs = server_globs
        self.agent_globs = agent_globs
        self.policy = policy
        self.custom = custom

    def static_ok(self, agent_name: str, tool: Any) -> bool:
        """Everything except the user's callable."""
        name = tool.name
        return (
            passes_globs(name, self.server_globs)
            and passes_globs(name, self.agent_globs.get(agent_name))
            and passes_policy(self.policy, tool)
        )

    async def __call__(self, ctx: Any, tool: Any) -> bool:
        if not self.static_ok(ctx.agent.name, tool):
            return False
        if self.custom is None:
            return True
        verdict = self.custom(ctx, tool)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)


def build_tool_filter(loaded: LoadedConfig, name: str, cfg: LocalServerConfig) -> ServerToolFilter:
    """Compose the server's filters with those of every agent that uses it."""
    agent_globs: dict[str, ToolGlobs | None] = {
        agent_name: agent.tools for agent_name, agent in loaded.config.agents.items() if name in agent.servers
    }
    custom = (
        load_callable(cfg.filter, loaded.base_dir, f"{loaded.where('servers', name, 'filter')}") if cfg.filter else None
    )
    return ServerToolFilter(cfg.tools, agent_globs, cfg.policy, custom)


def runs_only_as_task(tool: Any) -> bool:
    """A tool the server says must run as a task (execution.taskSupport: required), which mcp 2.3 cannot call."""
    return getattr(getattr(tool, "execution", None), "task_support", None) == "required"


def task_only_warning(server: str, names: list[str]) -> str:
    """The warning naming a server's task-only tools, which the model is not offered."""
    return (
        f"server '{server}' has tools that only run as tasks, which agentdeck cannot call yet; "
        f"not offered to the model: {', '.join(names)}"
    )
