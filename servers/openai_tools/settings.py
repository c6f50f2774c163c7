"""Configuration as users had it (environment variables) plus the options a server needs, and the client.

`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `DEFAULT_MODEL`, `DEFAULT_IMAGE_MODEL`,
`MAX_TOKENS` and `TEMPERATURE` come from the environment; `--timeout`, `--max-retries`,
`--output-dir` and `--allowed-dir` from the command line. The openai client retries only what is
worth retrying (connection errors, 408, 409, 429 and 5xx), honouring Retry-After.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from servers.openai_tools.models import DEFAULT_IMAGE_MODEL, DEFAULT_MODEL, check_model


class SettingsError(Exception):
    """A bad environment variable or option (one line, exit 2)."""


@dataclass(frozen=True)
class Settings:
    api_key: str | None
    base_url: str | None = None
    organization: str | None = None
    default_model: str = DEFAULT_MODEL
    default_image_model: str = DEFAULT_IMAGE_MODEL
    max_tokens: int | None = None
    temperature: float | None = None
    timeout: float = 120.0
    max_retries: int = 2
    output_dir: Path = Path("openai-output")
    allowed_dirs: list[Path] = field(default_factory=list)

    def secrets(self) -> list[str]:
        """Values never to print."""
        return [self.api_key] if self.api_key else []


def _number(environ: Mapping[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw} is out of range ({low:g} to {high:g})")
    return value


def settings_from(args: Any, environ: Mapping[str, str]) -> Settings:
    """Settings from parsed options and the environment; SettingsError names what is wrong."""
    models = {}
    for name, default in (("DEFAULT_MODEL", DEFAULT_MODEL), ("DEFAULT_IMAGE_MODEL", DEFAULT_IMAGE_MODEL)):
        value = (environ.get(name) or default).strip()
        try:
            models[name] = check_model(value)
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None
    if args.timeout <= 0 or args.max_retries < 0:
        raise SettingsError("--timeout must be above 0 and --max-retries at least 0")
    return Settings(
        api_key=environ.get("OPENAI_API_KEY") or None,
        base_url=environ.get("OPENAI_BASE_URL") or None,
        organization=environ.get("OPENAI_ORG_ID") or None,
        default_model=models["DEFAULT_MODEL"],
        default_image_model=models["DEFAULT_IMAGE_MODEL"],
        max_tokens=_number(environ, "MAX_TOKENS", int, 1, 1_000_000),
        temperature=_number(environ, "TEMPERATURE", float, 0, 2),
        timeout=float(args.timeout),
        max_retries=int(args.max_retries),
        output_dir=Path(args.output_dir).expanduser().resolve(),
        allowed_dirs=[Path(d).expanduser().resolve() for d in args.allowed_dir],
    )


class Clients:
    """OpenAI clients: one for the server's key; in passthrough mode one per request, on a shared pool.

    A request's key lives only in that request's client, which is dropped with the request: the
    shared connection pool carries no credentials.
    """

    def __init__(self, settings: Settings, passthrough: bool) -> None:
        self.settings = settings
        self.passthrough = passthrough
        self._static: Any = None
        self._pool: Any = None

    def key_for(self, headers: Any) -> str:
        """The API key for a request: its X-OpenAI-API-Key header in passthrough mode, else the server's."""
        if self.passthrough:
            key = (headers or {}).get("x-openai-api-key", "").strip()
            if not key:
                raise ToolError("this server takes each request's key: send it in the X-OpenAI-API-Key header")
            return str(key)
        if not self.settings.api_key:
            raise ToolError("no OpenAI API key: set OPENAI_API_KEY for the server")
        return self.settings.api_key

    def for_request(self, headers: Any) -> tuple[Any, str]:
        """The client for one request and the key it uses (see key_for)."""
        key = self.key_for(headers)
        return self.client(key), key

    def client(self, key: str) -> Any:
        """The client to call OpenAI with `key`."""
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        if not self.passthrough and self._static is not None:
            return self._static
        options: dict[str, Any] = {
            "api_key": key,
            "base_url": self.settings.base_url,
            "organization": self.settings.organization,
            "timeout": self.settings.timeout,
            "max_retries": self.settings.max_retries,
        }
        if self.passthrough:
            if self._pool is None:
                self._pool = DefaultAsyncHttpxClient()
            return AsyncOpenAI(http_client=self._pool, **options)
        self._static = AsyncOpenAI(**options)
        return self._static


_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_*-]{6,}")


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret, and anything shaped like an OpenAI key, masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_SHAPE.sub("sk-***", text)


@contextlib.contextmanager
def openai_errors(settings: Settings, key: str | None) -> Iterator[None]:
    """OpenAI's errors as the tool's error: the HTTP status and OpenAI's message, never the key."""
    import openai

    secrets = [s for s in (key, settings.api_key) if s]
    try:
        yield
    except openai.APIStatusError as exc:
        message = getattr(exc, "message", None) or str(exc)
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
        raise ToolError(scrub(f"OpenAI answered {exc.status_code}: {detail or message}", secrets)) from None
    except openai.APITimeoutError:
        raise ToolError(f"OpenAI did not answer within {settings.timeout:g} s (--timeout)") from None
    except openai.APIConnectionError as exc:
        where = settings.base_url or "https://api.openai.com/v1"
        raise ToolError(scrub(f"could not reach OpenAI at {where}: {exc}", secrets)) from None


def truthy(value: str | None) -> bool:
    """1, true, yes or on."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def env_defaults(parser: Any, environ: Any) -> None:
    """TRANSPORT, HOST and PORT from the environment, as users' configs set them (options still win)."""
    transports = {"stdio": "stdio", "sse": "sse", "http": "http", "streamable-http": "http", "streamable_http": "http"}
    defaults: dict[str, Any] = {}
    if environ.get("TRANSPORT"):
        name = environ["TRANSPORT"].strip().lower()
        if name not in transports:
            raise SettingsError(f"TRANSPORT={environ['TRANSPORT']!r}: use stdio, sse or streamable-http")
        defaults["transport"] = transports[name]
    if environ.get("HOST"):
        defaults["host"] = environ["HOST"].strip()
    if environ.get("PORT"):
        try:
            defaults["port"] = int(environ["PORT"])
        except ValueError:
            raise SettingsError(f"PORT={environ['PORT']!r} is not a port number") from None
    parser.set_defaults(**defaults)


def add_openai_options(parser: Any, environ: Mapping[str, str]) -> None:
    """--timeout, --max-retries and --credentials, shared by the openai and conversations servers."""
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per OpenAI request (default 120)")
    parser.add_argument(
        "--max-retries", type=int, default=2, help="retries of rate limits, timeouts and 5xx errors (default 2)"
    )
    parser.add_argument(
        "--credentials",
        choices=["static", "passthrough"],
        default="passthrough" if truthy(environ.get("MCP_CREDENTIALS_PASSTHROUGH")) else "static",
        help="static: the server's OPENAI_API_KEY; passthrough (sse/http): each request's X-OpenAI-API-Key header",
    )


def parse_settings(
    parser: Any, argv: list[str] | None, environ: Mapping[str, str], **fixed: Any
) -> tuple[Any, Settings]:
    """Options (TRANSPORT/HOST/PORT as defaults) and settings; a bad one exits 2 with one line on stderr."""
    import sys

    try:
        env_defaults(parser, environ)
        args = parser.parse_args(argv)
        for name, value in fixed.items():
            if getattr(args, name, None) is None:
                setattr(args, name, value() if callable(value) else value)
        settings = settings_from(args, environ)
        if args.credentials == "passthrough" and args.transport == "stdio":
            raise SettingsError(
                "--credentials passthrough takes each request's key from an HTTP header: use --transport sse or http"
            )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return args, settings
