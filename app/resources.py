"""Servers' resources and prompts for the person at the keyboard: list them, attach one, send one.

A resource read (`run --resource URI`, chat `/resource URI`) becomes an attachment of the next
message; a prompt (`/prompt NAME k=v`) becomes the next user turn. Servers that do not offer
resources or prompts are skipped quietly; a URI no server knows is one clear error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.attachments import Attachment
from app.errors import UsageError


@dataclass
class PromptInfo:
    server: str
    name: str
    description: str
    # (name, required, description) for each argument
    arguments: list[tuple[str, bool, str]] = field(default_factory=list)

    def usage(self) -> str:
        """`/prompt NAME focus=… [tone=…]`: how to call it."""
        parts = [f"{a}=…" if required else f"[{a}=…]" for a, required, _ in self.arguments]
        return " ".join([f"/prompt {self.name}", *parts])


async def _quietly(call: Any) -> Any:
    """A listing, or None when the server does not offer it (or fails: listings are best effort)."""
    try:
        return await call
    except Exception:  # noqa: BLE001 - method not found, not connected: nothing to list from this server
        return None


async def list_resources(servers: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(server, URI or template, name, description) for every resource and template, server by server."""
    rows: list[tuple[str, str, str, str]] = []
    for name, server in servers.items():
        listed, templates = await asyncio.gather(
            _quietly(server.list_resources()), _quietly(server.list_resource_templates())
        )
        for r in getattr(listed, "resources", None) or []:
            rows.append((name, str(r.uri), r.name, (r.description or "").strip()))
        for t in getattr(templates, "resource_templates", None) or []:
            rows.append((name, t.uri_template, t.name, (t.description or "").strip()))
    return rows


async def list_prompts(servers: dict[str, Any]) -> list[PromptInfo]:
    """Every prompt of every server that offers prompts."""
    out: list[PromptInfo] = []
    for name, server in servers.items():
        listed = await _quietly(server.list_prompts())
        for p in getattr(listed, "prompts", None) or []:
            arguments = [(a.name, bool(a.required), a.description or "") for a in p.arguments or []]
            out.append(PromptInfo(name, p.name, (p.description or "").strip(), arguments))
    return out


async def read_resource(
    servers: dict[str, Any], uri: str, hint: str = "/resources lists what each server offers"
) -> tuple[str, Attachment]:
    """The first server that can read `uri`, and its contents as an attachment."""
    failures = []
    for name, server in servers.items():
        try:
            result = await server.read_resource(uri)
        except Exception as exc:  # noqa: BLE001 - the next server may know it; all failures are reported
            failures.append(f"{name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
            continue
        return name, as_attachment(uri, result)
    tried = "; ".join(failures) if failures else "no server is connected"
    raise UsageError(f"no server could read the resource {uri} ({tried})", hint=hint)


def as_attachment(uri: str, result: Any) -> Attachment:
    """A read result as one attachment: text joined, an image kept as an image, other bytes described."""
    texts, image = [], None
    for part in getattr(result, "contents", None) or []:
        mime = getattr(part, "mime_type", None) or ""
        if getattr(part, "text", None) is not None:
            texts.append(part.text)
        elif mime.startswith("image/") and image is None:
            image = f"data:{mime};base64,{part.blob}"
        else:
            texts.append(
                f"[binary content: {mime or 'unknown type'}, {len(getattr(part, 'blob', '')) * 3 // 4:,} bytes]"
            )
    if image is not None and not texts:
        return Attachment(name=uri, image_url=image)
    return Attachment(name=uri, text="\n\n".join(texts))


def parse_arguments(words: list[str]) -> dict[str, str]:
    """`k=v` words as a dict; anything else is an error naming the word."""
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(
                f"expected NAME=VALUE, got {word!r}", hint="/prompt NAME key=value …  (/prompts lists them)"
            )
        out[key] = value
    return out


async def prompt_turn(servers: dict[str, Any], prompt: PromptInfo, arguments: dict[str, str]) -> list[dict[str, Any]]:
    """The prompt's messages as input items for the next turn."""
    result = await servers[prompt.server].get_prompt(prompt.name, arguments)
    items = []
    for message in result.messages:
        content = message.content
        if getattr(content, "type", None) == "text":
            text = content.text
        elif getattr(content, "type", None) == "resource":
            resource = content.resource
            text = f"[resource {resource.uri}]\n{getattr(resource, 'text', None) or '(binary)'}"
        else:
            text = f"[{getattr(content, 'type', 'content')}]"
        items.append({"role": message.role, "content": text})
    return items


async def prompt_instructions(server: Any, server_name: str, prompt: str, args: dict[str, str], where: str) -> str:
    """A server prompt's text, as an agent's instructions; a missing prompt or argument names both."""
    from app.errors import ConfigError

    listed = await _quietly(server.list_prompts())
    known = {p.name: p for p in getattr(listed, "prompts", None) or []}
    if prompt not in known:
        offered = ", ".join(known) or "none"
        raise ConfigError(f"{where}: server '{server_name}' has no prompt named '{prompt}' (its prompts: {offered})")
    missing = [a.name for a in known[prompt].arguments or [] if a.required and a.name not in args]
    if missing:
        raise ConfigError(
            f"{where}: the prompt '{prompt}' of server '{server_name}' needs the argument "
            f"{', '.join(repr(m) for m in missing)}",
            hint=f"add it under {where}.args",
        )
    try:
        result = await server.get_prompt(prompt, args)
    except Exception as exc:  # noqa: BLE001 - the server's reason, in one line
        raise ConfigError(f"{where}: server '{server_name}' could not give the prompt '{prompt}': {exc}") from None
    texts = [getattr(m.content, "text", None) for m in result.messages]
    return "\n\n".join(t for t in texts if t)


def resource_tools(names: tuple[str, str], server_name: str, find: Any) -> list[Any]:
    """list_resources and read_resource as function tools for one server (`find()` gives it, or None)."""
    import json

    from agents import FunctionTool

    async def listing(ctx: Any, arguments: str) -> str:
        server = find()
        if server is None:
            return f"The server '{server_name}' is not connected."
        rows = await list_resources({server_name: server})
        if not rows:
            return f"The server '{server_name}' offers no resources."
        return "\n".join(f"{uri} — {name}" + (f": {about}" if about else "") for _, uri, name, about in rows)

    async def reading(ctx: Any, arguments: str) -> str:
        server = find()
        if server is None:
            return f"The server '{server_name}' is not connected."
        uri = str(json.loads(arguments or "{}").get("uri", ""))
        try:
            _, attachment = await read_resource({server_name: server}, uri)
        except UsageError as exc:
            return exc.message
        return attachment.text if attachment.text is not None else f"[image resource {uri}]"

    list_name, read_name = names
    return [
        FunctionTool(
            name=list_name,
            description=f"List the resources (and URI templates) of the MCP server '{server_name}'.",
            params_json_schema={"type": "object", "properties": {}, "additionalProperties": False, "required": []},
            on_invoke_tool=listing,
        ),
        FunctionTool(
            name=read_name,
            description=f"Read one resource of the MCP server '{server_name}' by its URI.",
            params_json_schema={
                "type": "object",
                "properties": {"uri": {"type": "string", "description": "The resource's URI."}},
                "additionalProperties": False,
                "required": ["uri"],
            },
            on_invoke_tool=reading,
        ),
    ]
