"""Tab completion for the chat prompt: command names, then each command's argument by context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from typing import Any, Protocol

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from app.chat.commands import COMMANDS

# Commands whose argument is a file path, relative to the current directory.
PATH_COMMANDS = {"/save", "/attach"}
# How long the first `/prompt ` completion waits for servers to list their prompts.
PROMPT_LIST_TIMEOUT = 1.0


class ChatState(Protocol):
    """What the completer reads from the ChatApp, at every keystroke."""

    agent_name: str
    deck: Any


class ChatCompleter(Completer):
    """Completes `/command` names, then agents, servers, tools, prompts or paths by command."""

    def __init__(self, app: ChatState, prompt_timeout: float = PROMPT_LIST_TIMEOUT) -> None:
        self.app = app
        self.prompt_timeout = prompt_timeout
        self.paths = PathCompleter(expanduser=True)
        # server name -> (the server object asked, its prompt names / resource URIs); a reconnected
        # server is asked again.
        self.prompts: dict[str, tuple[Any, list[str]]] = {}
        self.resources: dict[str, tuple[Any, list[str]]] = {}

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        """Completions from live state; prompt names only once cached (the async path fetches them)."""
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or "\n" in text:
            return
        name, space, rest = text.partition(" ")
        if not space:
            yield from _words(name, COMMANDS, meta={n: desc for n, (_, desc) in COMMANDS.items()})
            return
        name, rest = name.lower(), rest.lstrip()
        if name in PATH_COMMANDS:
            yield from self.paths.get_completions(Document(rest), complete_event)
        elif " " in rest and name == "/approvals":
            sub, _, tool = rest.partition(" ")
            if sub == "reset" and " " not in tool.lstrip():
                yield from _words(tool.lstrip(), self.tool_names())
        elif " " in rest:
            return  # the one-word argument is already typed
        elif name == "/agent":
            yield from _words(rest, self.app.deck.agents)
        elif name in ("/reconnect", "/logs", "/roots"):
            yield from _words(rest, self.server_names())
        elif name == "/resource":
            yield from _words(rest, self.cached_names(self.resources))
        elif name == "/approvals":
            yield from _words(rest, ["reset"])
        elif name == "/prompt":
            yield from _words(rest, self.cached_names(self.prompts))

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        """As get_completions, but lists the servers' prompts or resources first when the command needs them."""
        typed = document.text_before_cursor.lower()
        if typed.startswith("/prompt "):
            await self.fetch(self.prompts, _prompt_names)
        elif typed.startswith("/resource "):
            await self.fetch(self.resources, _resource_uris)
        for completion in self.get_completions(document, complete_event):
            yield completion

    # ----- live state -----

    def agent_servers(self) -> list[Any]:
        """The MCP servers the current agent uses (they follow /agent and /reconnect)."""
        agent = self.app.deck.agents.get(self.app.agent_name)
        return list(getattr(agent, "mcp_servers", None) or [])

    def server_names(self) -> list[str]:
        """Servers that can be reconnected: every local one, connected or not."""
        pool = getattr(self.app.deck, "pool", None)
        return list(pool.slots) if pool is not None else list(self.app.deck.servers)

    def tool_names(self) -> list[str]:
        """The current agent's MCP tools, from the servers' cached lists (never a request)."""
        names: list[str] = []
        for server in self.agent_servers():
            if hasattr(server, "cached_tool_names"):
                names += server.cached_tool_names() or []
        return list(dict.fromkeys(names))

    def cached_names(self, cache: dict[str, tuple[Any, list[str]]]) -> list[str]:
        """Prompt names or resource URIs of the current agent's servers, as far as they have been listed."""
        names: list[str] = []
        for server in self.agent_servers():
            entry = cache.get(server.name)
            if entry is not None and entry[0] is server:
                names += entry[1]
        return list(dict.fromkeys(names))

    async def fetch(self, cache: dict[str, tuple[Any, list[str]]], names: Any) -> None:
        """List what servers not yet asked offer, all at once, each bounded by the timeout."""
        servers = [s for s in self.agent_servers() if cache.get(s.name, (None,))[0] is not s]
        found = await asyncio.gather(*(self._bounded(names(s)) for s in servers))
        for server, listed in zip(servers, found, strict=True):
            cache[server.name] = (server, listed)

    async def _bounded(self, listing: Any) -> list[str]:
        # A server without prompts or resources, a dead one and a slow one all mean: nothing to complete.
        try:
            return list(await asyncio.wait_for(listing, self.prompt_timeout))
        except Exception:  # noqa: BLE001 - completion must never surface an error while typing
            return []


async def _prompt_names(server: Any) -> list[str]:
    return [prompt.name for prompt in getattr(await server.list_prompts(), "prompts", None) or []]


async def _resource_uris(server: Any) -> list[str]:
    return [str(r.uri) for r in getattr(await server.list_resources(), "resources", None) or []]


def _words(typed: str, candidates: Iterable[str], meta: dict[str, str] | None = None) -> Iterable[Completion]:
    """Candidates starting with what was typed (case-insensitively), replacing the typed word."""
    prefix = typed.lower()
    for word in candidates:
        if word.lower().startswith(prefix):
            yield Completion(word, start_position=-len(typed), display_meta=(meta or {}).get(word, ""))
