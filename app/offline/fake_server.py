"""A fake OpenAI-compatible HTTP server driven by the offline rules (Responses + Chat Completions).

Loopback only. Faults can be queued (429 with Retry-After, 500, delay, malformed body) and every
request is logged, so tests can use the real `openai` client over real HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.config.redact import MASK, redact, redact_url
from app.offline import fake_conversations, fake_media, hosted, responses_wire
from app.offline.rules import Decision, RuleSet, decide, estimate_tokens, read_conversation

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_STORED = 2_000  # previous_response_id reaches back this many responses
MAX_LOGGED = 10_000  # GET /_admin/requests keeps the latest this many (a long batch must not grow it forever)


@dataclass
class Fault:
    """One injected failure, consumed by the next model request."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    malformed: bool = False
    message: str = "injected failure"


# The JSON types of each fault field (a bool is not a number here); status and retry_after may be null.
_FAULT_FIELDS: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "retry_after": (int, float),
    "delay": (int, float),
    "malformed": (bool,),
    "message": (str,),
}
_NULLABLE = ("status", "retry_after")


def _check_fault(i: int, item: Any) -> Fault:
    if not isinstance(item, dict):
        raise ValueError(f"fault {i} is not an object")
    for key, value in item.items():
        kinds = _FAULT_FIELDS.get(key)
        if kinds is None:
            raise ValueError(f"fault {i}: unknown key {key!r} (known: {', '.join(_FAULT_FIELDS)})")
        if value is None and key in _NULLABLE:
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ValueError(f"fault {i}: {key} must be {' or '.join(k.__name__ for k in kinds)}")
    fault = Fault(**item)
    if fault.status is not None and not 400 <= fault.status <= 599:
        raise ValueError(f"fault {i}: status must be an HTTP error status (400-599)")
    for seconds in (fault.delay, fault.retry_after):
        if seconds is not None and not 0 <= seconds < math.inf:  # NaN fails too
            raise ValueError(f"fault {i}: delay and retry_after must be finite and not negative")
    return fault


def parse_faults(data: Any) -> list[Fault]:
    """A JSON list of fault objects (what `--faults` and `POST /_admin/faults` take); ValueError if not."""
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of fault objects, got {type(data).__name__}")
    return [_check_fault(i, item) for i, item in enumerate(data)]


@dataclass
class FakeState:
    rules: RuleSet
    latency: float = 0.0
    # Pause between streamed text chunks, so streaming is visible (demos, terminal tests).
    chunk_delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LOGGED))
    # Stored responses (input and output items), for previous_response_id; oldest dropped first.
    stored: OrderedDict[str, list[Any]] = field(default_factory=OrderedDict)

    conversations: fake_conversations.Conversations = field(default_factory=fake_conversations.Conversations)
    # Every response object (background ones while they run), for GET /v1/responses/{id} and cancel.
    background: fake_conversations.Background = field(default_factory=fake_conversations.Background)

    def store(self, response_id: str, items: list[Any]) -> None:
        self.stored[response_id] = items
        while len(self.stored) > MAX_STORED:
            self.stored.popitem(last=False)


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


def _masked(tool: dict[str, Any]) -> dict[str, Any]:
    """A hosted MCP tool for the request log: header values, tokens and URL credentials masked."""
    out = redact(tool)
    if isinstance(tool.get("headers"), dict):
        out["headers"] = {name: MASK for name in tool["headers"]}
    if isinstance(tool.get("server_url"), str):
        out["server_url"] = redact_url(tool["server_url"])
    return out


def _invalid(message: str, param: str | None, status: int) -> JSONResponse:
    """An error body as the API sends it for a bad request."""
    code = "previous_response_not_found" if status == 404 else None
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": error}, status)


def _usage(body: dict[str, Any], decision: Decision) -> tuple[int, int]:
    inp = estimate_tokens(json.dumps(body, default=str))
    out = estimate_tokens(decision.message or json.dumps([[n, a] for n, a, _ in decision.calls]))
    return inp, out


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(event: dict[str, Any], named: bool) -> bytes:
    head = f"event: {event['type']}\n" if named else ""
    return f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


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


async def _form(request: Request) -> dict[str, Any]:
    """A multipart body's fields; uploaded files are recorded by field, name and size."""
    form = await request.form()
    body: dict[str, Any] = {"files": []}
    for name, value in form.multi_items():
        if isinstance(value, str):
            body[name] = value
        else:
            body["files"].append({"field": name, "filename": value.filename, "bytes": len(await value.read())})
    return body


def build_app(state: FakeState) -> Starlette:
    """The Starlette app: /v1/responses, /v1/chat/completions, /v1/models and /_admin endpoints."""

    async def pre(request: Request, api: str, multipart: bool = False) -> tuple[dict[str, Any] | None, Response | None]:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return None, JSONResponse({"error": {"message": "missing API key", "type": "invalid_request_error"}}, 401)
        try:
            raw_body = b"" if multipart else await request.body()
            if request.method in ("GET", "DELETE") or (not multipart and not raw_body.strip()):
                body: dict[str, Any] = {}  # a GET, a DELETE, or a POST without a body (cancel)
            else:
                body = await _form(request) if multipart else json.loads(raw_body)
        except ValueError:
            return None, JSONResponse({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, 400)
        raw_input = body.get("input")
        state.requests.append(
            {
                "api": api,
                # Which key sent it (a digest: the log is served over HTTP), for per-request key tests.
                "key": hashlib.sha256(authorization.removeprefix("Bearer ").encode()).hexdigest()[:12],
                "model": body.get("model"),
                "stream": bool(body.get("stream")),
                "tools": _tool_names(body.get("tools", [])),
                # Hosted MCP tools as sent, with credentials masked (the log is served over HTTP).
                "mcp": [_masked(t) for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "mcp"],
                "previous_response_id": body.get("previous_response_id"),
                "input": [i.get("type") or i.get("role") for i in raw_input if isinstance(i, dict)]
                if isinstance(raw_input, list)
                else ["text"],
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
        previous = body.get("previous_response_id")
        if previous and previous not in state.stored:
            return _invalid(f"Previous response with id '{previous}' not found.", "previous_response_id", 404)
        raw = body.get("input", [])
        new_items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw)
        context = [*state.stored.get(previous, []), *new_items] if previous else new_items
        conversation = body.get("conversation")
        conversation_id = conversation.get("id") if isinstance(conversation, dict) else conversation
        if conversation_id:
            if state.conversations.get(conversation_id) is None:
                return _invalid(f"Conversation with id '{conversation_id}' not found.", "conversation", 404)
            context = [*state.conversations.items(conversation_id), *new_items]
        tools = body.get("tools") or []
        try:
            hosted.pending_approvals(context, set(hosted.validate_tools(tools)))
        except hosted.RequestError as exc:
            return _invalid(exc.message, exc.param, 400)
        model = body.get("model", "offline")
        response_id = _new_id("resp")

        meter = hosted.Meter(estimate_tokens(json.dumps(body, default=str)))

        def finish(items: list[dict[str, Any]]) -> tuple[int, int]:
            if body.get("store", True) is not False:
                state.store(response_id, [*context, *items])
            if conversation_id and state.conversations.get(conversation_id) is not None:
                state.conversations.add(conversation_id, [*new_items, *items])
            return meter.usage()

        phases = hosted.respond(state.rules, body.get("instructions"), context, tools, meter)
        extra = {"background": bool(body.get("background")), "metadata": body.get("metadata") or {}}
        if conversation_id:
            extra["conversation"] = {"id": conversation_id}
        if body.get("background"):
            return JSONResponse(state.background.start(response_id, model, phases, finish, previous, extra))
        if body.get("stream"):
            chunks = responses_wire.stream(response_id, model, phases, finish, state.chunk_delay, previous)
            return StreamingResponse(chunks, media_type="text/event-stream")
        async with aclosing(phases):  # closes the MCP sessions in this task, whatever happens
            items = [phase.item async for phase in phases if phase.kind == "done"]
        usage = finish(items)
        done = {**responses_wire.response_object(response_id, model, items, usage, "completed", previous), **extra}
        state.background.keep(done)
        return JSONResponse(done)

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

    async def media(request: Request) -> Response:
        kind = request.url.path.removeprefix("/v1/")
        body, early = await pre(request, kind, multipart=kind == "images/edits")
        if early is not None:
            return early
        assert body is not None
        try:
            if kind.startswith("images/"):
                prompt = str(body.get("prompt") or "")
                if not prompt:
                    return _invalid("'prompt' is required", "prompt", 400)
                return JSONResponse(fake_media.images_response(body, prompt))
            if kind == "embeddings":
                return JSONResponse(fake_media.embeddings_response(body))
            return JSONResponse(fake_media.moderations_response(body))
        except ValueError as exc:
            return _invalid(str(exc), None, 400)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "offline", "object": "model", "owned_by": "agentdeck"}]})

    async def admin_faults(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return _invalid(f"the body is not JSON: {exc}", None, 400)
        # The same list as --faults; `{"faults": [...]}` is accepted too (the older form).
        if isinstance(body, dict) and set(body) == {"faults"}:
            body = body["faults"]
        try:
            faults = parse_faults(body)
        except ValueError as exc:
            return _invalid(str(exc), None, 400)
        state.faults.extend(faults)
        return JSONResponse({"queued": len(state.faults)})

    async def admin_requests(request: Request) -> Response:
        return JSONResponse(list(state.requests))

    return Starlette(
        routes=[
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/images/generations", media, methods=["POST"]),
            Route("/v1/images/edits", media, methods=["POST"]),
            Route("/v1/embeddings", media, methods=["POST"]),
            Route("/v1/moderations", media, methods=["POST"]),
            *fake_conversations.routes(state.conversations, state.background, pre, _invalid),
            Route("/_admin/faults", admin_faults, methods=["POST"]),
            Route("/_admin/requests", admin_requests, methods=["GET"]),
        ]
    )
