"""Approval answers the chat remembers ("always", "never") for one session, and undoing them."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.approvals import ApprovalRequest


@dataclass
class RememberedApprovals:
    """`server.tool` -> True (always allow) or False (never allow); a new session starts empty."""

    decisions: dict[str, bool] = field(default_factory=dict)

    @staticmethod
    def key(request: ApprovalRequest) -> str:
        return f"{request.server}.{request.tool}" if request.server else request.tool

    def decided(self, request: ApprovalRequest) -> bool | None:
        """The remembered answer for this call's tool, if any."""
        return self.decisions.get(self.key(request))

    def remember(self, request: ApprovalRequest, allow: bool) -> None:
        self.decisions[self.key(request)] = allow

    def lines(self) -> list[str]:
        """One line per remembered decision, for /approvals."""
        return [f"{'always' if allow else 'never '}  {key}" for key, allow in sorted(self.decisions.items())]

    def reset(self, tool: str | None) -> list[str]:
        """Forget every decision, or those for TOOL (`name` or `server.name`); returns what was forgotten."""
        gone = [k for k in self.decisions if tool is None or tool in (k, k.rsplit(".", 1)[-1])]
        for key in gone:
            del self.decisions[key]
        return gone
