"""The governance sections of agents.yaml: `audit:` (and, later, `gateway:`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from app.config.models_base import Strict


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


def is_regex(pattern: str) -> bool:
    """`/.../` patterns are regular expressions; everything else is a glob."""
    return len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/")
