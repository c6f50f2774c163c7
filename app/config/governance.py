"""The governance sections of agents.yaml: `audit:`, `telemetry:` and `gateway:`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from app.config.models_base import NAME_RE, Strict

_SHA256 = r"^[0-9a-f]{64}$"


class AuditRotate(Strict):
    """Start a new JSONL file past `max_bytes`, keeping `keep` old ones (audit.jsonl.1 is the newest)."""

    max_bytes: int = Field(ge=1024)
    keep: int = Field(default=5, ge=1, le=1000)


class AuditConfig(Strict):
    """Where and how every tool call, model call and run is recorded."""

    # Default: audit.jsonl (or audit.sqlite) in the state directory.
    path: str | None = Field(default=None, min_length=1)
    format: Literal["jsonl", "sqlite"] = "jsonl"
    # true: as sent (known secret values still masked); redacted: secret-looking and `redact` keys masked too.
    include_arguments: bool | Literal["redacted"] = "redacted"
    include_results: Literal["none", "size", "preview", "full"] = "size"
    # Argument keys to mask: globs (`*_token`, case-insensitive) or /regexes/.
    redact: list[str] = Field(default_factory=list)
    rotate: AuditRotate | None = None

    @field_validator("redact")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern:
                raise ValueError("an empty pattern would match nothing; remove it")
            if is_regex(pattern):
                try:
                    re.compile(pattern[1:-1])
                except re.error as exc:
                    raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _rotate_jsonl_only(self) -> AuditConfig:
        if self.rotate is not None and self.format != "jsonl":
            raise ValueError("'rotate' applies to format jsonl; an sqlite audit database is not rotated")
        return self


class TelemetryConfig(Strict):
    """OpenTelemetry export (the `otel` extra): spans of runs, model calls and tool calls over OTLP/HTTP."""

    otlp_endpoint: str = Field(pattern=r"^https?://[^\s/]+")  # e.g. http://127.0.0.1:4318 (/v1/traces is added)
    service_name: str = Field(default="agentdeck", min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)


def is_regex(pattern: str) -> bool:
    """`/.../` patterns are regular expressions; everything else is a glob."""
    return len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/")


class Globs(Strict):
    """allow/block globs on tool names (each matches the prefixed `server__tool` or the tool's own name)."""

    allow: list[str] | None = None
    block: list[str] | None = None


class GatewayProfile(Strict):
    """A named subset of the upstreams' tools, served at /mcp/<profile>."""

    description: str | None = None
    servers: list[str] | None = None  # default: every upstream
    tools: Globs | None = None
    policy: Literal["read_only", "no_destructive"] | None = None
    # Calls that the calling client must approve (asked by elicitation; refused if it cannot be asked).
    approval: Literal["never", "always", "destructive"] | list[str] = "never"


class RateLimit(Strict):
    """`calls` per `per` seconds, as a token bucket (a burst of up to `calls`, refilled evenly)."""

    calls: int = Field(ge=1)
    per: float = Field(default=60.0, gt=0, le=86400)


class GatewayIdentity(Strict):
    """A caller: the SHA-256 of its bearer token, the profiles it may use, and its own allow/block."""

    # Absent: the identity is reached only through a JWT whose identity claim names it.
    token_sha256: str | None = Field(default=None, pattern=_SHA256)
    profiles: list[str] = Field(min_length=1)
    tools: Globs | None = None
    rate: RateLimit | None = None  # all its tool calls together
    tool_rates: dict[str, RateLimit] = Field(default_factory=dict)  # per tool (glob on either name)


class GatewayJwt(Strict):
    """Callers with JWTs from an authorization server: signature, issuer, audience and expiry are checked."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: str | None = None  # RS256/ES256 keys, fetched and cached
    secret: str | None = Field(default=None, min_length=16)  # HS256 shared secret
    identity_claim: str = "sub"
    # A list claim naming the profiles; without it (or when the token lacks it) default_profiles apply.
    profiles_claim: str | None = None
    default_profiles: list[str] = Field(default_factory=list)
    leeway: float = Field(default=30.0, ge=0, le=600)  # seconds of clock skew allowed on exp/nbf

    @model_validator(mode="after")
    def _one_key_source(self) -> GatewayJwt:
        if (self.jwks_url is None) == (self.secret is None):
            raise ValueError("set exactly one of 'jwks_url' (RS256/ES256) and 'secret' (HS256)")
        return self


class GatewayConfig(Strict):
    """One governed MCP endpoint over several servers of `servers:`."""

    servers: list[str] = Field(min_length=1)
    separator: str = Field(default="__", min_length=1, max_length=4, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = "127.0.0.1"
    port: int = Field(default=8900, ge=0, le=65535)
    profiles: dict[str, GatewayProfile] = Field(min_length=1)
    identities: dict[str, GatewayIdentity] = Field(default_factory=dict)
    # More identities, written by `agentdeck gateway token add` (default: gateway-tokens.json in the state directory).
    tokens_file: str | None = None
    jwt: GatewayJwt | None = None

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, value: dict[str, GatewayProfile]) -> dict[str, GatewayProfile]:
        for name in value:
            if not NAME_RE.fullmatch(name):
                raise ValueError(f"profile name {name!r} may use only letters, digits, '-' and '_' (it is a URL path)")
        return value

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        for name, profile in self.profiles.items():
            for server in profile.servers or []:
                if server not in self.servers:
                    raise ValueError(f"profile {name!r} names server {server!r}, which is not in gateway.servers")
        for who, identity in self.identities.items():
            for profile_name in identity.profiles:
                if profile_name not in self.profiles:
                    raise ValueError(f"identity {who!r} names profile {profile_name!r}, which gateway.profiles lacks")
            if identity.token_sha256 is None and self.jwt is None:
                raise ValueError(f"identity {who!r} has no token_sha256, and without gateway.jwt nothing can reach it")
        for profile_name in self.jwt.default_profiles if self.jwt else []:
            if profile_name not in self.profiles:
                raise ValueError(f"jwt.default_profiles names {profile_name!r}, which gateway.profiles lacks")
        return self
