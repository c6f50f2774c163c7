"""What the conversations server's modules share: annotations, id checks, argument models."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servers.conversations.store import Store
from servers.openai_tools.settings import Settings

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


def item_text(item: Any) -> str:
    return "".join(getattr(part, "text", "") or "" for part in getattr(item, "content", None) or [])


def listing(page: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    """A list result as the Assistants API gave them: data, first and last id, whether more follow."""
    ids = page["ids"]
    first, last = (ids[0], ids[-1]) if ids else (None, None)
    return {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": page["has_more"]}


@dataclass
class Shared:
    """The server's parts the run tools use."""

    settings: Settings
    store: Store
    openai: Callable[[Context], tuple[Any, str]]
    assistant_or_fail: Callable[[str], dict[str, Any]]
    run_or_fail: Callable[[str, str], dict[str, Any]]
    new_thread: Callable[..., Awaitable[dict[str, Any]]]
    list_messages: Callable[..., Awaitable[dict[str, Any]]]
