"""The one error taxonomy of agentdeck; the CLI renders these in one place."""

from __future__ import annotations


class AgentdeckError(Exception):
    """Base class: a user-facing failure with a one-line message and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail


class UsageError(AgentdeckError):
    """Bad command-line arguments."""

    exit_code = 2


class ConfigError(AgentdeckError):
    """agents.yaml (or a file it points to) is invalid."""

    exit_code = 2


class ServerStartError(AgentdeckError):
    """A required MCP server could not be started or reached."""

    exit_code = 1


class ToolCallError(AgentdeckError):
    """A direct tool call failed (transport error or an unknown tool)."""

    exit_code = 1


class RunError(AgentdeckError):
    """The agent run itself failed (model error, exhausted retries, max turns)."""

    exit_code = 1
