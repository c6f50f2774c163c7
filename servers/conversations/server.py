"""The assistant tools users relied on, re-mapped to Conversations and Responses.

OpenAI sunset the Assistants API on 2026-08-26. Assistants become local profiles, threads are
conversations, messages are conversation items, a run is a background response on the
conversation (a chain of them when tool outputs are submitted), and run steps are the response's
output items. Ids are checked before they reach a URL.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servers import package_version
from servers.conversations.store import Store, new_id
from servers.openai_tools.models import check_model
from servers.openai_tools.settings import Clients, Settings, openai_errors

READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# Response status -> the status an Assistants run had.
RUN_STATUS = {"queued": "queued", "in_progress": "in_progress", "completed": "completed", "failed": "failed"}
RUN_STATUS |= {"cancelled": "cancelled", "incomplete": "incomplete"}
TERMINAL = {"completed", "failed", "cancelled", "incomplete", "expired", "requires_action"}

Limit = Annotated[int, Field(ge=1, le=100)]
Order = Literal["asc", "desc"]
Metadata = dict[str, str]


class MessageIn(BaseModel):
    role: Literal["user", "assistant"] = "user"
    content: str


class ToolOutput(BaseModel):
    tool_call_id: str
    output: str


def checked(value: str, what: str, prefix: str | None = None) -> str:
    """An id safe to put in a URL (and of the expected kind), else a clear tool error."""
    if not _ID.match(value or "") or (prefix is not None and not value.startswith(prefix)):
        shape = f" (it starts with {prefix!r})" if prefix else ""
        raise ToolError(f"{value!r} is not a valid {what} id{shape}")
    return value


def _text(item: Any) -> str:
    return "".join(getattr(part, "text", "") or "" for part in getattr(item, "content", None) or [])


def build_server(settings: Settings, store: Store, passthrough: bool = False) -> MCPServer:
    """The MCP server over `store`, talking to OpenAI with the server's key or each caller's."""
    clients = Clients(settings, passthrough)
    mcp = MCPServer(
        "openai-conversations",
        version=package_version(),
        instructions="Assistants, threads, messages and runs (the Assistants API's tools) on Conversations and Responses.",
    )

    def openai(ctx: Context) -> tuple[Any, str]:
        key = clients.key_for(ctx.headers)
        return clients.client(key), key

    def assistant_or_fail(assistant_id: str) -> dict[str, Any]:
        found = store.assistant(checked(assistant_id, "assistant", "asst_"))
        if found is None:
            raise ToolError(f"no assistant {assistant_id!r}: list_assistants shows the ones this server keeps")
        return found

    def run_or_fail(thread_id: str, run_id: str) -> dict[str, Any]:
        found = store.run(checked(run_id, "run", "run_"))
        if found is None or found["thread_id"] != checked(thread_id, "thread"):
            raise ToolError(f"no run {run_id!r} on thread {thread_id!r}")
        return found

    def message_view(item: Any, thread_id: str) -> dict[str, Any]:
        return {
            "id": item.id,
            "object": "thread.message",
            "thread_id": thread_id,
            "role": getattr(item, "role", None),
            "content": _text(item),
            "metadata": store.message_metadata(item.id),
        }

    # --- assistants (local profiles) ---

    @mcp.tool(annotations=WRITES, structured_output=True)
    def create_assistant(
        model: str,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        metadata: Metadata | None = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        top_p: Annotated[float | None, Field(ge=0, le=1)] = None,
    ) -> dict[str, Any]:
        """Create an assistant: a saved model, instructions and function tools to run threads with."""
        try:
            check_model(model)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        for tool in tools or []:
            if tool.get("type") != "function":
                raise ToolError("only function tools are supported (type: function, with name and parameters)")
        assistant_id = new_id("asst")
        profile: dict[str, Any] = {"model": model, "name": name, "description": description}
        profile |= {"instructions": instructions, "tools": tools or [], "metadata": metadata or {}}
        profile |= {"temperature": temperature, "top_p": top_p}
        store.put_assistant(assistant_id, profile)
        return assistant_or_fail(assistant_id)

    @mcp.tool(annotations=READS, structured_output=True)
    def get_assistant(assistant_id: str) -> dict[str, Any]:
        """One assistant."""
        return assistant_or_fail(assistant_id)

    @mcp.tool(annotations=READS, structured_output=True)
    def list_assistants(limit: Limit = 20, order: Order = "desc", after: str | None = None) -> dict[str, Any]:
        """Assistants, a page at a time (pass the last id as `after` for the next page)."""
        page = store.page("assistants", limit, order, after)
        data = [store.assistant(i) for i in page["ids"]]
        return {
            "object": "list",
            "data": data,
            "first_id": (page["ids"] or [None])[0],
            "last_id": (page["ids"] or [None])[-1],
            "has_more": page["has_more"],
        }

    @mcp.tool(annotations=WRITES, structured_output=True)
    def modify_assistant(
        assistant_id: str,
        model: str | None = None,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        metadata: Metadata | None = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        top_p: Annotated[float | None, Field(ge=0, le=1)] = None,
    ) -> dict[str, Any]:
        """Change an assistant's fields (those given)."""
        current = assistant_or_fail(assistant_id)
        changes: dict[str, Any] = {"model": model, "name": name, "description": description}
        changes |= {"instructions": instructions, "tools": tools, "metadata": metadata}
        changes |= {"temperature": temperature, "top_p": top_p}
        if model is not None:
            try:
                check_model(model)
            except ValueError as exc:
                raise ToolError(str(exc)) from None
        profile = {k: v for k, v in current.items() if k not in ("id", "object", "created_at")}
        profile |= {k: v for k, v in changes.items() if v is not None}
        store.put_assistant(assistant_id, profile)
        return assistant_or_fail(assistant_id)

    @mcp.tool(annotations=DESTROYS, structured_output=True)
    def delete_assistant(assistant_id: str) -> dict[str, Any]:
        """Delete an assistant profile (its threads and runs stay)."""
        assistant_or_fail(assistant_id)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": store.delete("assistants", assistant_id)}

    # --- threads (conversations) ---

    async def new_thread(ctx: Context, messages: list[MessageIn] | None, metadata: Metadata | None) -> dict[str, Any]:
        client, key = openai(ctx)
        items = [{"type": "message", "role": m.role, "content": m.content} for m in messages or []]
        with openai_errors(settings, key):
            conversation = await client.conversations.create(items=items, metadata=metadata or {})
        store.put_thread(conversation.id, conversation.created_at, dict(conversation.metadata or {}))
        return {
            "id": conversation.id,
            "object": "thread",
            "created_at": conversation.created_at,
            "metadata": conversation.metadata or {},
        }

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def create_thread(
        ctx: Context, messages: list[MessageIn] | None = None, metadata: Metadata | None = None
    ) -> dict[str, Any]:
        """Start a thread (a conversation), optionally with its first messages."""
        return await new_thread(ctx, messages, metadata)

    @mcp.tool(annotations=READS, structured_output=True)
    async def get_thread(ctx: Context, thread_id: str) -> dict[str, Any]:
        """One thread."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            conversation = await client.conversations.retrieve(checked(thread_id, "thread"))
        return {
            "id": conversation.id,
            "object": "thread",
            "created_at": conversation.created_at,
            "metadata": conversation.metadata or {},
        }

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def modify_thread(ctx: Context, thread_id: str, metadata: Metadata) -> dict[str, Any]:
        """Replace a thread's metadata."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            conversation = await client.conversations.update(checked(thread_id, "thread"), metadata=metadata)
        store.put_thread(conversation.id, conversation.created_at, dict(metadata))
        return {"id": conversation.id, "object": "thread", "created_at": conversation.created_at, "metadata": metadata}

    @mcp.tool(annotations=DESTROYS, structured_output=True)
    async def delete_thread(ctx: Context, thread_id: str) -> dict[str, Any]:
        """Delete a thread (the conversation and its items)."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            deleted = await client.conversations.delete(checked(thread_id, "thread"))
        store.delete("threads", thread_id)
        return {"id": thread_id, "object": "thread.deleted", "deleted": bool(deleted.deleted)}

    @mcp.tool(annotations=READS, structured_output=True)
    def list_threads(limit: Limit = 20, order: Order = "desc", after: str | None = None) -> dict[str, Any]:
        """Threads this server created, a page at a time (the old API had no such list)."""
        page = store.page("threads", limit, order, after)
        data = [store.thread(i) for i in page["ids"]]
        return {
            "object": "list",
            "data": data,
            "first_id": (page["ids"] or [None])[0],
            "last_id": (page["ids"] or [None])[-1],
            "has_more": page["has_more"],
        }

    # --- messages (conversation items) ---

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def create_message(
        ctx: Context,
        thread_id: str,
        content: str,
        role: Literal["user", "assistant"] = "user",
        metadata: Metadata | None = None,
    ) -> dict[str, Any]:
        """Add a message to a thread."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            added = await client.conversations.items.create(
                checked(thread_id, "thread"), items=[{"type": "message", "role": role, "content": content}]
            )
        item = added.data[0]
        if metadata:
            store.put_message_metadata(item.id, thread_id, metadata)
        return message_view(item, thread_id)

    @mcp.tool(annotations=READS, structured_output=True)
    async def get_message(ctx: Context, thread_id: str, message_id: str) -> dict[str, Any]:
        """One message of a thread."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            item = await client.conversations.items.retrieve(
                checked(message_id, "message"), conversation_id=checked(thread_id, "thread")
            )
        return message_view(item, thread_id)

    @mcp.tool(annotations=READS, structured_output=True)
    async def list_messages(
        ctx: Context, thread_id: str, limit: Limit = 20, order: Order = "desc", after: str | None = None
    ) -> dict[str, Any]:
        """A thread's messages, a page at a time (tool calls and outputs are run steps, not messages)."""
        client, key = openai(ctx)
        options: dict[str, Any] = {"limit": limit, "order": order}
        if after:
            options["after"] = checked(after, "message")
        with openai_errors(settings, key):
            page = await client.conversations.items.list(checked(thread_id, "thread"), **options)
        data = [message_view(item, thread_id) for item in page.data if item.type == "message"]
        return {
            "object": "list",
            "data": data,
            "first_id": page.first_id,
            "last_id": page.last_id,
            "has_more": page.has_more,
        }

    @mcp.tool(annotations=WRITES, structured_output=True)
    async def modify_message(ctx: Context, thread_id: str, message_id: str, metadata: Metadata) -> dict[str, Any]:
        """Set a message's metadata. Kept by this server: conversation items cannot be changed."""
        view = await get_message(ctx, thread_id, message_id)
        store.put_message_metadata(message_id, thread_id, metadata)
        note = "metadata is kept by this server: OpenAI conversation items cannot be changed"
        return {**view, "metadata": metadata, "note": note}

    @mcp.tool(annotations=DESTROYS, structured_output=True)
    async def delete_message(ctx: Context, thread_id: str, message_id: str) -> dict[str, Any]:
        """Delete a message from a thread."""
        client, key = openai(ctx)
        with openai_errors(settings, key):
            await client.conversations.items.delete(
                checked(message_id, "message"), conversation_id=checked(thread_id, "thread")
            )
        return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

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
        chosen = model or assistant["model"]
        try:
            check_model(chosen)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
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
        thread = await new_thread(ctx, messages, thread_metadata)
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
        return {
            "object": "list",
            "data": data,
            "first_id": (page["ids"] or [None])[0],
            "last_id": (page["ids"] or [None])[-1],
            "has_more": page["has_more"],
        }

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
        messages = await list_messages(ctx, thread_id, limit=1, order="desc")
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

    return mcp
