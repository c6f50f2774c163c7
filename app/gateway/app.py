"""The gateway's ASGI app: bearer auth, one MCP endpoint per profile, health and metrics.

Each profile is a low-level MCP server at /mcp/<profile> (streamable HTTP). Every request is
authenticated again (a session id is not a credential), and every list and call is answered for the
identity that sent it, so one endpoint serves different tool sets to different callers.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from contextlib import AsyncExitStack
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server

from app.config.governance import GatewayConfig
from app.config.loader import LoadedConfig
from app.gateway.approval import Approvals, is_modern, needs_approval
from app.gateway.jwt_auth import JwtRejected, JwtVerifier, looks_like_jwt
from app.gateway.limits import Limiter
from app.gateway.metrics import Metrics
from app.gateway.tokens import Identities, Identity
from app.gateway.upstreams import Upstream, UpstreamDown, check_collisions, visible
from app.telemetry import ToolCallRecord
from servers.serving import JSON, send_response

IDENTITY = "agentdeck.identity"
METADATA = "/.well-known/oauth-protected-resource"


class Gateway:
    """Upstreams, identities, one MCP server per profile, and the audit trail, as one ASGI app."""

    def __init__(self, loaded: LoadedConfig, identities: Identities, trail: Any = None) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        assert loaded.config.gateway is not None
        self.config: GatewayConfig = loaded.config.gateway
        self.loaded = loaded
        self.identities = identities
        self.jwt = JwtVerifier(self.config.jwt) if self.config.jwt is not None else None
        # () -> the reloaded (config, identities); set by the command, which knows where they come from.
        self.reloader: Any = None
        self.watched: list[Any] = []  # files whose changes (and SIGHUP) trigger a reload
        self.monitor_interval = 2.0  # seconds between pings of the upstreams
        self.trail = trail
        self.metrics = Metrics()
        self.limiter = Limiter()
        self.approvals = Approvals()
        self.upstreams = {name: Upstream(loaded, name) for name in self.config.servers}
        # Host/Origin are checked exactly by servers.serving.HostGuard in front of this app.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        from mcp.server.sse import SseServerTransport
        from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

        # Clients listening (subscriptions/listen, 2026-07-28) hear when their tool lists change.
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        # Older clients cannot listen; those that listed tools are sent list_changed on their session.
        self.legacy_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        for upstream in self.upstreams.values():
            upstream.on_change = self.tools_changed
        self.servers = {name: self._server(name) for name in self.config.profiles}
        self.managers = {
            name: StreamableHTTPSessionManager(app=server, security_settings=security)
            for name, server in self.servers.items()
        }
        self.sse = {name: SseServerTransport(f"/sse/{name}/messages/", security) for name in self.config.profiles}
        self.endpoints = {name: StreamableHTTPASGIApp(m) for name, m in self.managers.items()}
        self.failure: Exception | None = None  # why start-up failed, for the command to report

    async def start(self, stack: AsyncExitStack) -> None:
        """Connect every upstream (a down one is reported, not fatal) and start the session managers."""
        await asyncio.gather(*(u.connect() for u in self.upstreams.values()))
        stack.push_async_callback(self._close_upstreams)
        clash = check_collisions(self.config, self.upstreams)
        if clash:
            from app.errors import ConfigError

            raise ConfigError(f"gateway: {clash}", hint="set gateway.separator to something the tool names do not use")
        for manager in self.managers.values():
            await stack.enter_async_context(manager.run())
        monitor = asyncio.create_task(self._monitor(self.monitor_interval), name="agentdeck-gateway-monitor")
        stack.callback(monitor.cancel)
        stack.callback(self.listen.close)
        if self.watched:
            from app.gateway.watch import watch

            task = asyncio.create_task(watch(self, self.watched), name="agentdeck-gateway-reload")
            stack.callback(task.cancel)

    async def tools_changed(self) -> None:
        """Tell listening clients (and older clients that listed tools) to list their tools again."""
        from mcp.server.subscriptions import ToolsListChanged

        await self.bus.publish(ToolsListChanged())
        # Never raises (a closed stream drops it); a stalled one must not hold up the others.
        await asyncio.gather(
            *(asyncio.wait_for(c.send_tool_list_changed(), 1) for c in list(self.legacy_listeners)),
            return_exceptions=True,
        )

    async def _monitor(self, interval: float) -> None:
        """Until cancelled: notice upstreams that died (their tools leave the lists) and bring back those that return."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.gather(*(u.check() for u in list(self.upstreams.values())))

    async def reload(self) -> str:
        """Apply the config and token file as they are now; what changed, or why nothing did."""
        from app.errors import AgentdeckError

        try:
            loaded, identities = self.reloader()
        except AgentdeckError as exc:
            return f"reload failed, the running config stays: {exc.message}"
        config: GatewayConfig = loaded.config.gateway
        added = [n for n in config.servers if n not in self.upstreams]
        removed = [n for n in self.upstreams if n not in config.servers]
        fresh = {n: Upstream(loaded, n) for n in added}
        await asyncio.gather(*(u.connect() for u in fresh.values()))
        for upstream in fresh.values():
            upstream.on_change = self.tools_changed
        gone = [self.upstreams.pop(n) for n in removed]
        self.upstreams.update(fresh)
        self.loaded, self.config, self.identities = loaded, config, identities
        self.jwt = JwtVerifier(config.jwt) if config.jwt is not None else None
        self.limiter = Limiter()  # limits may have changed; buckets start full again
        await asyncio.gather(*(u.close() for u in gone))
        await self.tools_changed()  # rules may have changed what every caller sees
        new_profiles = [p for p in config.profiles if p not in self.endpoints]
        note = f"; profiles {', '.join(new_profiles)} are served after a restart" if new_profiles else ""
        return f"reloaded: {len(config.profiles)} profiles, {len(identities)} identities, {len(self.upstreams)} upstreams{note}"

    async def _close_upstreams(self) -> None:
        await asyncio.gather(*(u.close() for u in self.upstreams.values()))

    def status(self) -> dict[str, str | None]:
        """Each upstream and why it is down (None when up)."""
        return {name: u.down for name, u in self.upstreams.items()}

    def _server(self, profile_name: str) -> Server[Any]:

        def offered(identity: Identity) -> dict[str, Any]:
            # Looked up on every request: a reloaded config applies to sessions already open.
            profile = self.config.profiles.get(profile_name)
            return {} if profile is None else visible(self.config, self.upstreams, profile, identity)

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            if not is_modern(ctx):
                # ctx.session lives for one request; the connection it wraps lives as long as the client's.
                self.legacy_listeners.add(ctx.session._connection)
            exposed = offered(_identity(ctx))
            return types.ListToolsResult(tools=[e.tool.model_copy(update={"name": e.name}) for e in exposed.values()])

        async def call_tool(
            ctx: Any, params: types.CallToolRequestParams
        ) -> types.CallToolResult | types.InputRequiredResult:
            identity = _identity(ctx)
            exposed = offered(identity).get(params.name)
            if exposed is None:
                self.metrics.reject("tool_not_allowed", identity.name)
                self._audit_refused(identity, profile_name, params)
                return _error(
                    f"tool '{params.name}' is not available to '{identity.name}' on profile '{profile_name}'"
                )  # fmt: skip
            approval = None
            profile = self.config.profiles[profile_name]
            if needs_approval(profile.approval, exposed.tool, exposed.name):
                decision = await self.approvals.decide(ctx, identity.name, profile_name, params)
                if isinstance(decision, types.InputRequiredResult):
                    return decision  # the client asks its user, then calls again with the answer
                if decision != "approved":
                    return self._unapproved(identity, profile_name, params, decision)
                approval = {"decision": "approved", "by": identity.name}
            refusal = self.limiter.check(identity, exposed.name, exposed.tool.name)
            if refusal is not None:
                self.metrics.reject("rate_limited", identity.name)
                self._audit_refused(identity, profile_name, params, refusal, "rate_limited")
                return _error(refusal)
            return await self._call(identity, profile_name, exposed.server, exposed.tool.name, params, approval)

        from app.mcp_client import client_info

        return Server(f"agentdeck-gateway/{profile_name}", version=client_info().version, on_list_tools=list_tools,
                      on_call_tool=call_tool, on_subscriptions_listen=self.listen)  # fmt: skip

    def _unapproved(
        self, identity: Identity, profile: str, params: types.CallToolRequestParams, decision: str
    ) -> types.CallToolResult:
        self.metrics.reject("not_approved", identity.name)
        if decision == "cannot ask":
            text = (f"tool '{params.name}' needs approval, and this client cannot be asked "
                    "(it did not declare the elicitation capability); it was not run")  # fmt: skip
            self._audit_refused(identity, profile, params, text, "denied")
        else:
            text = f"the call to '{params.name}' was not approved, so it was not run"
            decided = {"decision": "declined", "by": identity.name}
            self._audit_refused(identity, profile, params, text, "declined", decided)
        return _error(text)

    async def _call(
        self,
        identity: Identity,
        profile: str,
        server: str,
        tool: str,
        params: types.CallToolRequestParams,
        approval: dict[str, str] | None = None,
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        unreachable = False
        try:
            result = await self.upstreams[server].call(tool, arguments)
        except UpstreamDown as exc:
            error, unreachable = str(exc), True
        except Exception as exc:  # noqa: BLE001 - the caller gets an error result, the gateway goes on
            from app.connect import describe_exception

            error = f"calling {server}/{tool} failed: {describe_exception(exc)}"
        seconds = time.perf_counter() - started
        ok = error is None and not getattr(result, "is_error", False)
        status = "ok" if ok else "unreachable" if unreachable else "error"
        self.metrics.call(server, tool, identity.name, status, seconds)
        if self.trail is not None:
            record = ToolCallRecord(server, tool, arguments, ok, seconds * 1000, error=error,
                                    unreachable=unreachable, approval=approval)  # fmt: skip
            self.trail.run(None, user=identity.name, session=f"gateway:{profile}").tool_call(record, result)
        return result if error is None else _error(error)

    def _audit_refused(
        self,
        identity: Identity,
        profile: str,
        params: types.CallToolRequestParams,
        reason: str = "not allowed for this identity and profile",
        status: str = "denied",
        approval: dict[str, str] | None = None,
    ) -> None:
        if self.trail is not None:
            run = self.trail.run(None, user=identity.name, session=f"gateway:{profile}")
            run.denied(params.name, dict(params.arguments or {}), reason, status, approval)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"].rstrip("/")
        if path == "/healthz":
            status = self.status()
            body = {"status": "ok" if not any(status.values()) else "degraded", "upstreams": status}
            await send_response(send, 200, json.dumps(body).encode(), JSON)
            return
        if path == "/metrics":
            await send_response(send, 200, self.metrics.render(self.status()).encode(), b"text/plain; version=0.0.4")
            return
        if path.startswith(METADATA):
            await self._metadata(scope, send, path[len(METADATA) :])
            return
        profile, transport = _route(path)
        if profile not in self.endpoints or profile not in self.config.profiles:
            missing = b'{"error": "not found: the MCP endpoints are /mcp/<profile> and /sse/<profile>"}'
            await send_response(send, 404, missing, JSON)
            return
        try:
            identity = await self._authenticate(scope)
        except JwtRejected as exc:
            await self._unauthorized(scope, send, profile, str(exc))
            return
        if identity is None:
            await self._unauthorized(scope, send, profile, None)
            return
        if profile not in identity.profiles:
            self.metrics.reject("profile_not_allowed", identity.name)
            refusal = json.dumps({"error": f"forbidden: '{identity.name}' may not use profile '{profile}'"})
            await send_response(send, 403, refusal.encode(), JSON)
            return
        scope = dict(scope)
        scope[IDENTITY] = identity
        # The SDK's transports bind each session to the principal that opened it: another caller
        # holding the session id gets 404 instead of a look into someone else's session.
        scope["user"] = _principal(identity)
        if transport == "sse":
            await self._sse(profile, scope, receive, send)
            return
        if transport == "sse-post":
            await self.sse[profile].handle_post_message(scope, receive, send)
            return
        scope["path"] = "/mcp"  # the session manager serves one path
        await self.endpoints[profile](scope, receive, send)

    async def _sse(self, profile: str, scope: Any, receive: Any, send: Any) -> None:
        server = self.servers[profile]
        async with self.sse[profile].connect_sse(scope, receive, send) as (read, write):
            await server.run(read, write, server.create_initialization_options())

    async def _authenticate(self, scope: Any) -> Identity | None:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if self.jwt is not None and looks_like_jwt(token):
            return await self.jwt.identity(token, self.identities)
        return self.identities.lookup(token)

    async def _unauthorized(self, scope: Any, send: Any, profile: str, why: str | None) -> None:
        self.metrics.reject("unauthorized", "")
        challenge = 'Bearer realm="agentdeck-gateway"'
        if self.config.jwt is not None:  # RFC 9728: where MCP clients find the authorization server
            challenge += f', resource_metadata="{_base(scope)}{METADATA}/mcp/{profile}"'
        if why is not None:
            challenge += ', error="invalid_token", error_description="' + why.replace('"', "'") + '"'
        body = json.dumps({"error": f"unauthorized: {why or 'send Authorization: Bearer <token>'}"}).encode()
        await send_response(send, 401, body, JSON, [(b"www-authenticate", challenge.encode("latin-1", "replace"))])

    async def _metadata(self, scope: Any, send: Any, resource_path: str) -> None:
        """RFC 9728 protected-resource metadata for /mcp/<profile> (when callers use JWTs)."""
        profile = resource_path[5:] if resource_path.startswith("/mcp/") else ""
        if self.config.jwt is None or profile not in self.config.profiles:
            await send_response(send, 404, b'{"error": "no protected-resource metadata here"}', JSON)
            return
        doc = {
            "resource": f"{_base(scope)}/mcp/{profile}",
            "authorization_servers": [self.config.jwt.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": f"agentdeck gateway, profile {profile}",
        }
        await send_response(send, 200, json.dumps(doc).encode(), JSON)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        async with AsyncExitStack() as stack:
            message = await receive()
            assert message["type"] == "lifespan.startup"
            try:
                await self.start(stack)
            except Exception as exc:  # noqa: BLE001 - reported to the server, which stops
                self.failure = exc
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


def _identity(ctx: Any) -> Identity:
    request = getattr(ctx, "request", None)
    identity = request.scope.get(IDENTITY) if request is not None else None
    if not isinstance(identity, Identity):  # every route to a profile authenticates first
        raise RuntimeError("gateway request without an identity")
    return identity


def _route(path: str) -> tuple[str, str]:
    """(profile, transport) for /mcp/P, /sse/P and /sse/P/messages; ("", "") for anything else."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] in ("mcp", "sse"):
        return parts[1], parts[0]
    if len(parts) == 3 and parts[0] == "sse" and parts[2] == "messages":
        return parts[1], "sse-post"
    return "", ""


def _principal(identity: Identity) -> Any:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    return AuthenticatedUser(AccessToken(token="", client_id=identity.name, scopes=[], subject=identity.name))


def _base(scope: Any) -> str:
    """scheme://host[:port] as the caller addressed the gateway (Host was checked by HostGuard)."""
    host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
