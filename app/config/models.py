"""Typed schema of agents.yaml (every model forbids unknown keys)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from app.config.execution import BatchSettings
from app.config.governance import AuditConfig, GatewayConfig, TelemetryConfig
from app.config.models_base import NAME_RE, Strict

FILTER_REF = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


def _check_name(name: str) -> str:
    if NAME_RE.fullmatch(name):
        return name
    odd = [c for c in name if not c.isascii()]
    why = f" (it contains the non-ASCII character {odd[0]!r}, U+{ord(odd[0]):04X})" if odd else ""
    raise ValueError(
        f"name {name!r} may use only letters, digits, '-' and '_', must start with a letter "
        f"and be at most 64 characters long{why}"
    )


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    """Header names and values the HTTP clients accept (they refuse the rest at the first request)."""
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if any(c in text for c in "\r\n\0"):
            raise ValueError(f"the value of header {name!r} contains a line break or NUL")
    return value


# The names of servers, agents and providers (the keys of those sections).
Name = Annotated[str, AfterValidator(_check_name)]

# A timeout or time-to-live: positive, finite (Strict) and at most a year, which every clock and
# client accepts (the SDK's timedelta and socket timeouts overflow long before .inf).
MAX_SECONDS = 365 * 24 * 3600
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]


class ReasoningSettings(Strict):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ModelSettingsConfig(Strict):
    """The subset of agents.ModelSettings that makes sense in a YAML file."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: ReasoningSettings | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    store: bool | None = None


class OpenAIProviderConfig(Strict):
    """OpenAI itself, through the Responses API by default."""

    kind: Literal["openai"]
    api_key: str | None = None
    base_url: str | None = None
    api: Literal["responses", "chat_completions"] = "responses"
    max_retries: int = Field(default=3, ge=0)
    timeout: Seconds | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # Empty (e.g. `${OPENAI_BASE_URL:-}`) means unset: OPENAI_BASE_URL or OpenAI itself.
        return _check_http_url(value) if value else None


class CompatibleProviderConfig(Strict):
    """Any OpenAI-compatible endpoint: Ollama, vLLM, LiteLLM proxies."""

    kind: Literal["openai_compatible"]
    base_url: str
    api_key: str | None = None
    api: Literal["chat_completions", "responses"] = "chat_completions"
    max_retries: int = Field(default=3, ge=0)
    timeout: Seconds | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value)


class OfflineProviderConfig(Strict):
    """The deterministic rules-driven model shipped with agentdeck."""

    kind: Literal["offline"]
    rules: str | None = None
    log: str | None = None


ProviderConfig = Annotated[
    OpenAIProviderConfig | CompatibleProviderConfig | OfflineProviderConfig,
    Field(discriminator="kind"),
]


class ToolGlobs(Strict):
    """Tool-name globs: allow (if set) first, then block."""

    allow: list[str] | None = None
    block: list[str] | None = None


class CacheTTL(Strict):
    ttl: Seconds


class ApprovalRules(Strict):
    """Tool-name globs that always or never need approval; others need none."""

    always: list[str] = Field(default_factory=list)
    never: list[str] = Field(default_factory=list)


Approval = Literal["never", "always", "destructive"] | ApprovalRules


class SamplingConfig(Strict):
    """Which model answers a server's sampling requests, and whether it may."""

    policy: Literal["ask", "allow", "deny"] = "allow"
    provider: str | None = None  # default: the provider of the agent whose run the request came from
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)


class LocalServerBase(Strict):
    """Options shared by servers that agentdeck connects to itself."""

    description: str | None = None
    cache_tools: bool | CacheTTL = False
    tools: ToolGlobs | None = None
    policy: Literal["read_only", "no_destructive"] | None = None
    filter: str | None = Field(default=None, pattern=FILTER_REF)
    approval: Approval = "never"
    timeout: Seconds = 30.0
    retries: int = Field(default=0, ge=0)
    # Reconnect on the next call after the server went away; default: on_failure over HTTP, never for stdio.
    restart: Literal["on_failure", "never"] | None = None
    start_timeout: Seconds = 20.0
    required: bool = True
    structured_content: bool = False
    # What the server may ask of agentdeck: a form or URL to show the user, a model completion, its roots.
    elicitation: Literal["ask", "decline"] = "ask"
    sampling: Literal["ask", "allow", "deny"] | SamplingConfig = "allow"
    roots: list[str] = Field(default_factory=list)
    # Offer the model list_resources / read_resource tools for this server's resources.
    resources_as_tools: bool = False
    # The least severe log message the server should send (kept for /logs); off: none.
    log_level: Literal["debug", "info", "notice", "warning", "error", "critical", "off"] = "info"


class StdioServerConfig(LocalServerBase):
    transport: Literal["stdio"]
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        # What the OS refuses when the server is started.
        for name in value:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value


class OAuthLogin(Strict):
    """A user logs in through the server's authorization server (code flow with PKCE, in a browser)."""

    type: Literal["oauth"]
    scopes: list[str] = Field(default_factory=list)
    # A client registered beforehand; without one agentdeck registers itself (dynamic registration).
    client_id: str | None = Field(default=None, min_length=1)
    client_secret: str | None = Field(default=None, min_length=1)
    # An HTTPS URL of a client metadata document, used as the client id where the server supports it.
    client_metadata_url: str | None = None
    # The loopback port the browser returns to; default: any free port, kept with the registration.
    redirect_port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("client_metadata_url")
    @classmethod
    def _https_document(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("https://") or value.rstrip("/").count("/") < 3):
            raise ValueError(
                "client_metadata_url must be an https:// URL with a path, e.g. https://example.com/client.json"
            )
        return value

    @model_validator(mode="after")
    def _registered_client(self) -> OAuthLogin:
        if self.client_id and self.redirect_port is None:
            raise ValueError(
                "a client registered beforehand needs the 'redirect_port' of the redirect URI it was registered "
                "with (http://127.0.0.1:PORT/callback)"
            )
        if self.client_secret and not self.client_id:
            raise ValueError("'client_secret' needs the 'client_id' it belongs to")
        return self


class ClientCredentialsLogin(Strict):
    """A machine authenticates as itself (OAuth client_credentials grant)."""

    type: Literal["client_credentials"]
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list)
    # The authorization server that issued the credentials: the secret is sent to no other, whatever
    # the MCP server's metadata says.
    issuer: str

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        return _check_http_url(value)


ServerAuth = Annotated[OAuthLogin | ClientCredentialsLogin, Field(discriminator="type")]


class SseServerConfig(LocalServerBase):
    transport: Literal["sse"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    read_timeout: Seconds = 300.0
    # The same entry can be handed to OpenAI as a hosted MCP server instead of connected here.
    hosted: bool = False
    public_url: str | None = None
    tunnel_id: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    auth: ServerAuth | None = None

    @field_validator("url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    _headers = field_validator("headers")(_check_headers)

    @model_validator(mode="after")
    def _one_public_target(self) -> SseServerConfig:
        if self.public_url and self.tunnel_id:
            raise ValueError("set 'public_url' or 'tunnel_id', not both")
        if self.hosted and self.filter:
            raise ValueError(
                "a 'filter' function runs in agentdeck and cannot filter a hosted server's tools; "
                "use 'tools' globs or 'policy'"
            )
        if self.auth is not None and self.hosted:
            raise ValueError(
                "OpenAI connects to a hosted server itself, so agentdeck cannot log in for it; send a token in 'headers'"
            )
        if self.auth is not None and any(name.lower() == "authorization" for name in self.headers):
            raise ValueError("set 'auth' or an Authorization header, not both")
        return self


class StreamableHttpServerConfig(SseServerConfig):
    transport: Literal["streamable_http"]  # type: ignore[assignment]


class HostedServerConfig(Strict):
    """An MCP server that OpenAI calls on the agent's behalf (Responses API only)."""

    transport: Literal["hosted"]
    server_url: str | None = None
    connector_id: str | None = None
    tunnel_id: str | None = None
    label: str | None = Field(default=None, min_length=1)
    description: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    authorization: str | None = None
    allowed_tools: list[str] | None = None
    tools: ToolGlobs | None = None
    policy: Literal["read_only", "no_destructive"] | None = None
    approval: Approval = "always"

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_http_url(value) if value else value

    _headers = field_validator("headers")(_check_headers)

    @model_validator(mode="after")
    def _one_target(self) -> HostedServerConfig:
        if sum(bool(t) for t in (self.server_url, self.connector_id, self.tunnel_id)) != 1:
            raise ValueError("set exactly one of 'server_url', 'connector_id' or 'tunnel_id'")
        return self


ServerConfig = Annotated[
    StdioServerConfig | SseServerConfig | StreamableHttpServerConfig | HostedServerConfig,
    Field(discriminator="transport"),
]
LocalServerConfig = StdioServerConfig | SseServerConfig | StreamableHttpServerConfig


class PromptInstructions(Strict):
    """Instructions taken from a server's prompt, fetched when the server connects (and on /reconnect)."""

    prompt: str = Field(min_length=1)
    server: str = Field(min_length=1)
    args: dict[str, str] = Field(default_factory=dict)


class AgentConfig(Strict):
    description: str | None = None
    instructions: str | PromptInstructions | None = None
    instructions_file: str | None = None
    provider: str | None = None
    model: str | None = None
    model_settings: ModelSettingsConfig | None = None
    servers: list[str] = Field(default_factory=list)
    tools: ToolGlobs | None = None
    prefix_tool_names: bool = False
    handoffs: list[str] = Field(default_factory=list)
    as_tools: list[str] = Field(default_factory=list)
    max_turns: int = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _one_instruction_source(self) -> AgentConfig:
        if self.instructions is not None and self.instructions_file is not None:
            raise ValueError("set 'instructions' or 'instructions_file', not both")
        return self


class Price(Strict):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Defaults(Strict):
    agent: str | None = None
    provider: str | None = None
    model: str | None = None
    model_settings: ModelSettingsConfig | None = None
    prices: dict[str, Price] = Field(default_factory=dict)
    # Where the Agents SDK's traces go: to OpenAI (only when a run uses OpenAI itself), or nowhere.
    tracing: Literal["openai", "off", "otlp"] = "openai"

    @field_validator("tracing")
    @classmethod
    def _otlp_not_yet(cls, value: str) -> str:
        if value == "otlp":
            raise ValueError("for OTLP export set telemetry: {otlp_endpoint: URL}; tracing takes 'openai' or 'off'")
        return value


class Config(Strict):
    """The whole of agents.yaml."""

    providers: dict[Name, ProviderConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    servers: dict[Name, ServerConfig] = Field(default_factory=dict)
    agents: dict[Name, AgentConfig] = Field(min_length=1)
    audit: AuditConfig | None = None
    telemetry: TelemetryConfig | None = None
    gateway: GatewayConfig | None = None
    batch: BatchSettings | None = None


def _check_http_url(value: str) -> str:
    """An http(s) URL with a host and a valid port (what the HTTP clients accept), else ValueError."""
    from urllib.parse import urlsplit

    from app.config.redact import redact_url

    shown = repr(redact_url(value))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"{shown} is not a valid URL: {str(exc)[:1].lower()}{str(exc)[1:]}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{shown} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{shown} has no host")
    return value


def runs_hosted(server: ServerConfig) -> bool:
    """True when OpenAI, not agentdeck, connects to this server (transport hosted, or hosted: true)."""
    return isinstance(server, HostedServerConfig) or (isinstance(server, SseServerConfig) and server.hosted)
