"""The fake OpenAI server's conversations and background responses.

Conversations keep items as the API does (messages, function calls and their outputs, each with an
id); a response made with `conversation` reads them as context and appends its input and output.
A background response answers `queued` at once and completes a moment later, so it can be polled
(`GET /v1/responses/{id}`) and cancelled (`POST /v1/responses/{id}/cancel`). Every body is checked
against the `openai` package's own types by the tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from app.offline import responses_wire

MAX_KEPT = 1000


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def as_item(item: dict[str, Any]) -> dict[str, Any]:
    """An input item as a conversation keeps it: typed, with an id and a status."""
    kind = item.get("type") or "message"
    if kind == "message":
        role = item.get("role", "user")
        content = item.get("content", "")
        part = "output_text" if role == "assistant" else "input_text"
        if isinstance(content, str):
            content = [{"type": part, "text": content, **({"annotations": []} if part == "output_text" else {})}]
        return {
            "id": item.get("id") or new_id("msg"),
            "type": "message",
            "role": role,
            "status": "completed",
            "content": content,
        }
    kept = {**item, "id": item.get("id") or new_id("fc" if kind == "function_call" else "fco")}
    kept.setdefault("status", "completed")
    return kept


class Conversations:
    """Conversations by id, oldest forgotten first beyond MAX_KEPT."""

    def __init__(self) -> None:
        self.kept: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def create(self, items: list[dict[str, Any]], metadata: dict[str, str] | None) -> dict[str, Any]:
        conversation_id = new_id("conv")
        conversation: dict[str, Any] = {"id": conversation_id, "object": "conversation", "created_at": int(time.time())}
        conversation["metadata"] = metadata or {}
        self.kept[conversation_id] = {**conversation, "items": [as_item(i) for i in items]}
        while len(self.kept) > MAX_KEPT:
            self.kept.popitem(last=False)
        return conversation

    def get(self, conversation_id: str) -> dict[str, Any] | None:
        kept = self.kept.get(conversation_id)
        return None if kept is None else {k: v for k, v in kept.items() if k != "items"}

    def update(self, conversation_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        if conversation_id not in self.kept:
            return None
        self.kept[conversation_id]["metadata"] = metadata
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> bool:
        return self.kept.pop(conversation_id, None) is not None

    def items(self, conversation_id: str) -> list[dict[str, Any]]:
        return list(self.kept[conversation_id]["items"])

    def add(self, conversation_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        added = [as_item(i) for i in items]
        self.kept[conversation_id]["items"].extend(added)
        return added

    def page(self, conversation_id: str, limit: int, order: str, after: str | None) -> dict[str, Any]:
        items = self.items(conversation_id)
        if order == "desc":
            items.reverse()
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        shown = items[:limit]
        return {
            "object": "list",
            "data": shown,
            "first_id": shown[0]["id"] if shown else None,
            "last_id": shown[-1]["id"] if shown else None,
            "has_more": len(items) > limit,
        }

    def remove_item(self, conversation_id: str, item_id: str) -> bool:
        kept = self.kept[conversation_id]["items"]
        before = len(kept)
        kept[:] = [i for i in kept if i["id"] != item_id]
        return len(kept) < before


class Background:
    """Background responses: queued at once, completed after `delay` seconds, cancellable until then."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.responses: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def keep(self, response: dict[str, Any]) -> None:
        self.responses[response["id"]] = response
        while len(self.responses) > MAX_KEPT:
            self.responses.popitem(last=False)

    def start(
        self,
        response_id: str,
        model: str,
        phases: Any,
        finish: Callable[[list[dict[str, Any]]], tuple[int, int]],
        previous: str | None,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """Queue the work; the queued response object."""
        queued = {**responses_wire.response_object(response_id, model, [], None, "queued", previous), **extra}
        self.keep(queued)

        async def work() -> None:
            await asyncio.sleep(self.delay)
            self.responses[response_id]["status"] = "in_progress"
            async with aclosing(phases):
                items = [phase.item async for phase in phases if phase.kind == "done"]
            usage = finish(items)
            done = responses_wire.response_object(response_id, model, items, usage, "completed", previous)
            self.keep({**done, **extra})

        self.tasks[response_id] = asyncio.create_task(work())
        return queued

    async def cancel(self, response_id: str) -> dict[str, Any] | None:
        """Cancel a response still running; the response as it now stands."""
        task = self.tasks.get(response_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.responses[response_id]["status"] = "cancelled"
        return self.responses.get(response_id)


Pre = Callable[..., Awaitable[tuple[dict[str, Any] | None, Any]]]
Invalid = Callable[[str, str | None, int], Any]


def routes(conversations: Conversations, background: Background, pre: Pre, invalid: Invalid) -> list[Any]:
    """The /v1/conversations endpoints, and retrieve/cancel of responses."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def missing(conversation_id: str) -> Any:
        return invalid(f"Conversation with id '{conversation_id}' not found.", None, 404)

    async def create(request: Request) -> Response:
        body, early = await pre(request, "conversations")
        if early is not None:
            return early
        assert body is not None
        return JSONResponse(conversations.create(list(body.get("items") or []), body.get("metadata")))

    async def one(request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        body, early = await pre(request, "conversations")
        if early is not None:
            return early
        assert body is not None
        if request.method == "DELETE":
            if not conversations.delete(conversation_id):
                return missing(conversation_id)
            return JSONResponse({"id": conversation_id, "object": "conversation.deleted", "deleted": True})
        found = (
            conversations.update(conversation_id, dict(body.get("metadata") or {}))
            if request.method == "POST"
            else conversations.get(conversation_id)
        )
        return JSONResponse(found) if found is not None else missing(conversation_id)

    async def items(request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        body, early = await pre(request, "conversations.items")
        if early is not None:
            return early
        assert body is not None
        if conversations.get(conversation_id) is None:
            return missing(conversation_id)
        if request.method == "POST":
            added = conversations.add(conversation_id, list(body.get("items") or []))
            return JSONResponse(
                {
                    "object": "list",
                    "data": added,
                    "first_id": added[0]["id"] if added else None,
                    "last_id": added[-1]["id"] if added else None,
                    "has_more": False,
                }
            )
        query = request.query_params
        try:
            limit = min(max(int(query.get("limit", "20")), 1), 100)
        except ValueError:
            return invalid("limit must be a number from 1 to 100", "limit", 400)
        order = query.get("order", "desc")
        return JSONResponse(conversations.page(conversation_id, limit, order, query.get("after")))

    async def item(request: Request) -> Response:
        conversation_id, item_id = request.path_params["conversation_id"], request.path_params["item_id"]
        body, early = await pre(request, "conversations.items")
        if early is not None:
            return early
        if conversations.get(conversation_id) is None:
            return missing(conversation_id)
        if request.method == "DELETE":
            if not conversations.remove_item(conversation_id, item_id):
                return invalid(f"Item with id '{item_id}' not found.", None, 404)
            return JSONResponse(conversations.get(conversation_id))
        found = next((i for i in conversations.items(conversation_id) if i["id"] == item_id), None)
        return JSONResponse(found) if found else invalid(f"Item with id '{item_id}' not found.", None, 404)

    async def response(request: Request) -> Response:
        response_id = request.path_params["response_id"]
        body, early = await pre(request, "responses.retrieve")
        if early is not None:
            return early
        if request.url.path.endswith("/cancel"):
            found = await background.cancel(response_id)
        else:
            found = background.responses.get(response_id)
        if found is None:
            return invalid(f"Response with id '{response_id}' not found.", None, 404)
        return JSONResponse(found)

    return [
        Route("/v1/conversations", create, methods=["POST"]),
        Route("/v1/conversations/{conversation_id}", one, methods=["GET", "POST", "DELETE"]),
        Route("/v1/conversations/{conversation_id}/items", items, methods=["GET", "POST"]),
        Route("/v1/conversations/{conversation_id}/items/{item_id}", item, methods=["GET", "DELETE"]),
        Route("/v1/responses/{response_id}", response, methods=["GET"]),
        Route("/v1/responses/{response_id}/cancel", response, methods=["POST"]),
    ]
