"""An OAuth 2.1 authorization server and an OAuth-protected MCP server in one process, for tests.

Usage: python oauth_pair.py --as-port A --rs-port R --log FILE [--token-ttl SECONDS]
                            [--client ID:SECRET] [--scopes "mcp:tools"] [--no-iss]

Authorization server, issuer ``http://127.0.0.1:A``: the SDK's metadata, registration, /authorize and
/token handlers over an in-memory provider, plus the client_credentials grant for ``--client``.
/authorize approves at once as user "alice", redirecting with ``code``, ``state`` and RFC 9207
``iss``, so a plain GET of the authorization URL stands in for the browser.
Resource server: MCP at ``http://127.0.0.1:R/mcp`` (streamable HTTP) and ``/sse`` (SSE), RFC 9728
metadata at ``/.well-known/oauth-protected-resource/mcp``; tools ``whoami`` and ``add``.
``--log`` gets a JSON line per event (never a token): ``{"event": "register"|"authorize"|"token",
"grant_type", "client_id", "scope"}`` and ``{"event": "call", "tool", "subject"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import uvicorn
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    ProviderTokenVerifier,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata, cors_middleware, create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull as ClientInfo
from mcp.shared.auth import OAuthToken
from pydantic import AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
USER = "alice"


class LoopbackClient(ClientInfo):
    """A pre-registered native client: RFC 8252 §7.3 lets its loopback redirect port vary per run."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and redirect_uri.scheme == "http" and redirect_uri.host in LOOPBACK:
            return redirect_uri
        return super().validate_redirect_uri(redirect_uri)


class MemoryProvider:
    """`OAuthAuthorizationServerProvider` kept in dicts; the only user is alice, who always consents."""

    def __init__(self, issuer: str, resource: str, ttl: int, log: Path, send_iss: bool) -> None:
        self.issuer, self.resource, self.ttl, self.log_path, self.send_iss = issuer, resource, ttl, log, send_iss
        self.clients: dict[str, ClientInfo] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    def log(self, **fields: Any) -> None:
        with self.log_path.open("a") as fh:
            fh.write(json.dumps(fields) + "\n")

    async def get_client(self, client_id: str) -> ClientInfo | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: ClientInfo) -> None:
        self.clients[client_info.client_id] = client_info
        # grant_type stays null here so a grep for "refresh_token" counts only refreshes.
        self.log(event="register", grant_type=None, client_id=client_info.client_id, scope=client_info.scope)

    async def authorize(self, client: ClientInfo, params: AuthorizationParams) -> str:
        if params.resource is not None and params.resource.rstrip("/") != self.resource:
            raise AuthorizeError("invalid_target", f"this server only issues tokens for {self.resource}")
        scopes = params.scopes or (client.scope or "").split()
        # The code keeps what the token request must match: PKCE challenge, redirect URI, scopes, resource.
        bound = params.model_dump(exclude={"state"}) | {"scopes": scopes, "resource": params.resource or self.resource}
        code = AuthorizationCode(
            code=secrets.token_urlsafe(32),
            expires_at=time.time() + 300,
            client_id=client.client_id,
            subject=USER,
            **bound,
        )
        self.codes[code.code] = code
        self.log(event="authorize", grant_type="authorization_code", client_id=client.client_id, scope=" ".join(scopes))
        iss = self.issuer if self.send_iss else None
        return construct_redirect_uri(str(params.redirect_uri), code=code.code, state=params.state, iss=iss)

    async def load_authorization_code(self, client: ClientInfo, code: str) -> AuthorizationCode | None:
        found = self.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_authorization_code(self, client: ClientInfo, code: AuthorizationCode) -> OAuthToken:
        del self.codes[code.code]  # single use
        return self.issue("authorization_code", client.client_id, code.scopes, code.resource, code.subject, True)

    async def load_refresh_token(self, client: ClientInfo, token: str) -> RefreshToken | None:
        found = self.refresh.get(token)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_refresh_token(self, client: ClientInfo, token: RefreshToken, scopes: list[str]) -> OAuthToken:
        del self.refresh[token.token]  # rotation: each refresh token works once
        return self.issue("refresh_token", client.client_id, scopes, token.resource, token.subject, True)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    def issue(
        self, grant: str, client_id: str, scopes: list[str], resource: str | None, subject: str | None, refresh: bool
    ) -> OAuthToken:
        access = AccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time()) + self.ttl,
            resource=resource or self.resource,
            subject=subject,
        )
        self.access[access.token] = access
        refresh_token = secrets.token_urlsafe(32) if refresh else None
        if refresh_token is not None:
            self.refresh[refresh_token] = RefreshToken(
                token=refresh_token, **access.model_dump(exclude={"token", "expires_at"})
            )
        self.log(event="token", grant_type=grant, client_id=client_id, scope=" ".join(scopes))
        return OAuthToken(
            access_token=access.token, expires_in=self.ttl, scope=" ".join(scopes), refresh_token=refresh_token
        )


async def authenticate(provider: MemoryProvider, request: Request) -> ClientInfo | None:
    """Check client_secret_basic or client_secret_post (RFC 6749 §2.3.1), whichever the request used."""
    form, header = await request.form(), request.headers.get("authorization", "")
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if header.startswith("Basic "):
        in_form, client_id = client_id, None  # an undecodable header authenticates nobody
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            basic_id, _, secret = (unquote(part) for part in base64.b64decode(header[6:]).decode().partition(":"))
            client_id = basic_id if in_form in (None, basic_id) else None
    client = await provider.get_client(client_id) if isinstance(client_id, str) else None
    if client is None or not client.client_secret or not isinstance(secret, str):
        return None
    return client if hmac.compare_digest(client.client_secret.encode(), secret.encode()) else None


class EitherSecretMethod(ClientAuthenticator):
    """The SDK holds each client to its one registered method; the `--client` client may use either."""

    def __init__(self, provider: MemoryProvider, static_id: str | None) -> None:
        super().__init__(provider)
        self.memory, self.static_id = provider, static_id

    async def authenticate_request(self, request: Request) -> ClientInfo:
        if self.static_id is None or (await request.form()).get("client_id") != self.static_id:
            return await super().authenticate_request(request)
        client = await authenticate(self.memory, request)
        if client is None:
            raise AuthenticationError("Invalid client credentials")
        return client


def token_error(status: int, error: str, description: str, basic: bool = False) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if basic:  # RFC 6749 §5.2: a failed Authorization header gets a challenge back
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return JSONResponse({"error": error, "error_description": description}, status, headers)


def authorization_server(provider: MemoryProvider, auth: AuthSettings, static_id: str | None) -> Starlette:
    scopes = auth.required_scopes or []
    registration = ClientRegistrationOptions(enabled=True, valid_scopes=scopes, default_scopes=scopes)
    # No /revoke: MCP does not need it, and the SDK's revocation handler wants client_secret in the
    # form even from client_secret_basic clients.
    revocation = RevocationOptions(enabled=False)
    metadata = build_metadata(auth.issuer_url, None, registration, revocation)
    # The SDK's token handler has no client_credentials grant; /token below adds it, so advertise it.
    metadata.grant_types_supported = [*(metadata.grant_types_supported or []), "client_credentials"]
    metadata.authorization_response_iss_parameter_supported = provider.send_iss or None
    sdk_token = TokenHandler(provider, EitherSecretMethod(provider, static_id))

    async def token(request: Request) -> Response:
        form = await request.form()  # cached on the request, so the SDK handler can read it again
        grant = form.get("grant_type")
        if grant in ("authorization_code", "refresh_token"):
            return await sdk_token.handle(request)
        if grant != "client_credentials":
            return token_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
        client = await authenticate(provider, request)
        if client is None:
            basic = request.headers.get("authorization", "").startswith("Basic ")
            return token_error(401, "invalid_client", "client authentication failed", basic)
        if "client_credentials" not in client.grant_types:
            return token_error(400, "unauthorized_client", "this client may not use client_credentials")
        allowed = (client.scope or "").split()
        requested = str(form.get("scope") or "").split() or allowed
        if not set(requested) <= set(allowed):
            return token_error(400, "invalid_scope", f"allowed scopes: {' '.join(allowed)}")
        resource = form.get("resource")
        if isinstance(resource, str) and resource.rstrip("/") != provider.resource:
            return token_error(400, "invalid_target", f"this server only issues tokens for {provider.resource}")
        issued = provider.issue("client_credentials", client.client_id, requested, None, client.client_id, False)
        return JSONResponse(issued.model_dump(exclude_none=True), headers={"Cache-Control": "no-store"})

    replaced = ("/.well-known/oauth-authorization-server", "/token")
    routes = create_auth_routes(provider, auth.issuer_url, None, registration, revocation)
    routes = [r for r in routes if r.path not in replaced]
    routes.append(Route(replaced[0], cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"])))
    routes.append(Route(replaced[1], cors_middleware(token, ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"]))
    return Starlette(routes=routes)


def resource_server(provider: MemoryProvider, auth: AuthSettings) -> Starlette:
    mcp = MCPServer("oauth-protected", token_verifier=ProviderTokenVerifier(provider), auth=auth, log_level="WARNING")

    def caller(tool: str) -> AccessToken | None:
        token = get_access_token()
        subject = None if token is None else token.subject or token.client_id
        provider.log(event="call", tool=tool, subject=subject)
        return token

    @mcp.tool()
    def whoami() -> str:
        """Who the bearer token speaks for, and its scopes."""
        token = caller("whoami")
        return "anonymous" if token is None else f"{token.subject or token.client_id} {' '.join(token.scopes)}"

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        caller("add")
        return a + b

    # Both transports on one port: the streamable app brings the auth middleware, the PRM route and
    # the session manager's lifespan; the SSE app's routes are already wrapped in RequireAuthMiddleware.
    http_app, sse_app = mcp.streamable_http_app(), mcp.sse_app()
    taken = {getattr(r, "path", None) for r in http_app.routes}
    routes = [*http_app.routes, *(r for r in sse_app.routes if getattr(r, "path", None) not in taken)]
    return Starlette(routes=routes, middleware=http_app.user_middleware, lifespan=http_app.router.lifespan_context)


class Server(uvicorn.Server):
    """Two uvicorn servers in one loop would fight over SIGTERM; main() owns the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(servers: list[Server]) -> None:
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-port", type=int, required=True)
    parser.add_argument("--rs-port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--token-ttl", type=int, default=3600, help="access-token lifetime in seconds")
    parser.add_argument("--client", help="ID:SECRET of a pre-registered confidential client (client_credentials)")
    parser.add_argument("--scopes", default="mcp:tools", help="space-separated scopes the MCP server requires")
    parser.add_argument("--no-iss", action="store_true", help="leave RFC 9207 iss out of redirects and metadata")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    scopes = args.scopes.split()
    resource = f"http://127.0.0.1:{args.rs_port}/mcp"
    # AuthSettings keeps a path-less issuer without a trailing slash; clients compare issuers as strings.
    auth = AuthSettings(
        issuer_url=f"http://127.0.0.1:{args.as_port}",  # type: ignore[arg-type]
        resource_server_url=resource,  # type: ignore[arg-type]
        required_scopes=scopes,
        validate_token_resource=True,
    )
    provider = MemoryProvider(str(auth.issuer_url), resource, args.token_ttl, args.log, not args.no_iss)
    static_id = None
    if args.client:
        static_id, _, secret = args.client.partition(":")
        if not static_id or not secret:
            parser.error("--client wants ID:SECRET")
        provider.clients[static_id] = LoopbackClient(
            client_id=static_id,
            client_secret=secret,
            grant_types=["client_credentials", "authorization_code", "refresh_token"],
            token_endpoint_auth_method="client_secret_basic",
            scope=" ".join(scopes),
        )

    apps = [
        (authorization_server(provider, auth, static_id), args.as_port),
        (resource_server(provider, auth), args.rs_port),
    ]
    servers = [
        Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2))
        for app, port in apps
    ]

    def stop(*_: object) -> None:
        for server in servers:
            server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncio.run(serve(servers))


if __name__ == "__main__":
    main()
