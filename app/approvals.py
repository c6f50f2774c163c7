"""Map `approval:` settings to the Agents SDK's require_approval values."""

from __future__ import annotations

from typing import Any

from app.config.models import ApprovalRules
from app.filters import is_destructive, matches_any


def local_require_approval(setting: str | ApprovalRules) -> Any:
    """The require_approval value for a local (stdio/sse/http) MCP server."""
    if setting == "never":
        return None
    if setting == "always":
        return "always"
    if setting == "destructive":
        return _needs_approval_if_destructive
    assert isinstance(setting, ApprovalRules)
    return GlobApproval(setting)


def hosted_require_approval(setting: str | ApprovalRules) -> Any:
    """The require_approval value for a hosted MCP tool config (names only, no globs)."""
    if isinstance(setting, str):
        return setting
    out: dict[str, Any] = {}
    if setting.always:
        out["always"] = {"tool_names": list(setting.always)}
    if setting.never:
        out["never"] = {"tool_names": list(setting.never)}
    return out


def _needs_approval_if_destructive(run_context: Any, agent: Any, tool: Any) -> bool:
    return is_destructive(tool)


class GlobApproval:
    """A tool needs approval if it matches an `always` glob and no `never` glob."""

    def __init__(self, rules: ApprovalRules) -> None:
        self.rules = rules

    def __call__(self, run_context: Any, agent: Any, tool: Any) -> bool:
        name = tool.name
        return matches_any(name, self.rules.always) and not matches_any(name, self.rules.never)
