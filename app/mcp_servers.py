"""Turn `servers:` entries into Agents SDK MCP server objects (and hosted MCP tools)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

from agents.mcp import MCPServerSse, MCPServerStdio, MCPServerStreamableHttp
from mcp.client.stdio import stdio_client
from mcp.types import PromptListChangedNotification, ResourceListChangedNotification, ToolListChangedNotification

from app.approvals import local_require_approval
from app.config.loader import LoadedConfig
from app.config.models import (
    CacheTTL,
    LocalServerConfig,
    SseServerConfig,
    StdioServerConfig,
    StreamableHttpServerConfig,
)
from app.filters import build_tool_filter, runs_only_as_task, task_only_warning
from app.list_cache import ListCache
from app.liveness import down_message, failed_message, is_connection_loss, watched
from app.mcp_client import ClientHooks, client_session
from app.mcp_direct import StderrLog, describe_target, stdio_params
from app.otel import in_turn
from app.recovery import Recovery, never_delivered, session_watching_client
from app.startup import EarlyServers, early_streams
from app.telemetry import current_log, record_tool_call, record_warning
from app.tool_content import for_model

log = logging.getLogger("agentdeck.servers")
T = TypeVar("T")


class _DeckServer:
    """Mixin: TTL for the tool-list cache, list_changed invalidation, and call recording."""

    name: str
    cache_tools_list: bool
    cached_tools: Any

    def _deck_init(
        self,
        ttl: float | None,
        describe: str,
        secrets: frozenset[str] = frozenset(),
        hooks: ClientHooks | None = None,
        restart: bool = False,
        connect_timeout: float = 20.0,
    ) -> None:
        self.ttl = ttl
        self.describe = describe
        self.secrets = secrets
        # Why the server is gone (its process exited, its connection dropped); None while it is up.
        self.down: str | None = None
        self._deck_closing = False
        self._deck_stale = True
        self._deck_fetched_at = 0.0
        self.tools_list_fetches = 0
        self.tool_list_changes = 0
        self.last_error: str | None = None
        # Answers to what the server may ask of the client (elicitation, sampling, roots), and progress.
        self.hooks = hooks or ClientHooks()
        self._deck_roots_offered = bool(self.hooks.roots)
        # Concurrent runs on a cold cache would each fetch tools/list; the first fetches, the rest wait.
        self._deck_fetch_lock = asyncio.Lock()
        self.recovery = Recovery(restart, within=connect_timeout)
        self.lists = ListCache(self.cache_tools_list, ttl)
        # Tool name -> its annotations, from the last tools/list (cached or not): may a call be repeated?
        self._deck_hints: dict[str, Any] = {}
        # Set when an HTTP server answers that it no longer knows this connection's session.
        self.session_rejected = False
        self.connect_timeout = connect_timeout
        self._deck_watcher: asyncio.Task[None] | None = None

    async def _deck_on_message(self, message: Any) -> None:
        # 2025-era servers send list_changed as a plain notification.
        if isinstance(message, ToolListChangedNotification):
            self.tool_list_changes += 1
            self.invalidate_tools_cache()
        elif isinstance(message, PromptListChangedNotification):
            self.lists.changed("prompts")
        elif isinstance(message, ResourceListChangedNotification):
            self.lists.changed("resources")

    def start_watching(self) -> None:
        """Follow tools/list_changed on this connection (started again after each reconnect)."""
        self._deck_watcher = asyncio.create_task(self.watch_tool_changes(), name=f"mcp-watch:{self.name}")

    async def stop_watching(self) -> None:
        """Stop following tools/list_changed."""
        watcher, self._deck_watcher = self._deck_watcher, None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def watch_tool_changes(self) -> None:
        """On a 2026-07-28 connection, subscribe to list changes and drop the cached list on each event."""
        from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost, listen
        from mcp.shared.exceptions import MCPError
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        session = getattr(self, "session", None)
        if session is None or getattr(session, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS:
            return
        session = getattr(session, "raw", session)
        try:
            changes = listen(session, tools_list_changed=True, prompts_list_changed=True, resources_list_changed=True)
            async with changes as subscription:
                honored = subscription.honored
                if not (honored.tools_list_changed or honored.prompts_list_changed or honored.resources_list_changed):
                    return
                async for event in subscription:
                    kind = type(event).__name__
                    if kind == "PromptsListChanged":
                        self.lists.changed("prompts")
                    elif kind == "ResourcesListChanged":
                        self.lists.changed("resources")
                    elif kind == "ToolsListChanged":
                        self.tool_list_changes += 1
                        self.invalidate_tools_cache()
        except (ListenNotSupportedError, SubscriptionLost, MCPError, TimeoutError) as exc:
            log.debug("no tools/list_changed subscription on %s: %r", self.name, exc)

    async def set_roots(self, roots: list[Path]) -> bool:
        """Offer these folders as the server's roots from now on and tell it; False if it was offered none.

        A server learns at connect time whether the client has roots at all, so one that was given
        none in the config cannot be given some later without reconnecting.
        """
        if not self._deck_roots_offered:
            return False
        self.hooks.roots[:] = roots
        session = getattr(self, "session", None)
        if session is not None:
            try:
                with warnings.catch_warnings():  # deprecated in 2026-07-28, still what older servers listen for
                    warnings.simplefilter("ignore")
                    await getattr(session, "raw", session).send_roots_list_changed()
            except Exception as exc:  # noqa: BLE001 - 2026-07-28 servers ask for roots on each call anyway
                log.debug("roots/list_changed to %s failed: %r", self.name, exc)
        return True

    def invalidate_tools_cache(self) -> None:
        self._deck_stale = True
        super().invalidate_tools_cache()  # type: ignore[misc]

    def cached_tool_names(self) -> list[str] | None:
        """Names in the cached tool list (None when nothing is cached), without the SDK's deep copy."""
        tools = getattr(self, "_tools_list", None)
        return None if tools is None else [tool.name for tool in tools]

    def cache_generation(self) -> int | None:
        """Changes whenever the cached tool list may have; None when the next list_tools would fetch."""
        if not self.cache_tools_list or self._deck_stale or getattr(self, "_tools_list", None) is None:
            return None
        if self.ttl is not None and time.monotonic() - self._deck_fetched_at > self.ttl:
            return None
        return self.tools_list_fetches

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[Any]:
        tools = await self._deck_list_tools(run_context, agent)
        self._deck_hints = {t.name: t.annotations for t in tools}
        # mcp 2.3 cannot call a tool that only runs as a task: offering it would only make the model fail.
        task_only = [t.name for t in tools if runs_only_as_task(t)]
        if task_only:
            record_warning(task_only_warning(self.name, task_only))
            tools = [t for t in tools if t.name not in task_only]
        return tools

    async def _deck_recovering(self, request: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """Run `request`, reconnecting first if the server went away (app/recovery.py).

        After a failure it is retried on a fresh connection only when the server never saw it,
        or when repeating it is harmless (`idempotent`).
        """
        recovery = self.recovery
        seen = recovery.generation
        if recovery.enabled and self.down is not None and await recovery.recover(seen, self._deck_reconnect):
            seen = recovery.generation
        try:
            return await request()
        except Exception as exc:
            retry = self.session_rejected or never_delivered(exc) or (idempotent and is_connection_loss(exc))
            if not (recovery.enabled and retry and await recovery.recover(seen, self._deck_reconnect)):
                raise
        return await request()

    async def list_prompts(self) -> Any:
        return await self.lists.get("prompts", super().list_prompts)  # type: ignore[misc]

    async def list_resources(self, cursor: str | None = None) -> Any:
        if cursor is not None:
            return await super().list_resources(cursor)  # type: ignore[misc]
        return await self.lists.get("resources", super().list_resources)  # type: ignore[misc]

    async def list_resource_templates(self, cursor: str | None = None) -> Any:
        if cursor is not None:
            return await super().list_resource_templates(cursor)  # type: ignore[misc]
        return await self.lists.get("templates", super().list_resource_templates)  # type: ignore[misc]

    def _deck_repeatable(self, tool_name: str) -> bool:
        """Whether the tool says running it twice is harmless (read-only or idempotent)."""
        hints = self._deck_hints.get(tool_name)
        return bool(hints is not None and (hints.read_only_hint or hints.idempotent_hint))

    def note_session_rejected(self) -> None:
        self.session_rejected = True

    async def _deck_reconnect(self) -> None:
        cause = (self.down or "the connection was lost").split("; reconnecting failed: ")[0]
        await self.stop_watching()
        try:
            await self.cleanup()
        except Exception as exc:  # noqa: BLE001 - the old connection is gone either way
            log.debug("cleanup of %s before reconnecting failed: %r", self.name, exc)
        try:
            await asyncio.wait_for(self.connect(), self.connect_timeout)
        except BaseException as exc:
            from app.config.redact import redact

            why = "it did not answer in time" if isinstance(exc, TimeoutError) else _cause(exc)
            why = why.removeprefix(f"Failed to connect to MCP server '{self.name}': ").rstrip(".")
            self.down = str(redact(f"{cause}; reconnecting failed: {why}", self.secrets))
            raise
        log.debug("MCP server %s reconnected", self.name)
        # A restarted server may offer other tools, prompts and resources.
        self.invalidate_tools_cache()
        self.lists.clear()
        self.start_watching()

    async def _deck_list_tools(self, run_context: Any, agent: Any) -> list[Any]:
        return await self._deck_recovering(lambda: self._deck_list_cached(run_context, agent), idempotent=True)

    async def _deck_list_cached(self, run_context: Any, agent: Any) -> list[Any]:
        expired = self.ttl is not None and time.monotonic() - self._deck_fetched_at > self.ttl
        if self.cache_tools_list and expired and not self._deck_stale:
            self.invalidate_tools_cache()
        if not self.cache_tools_list:
            self.tools_list_fetches += 1
            return await super().list_tools(run_context, agent)  # type: ignore[misc,no-any-return]
        async with self._deck_fetch_lock:
            fetching = self._deck_stale or getattr(self, "_tools_list", None) is None
            tools = await super().list_tools(run_context, agent)  # type: ignore[misc]
            if fetching:
                self._deck_stale = False
                self._deck_fetched_at = time.monotonic()
                self.tools_list_fetches += 1
        return tools  # type: ignore[no-any-return]

    def create_streams(self) -> AbstractAsyncContextManager[Any]:
        return watched(super().create_streams(), self._deck_stream_ended)  # type: ignore[misc]

    def _client_session_context(self, read_timeout: Any) -> Any:
        # Replaces the SDK's client (no callbacks, no name) with agentdeck's (app/mcp_client.py).
        return client_session(
            self.create_streams(),
            self.name,
            read_timeout=read_timeout,
            message_handler=getattr(self, "message_handler", None),
            hooks=self.hooks,
        )

    def _deck_stream_ended(self) -> None:
        from app.config.redact import redact

        if not self._deck_closing and self.down is None:
            # Shown by /servers and in call failures; a stderr line may quote a secret.
            self.down = str(redact(self._deck_end_cause(), self.secrets))
            log.debug("MCP server %s is down: %s", self.name, self.down)

    def _deck_end_cause(self) -> str:
        return "the connection closed"

    async def connect(self) -> None:
        self.down = None
        self.session_rejected = False
        self._deck_closing = False
        await super().connect()  # type: ignore[misc]

    async def cleanup(self) -> None:
        self._deck_closing = True
        await super().cleanup()  # type: ignore[misc]

    async def probe(self, timeout: float = 2.0) -> str | None:
        """Ping a server believed up; mark it down if it does not answer. Returns why it is down."""
        session = getattr(self, "session", None)
        if self.down is None and session is not None:
            try:
                await asyncio.wait_for(session.send_ping(), timeout)
            except Exception as exc:  # noqa: BLE001 - any failure to answer a ping is the answer
                if is_connection_loss(exc) or isinstance(exc, TimeoutError):
                    self.down = "it does not answer" if isinstance(exc, TimeoutError) else _cause(exc)
        return self.down

    def failure_text(self, tool: str | None, exc: BaseException) -> str:
        """What the user and the model are told about a failed call (secrets masked)."""
        from app.config.redact import redact

        if self.down is None and is_connection_loss(exc):
            self.down = _cause(exc)
        if self.down:
            text = down_message(self.name, tool, self.down, recovers=self.recovery.enabled)
        else:
            text = failed_message(self.name, tool, _cause(exc))
        return str(redact(text, self.secrets))

    async def call_tool(self, tool_name: str, arguments: dict[str, Any] | None, meta: Any = None) -> Any:
        started = time.perf_counter()
        ok, error, result = False, None, None
        try:
            call = super().call_tool  # type: ignore[misc]
            repeatable = self._deck_repeatable(tool_name)
            with in_turn(getattr(current_log(), "turns", None)):  # the tool-call span joins its turn
                result = for_model(
                    await self._deck_recovering(lambda: call(tool_name, arguments, meta), idempotent=repeatable)
                )
            ok = not getattr(result, "is_error", False)
            self.last_error = None
            return result
        except Exception as exc:
            error = self.last_error = self.failure_text(tool_name, exc)
            raise
        finally:
            seconds = time.perf_counter() - started
            lost = not ok and self.down is not None
            record_tool_call(
                self.name, tool_name, arguments or {}, ok, seconds, error=error, unreachable=lost, result=result
            )


def _cause(exc: BaseException) -> str:
    from app.connect import describe_exception

    return describe_exception(exc)


class ToolFailureMessage:
    """The SDK's failure_error_function for one server: the model gets the text the user sees."""

    def __init__(self) -> None:
        self.server: _DeckServer | None = None

    def __call__(self, ctx: Any, error: Exception) -> str:
        tool = getattr(ctx, "tool_name", None)
        cause: BaseException = error.__cause__ if error.__cause__ is not None else error
        if self.server is None:
            return f"The tool {tool or '?'} failed: {_cause(cause)}"
        return self.server.failure_text(tool, cause)


class DeckStdioServer(_DeckServer, MCPServerStdio):
    """Stdio server whose stderr goes to a file, so failures can show its tail."""

    errlog: StderrLog
    # Children spawned while the SDK was being imported; the first connect talks to this server's.
    early: EarlyServers | None = None

    def create_streams(self) -> AbstractAsyncContextManager[Any]:
        early = self.early.take(self.name) if self.early is not None else None
        if early is not None:
            streams = early_streams(early, self.params.encoding, self.params.encoding_error_handler)
        else:
            streams = stdio_client(self.params, errlog=cast(TextIO, self.errlog.file))
        return watched(streams, self._deck_stream_ended)

    def _deck_end_cause(self) -> str:
        last = self.errlog.tail(1, 200).strip()
        return "its process exited" + (f"; its last stderr line: {last}" if last else "")

    def stderr_tail(self, max_lines: int = 12, max_chars: int = 2000) -> str:
        """The last lines the child wrote to stderr."""
        return self.errlog.tail(max_lines, max_chars)


class DeckSseServer(_DeckServer, MCPServerSse):
    def stderr_tail(self, max_lines: int = 12, max_chars: int = 2000) -> str:
        return ""


class DeckHttpServer(_DeckServer, MCPServerStreamableHttp):
    def stderr_tail(self, max_lines: int = 12, max_chars: int = 2000) -> str:
        return ""


DeckServer = DeckStdioServer | DeckSseServer | DeckHttpServer


def build_local_server(
    loaded: LoadedConfig,
    name: str,
    cfg: LocalServerConfig,
    *,
    apply_filters: bool = True,
    secrets: frozenset[str] = frozenset(),
    early: EarlyServers | None = None,
    hooks: ClientHooks | None = None,
    auth: Any = None,
) -> DeckServer:
    """One SDK server object (not yet connected) for a stdio/sse/streamable_http entry.

    `auth` is the httpx2.Auth of an entry with `auth:` (app/oauth/flow.py).
    """
    ttl = cfg.cache_tools.ttl if isinstance(cfg.cache_tools, CacheTTL) else None
    failure = ToolFailureMessage()
    common: dict[str, Any] = {
        "name": name,
        "cache_tools_list": bool(cfg.cache_tools),
        "client_session_timeout_seconds": cfg.timeout,
        "tool_filter": build_tool_filter(loaded, name, cfg) if apply_filters else None,
        "use_structured_content": cfg.structured_content,
        "max_retry_attempts": cfg.retries,
        "retry_backoff_seconds_base": 0.5,
        "retry_backoff_seconds_max": 8.0,
        "require_approval": local_require_approval(cfg.approval),
        "failure_error_function": failure,
    }
    server: DeckServer
    if isinstance(cfg, StdioServerConfig):
        stdio = DeckStdioServer(params=stdio_params(loaded, cfg), **common)  # type: ignore[arg-type]
        waiting = early.peek(name) if early is not None else None
        stdio.errlog = waiting.errlog if waiting is not None else StderrLog(name)
        stdio.early = early
        server = stdio
    else:
        http_params: dict[str, Any] = {
            "url": cfg.url,
            "headers": dict(cfg.headers),
            "timeout": cfg.timeout,
            "sse_read_timeout": cfg.read_timeout,
        }
        if auth is not None:
            http_params["auth"] = auth
        cls = DeckHttpServer if isinstance(cfg, StreamableHttpServerConfig) else DeckSseServer
        assert isinstance(cfg, SseServerConfig)
        server = cls(params=http_params, **common)  # type: ignore[arg-type]
        if cls is DeckHttpServer:
            http_params["httpx_client_factory"] = session_watching_client(server.note_session_rejected)
    restart = cfg.restart == "on_failure" or (cfg.restart is None and not isinstance(cfg, StdioServerConfig))
    server._deck_init(ttl, describe_target(cfg), secrets, hooks, restart=restart, connect_timeout=cfg.start_timeout)
    failure.server = server
    server.message_handler = server._deck_on_message
    return server
