"""The assistant tools users relied on, re-mapped to Conversations and Responses.

OpenAI sunset the Assistants API on 2026-08-26. Assistants become local profiles, threads are
conversations, messages are conversation items, a run is a background response on the
conversation (a chain of them when tool outputs are submitted), and run steps are the response's
output items. Ids are checked before they reach a URL.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from servers import package_version
from servers.conversations.common import (
    DESTROYS,
    READS,
    WRITES,
    Limit,
    MessageIn,
    Metadata,
    Order,
    Shared,
    checked,
    item_text,
    listing,
)
from servers.conversations.runs import add_run_tools
from servers.conversations.store import Store, new_id
from servers.openai_tools.models import usable_model
from servers.openai_tools.settings import Clients, Settings, openai_errors


def function_tools_only(tools: list[dict[str, Any]] | None) -> None:
    """Runs give the model function tools only: anything else is the caller's error."""
    for tool in tools or []:
        if tool.get("type") != "function":
            raise ToolError("only function tools are supported (type: function, with name and parameters)")


def build_server(settings: Settings, store: Store, passthrough: bool = False) -> MCPServer:
    """The MCP server over `store`, talking to OpenAI with the server's key or each caller's."""
    clients = Clients(settings, passthrough)
    mcp = MCPServer(
        "openai-conversations",
        version=package_version(),
        instructions="Assistants, threads, messages and runs (the Assistants API's tools) on Conversations and Responses.",
    )

    def openai(ctx: Context) -> tuple[Any, str]:
        return clients.for_request(ctx.headers)

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
            "content": item_text(item),
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
        usable_model(model)
        function_tools_only(tools)
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
        return listing(page, data)

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
            usable_model(model)
        function_tools_only(tools)
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
        return listing(page, data)

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

    add_run_tools(mcp, Shared(settings, store, openai, assistant_or_fail, run_or_fail, new_thread, list_messages))
    return mcp
