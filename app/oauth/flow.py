"""The OAuth client for sse/streamable_http servers with `auth:`, on the mcp SDK's providers.

The SDK does discovery (protected-resource and authorization-server metadata), dynamic
registration or a client metadata URL, PKCE, the issuer checks and refresh. agentdeck adds what
an application must: where tokens live (app/oauth/store.py), a loopback listener for the browser's
return, opening the browser, refreshing a little before expiry (also across restarts), and never
starting a browser login in the middle of a command — only `agentdeck auth login` does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.auth.oauth2 import OAuthContext

from app.config.models import ClientCredentialsLogin, OAuthLogin, SseServerConfig
from app.oauth.store import TokenStore, oauth_dir

CALLBACK_PATH = "/callback"
# Refresh this long before a token expires (a tenth of its life for short-lived ones).
REFRESH_MARGIN = 60.0


class LoginRequired(Exception):
    """The server needs a browser login, and this command does not start one."""

    def __init__(self, server: str) -> None:
        super().__init__("it needs you to log in (no saved login, or one that can no longer be refreshed)")
        self.server = server
        # Shown as the error's hint wherever the failure is reported (app/connect.py).
        self.hint = f"run `agentdeck auth login {server}`"


@dataclass
class Login:
    """Whether a command may send the user to a browser, and how it talks to them."""

    interactive: bool = False
    open_browser: bool = True
    say: Callable[[str], None] = field(default=lambda text: None)
    timeout: float = 300.0


class _Context(OAuthContext):
    def update_token_expiry(self, token: Any) -> None:
        if token.expires_in is None:
            self.token_expiry_time = None
            return
        life = int(token.expires_in)
        self.token_expiry_time = time.time() + life - min(REFRESH_MARGIN, max(life, 0) / 10)


class _Deck:
    """What both providers share: a context with the refresh margin, saved tokens' expiry honoured."""

    context: OAuthContext
    _store: TokenStore

    def _deck_context(self, store: TokenStore) -> None:
        self.context = _Context(**{f.name: getattr(self.context, f.name) for f in fields(self.context)})
        self._store = store
        store.context = lambda: self.context

    async def _initialize(self) -> None:
        await super()._initialize()  # type: ignore[misc]
        # The SDK loads saved tokens without their expiry or where to refresh them: an expired token
        # would be sent, refused with 401, and answered with a whole new browser login.
        if self.context.current_tokens is not None:
            self.context.update_token_expiry(self.context.current_tokens)
            if self.context.oauth_metadata is None:
                metadata = self._store.metadata()
                if metadata is not None:
                    self.context.oauth_metadata = metadata
                    self.context.auth_server_url = str(metadata.issuer)


class BrowserLogin(_Deck, OAuthClientProvider):
    """Authorization code with PKCE: the user approves in a browser that returns to a loopback port."""

    def __init__(self, name: str, url: str, cfg: OAuthLogin, store: TokenStore, login: Login, port: int) -> None:
        from mcp.shared.auth import OAuthClientMetadata

        self.name = name
        self.login = login
        self.port = port
        self._callback: Callback | None = None
        metadata = OAuthClientMetadata(
            client_name="agentdeck",
            redirect_uris=[f"http://127.0.0.1:{port}{CALLBACK_PATH}"],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic" if cfg.client_secret else "none",
            scope=" ".join(cfg.scopes) or None,
        )
        super().__init__(
            url,
            metadata,
            store,
            redirect_handler=self._open,
            callback_handler=self._wait,
            client_metadata_url=cfg.client_metadata_url,
        )
        self._deck_context(store)

    async def _open(self, url: str) -> None:
        if not self.login.interactive:
            raise LoginRequired(self.name)
        self._callback = Callback(self.port)
        await self._callback.start()
        # Printed as is (not redacted): it is the address the user must open, and holds no secret.
        self.login.say(f"Log in to MCP server '{self.name}' in your browser. If it does not open, visit:\n  {url}")
        if self.login.open_browser:
            await asyncio.to_thread(webbrowser.open, url)

    async def _wait(self) -> Any:
        from mcp.client.auth import OAuthFlowError

        assert self._callback is not None
        try:
            query = await asyncio.wait_for(self._callback.answer, self.login.timeout)
        except TimeoutError:
            raise OAuthFlowError(f"no answer from the browser within {self.login.timeout:g} s") from None
        finally:
            await self._callback.close()
        return authorization_result(query)


class MachineLogin(_Deck, ClientCredentialsOAuthProvider):
    """client_credentials: agentdeck authenticates as itself; no browser, no refresh token."""

    def __init__(self, url: str, cfg: ClientCredentialsLogin, store: TokenStore) -> None:
        scope = " ".join(cfg.scopes) or None
        super().__init__(url, store, cfg.client_id, cfg.client_secret, scope=scope, issuer=cfg.issuer)
        self._deck_context(store)


def authorization_result(query: dict[str, str]) -> Any:
    """The browser's return, or the authorization server's refusal as an error."""
    from mcp.client.auth import OAuthFlowError
    from mcp.shared.auth import AuthorizationCodeResult

    if "error" in query:
        detail = query.get("error_description")
        raise OAuthFlowError(f"the authorization server refused: {query['error']}" + (f" ({detail})" if detail else ""))
    if not query.get("code"):
        raise OAuthFlowError("the browser came back without an authorization code")
    return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


class Callback:
    """The loopback HTTP listener the browser is sent back to (RFC 8252 §7.3), for one answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answer: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on 127.0.0.1 (never another interface)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.split(" ")
            target = urlsplit(parts[1] if len(parts) > 1 else "/")
            if parts[0] != "GET" or target.path != CALLBACK_PATH:
                self._reply(writer, "404 Not Found", "Not the agentdeck login callback.")
                return
            query = {k: v[0] for k, v in parse_qs(target.query).items()}
            ok = "error" not in query
            self._reply(writer, "200 OK", "Logged in. You can close this tab." if ok else "Login refused.")
            if not self.answer.done():
                self.answer.set_result(query)
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, status: str, text: str) -> None:
        body = f"<!doctype html><title>agentdeck</title><p>{text}</p>".encode()
        head = f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        writer.write((head + "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode() + body)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redirect_port(store: TokenStore, cfg: OAuthLogin) -> int:
    """The loopback port: the config's, else the one the saved registration was made with, else a free one."""
    if cfg.redirect_port is not None:
        return cfg.redirect_port
    seen = store.registered_redirect()
    return seen if seen is not None else _free_port()


def token_store(state: Path, name: str, cfg: SseServerConfig) -> TokenStore:
    """The on-disk login of one server entry (a client from the config replaces saved registrations)."""
    fixed = None
    auth = cfg.auth
    if isinstance(auth, OAuthLogin) and auth.client_id:
        from mcp.shared.auth import OAuthClientInformationFull

        port = auth.redirect_port
        fixed = OAuthClientInformationFull(
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            redirect_uris=[f"http://127.0.0.1:{port}{CALLBACK_PATH}"],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="client_secret_basic" if auth.client_secret else "none",
        )
    machine = auth.client_id if isinstance(auth, ClientCredentialsLogin) else None
    return TokenStore(oauth_dir(state), cfg.url, fixed_client=fixed, client_id=machine)


def auth_for(state: Path, name: str, cfg: SseServerConfig, login: Login | None = None) -> Any:
    """The httpx2.Auth that logs in to this server entry, or None when it has no `auth:`."""
    auth = cfg.auth
    if auth is None:
        return None
    store = token_store(state, name, cfg)
    if isinstance(auth, ClientCredentialsLogin):
        return MachineLogin(cfg.url, auth, store)
    return BrowserLogin(name, cfg.url, auth, store, login or Login(), redirect_port(store, auth))
