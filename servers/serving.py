"""Run a bundled MCPServer over stdio, SSE or streamable HTTP, safely by default.

HTTP binds 127.0.0.1 unless told otherwise; any other address requires a bearer token; Host and
Origin headers are checked against the bound address (DNS-rebinding protection).
"""

from __future__ import annotations

import hmac
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class ServeError(Exception):
    """Bad serving options (reported as one line by the caller)."""


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="agentdeck"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def security_for(host: str, extra_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """Host/Origin allow-lists for the bound address (plus loopback names)."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    if host not in LOOPBACK and host not in ("0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host else host)
    names.update(extra_hosts or [])
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(f"{n}:*" for n in names),
        allowed_origins=sorted(f"{scheme}://{n}:*" for n in names for scheme in ("http", "https")),
    )


def build_http_app(
    mcp: MCPServer, transport: str, host: str, token: str | None, extra_hosts: list[str] | None = None
) -> Any:
    """The ASGI app for sse or http, with DNS-rebinding checks and optional bearer auth."""
    security = security_for(host, extra_hosts)
    if transport == "sse":
        app: Any = mcp.sse_app(transport_security=security, host=host)
    else:
        app = mcp.streamable_http_app(transport_security=security, host=host)
    return BearerAuth(app, token) if token else app


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0 picks a free one), so the real port is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: accepted sockets inherit it, and asyncio turns Nagle off (TCP_NODELAY)
    # only when it does. Left at 0, every keep-alive response waits ~40 ms on the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


def serve(
    mcp: MCPServer,
    transport: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    extra_hosts: list[str] | None = None,
    log_level: str = "WARNING",
) -> None:
    """Serve until interrupted; logs go to stderr only (stdout is JSON-RPC on stdio)."""
    logging.basicConfig(stream=sys.stderr, level=log_level)
    if transport == "stdio":
        mcp.run()
        return
    if transport not in ("sse", "http"):
        raise ServeError(f"unknown transport {transport!r}; use stdio, sse or http")
    if host not in LOOPBACK and not token:
        raise ServeError(
            f"binding {host} exposes the server beyond this machine; pass --token SECRET (clients send Authorization: Bearer SECRET)"
        )
    import anyio
    import uvicorn

    sock = bind_socket(host, port)
    bound = sock.getsockname()[1]
    path = "/sse" if transport == "sse" else "/mcp"
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {mcp.name} on http://{shown}:{bound}{path}", file=sys.stderr, flush=True)
    app = build_http_app(mcp, transport, host, token, extra_hosts)
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        anyio.run(lambda: server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def add_serving_args(parser: Any) -> None:
    """--transport/--host/--port/--token for an argparse parser."""
    parser.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="address for sse/http (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for sse/http (default 8000; 0 picks one)")
    parser.add_argument(
        "--token",
        default=None,
        help="require Authorization: Bearer TOKEN (needed off loopback); also $AGENTDECK_SERVER_TOKEN",
    )
    parser.add_argument(
        "--allow-host", action="append", default=[], help="extra Host header value to accept (repeatable)"
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")


def run_from_args(mcp: MCPServer, args: Any) -> None:
    """serve() with parsed arguments; a bad option exits 2 with one line on stderr."""
    import os

    token = args.token or os.environ.get("AGENTDECK_SERVER_TOKEN") or None
    try:
        serve(mcp, args.transport, args.host, args.port, token, args.allow_host, args.log_level.upper())
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
