"""Gateway callers: bearer tokens kept only as SHA-256 digests, in agents.yaml or a token file."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.config.governance import GatewayConfig, GatewayIdentity, Globs, RateLimit
from app.errors import ConfigError, UsageError
from app.state import write_private_json


@dataclass(frozen=True)
class Identity:
    """Who is calling, which profiles it may use, and its own allow/block on top of them."""

    name: str
    profiles: tuple[str, ...]
    tools: Globs | None = None
    rate: RateLimit | None = None
    tool_rates: tuple[tuple[str, RateLimit], ...] = ()


def digest(token: str) -> str:
    """The SHA-256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_path(gateway: GatewayConfig, resolve: Callable[[str], Path], state: Path) -> Path:
    """Where `gateway token add` keeps identities: tokens_file (relative to the config) or the state directory."""
    if gateway.tokens_file:
        return resolve(gateway.tokens_file)
    return state / "gateway-tokens.json"


def read_token_file(path: Path) -> dict[str, GatewayIdentity]:
    """The identities in a token file (none when it does not exist yet)."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: GatewayIdentity.model_validate(v) for name, v in raw.get("identities", {}).items()}
    except (ValueError, AttributeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"the gateway token file {path} is not valid: {first}", hint="fix or delete it") from None


class Identities:
    """Finds the identity a bearer token belongs to (constant-time digest comparison)."""

    def __init__(self, entries: dict[str, GatewayIdentity]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, token: str) -> Identity | None:
        """The identity for `token`, or None."""
        given = digest(token)
        found = None
        for name, entry in self.entries.items():
            if entry.token_sha256 is not None and hmac.compare_digest(given, entry.token_sha256):
                found = self.named(name)
        return found

    def named(self, name: str) -> Identity | None:
        """The configured identity called `name` (a JWT's identity claim may name one)."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        return Identity(name, tuple(entry.profiles), entry.tools, entry.rate, tuple(entry.tool_rates.items()))


def load_identities(gateway: GatewayConfig, path: Path) -> Identities:
    """The config's identities plus the token file's; a name in both is an error."""
    from_file = read_token_file(path)
    both = sorted(set(from_file) & set(gateway.identities))
    if both:
        raise ConfigError(
            f"identity {both[0]!r} is both in gateway.identities and in {path}",
            hint="remove it from one of them",
        )
    for name, entry in from_file.items():
        unknown = [p for p in entry.profiles if p not in gateway.profiles]
        if unknown:
            raise ConfigError(f"identity {name!r} in {path} names profile {unknown[0]!r}, which gateway.profiles lacks")
    return Identities({**gateway.identities, **from_file})


def add_token(gateway: GatewayConfig, path: Path, name: str, profiles: list[str]) -> str:
    """A new token for identity `name`, stored hashed in the token file (0600); the token itself is returned once."""
    for profile in profiles:
        if profile not in gateway.profiles:
            known = ", ".join(sorted(gateway.profiles))
            raise UsageError(f"unknown profile {profile!r}", hint=f"gateway.profiles has: {known}")
    if name in gateway.identities:
        raise UsageError(f"identity {name!r} is defined in agents.yaml", hint="choose another name")
    entries = read_token_file(path)
    if name in entries:
        raise UsageError(f"identity {name!r} already has a token in {path}", hint="choose another name")
    token = "agd_" + secrets.token_urlsafe(32)
    entries[name] = GatewayIdentity(token_sha256=digest(token), profiles=profiles)
    write_private_json(path, {"identities": {n: e.model_dump(exclude_none=True) for n, e in entries.items()}})
    return token
