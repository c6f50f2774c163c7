"""A server's sampling request answered by a model, tools included, under the server's policy.

MCP sampling messages (text, images, and since 2025-11-25 tool_use / tool_result blocks) become
Responses-style input items for the Agents SDK model; the tools the server offers become function
tools the model may call but agentdeck never runs: a call comes back to the server as a tool_use
block (stop reason `toolUse`), the server runs the tool and samples again with its result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from app.config.models import LocalServerConfig, SamplingConfig

if TYPE_CHECKING:
    from app.server_requests import Interaction, SamplingModels


def _error(message: str) -> Any:
    from mcp_types import INVALID_REQUEST, ErrorData

    return ErrorData(code=INVALID_REQUEST, message=message)


def _text(blocks: list[Any]) -> str:
    return "\n".join(getattr(b, "text", None) or f"[{getattr(b, 'type', 'content')}]" for b in blocks)


def _flush(items: list[dict[str, Any]], role: str, text: list[str]) -> None:
    if text:
        items.append({"role": role, "content": "\n".join(text)})
        text.clear()


def model_input(messages: list[Any]) -> list[dict[str, Any]]:
    """The request's messages as model input: text turns, function calls and their outputs, in order."""
    items: list[dict[str, Any]] = []
    for message in messages:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        text: list[str] = []
        for block in blocks:
            kind = getattr(block, "type", None)
            if kind not in ("tool_use", "tool_result"):
                text.append(getattr(block, "text", None) or f"[{kind}]")
                continue
            _flush(items, message.role, text)
            if kind == "tool_use":
                arguments = json.dumps(block.input, ensure_ascii=False)
                items.append({"type": "function_call", "call_id": block.id, "name": block.name, "arguments": arguments})
            else:
                output = _text(list(block.content))
                output = f"error: {output}" if block.is_error else output
                items.append({"type": "function_call_output", "call_id": block.tool_use_id, "output": output})
        _flush(items, message.role, text)
    return items


def function_tools(tools: list[Any]) -> list[Any]:
    """The server's tools as function tools the model can call (agentdeck never runs them)."""
    from agents import FunctionTool

    async def never(context: Any, arguments: str) -> str:
        raise RuntimeError("a sampling tool runs on the server, not in agentdeck")

    return [
        FunctionTool(
            name=tool.name,
            description=tool.description or "",
            params_json_schema=dict(tool.input_schema),
            on_invoke_tool=never,
            strict_json_schema=False,
        )
        for tool in tools
    ]


def mcp_result(response: Any, label: str, with_tools: bool) -> Any:
    """The model's answer as MCP: text, or tool_use blocks for the server to run."""
    from mcp_types import CreateMessageResult, CreateMessageResultWithTools, TextContent, ToolUseContent

    text = ""
    calls: list[ToolUseContent] = []
    for item in response.output:
        if getattr(item, "type", None) == "function_call":
            try:
                arguments = json.loads(item.arguments or "{}")
            except ValueError:
                arguments = {}
            calls.append(ToolUseContent(id=item.call_id, name=item.name, input=arguments))
        else:
            text += "".join(getattr(part, "text", "") for part in (getattr(item, "content", None) or []))
    if not with_tools:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=text), model=label, stop_reason="endTurn"
        )
    content: list[Any] = ([TextContent(type="text", text=text)] if text else []) + calls
    return CreateMessageResultWithTools(
        role="assistant",
        content=content or TextContent(type="text", text=""),
        model=label,
        stop_reason="toolUse" if calls else "endTurn",
    )


def sampling_callback(name: str, cfg: LocalServerConfig, interaction: Interaction, models: SamplingModels) -> Any:
    """The sampling callback of one server entry (mcp's SamplingFnT)."""
    settings = cfg.sampling if isinstance(cfg.sampling, SamplingConfig) else SamplingConfig(policy=cfg.sampling)

    async def sample(context: Any, params: Any) -> Any:
        from agents import ModelSettings
        from agents.models.interface import ModelTracing

        items = model_input(list(params.messages))
        if settings.policy == "deny":
            return _error(f"agentdeck does not let server '{name}' use the model (its config says sampling: deny)")
        if settings.policy == "ask":
            preview = "\n".join(
                f"{i.get('role', i.get('type'))}: {i.get('content', i.get('output', ''))}" for i in items
            )
            if params.tools:
                preview += "\n(tools offered: " + ", ".join(t.name for t in params.tools) + ")"
            if not await interaction.asker.allow_sampling(name, preview):
                return _error(f"the user did not let server '{name}' use the model (sampling: ask)")
        agent = interaction.agent
        if agent is None:
            return _error(f"no agent is running to answer server '{name}''s sampling request")
        model, label = models.sampling_model(agent, settings.provider, settings.model)
        limit = min(params.max_tokens, settings.max_tokens) if settings.max_tokens else params.max_tokens
        tools = function_tools(list(params.tools or []))
        choice = getattr(params.tool_choice, "mode", None) if params.tools else None
        response = await model.get_response(
            params.system_prompt,
            items,  # type: ignore[arg-type]
            ModelSettings(max_tokens=limit, temperature=params.temperature, tool_choice=choice),
            tools,
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        )
        interaction.usage["requests"] += 1
        interaction.usage["input_tokens"] += response.usage.input_tokens
        interaction.usage["output_tokens"] += response.usage.output_tokens
        return mcp_result(response, label, with_tools=bool(params.tools))

    return sample
