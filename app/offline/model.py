"""OfflineModel: an Agents SDK Model driven by the rules engine (no network, deterministic)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agents import ModelResponse, ModelSettings, Usage
from agents.models.interface import Model, ModelTracing
from agents.testing import ScriptedModel, assistant_message, function_call

from app.offline.rules import Decision, RuleSet, decide, estimate_tokens, read_conversation


class CallLog:
    """Appends one JSON line per model call, so tests and users can see what the model was offered."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class OfflineModel(Model):
    """Answers from a RuleSet; streaming, tool calls and handoffs work as with a real model."""

    def __init__(self, rules: RuleSet, *, name: str = "offline", log: CallLog | None = None) -> None:
        self.rules = rules
        self.name = name
        self.log = log or CallLog(None)

    async def _decide(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        tools: list[Any],
        handoffs: list[Any],
        streamed: bool,
    ) -> tuple[list[Any], Usage]:
        from agents import HostedMCPTool

        offered = [getattr(t, "name", type(t).__name__) for t in tools if not isinstance(t, HostedMCPTool)]
        handoff_names = [h.tool_name for h in handoffs]
        hosted = [dict(t.tool_config) for t in tools if isinstance(t, HostedMCPTool)]
        conv = read_conversation(system_instructions, input)
        if hosted:
            output, rule, calls, message, usage = await self._hosted(
                system_instructions, input, offered + handoff_names, hosted
            )
        else:
            decision = decide(self.rules, conv, offered + handoff_names)
            output, rule, message = _output_items(decision), decision.rule, decision.message
            calls = [{"tool": n, "arguments": a} for n, a, _ in decision.calls]
            usage = _usage(system_instructions, input, message or json.dumps(calls))
        self.log.write(
            {
                "time": time.time(),
                "model": self.name,
                "streamed": streamed,
                "instructions": system_instructions,
                "user": conv.user,
                "round": conv.round,
                "tools": offered + [f"hosted:{c['server_label']}" for c in hosted],
                "handoffs": handoff_names,
                "tool_outputs": conv.outputs,
                "rule": rule,
                "calls": calls,
                "message": message,
            }
        )
        return output, usage

    async def _hosted(
        self, instructions: str | None, input: str | list[Any], functions: list[str], hosted: list[dict[str, Any]]
    ) -> tuple[list[Any], str | None, list[dict[str, Any]], str | None, Usage]:
        """As the Responses API would answer with hosted MCP tools: OpenAI's part is played here."""
        from contextlib import aclosing

        from openai.types.responses import ResponseOutputItem
        from pydantic import TypeAdapter

        from app.offline.hosted import Meter, respond

        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        tools = [*hosted, *({"type": "function", "name": n} for n in functions)]
        meter = Meter(estimate_tokens((instructions or "") + json.dumps(input, default=str, ensure_ascii=False)))
        async with aclosing(respond(self.rules, instructions, items, tools, meter)) as phases:
            done = [phase async for phase in phases if phase.kind == "done"]
        adapter: TypeAdapter[Any] = TypeAdapter(ResponseOutputItem)
        output = [adapter.validate_python(phase.item) for phase in done]
        calls = [
            {"tool": p.item["name"], "arguments": json.loads(p.item["arguments"] or "{}")}
            for p in done
            if p.item["type"] in ("function_call", "mcp_call", "mcp_approval_request")
        ]
        messages = [p.item["content"][0]["text"] for p in done if p.item["type"] == "message"]
        rule = next((p.rule for p in reversed(done) if p.rule), None)
        inp, out = meter.usage()
        usage = Usage(requests=1, input_tokens=inp, output_tokens=out, total_tokens=inp + out)
        return output, rule, calls, messages[-1] if messages else None, usage

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        output, usage = await self._decide(system_instructions, input, tools, handoffs, streamed=False)
        return ModelResponse(output=output, usage=usage, response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[Any]:
        output, usage = await self._decide(system_instructions, input, tools, handoffs, streamed=True)
        # ScriptedModel turns finished output items into a faithful Responses event stream.
        replay = ScriptedModel([{"output": output, "usage": usage}])
        async for event in replay.stream_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        ):
            yield event


def _output_items(decision: Decision) -> list[Any]:
    if decision.message is not None:
        return [assistant_message(decision.message, item_id="msg_offline")]
    return [function_call(name, args, call_id=call_id) for name, args, call_id in decision.calls]


def _usage(system: str | None, input: str | list[Any], produced: str) -> Usage:
    prompt = (system or "") + json.dumps(input, default=str, ensure_ascii=False)
    inp, out = estimate_tokens(prompt), estimate_tokens(produced)
    return Usage(requests=1, input_tokens=inp, output_tokens=out, total_tokens=inp + out)
