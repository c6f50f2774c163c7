"""Hosted MCP at run time: look at a server from here, answer approvals, record OpenAI's calls."""

from __future__ import annotations

from typing import Any

from agents import AgentHooks, HostedMCPTool, MCPToolApprovalRequest

from app.approvals import ApprovalRequest, RunContext, ask, decline_all, declined_message, parse_arguments
from app.offline.rules import call_output_text
from app.telemetry import current_log, record_tool_call


def hosted_tool(config: dict[str, Any], server: str) -> HostedMCPTool:
    """The SDK tool; approvals OpenAI asks for go to the run's approver, like local ones."""

    async def on_approval(event: MCPToolApprovalRequest) -> Any:
        context = event.ctx_wrapper.context
        approver = context.approver if isinstance(context, RunContext) else decline_all
        data = event.data
        request = ApprovalRequest(data.name, server, data.arguments or "{}", True, data.server_label)
        approved, reason = await ask(approver, request)
        # The reason is all the model learns of a declined hosted call, so it says what happened.
        return {"approve": True} if approved else {"approve": False, "reason": declined_message(reason)}

    return HostedMCPTool(tool_config=config, on_approval_request=on_approval)  # type: ignore[arg-type]


class HostedCallRecorder(AgentHooks[Any]):
    """Records the hosted calls (and failed listings) in each model response of an agent."""

    def __init__(self, servers: dict[str, str]) -> None:
        self.servers = servers  # server_label -> server name in agents.yaml

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        log = current_log()
        for item in response.output:
            kind = getattr(item, "type", None)
            if kind == "mcp_list_tools" and item.error and log is not None:
                log.warnings.append(f"hosted server '{self.server(item.server_label)}': {item.error}")
            if kind != "mcp_call":
                continue
            failed = item.error is not None or item.status == "failed"
            record_tool_call(
                self.server(item.server_label),
                item.name,
                parse_arguments(item.arguments or "{}"),
                not failed,
                None,
                error=call_output_text(item) if failed else None,
                hosted=True,
                label=item.server_label,
                item_id=item.id,
                result=None if failed else item.output,
            )

    def server(self, label: str) -> str:
        return self.servers.get(label, label)
