"""OAuth tokens and client registrations on disk, one file per authorization server (issuer).

Layout under `<state>/oauth/` (folder 0700, files 0600, every write a temporary file renamed
into place so a crash never leaves half a file):
- `servers.json`: server URL -> the issuer it logged in with and the client id it used;
- `<issuer>.json`: that issuer's client registrations (by client id) and one token per server URL,
  with the time it expires.
Registrations are kept per issuer because they belong to the authorization server: two servers
behind one issuer can share one. Tokens belong to one server (their audience).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.state import write_private_json

INDEX = "servers.json"


def oauth_dir(state: Path) -> Path:
    """Where logins live inside the state directory."""
    return state / "oauth"


def origin(url: str) -> str:
    """scheme://host[:port] of a URL (the issuer of last resort: the server's own origin)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _issuer_file(directory: Path, issuer: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", issuer.split("://", 1)[-1]).strip("_")[:60]
    digest = hashlib.sha256(issuer.encode()).hexdigest()[:10]
    return directory / f"{readable}-{digest}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        from app.errors import ConfigError

        raise ConfigError(
            f"cannot read the saved login {path}: {exc}",
            hint="delete the file and log in again with `agentdeck auth login SERVER`",
        ) from None
    return data if isinstance(data, dict) else {}


@dataclass
class SavedLogin:
    """What `auth status` shows about one server's login (never the token itself)."""

    issuer: str
    client_id: str | None
    scope: str | None
    expires_at: float | None
    refreshable: bool


class TokenStore:
    """The mcp SDK's TokenStorage for one server, on disk.

    `context` gives the OAuth flow's state (issuer discovered, client in use) once the provider
    exists; before discovery the issuer is what the last login recorded, else the server's origin.
    `fixed_client` is a registration from the config, used instead of any saved one.
    """

    def __init__(
        self, directory: Path, server_url: str, fixed_client: Any = None, client_id: str | None = None
    ) -> None:
        self.directory = directory
        # Tokens are the server's and the client's: two entries for one URL with their own clients
        # (a person's login and a machine's credentials) keep separate tokens.
        client_id = client_id or getattr(fixed_client, "client_id", None)
        self.server_url = server_url if client_id is None else f"{server_url} client={client_id}"
        self.fixed_client = fixed_client
        self.context: Callable[[], Any] | None = None

    # --- the SDK's TokenStorage protocol ---

    async def get_tokens(self) -> Any:
        from mcp.shared.auth import OAuthToken

        entry = self._issuer_data().get("tokens", {}).get(self.server_url)
        if not entry:
            return None
        token = OAuthToken.model_validate(entry["token"])
        expires_at = entry.get("expires_at")
        # What is left of its lifetime: the flow refreshes (or asks again) once it runs out.
        token.expires_in = None if expires_at is None else int(expires_at - time.time())
        return token

    async def set_tokens(self, tokens: Any) -> None:
        issuer = self._issuer()
        path = _issuer_file(self.directory, issuer)
        data = _read(path)
        data["issuer"] = issuer
        expires_at = None if tokens.expires_in is None else time.time() + int(tokens.expires_in)
        data.setdefault("tokens", {})[self.server_url] = {
            "token": tokens.model_dump(mode="json", exclude_none=True),
            "expires_at": expires_at,
        }
        # The authorization server's metadata (its token endpoint): a later process refreshes
        # without discovering it again.
        metadata = getattr(self.context() if self.context is not None else None, "oauth_metadata", None)
        if metadata is not None:
            data["metadata"] = metadata.model_dump(mode="json", exclude_none=True)
        write_private_json(path, data)
        self._index(issuer, self._client_id())

    async def get_client_info(self) -> Any:
        from mcp.shared.auth import OAuthClientInformationFull

        if self.fixed_client is not None:
            return self.fixed_client
        seen = self._seen()
        if not seen or not seen.get("client_id"):
            return None
        client = self._issuer_data().get("clients", {}).get(seen["client_id"])
        return None if client is None else OAuthClientInformationFull.model_validate(client)

    async def set_client_info(self, client_info: Any) -> None:
        if self.fixed_client is not None:
            return
        issuer = client_info.issuer or self._issuer()
        path = _issuer_file(self.directory, issuer)
        data = _read(path)
        data["issuer"] = issuer
        data.setdefault("clients", {})[client_info.client_id] = client_info.model_dump(mode="json", exclude_none=True)
        write_private_json(path, data)
        self._index(issuer, client_info.client_id)

    def metadata(self) -> Any:
        """The authorization server's metadata saved with the last token, if any."""
        from mcp.shared.auth import OAuthMetadata

        saved = self._issuer_data().get("metadata")
        return None if saved is None else OAuthMetadata.model_validate(saved)

    def registered_redirect(self) -> int | None:
        """The loopback port of the saved registration (an authorization server may insist on it)."""
        seen = self._seen()
        client = self._issuer_data().get("clients", {}).get(seen.get("client_id")) if seen else None
        uris = (client or {}).get("redirect_uris") or []
        port = urlsplit(uris[0]).port if uris else None
        return port

    # --- for `agentdeck auth status|logout` ---

    def saved(self) -> SavedLogin | None:
        """This server's login, if one is saved."""
        seen = self._seen()
        if not seen:
            return None
        entry = self._issuer_data().get("tokens", {}).get(self.server_url)
        if not entry:
            return None
        token = entry.get("token", {})
        return SavedLogin(
            issuer=seen["issuer"],
            client_id=seen.get("client_id"),
            scope=token.get("scope"),
            expires_at=entry.get("expires_at"),
            refreshable=bool(token.get("refresh_token")),
        )

    def forget_tokens(self) -> bool:
        """Delete this server's tokens (its client registration stays for the next login)."""
        seen = self._seen()
        if not seen:
            return False
        path = _issuer_file(self.directory, seen["issuer"])
        data = _read(path)
        if data.get("tokens", {}).pop(self.server_url, None) is None:
            return False
        write_private_json(path, data)
        return True

    # --- inside ---

    def _seen(self) -> dict[str, Any] | None:
        entry = _read(self.directory / INDEX).get(self.server_url)
        return entry if isinstance(entry, dict) and entry.get("issuer") else None

    def _issuer_data(self) -> dict[str, Any]:
        seen = self._seen()
        return _read(_issuer_file(self.directory, seen["issuer"])) if seen else {}

    def _issuer(self) -> str:
        context = self.context() if self.context is not None else None
        metadata = getattr(context, "oauth_metadata", None)
        if metadata is not None:
            return str(metadata.issuer)
        server = getattr(context, "auth_server_url", None)
        if server:
            return str(server)
        seen = self._seen()
        return seen["issuer"] if seen else origin(self.server_url)

    def _client_id(self) -> str | None:
        context = self.context() if self.context is not None else None
        client = getattr(context, "client_info", None)
        return getattr(client, "client_id", None)

    def _index(self, issuer: str, client_id: str | None) -> None:
        path = self.directory / INDEX
        data = _read(path)
        data[self.server_url] = {
            "issuer": issuer,
            "client_id": client_id or (data.get(self.server_url) or {}).get("client_id"),
        }
        write_private_json(path, data)
