"""OpenAI's hosted `mcp` tool, emulated: list the server's tools, call them, ask for approvals.

The fake OpenAI server plays OpenAI's part: it connects to each `{"type": "mcp"}` tool's
`server_url` itself and produces the same output items the Responses API does (`mcp_list_tools`,
`mcp_call`, `mcp_approval_request`). The offline rules choose calls as for local tools.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from app.offline.rules import RuleSet, decide, estimate_tokens, read_conversation

# A model that keeps calling hosted tools is stopped after this many steps in one response.
MAX_HOSTED_STEPS = 16


class RequestError(Exception):
    """The request is invalid (answered with HTTP 400, as the Responses API does)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass
class Phase:
    """One output item as it progresses: `added` (in progress) or `done` (final)."""

    kind: str
    item: dict[str, Any]
    rule: str | None = None


@dataclass
class Meter:
    """Estimated tokens of one response, counted as the API bills a response with hosted calls.

    Every model step inside the response reads the request (`base`) plus what the response has
    produced so far (tool listings, call outputs) as input, and writes its message or calls.
    """

    base: int
    input_tokens: int = 0
    output_tokens: int = 0

    def step(self, produced: list[dict[str, Any]], decision: Any) -> None:
        self.input_tokens += self.base + (estimate_tokens(json.dumps(produced, default=str)) if produced else 0)
        written = decision.message or json.dumps([[n, a] for n, a, _ in decision.calls], ensure_ascii=False)
        self.output_tokens += estimate_tokens(written)

    def usage(self) -> tuple[int, int]:
        return self.input_tokens, self.output_tokens


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def step_ids(prefix: str, count: int) -> list[str]:
    """Ids for the items of one model step; they share all but their last two characters.

    The rules engine counts steps (rounds); consecutive `mcp_call` items carry no other sign of
    which step made them, so their ids do.
    """
    step = uuid.uuid4().hex[:22]
    return [f"{prefix}_{step}{n:02x}" for n in range(count)]


def get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


@dataclass
class ToolInfo:
    name: str
    read_only: bool
    entry: dict[str, Any]


def _matches(flt: Any, tool: ToolInfo) -> bool:
    """A `{tool_names, read_only}` filter; an empty filter matches nothing."""
    if not isinstance(flt, dict):
        return False
    names, read_only = flt.get("tool_names"), flt.get("read_only")
    if names is None and read_only is None:
        return False
    if names is not None and tool.name not in names:
        return False
    return read_only is None or tool.read_only == bool(read_only)


def allowed(config: dict[str, Any], tool: ToolInfo) -> bool:
    """`allowed_tools`: a list of names, or a `{tool_names, read_only}` filter."""
    rule = config.get("allowed_tools")
    if rule is None:
        return True
    if isinstance(rule, list):
        return tool.name in rule
    if rule.get("tool_names") is None and rule.get("read_only") is None:
        return True
    return _matches(rule, tool)


def needs_approval(config: dict[str, Any], tool: ToolInfo) -> bool:
    """`require_approval`: always (the API's default), never, or `{always: filter, never: filter}`."""
    rule = config.get("require_approval", "always")
    if rule is None or rule == "always":
        return True
    if rule == "never":
        return False
    if _matches(rule.get("never"), tool):
        return False
    if _matches(rule.get("always"), tool):
        return True
    return "always" not in rule


def tool_entry(tool: Any) -> ToolInfo:
    """An `mcp_list_tools` entry from an `mcp.types.Tool`."""
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    entry: dict[str, Any] = {"name": tool.name, "input_schema": tool.input_schema}
    if tool.description:
        entry["description"] = tool.description
    entry["annotations"] = annotations
    return ToolInfo(tool.name, bool(annotations and annotations.get("readOnlyHint")), entry)


def _entry_info(entry: dict[str, Any]) -> ToolInfo:
    annotations = entry.get("annotations") or {}
    return ToolInfo(entry["name"], bool(annotations.get("readOnlyHint")), entry)


def validate_tools(tools: list[Any]) -> dict[str, dict[str, Any]]:
    """The request's hosted MCP tools by server label; RequestError for what the API rejects."""
    out: dict[str, dict[str, Any]] = {}
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or tool.get("type") != "mcp":
            continue
        where = f"tools[{index}]"
        label = tool.get("server_label")
        if not isinstance(label, str) or not label:
            raise RequestError(f"Missing required parameter: '{where}.server_label'.", f"{where}.server_label")
        targets = [k for k in ("server_url", "connector_id", "tunnel_id") if tool.get(k)]
        if len(targets) != 1:
            raise RequestError(
                f"Exactly one of '{where}.server_url', '{where}.connector_id' or '{where}.tunnel_id' is required.",
                where,
            )
        if label in out:
            raise RequestError(f"Duplicate MCP server_label '{label}' in tools.", f"{where}.server_label")
        out[label] = tool
    return out


@dataclass
class HostedServer:
    """One hosted MCP tool of a request: its listing, and a session opened when first needed."""

    label: str
    config: dict[str, Any]
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    listed: bool = False
    session: Any = None

    def headers(self) -> dict[str, str]:
        from app.remote_mcp import request_headers

        return request_headers(self.config.get("headers"), self.config.get("authorization"))

    def unreachable_reason(self) -> str | None:
        if self.config.get("connector_id"):
            return f"connector '{self.config['connector_id']}' is run by OpenAI and cannot be emulated offline"
        if self.config.get("tunnel_id"):
            return f"tunnel '{self.config['tunnel_id']}' is OpenAI's Secure MCP Tunnel and cannot be emulated offline"
        return None

    async def open(self, stack: AsyncExitStack) -> Any:
        from app.remote_mcp import open_session

        if self.session is None:
            self.session = await stack.enter_async_context(open_session(self.config["server_url"], self.headers()))
        return self.session

    async def list(self, stack: AsyncExitStack) -> dict[str, Any]:
        """The `mcp_list_tools` item (with `error` when the server cannot be listed)."""
        from app.remote_mcp import RemoteMcpError, list_all

        item: dict[str, Any] = {"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": self.label}
        reason = self.unreachable_reason()
        if reason is None:
            try:
                infos = [tool_entry(t) for t in await list_all(await self.open(stack))]
            except RemoteMcpError as exc:
                reason = exc.message
            else:
                self.tools = {t.name: t for t in infos if allowed(self.config, t)}
        self.listed = reason is None
        item["tools"] = [t.entry for t in self.tools.values()]
        # The API's wording: "Error retrieving tool list from MCP server: 'x'. Http status code: 401 (Unauthorized)".
        item["error"] = f"Error retrieving tool list from MCP server: '{self.label}'. {reason}" if reason else None
        return item

    def adopt(self, listing: Any) -> None:
        """Tools from an earlier `mcp_list_tools` item in the conversation (the API does not list again)."""
        entries = [e if isinstance(e, dict) else e.model_dump() for e in get(listing, "tools") or []]
        self.tools = {e["name"]: _entry_info(e) for e in entries if allowed(self.config, _entry_info(e))}
        self.listed = True

    async def call(self, stack: AsyncExitStack, item: dict[str, Any]) -> dict[str, Any]:
        """Run one call and fill in the `mcp_call` item's output or structured error."""
        from mcp.shared.exceptions import MCPError

        from app.remote_mcp import RemoteMcpError

        done = dict(item)
        try:
            session = await self.open(stack)
            result = await session.call_tool(item["name"], json.loads(item["arguments"] or "{}"))
        except MCPError as exc:
            done.update(status="failed", error={"type": "mcp_protocol_error", "code": exc.code, "message": exc.message})
        except RemoteMcpError as exc:
            code = exc.status or 502
            done.update(status="failed", error={"type": "http_error", "code": code, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 - any transport failure is an HTTP-level error to the model
            done.update(status="failed", error={"type": "http_error", "code": 502, "message": str(exc) or "failed"})
        else:
            blocks = [b.model_dump(mode="json", by_alias=True, exclude_none=True) for b in result.content]
            if result.is_error:
                done.update(status="failed", error={"type": "mcp_tool_execution_error", "content": blocks})
            else:
                texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
                output = "\n".join(texts) if texts else json.dumps(result.structured_content or blocks)
                done.update(status="completed", output=output)
        return done


def pending_approvals(context: list[Any], labels: set[str]) -> list[tuple[Any, Any]]:
    """Approved `mcp_approval_response`s whose call has not run yet, with their requests.

    RequestError (a 400, as the API answers) for a response to no known request, or to a request
    whose server is not among this request's tools.
    """
    requests = {get(i, "id"): i for i in context if get(i, "type") == "mcp_approval_request"}
    executed = {get(i, "approval_request_id") for i in context if get(i, "type") == "mcp_call"}
    out = []
    for item in context:
        if get(item, "type") != "mcp_approval_response":
            continue
        request_id = get(item, "approval_request_id")
        if request_id not in requests:
            raise RequestError(f"No approval request found with id '{request_id}'.", "input")
        label = get(requests[request_id], "server_label")
        if label not in labels:
            raise RequestError(f"No MCP tool with server_label '{label}' for approval request '{request_id}'.", "tools")
        if get(item, "approve") and request_id not in executed:
            out.append((requests[request_id], item))
            executed.add(request_id)
    return out


async def respond(
    rules: RuleSet, instructions: str | None, context: list[Any], tools: list[Any], meter: Meter | None = None
) -> AsyncGenerator[Phase, None]:
    """The output items of one Responses request, as they happen (hosted calls run here)."""
    servers = {label: HostedServer(label, cfg) for label, cfg in validate_tools(tools).items()}
    functions = [str(t.get("name")) for t in tools or [] if isinstance(t, dict) and t.get("type") == "function"]
    produced: list[dict[str, Any]] = []
    async with AsyncExitStack() as stack:
        for item in context:
            if get(item, "type") == "mcp_list_tools" and not get(item, "error"):
                server = servers.get(get(item, "server_label"))
                if server is not None:
                    server.adopt(item)
        for server in servers.values():
            if not server.listed:
                listing = {"type": "mcp_list_tools", "id": new_id("mcpl"), "server_label": server.label, "tools": []}
                yield Phase("added", listing)
                listing = {**await server.list(stack), "id": listing["id"]}
                produced.append(listing)
                yield Phase("done", listing)
        for request, _response in pending_approvals(context, set(servers)):
            server = servers[get(request, "server_label")]
            call = _call_item(server.label, get(request, "name"), get(request, "arguments"), new_id("mcp"))
            call["approval_request_id"] = get(request, "id")
            yield Phase("added", call)
            call = await server.call(stack, call)
            produced.append(call)
            yield Phase("done", call)
        # The first server offering a name serves it; a function tool of that name wins over both.
        owner = {name: server for server in reversed(servers.values()) for name in server.tools}
        for name in functions:
            owner.pop(str(name), None)
        for _ in range(MAX_HOSTED_STEPS):
            decision = decide(rules, read_conversation(instructions, [*context, *produced]), [*functions, *owner])
            if meter is not None:
                meter.step(produced, decision)
            if decision.message is not None:
                yield Phase("done", message_item(decision.message), decision.rule)
                return
            hosted = [(n, a) for n, a, _ in decision.calls if n in owner]
            local = [(n, a, cid) for n, a, cid in decision.calls if n not in owner]
            stop = bool(local)
            for (name, args), item_id in zip(hosted, step_ids("mcp", len(hosted)), strict=True):
                server = owner[name]
                arguments = json.dumps(args, ensure_ascii=False)
                if needs_approval(server.config, server.tools[name]):
                    request = {
                        "id": "mcpr" + item_id[3:],
                        "type": "mcp_approval_request",
                        "server_label": server.label,
                        "name": name,
                        "arguments": arguments,
                    }
                    produced.append(request)
                    yield Phase("done", request, decision.rule)
                    stop = True
                    continue
                call = _call_item(server.label, name, arguments, item_id)
                yield Phase("added", call)
                call = await server.call(stack, call)
                produced.append(call)
                yield Phase("done", call, decision.rule)
            for name, args, call_id in local:
                yield Phase("done", function_call_item(name, args, call_id), decision.rule)
            if stop:
                return


def _call_item(label: str, name: str, arguments: str, item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "mcp_call",
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "status": "in_progress",
        "approval_request_id": None,
        "output": None,
        "error": None,
    }


def message_item(text: str) -> dict[str, Any]:
    """A finished assistant message output item."""
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A finished function_call output item."""
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(args, ensure_ascii=False),
        "status": "completed",
    }
