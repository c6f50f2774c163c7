"""Tool results as model input: every MCP content block becomes text or an image the model can use.

The SDK passes text and images through and serialises any other block as JSON. agentdeck rewrites
the other blocks first: a text resource is inlined under its URI, a binary resource, a resource link
or audio is described (URI, MIME type, size), and runs of text are joined into one text block.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

SEPARATOR = "\n\n"


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data) * 3 // 4
    return f"{n:,} bytes"


def describe(block: Any) -> str | None:
    """The text that stands for a block the model cannot take as it is (None: keep the block)."""
    kind = getattr(block, "type", None)
    if kind == "resource":
        resource = block.resource
        mime = getattr(resource, "mime_type", None)
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource {resource.uri}{f' ({mime})' if mime else ''}]\n{text}"
        return f"[binary resource {resource.uri}: {mime or 'unknown type'}, {_size(getattr(resource, 'blob', ''))}]"
    if kind == "resource_link":
        parts = [p for p in (block.mime_type, f"{block.size:,} bytes" if block.size is not None else None) if p]
        title = block.title or block.name
        about = f" — {block.description}" if block.description else ""
        return f"[resource link {block.uri}: {title}{' (' + ', '.join(parts) + ')' if parts else ''}{about}]"
    if kind == "audio":
        return f"[audio: {block.mime_type}, {_size(block.data)}]"
    return None


def for_model(result: Any) -> Any:
    """The result with its content rewritten for the model (the same object when nothing changes)."""
    from mcp_types import TextContent

    content = list(getattr(result, "content", None) or [])
    if not content:
        return result
    out: list[Any] = []
    for block in content:
        kind = getattr(block, "type", None)
        text = block.text if kind == "text" else describe(block)
        if text is None:
            out.append(block)  # an image: the SDK hands it to the model as one
        elif out and getattr(out[-1], "type", None) == "text":
            out[-1] = TextContent(type="text", text=out[-1].text + SEPARATOR + text)
        else:
            out.append(block if kind == "text" else TextContent(type="text", text=text))
    if len(out) == len(content) and all(a is b for a, b in zip(out, content, strict=True)):
        return result
    return result.model_copy(update={"content": out})
