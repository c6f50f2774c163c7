"""Runs of the conversations server: a run is a chain of background responses on the thread's conversation.

The first response runs the assistant; when it asks for tools the run is `requires_action`, and
`submit_tool_outputs` continues it with a response whose input is the tools' outputs. Run steps
are the output items of the chain's responses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from servers.conversations.common import (
    DESTROYS,
    READS,
    RUN_STATUS,
    TERMINAL,
    WRITES,
    Limit,
    MessageIn,
    Metadata,
    Order,
    Shared,
    ToolOutput,
    checked,
    listing,
)
from servers.conversations.store import new_id
from servers.openai_tools.models import usable_model
from servers.openai_tools.settings import openai_errors


def add_run_tools(mcp: MCPServer, shared: Shared) -> None:
    """create_run, get_run, list_runs, cancel_run, modify_run, submit_tool_outputs, run_and_wait, run steps."""
    settings, store, openai = shared.settings, shared.store, shared.openai
    assistant_or_fail, run_or_fail = shared.assistant_or_fail, shared.run_or_fail

    # --- runs (responses on the conversation) ---

    async def respond(ctx: Context, record: dict[str, Any], items: list[dict[str, Any]] | None) -> dict[str, Any]:
        """One more response in the run's chain (the first, or one after tool outputs)."""
        client, key = openai(ctx)
        options: dict[str, Any] = {
            "model": record["model"],
            "conversation": record["thread_id"],
            "background": record["background"],
        }
        if record.get("instructions"):
            options["instructions"] = record["instructions"]
        if record.get("tools"):
            options["tools"] = [
                {"type": "function", **{k: v for k, v in t.get("function", t).items() if k != "type"}}
                for t in record["tools"]
            ]
        if record.get("temperature") is not None:
            options["temperature"] = record["temperature"]
        if items:
            options["input"] = items
        with openai_errors(settings, key):
            response = await client.responses.create(**options)
        record["response_ids"].append(response.id)
        return await refresh(ctx, record, response)

    async def refresh(ctx: Context, record: dict[str, Any], response: Any = None) -> dict[str, Any]:
        if response is None:
            client, key = openai(ctx)
            with openai_errors(settings, key):
                response = await client.responses.retrieve(record["response_ids"][-1])
        status = RUN_STATUS.get(response.status or "", response.status or "queued")
        calls = [item for item in response.output or [] if item.type == "function_call"]
        record["required_action"] = None
        if status == "completed" and calls:
            status = "requires_action"
            record["required_action"] = {
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [
                        {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                        for c in calls
                    ]
                },
            }
        record["status"] = status
        if status == "completed":
            record["completed_at"] = int(time.time())
        if response.usage is not None:
            record["usage"] = {
                "prompt_tokens": response.usage.input_tokens,
                "completion_tokens": response.usage.output_tokens,
                "total_tokens": response.usage.total_tokens,
            }
        store.put_run(record)
        return {"object": "thread.run", **{k: v for k, v in record.items() if k not in ("background",)}}

    async def start_run(
        ctx: Context, thread_id: str, assistant_id: str, model: str | None, instructions: str | None,
        additional_instructions: str | None, metadata: Metadata | None, background: bool,
    ) -> dict[str, Any]:  # fmt: skip
        assistant = assistant_or_fail(assistant_id)
        chosen = usable_model(model or assistant["model"])
        text = instructions if instructions is not None else assistant.get("instructions") or ""
        if additional_instructions:
            text = f"{text}\n\n{additional_instructions}".strip()
        record = {
            "id": new_id("run"), "thread_id": checked(thread_id, "thread"), "assistant_id": assistant_id,
            "created_at": int(time.time()), "model": chosen, "instructions": text or None,
            "tools": assistant.get("tools") or [], "temperature": assistant.get("temperature"),
            "metadata": metadata or {}, "response_ids": [], "status": "queued", "background": background,
        }  # fmt: skip
        return await respond(ctx, record, None)

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def create_run(
        ctx: Context,
        thread_id: str,
        assistant_id: str,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        metadata: Metadata | None = None,
        background: bool = True,
    ) -> dict[str, Any]:
        """Run an assistant on a thread. In the background by default: poll get_run, or cancel_run."""
        return await start_run(
            ctx, thread_id, assistant_id, model, instructions, additional_instructions, metadata, background
        )

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def create_thread_and_run(
        ctx: Context,
        assistant_id: str,
        messages: list[MessageIn] | None = None,
        thread_metadata: Metadata | None = None,
        instructions: str | None = None,
        background: bool = True,
    ) -> dict[str, Any]:
        """Start a thread with messages and run an assistant on it."""
        assistant_or_fail(assistant_id)
        thread = await shared.new_thread(ctx, messages, thread_metadata)
        return await start_run(ctx, thread["id"], assistant_id, None, instructions, None, None, background)

    @mcp.tool(annotations=READS, structured_output=True)
    async def get_run(ctx: Context, thread_id: str, run_id: str) -> dict[str, Any]:
        """A run as it stands: queued, in_progress, requires_action (with the tool calls), completed, …"""
        return await refresh(ctx, run_or_fail(thread_id, run_id))

    @mcp.tool(annotations=READS, structured_output=True)
    def list_runs(thread_id: str, limit: Limit = 20, order: Order = "desc", after: str | None = None) -> dict[str, Any]:
        """A thread's runs (as last seen; get_run refreshes one)."""
        page = store.page("runs", limit, order, after, thread_id=checked(thread_id, "thread"))
        data = [{"object": "thread.run", **(store.run(i) or {})} for i in page["ids"]]
        return listing(page, data)

    @mcp.tool(annotations=DESTROYS, structured_output=True)
    async def cancel_run(ctx: Context, thread_id: str, run_id: str) -> dict[str, Any]:
        """Cancel a run that is still queued or in progress."""
        record = run_or_fail(thread_id, run_id)
        client, key = openai(ctx)
        with openai_errors(settings, key):
            response = await client.responses.cancel(record["response_ids"][-1])
        return await refresh(ctx, record, response)

    @mcp.tool(annotations=WRITES, structured_output=True)
    def modify_run(thread_id: str, run_id: str, metadata: Metadata) -> dict[str, Any]:
        """Set a run's metadata (kept by this server)."""
        record = run_or_fail(thread_id, run_id)
        record["metadata"] = metadata
        store.put_run(record)
        return {"object": "thread.run", **record}

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def submit_tool_outputs(
        ctx: Context, thread_id: str, run_id: str, tool_outputs: list[ToolOutput]
    ) -> dict[str, Any]:
        """Answer a run's tool calls (requires_action); the run goes on."""
        record = run_or_fail(thread_id, run_id)
        if record["status"] != "requires_action":
            record = await refresh(ctx, record)
        wanted = {
            c["id"]
            for c in ((record.get("required_action") or {}).get("submit_tool_outputs") or {}).get("tool_calls", [])
        }
        if not wanted:
            raise ToolError(f"run {run_id} is {record['status']}, not waiting for tool outputs")
        given = {o.tool_call_id for o in tool_outputs}
        if given != wanted:
            raise ToolError(f"give an output for each tool call: expected {sorted(wanted)}, got {sorted(given)}")
        record = run_or_fail(thread_id, run_id)
        items = [{"type": "function_call_output", "call_id": o.tool_call_id, "output": o.output} for o in tool_outputs]
        return await respond(ctx, record, items)

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def run_and_wait(
        ctx: Context,
        thread_id: str,
        assistant_id: str,
        instructions: str | None = None,
        timeout: Annotated[float, Field(gt=0, le=3600)] = 120.0,
    ) -> dict[str, Any]:
        """Run an assistant and wait for the end (for clients that cannot poll): the run and its last message."""
        run = await start_run(ctx, thread_id, assistant_id, None, instructions, None, None, True)
        deadline = time.monotonic() + timeout
        while run["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise ToolError(f"run {run['id']} did not finish within {timeout:g} s; poll it with get_run")
            await asyncio.sleep(0.25)
            run = await refresh(ctx, run_or_fail(thread_id, run["id"]))
        messages = await shared.list_messages(ctx, thread_id, limit=1, order="desc")
        last = messages["data"][0]["content"] if messages["data"] else ""
        return {"run": run, "last_message": last}

    # --- run steps (the responses' output items) ---

    async def steps(ctx: Context, record: dict[str, Any]) -> list[dict[str, Any]]:
        client, key = openai(ctx)
        out = []
        for response_id in record["response_ids"]:
            with openai_errors(settings, key):
                response = await client.responses.retrieve(response_id)
            for item in response.output or []:
                details: dict[str, Any]
                if item.type == "function_call":
                    details = {
                        "type": "tool_calls",
                        "tool_calls": [
                            {
                                "id": item.call_id,
                                "type": "function",
                                "function": {"name": item.name, "arguments": item.arguments},
                            }
                        ],
                    }
                else:
                    details = {"type": "message_creation", "message_creation": {"message_id": item.id}}
                out.append(
                    {
                        "id": item.id,
                        "object": "thread.run.step",
                        "run_id": record["id"],
                        "type": details["type"],
                        "status": "completed",
                        "step_details": details,
                    }
                )
        return out

    @mcp.tool(annotations=READS, structured_output=True)
    async def list_run_steps(ctx: Context, thread_id: str, run_id: str) -> dict[str, Any]:
        """The steps of a run: messages it wrote and tool calls it made."""
        data = await steps(ctx, run_or_fail(thread_id, run_id))
        return {"object": "list", "data": data, "has_more": False}

    @mcp.tool(annotations=READS, structured_output=True)
    async def get_run_step(ctx: Context, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
        """One step of a run."""
        checked(step_id, "run step")
        for step in await steps(ctx, run_or_fail(thread_id, run_id)):
            if step["id"] == step_id:
                return step
        raise ToolError(f"run {run_id} has no step {step_id!r}")
