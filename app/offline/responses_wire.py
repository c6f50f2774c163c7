"""The Responses API on the wire: response objects and the server-sent event stream.

Events follow the order the real API uses: `response.created`, `response.in_progress`, then per
output item `output_item.added` … `output_item.done` with the item's own events in between
(`mcp_list_tools.*`, `mcp_call.*` and `mcp_call_arguments.*`, text deltas, function-call argument
deltas), then `response.completed`. Tests parse every event with the `openai` package's types.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from app.offline.hosted import Phase


def response_object(
    response_id: str,
    model: str,
    items: list[dict[str, Any]],
    usage: tuple[int, int] | None,
    status: str,
    previous_response_id: str | None = None,
) -> dict[str, Any]:
    """A `Response` object as the API returns it."""
    obj: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": items,
        "parallel_tool_calls": True,
        "previous_response_id": previous_response_id,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "temperature": None,
        "error": None,
        "incomplete_details": None,
        "usage": None,
    }
    if usage:
        obj["usage"] = {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "total_tokens": sum(usage),
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    return obj


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Events:
    """Numbers events and encodes them as named SSE events."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, **event: Any) -> bytes:
        event["sequence_number"] = self.seq
        self.seq += 1
        return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def _in_progress(item: dict[str, Any]) -> dict[str, Any]:
    kind = item["type"]
    if kind == "message":
        return {**item, "status": "in_progress", "content": []}
    if kind == "function_call":
        return {**item, "arguments": "", "status": "in_progress"}
    return item


async def _opening(ev: _Events, idx: int, item: dict[str, Any]) -> AsyncIterator[bytes]:
    yield ev(type="response.output_item.added", output_index=idx, item=_in_progress(item))
    kind, item_id = item["type"], item["id"]
    if kind == "mcp_list_tools":
        yield ev(type="response.mcp_list_tools.in_progress", item_id=item_id, output_index=idx)
    elif kind == "mcp_call":
        yield ev(type="response.mcp_call.in_progress", item_id=item_id, output_index=idx)
        args = item["arguments"]
        yield ev(type="response.mcp_call_arguments.delta", item_id=item_id, output_index=idx, delta=args)
        yield ev(type="response.mcp_call_arguments.done", item_id=item_id, output_index=idx, arguments=args)


async def _closing(ev: _Events, idx: int, item: dict[str, Any], chunk_delay: float) -> AsyncIterator[bytes]:
    kind, item_id = item["type"], item["id"]
    if kind == "message":
        text = item["content"][0]["text"]
        part = {"type": "output_text", "text": "", "annotations": []}
        yield ev(type="response.content_part.added", item_id=item_id, output_index=idx, content_index=0, part=part)
        for piece in _chunks(text):
            yield ev(
                type="response.output_text.delta",
                item_id=item_id,
                output_index=idx,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
            await asyncio.sleep(chunk_delay)
        yield ev(
            type="response.output_text.done", item_id=item_id, output_index=idx, content_index=0, text=text, logprobs=[]
        )
        yield ev(
            type="response.content_part.done",
            item_id=item_id,
            output_index=idx,
            content_index=0,
            part={**part, "text": text},
        )
    elif kind == "function_call":
        args = item["arguments"]
        yield ev(type="response.function_call_arguments.delta", item_id=item_id, output_index=idx, delta=args)
        yield ev(
            type="response.function_call_arguments.done",
            item_id=item_id,
            output_index=idx,
            arguments=args,
            name=item["name"],
        )
    elif kind == "mcp_list_tools":
        outcome = "failed" if item.get("error") else "completed"
        yield ev(type=f"response.mcp_list_tools.{outcome}", item_id=item_id, output_index=idx)
    elif kind == "mcp_call":
        outcome = "failed" if item.get("error") else "completed"
        yield ev(type=f"response.mcp_call.{outcome}", item_id=item_id, output_index=idx)
    yield ev(type="response.output_item.done", output_index=idx, item=item)


async def stream(
    response_id: str,
    model: str,
    phases: AsyncGenerator[Phase, None],
    finish: Callable[[list[dict[str, Any]]], tuple[int, int]],
    chunk_delay: float = 0.0,
    previous_response_id: str | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed response; `finish(items)` stores it and returns its usage."""
    ev = _Events()
    base = response_object(response_id, model, [], None, "in_progress", previous_response_id)
    yield ev(type="response.created", response=base)
    yield ev(type="response.in_progress", response=base)
    items: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    try:
        # A client that hangs up mid-stream cancels this task; the hosted MCP sessions close here with it.
        async with aclosing(phases):
            async for phase in phases:
                item = phase.item
                if item["id"] not in index:
                    index[item["id"]] = len(items)
                    items.append(item)
                    async for chunk in _opening(ev, index[item["id"]], item):
                        yield chunk
                if phase.kind == "done":
                    items[index[item["id"]]] = item
                    async for chunk in _closing(ev, index[item["id"]], item, chunk_delay):
                        yield chunk
    except Exception as exc:  # noqa: BLE001 - the API reports mid-stream failures as an error event
        yield ev(type="error", code="server_error", message=f"The fake server failed: {exc}", param=None)
        return
    usage = finish(items)
    final = response_object(response_id, model, items, usage, "completed", previous_response_id)
    yield ev(type="response.completed", response=final)
