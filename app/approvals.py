"""Approvals: `approval:` settings as the Agents SDK's values, and one way to ask for every call.

Local calls that need approval interrupt the run; hosted calls reach agentdeck through the hosted
tool's `on_approval_request`. Both go through `ask`, so they use the same approver, are counted
the same way, and a declined call is recorded with the reason the model receives.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.config.models import ApprovalRules
from app.filters import is_destructive, matches_any
from app.telemetry import current_log, record_tool_call

DECLINED_MESSAGE = "The user declined this tool call, so it was not run."


@dataclass(frozen=True)
class ApprovalRequest:
    """One tool call waiting for a yes or no."""

    tool: str
    server: str | None
    arguments: str
    hosted: bool = False
    label: str | None = None  # a hosted server's server_label


# -> (approved, reason typed by the user)
Approver = Callable[[ApprovalRequest], Awaitable[tuple[bool, str | None]]]


@dataclass
class RunContext:
    """agentdeck's run context for the SDK: hosted approvals find their approver here."""

    approver: Approver


async def approve_all(request: ApprovalRequest) -> tuple[bool, str | None]:
    """--approve yes."""
    return True, None


async def decline_all(request: ApprovalRequest) -> tuple[bool, str | None]:
    """--approve no (and the default without a terminal)."""
    return False, None


def declined_message(reason: str | None) -> str:
    """What the model is told about a declined call."""
    return DECLINED_MESSAGE + (f" Reason: {reason}" if reason else "")


async def ask(approver: Approver, request: ApprovalRequest) -> tuple[bool, str | None]:
    """Ask `approver`; count the request and record a declined call in the run's log."""
    log = current_log()
    if log is not None:
        log.approvals += 1
    approved, reason = await approver(request)
    decision = {"decision": "approved" if approved else "declined", **decided_by(approver, log)}
    arguments = parse_arguments(request.arguments)
    if not approved:
        record_tool_call(
            request.server or "?",
            request.tool,
            arguments,
            ok=False,
            seconds=None,
            declined=True,
            hosted=request.hosted,
            label=request.label,
            approval=decision,
        )
    elif log is not None and log.audit is not None:
        # The server records the call under its own name, not the agent's `server__tool`.
        tool = request.tool
        if request.server and tool.startswith(f"{request.server}__"):
            tool = tool[len(request.server) + 2 :]
        log.approved.append((tool, arguments, decision))
    return approved, reason


def decided_by(approver: Approver, log: Any) -> dict[str, str]:
    """Who answered: a person (the run's user) or a command-line setting."""
    if approver is approve_all:
        return {"by": "--approve yes"}
    if approver is decline_all:
        return {"by": "--approve no"}
    user = getattr(getattr(log, "audit", None), "trail", None)
    return {"by": user.user if user is not None else "user"}


def parse_arguments(arguments: str) -> dict[str, Any]:
    """JSON arguments as a dict, whatever the model sent."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_value": value}


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


def _needs_approval_if_destructive(run_context: Any, agent: Any, tool: Any) -> bool:
    return is_destructive(tool)


class GlobApproval:
    """A tool needs approval if it matches an `always` glob and no `never` glob."""

    def __init__(self, rules: ApprovalRules) -> None:
        self.rules = rules

    def __call__(self, run_context: Any, agent: Any, tool: Any) -> bool:
        name = tool.name
        return matches_any(name, self.rules.always) and not matches_any(name, self.rules.never)
