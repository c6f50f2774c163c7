"""A fake OpenAI-compatible HTTP server driven by the offline rules (Responses + Chat Completions).

Loopback only. Faults can be queued (429 with Retry-After, 500, delay, malformed body) and every
request is logged, so tests can use the real `openai` client over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.offline.rules import Decision, RuleSet, decide, estimate_tokens, read_conversation

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Fault:
    """One injected failure, consumed by the next model request."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    malformed: bool = False
    message: str = "injected failure"


@dataclass
class FakeState:
    rules: RuleSet
    latency: float = 0.0
    # Pause between streamed text chunks, so streaming is visible (demos, terminal tests).
    chunk_delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def chat_to_items(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Chat Completions messages -> (system text, Responses-style input items)."""
    system, items = [], []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            content = m.get("content")
            system.append(content if isinstance(content, str) else json.dumps(content))
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": m.get("tool_call_id"), "output": m.get("content")})
        elif role == "assistant" and m.get("tool_calls"):
            for tc in m["tool_calls"]:
                fn = tc.get("function", {})
                items.append(
                    {
                        "type": "function_call",
                        "call_id": tc.get("id"),
                        "name": fn.get("name"),
                        "arguments": fn.get("arguments"),
                    }
                )
        else:
            items.append({"role": role, "content": m.get("content")})
    return "\n".join(system), items


def _tool_names(tools: list[dict[str, Any]]) -> list[str]:
    names = []
    for t in tools or []:
        if t.get("type") == "function":
            names.append(t.get("name") or t.get("function", {}).get("name"))
    return [n for n in names if n]


def _usage(body: dict[str, Any], decision: Decision) -> tuple[int, int]:
    inp = estimate_tokens(json.dumps(body, default=str))
    out = estimate_tokens(decision.message or json.dumps([[n, a] for n, a, _ in decision.calls]))
    return inp, out


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _responses_items(decision: Decision) -> list[dict[str, Any]]:
    if decision.message is not None:
        return [
            {
                "id": _new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": decision.message, "annotations": [], "logprobs": []}],
            }
        ]
    return [
        {
            "id": _new_id("fc"),
            "type": "function_call",
            "call_id": cid,
            "name": n,
            "arguments": json.dumps(a, ensure_ascii=False),
            "status": "completed",
        }
        for n, a, cid in decision.calls
    ]


def _response_object(
    model: str, items: list[dict[str, Any]], usage: tuple[int, int] | None, status: str
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": items,
        "parallel_tool_calls": True,
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
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    return obj


def _sse(event: dict[str, Any], named: bool) -> bytes:
    head = f"event: {event['type']}\n" if named else ""
    return f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def _responses_stream(
    model: str, decision: Decision, usage: tuple[int, int], chunk_delay: float = 0.0
) -> AsyncIterator[bytes]:
    items = _responses_items(decision)
    seq = 0

    def ev(**kw: Any) -> bytes:
        nonlocal seq
        kw["sequence_number"] = seq
        seq += 1
        return _sse(kw, named=True)

    base = _response_object(model, [], None, "in_progress")
    yield ev(type="response.created", response=base)
    for idx, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            empty = {**item, "status": "in_progress", "content": []}
            yield ev(type="response.output_item.added", output_index=idx, item=empty)
            part = {"type": "output_text", "text": "", "annotations": []}
            yield ev(
                type="response.content_part.added", item_id=item["id"], output_index=idx, content_index=0, part=part
            )
            for piece in _chunks(text):
                yield ev(
                    type="response.output_text.delta",
                    item_id=item["id"],
                    output_index=idx,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
                await asyncio.sleep(chunk_delay)
            yield ev(
                type="response.output_text.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                text=text,
                logprobs=[],
            )
            yield ev(
                type="response.content_part.done",
                item_id=item["id"],
                output_index=idx,
                content_index=0,
                part={**part, "text": text},
            )
        else:
            yield ev(
                type="response.output_item.added",
                output_index=idx,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            yield ev(
                type="response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=idx,
                delta=item["arguments"],
            )
            yield ev(
                type="response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                arguments=item["arguments"],
                name=item["name"],
            )
        yield ev(type="response.output_item.done", output_index=idx, item=item)
    final = {**_response_object(model, items, usage, "completed"), "id": base["id"]}
    yield ev(type="response.completed", response=final)


async def _chat_stream(
    model: str, decision: Decision, usage: tuple[int, int], chunk_delay: float = 0.0
) -> AsyncIterator[bytes]:
    cid, created = _new_id("chatcmpl"), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, with_usage: bool = False) -> bytes:
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if with_usage:
            body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        return _sse(body, named=False)

    yield chunk({"role": "assistant", "content": ""})
    if decision.message is not None:
        for piece in _chunks(decision.message):
            yield chunk({"content": piece})
            await asyncio.sleep(chunk_delay)
        yield chunk({}, "stop", with_usage=True)
    else:
        for i, (name, args, call_id) in enumerate(decision.calls):
            yield chunk(
                {
                    "tool_calls": [
                        {"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                    ]
                }
            )
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": json.dumps(args, ensure_ascii=False)}}]})
        yield chunk({}, "tool_calls", with_usage=True)
    yield b"data: [DONE]\n\n"


def build_app(state: FakeState) -> Starlette:
    """The Starlette app: /v1/responses, /v1/chat/completions, /v1/models and /_admin endpoints."""

    async def pre(request: Request, api: str) -> tuple[dict[str, Any] | None, Response | None]:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return None, JSONResponse({"error": {"message": "missing API key", "type": "invalid_request_error"}}, 401)
        try:
            body = await request.json()
        except ValueError:
            return None, JSONResponse({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, 400)
        state.requests.append(
            {
                "api": api,
                "model": body.get("model"),
                "stream": bool(body.get("stream")),
                "tools": _tool_names(body.get("tools", [])),
                "time": time.time(),
            }
        )
        fault = state.faults.pop(0) if state.faults else None
        delay = state.latency + (fault.delay if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault and fault.status:
            headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            err = {
                "error": {
                    "message": fault.message,
                    "type": "server_error" if fault.status >= 500 else "rate_limit_error",
                }
            }
            return None, JSONResponse(err, fault.status, headers=headers)
        if fault and fault.malformed:
            return None, Response(b'{"id": "broken", "output": [', 200, media_type="application/json")
        return body, None

    async def responses(request: Request) -> Response:
        body, early = await pre(request, "responses")
        if early is not None:
            return early
        assert body is not None
        raw = body.get("input", [])
        conv = read_conversation(body.get("instructions"), raw)
        decision = decide(state.rules, conv, _tool_names(body.get("tools", [])))
        usage = _usage(body, decision)
        model = body.get("model", "offline")
        if body.get("stream"):
            return StreamingResponse(
                _responses_stream(model, decision, usage, state.chunk_delay), media_type="text/event-stream"
            )
        return JSONResponse(_response_object(model, _responses_items(decision), usage, "completed"))

    async def chat(request: Request) -> Response:
        body, early = await pre(request, "chat_completions")
        if early is not None:
            return early
        assert body is not None
        system, items = chat_to_items(body.get("messages", []))
        decision = decide(state.rules, read_conversation(system, items), _tool_names(body.get("tools", [])))
        usage = _usage(body, decision)
        model = body.get("model", "offline")
        if body.get("stream"):
            return StreamingResponse(
                _chat_stream(model, decision, usage, state.chunk_delay), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": decision.message}
        if decision.message is None:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": n, "arguments": json.dumps(a, ensure_ascii=False)}}
                for n, a, cid in decision.calls
            ]
        return JSONResponse(
            {
                "id": _new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "stop" if decision.message is not None else "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
            }
        )

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "offline", "object": "model", "owned_by": "agentdeck"}]})

    async def admin_faults(request: Request) -> Response:
        body = await request.json()
        state.faults.extend(Fault(**f) for f in body.get("faults", []))
        return JSONResponse({"queued": len(state.faults)})

    async def admin_requests(request: Request) -> Response:
        return JSONResponse(state.requests)

    return Starlette(
        routes=[
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_admin/faults", admin_faults, methods=["POST"]),
            Route("/_admin/requests", admin_requests, methods=["GET"]),
        ]
    )
