"""Run a bundled MCPServer over stdio, SSE or streamable HTTP, safely by default.

HTTP binds 127.0.0.1 unless told otherwise; any other address requires a bearer token; Host and
Origin headers must name the bound address (or loopback, or for a wildcard bind any local interface
address) and the bound port exactly (DNS-rebinding protection).
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import ipaddress
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}
Scope = MutableMapping[str, Any]
TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"
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
                await send_response(send, 401, body, JSON, [(b"www-authenticate", b'Bearer realm="agentdeck"')])
                return
        await self.app(scope, receive, send)


Authority = tuple[str, int]


def canonical_host(name: str) -> str:
    """One spelling per host: IP literals compressed (no brackets), names lower-cased."""
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        return name.lower()


def parse_authority(value: str) -> tuple[str, int | None] | None:
    """(host, port or None when absent) from `host[:port]` or `[v6][:port]`; None when malformed."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, colon, port_text = value.partition(":")
        rest = colon + port_text
    if not host:
        return None
    if not rest:
        return canonical_host(host), None
    digits = rest[1:]
    # Plain decimal only: anything else after the colon ("abc", "18313.evil.example", "018313") is not
    # this server's port, whatever a lenient parser would make of it.
    if not rest.startswith(":") or not (digits.isascii() and digits.isdigit()) or digits != str(int(digits)):
        return None
    port = int(digits)
    return (canonical_host(host), port) if 0 < port < 65536 else None


class HostGuard:
    """ASGI middleware: Host and Origin must name this server exactly, host and port (DNS-rebinding protection).

    A Host without a port means 80 or 443: the client's scheme is unknown once a TLS proxy sits in
    front. An Origin without a port means its scheme's default (http 80, https 443).
    """

    def __init__(self, app: ASGIApp, allowed: set[Authority]) -> None:
        self.app = app
        self.allowed = allowed

    def host_ok(self, value: str) -> bool:
        """Whether a Host header value names this server."""
        parsed = parse_authority(value)
        if parsed is None:
            return False
        name, port = parsed
        ports = (80, 443) if port is None else (port,)
        return any((name, p) in self.allowed for p in ports)

    def origin_ok(self, value: str) -> bool:
        """Whether an Origin header value is a page served by this server."""
        scheme, sep, authority = value.partition("://")
        default = {"http": 80, "https": 443}.get(scheme.lower())
        if not sep or default is None or "/" in authority:
            return False  # also "null", which opaque origins (sandboxed frames, file://) send
        parsed = parse_authority(authority)
        if parsed is None:
            return False
        name, port = parsed
        return (name, default if port is None else port) in self.allowed

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            hosts = [v.decode("latin-1") for k, v in headers if k == b"host"]
            origins = [v.decode("latin-1") for k, v in headers if k == b"origin"]
            # More than one Host or Origin is ambiguous: a proxy and this server could read different ones.
            if len(hosts) != 1 or not self.host_ok(hosts[0]):
                await send_response(send, 421, b"Invalid Host header")
                return
            if len(origins) > 1 or (origins and not self.origin_ok(origins[0])):
                await send_response(send, 403, b"Invalid Origin header")
                return
        await self.app(scope, receive, send)


async def send_response(
    send: Any, status: int, body: bytes, content_type: bytes = TEXT, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole ASGI HTTP response: status, content type, length, any further headers, the body."""
    fields = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


def local_addresses() -> set[str]:
    """This machine's interface addresses, best effort: a source that fails is skipped, never fatal."""
    found: set[str] = set()
    for source in (_proc_addresses, _route_addresses, _hostname_addresses):
        try:
            found |= source()
        except (OSError, ValueError):
            continue
    out = set()
    for address in found:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            continue
        if not ip.is_unspecified:
            out.add(ip.compressed)
    return out


def _proc_addresses() -> set[str]:
    """Linux: every local IPv4 address (fib_trie "/32 host LOCAL") and every IPv6 address (if_inet6)."""
    found: set[str] = set()
    with open("/proc/net/fib_trie", encoding="ascii") as fh:
        lines = fh.read().splitlines()
    for previous, line in zip(lines, lines[1:], strict=False):
        if line.strip() == "/32 host LOCAL":
            found.add(previous.strip().removeprefix("|-- "))
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as fh:
            for row in fh:
                found.add(str(ipaddress.IPv6Address(int(row.split()[0], 16))))
    except OSError:
        pass  # IPv6 disabled
    return found


def _route_addresses() -> set[str]:
    """The source address of the default route per family (connecting UDP sends nothing); any OS."""
    found: set[str] = set()
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found.add(probe.getsockname()[0])
        except OSError:
            continue  # no route (or no support) for this family
    return found


def _hostname_addresses() -> set[str]:
    """What this machine's own name resolves to (often only loopback on Linux; the LAN address on macOS)."""
    return {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}


def allowed_authorities(host: str, port: int, extra_hosts: list[str] | None = None) -> set[Authority]:
    """The (host, port) pairs a request may name: loopback, the bound address, and --allow-host values.

    A wildcard bind (0.0.0.0, ::) accepts every local interface address. `--allow-host NAME` means
    NAME on the bound port; `NAME:PORT` names another port (a proxy in front that keeps the Host).
    """
    names = {canonical_host(n) for n in LOOPBACK}
    if host in WILDCARD:
        names |= local_addresses()
    else:
        names.add(canonical_host(host))
    allowed = {(n, port) for n in names}
    for value in extra_hosts or []:
        # A bare IPv6 literal (fd00::9) has no port; brackets make parse_authority read it as one host.
        bare_v6 = value.count(":") > 1 and not value.startswith("[")
        parsed = parse_authority(f"[{value}]" if bare_v6 else value)
        if parsed is None:
            raise ServeError(f"bad --allow-host {value!r}; use NAME, NAME:PORT or [IPV6]:PORT")
        name, extra_port = parsed
        allowed.add((name, port if extra_port is None else extra_port))
    return allowed


def build_http_app(
    mcp: MCPServer, transport: str, host: str, port: int, token: str | None, extra_hosts: list[str] | None = None
) -> Any:
    """The ASGI app for sse or http, with exact Host/Origin checks and optional bearer auth."""
    allowed = allowed_authorities(host, port, extra_hosts)
    logging.getLogger(__name__).info("accepting Host %s", ", ".join(sorted(f"{n}:{p}" for n, p in allowed)))
    # The SDK's own check matches `host:*` patterns by prefix, so it accepts `127.0.0.1:1.evil.example`
    # and any port; HostGuard does the exact comparison (for every route), which leaves the SDK's
    # only a looser duplicate. Its Content-Type check on POST stays on regardless.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "sse":
        app: Any = mcp.sse_app(transport_security=security, host=host)
    else:
        app = mcp.streamable_http_app(transport_security=security, host=host)
    return HostGuard(BearerAuth(app, token) if token else app, allowed)


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
        from servers.stdio_pipes import pipes_available, serve_pipes

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a stdio server as it ends an HTTP one
            if pipes_available():
                import anyio

                anyio.run(serve_pipes, mcp)
            else:
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
    try:
        # The Host check needs the real port, known only once bound (port 0 picks one).
        app = build_http_app(mcp, transport, host, bound, token, extra_hosts)
    except ServeError:
        sock.close()
        raise
    path = "/sse" if transport == "sse" else "/mcp"
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {mcp.name} on http://{shown}:{bound}{path}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        anyio.run(lambda: server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one `error:` line and a hint, like every agentdeck error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {self.prog}: {message}\nhint: `{self.prog} --help` lists the options\n")
        raise SystemExit(2)


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
        "--allow-host",
        action="append",
        default=[],
        help="extra NAME (on the bound port) or NAME:PORT to accept in Host/Origin (repeatable)",
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
