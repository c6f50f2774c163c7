"""A server's elicitation form, asked field by field on a terminal, with the schema's types checked.

MCP form schemas are flat objects of primitives: string (optionally an enum, or oneOf const/title
pairs, or a format: email, uri, date, date-time), number, integer and boolean, and multi-select
arrays of enum strings, each with a title, description, default and required flag. The same
questions serve `run` (plain lines on the terminal) and the chat (its prompt).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Ask = Callable[[str], Awaitable[str]]
Show = Callable[[str], None]

_YES = ("y", "yes", "true", "1")
_NO = ("n", "no", "false", "0")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def _check_format(fmt: str | None, text: str) -> None:
    """ValueError unless `text` has the string format the schema names (unknown formats pass)."""
    if fmt == "email" and not _EMAIL.match(text):
        raise ValueError("expected an email address, like ada@example.com")
    if fmt == "uri" and not _URI.match(text):
        raise ValueError("expected a URI, like https://example.com")
    if fmt == "date":
        try:
            date.fromisoformat(text)
        except ValueError:
            raise ValueError("expected a date, like 2026-11-23") from None
    if fmt == "date-time":
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected a date and time, like 2026-11-23T14:30:00") from None


@dataclass
class FormField:
    """One property of the requested schema."""

    name: str
    kind: str  # string | number | integer | boolean | array (several choices)
    title: str
    description: str = ""
    required: bool = False
    default: Any = None
    choices: list[tuple[Any, str]] = field(default_factory=list)  # (value, label)
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    format: str | None = None
    min_items: int | None = None
    max_items: int | None = None

    def prompt(self) -> str:
        """`  speed (standard, express) [standard]: ` — what to type, and what Enter gives."""
        hint = ""
        if self.choices:
            several = "; several, comma-separated" if self.kind == "array" else ""
            hint = " (" + ", ".join(label for _, label in self.choices) + several + ")"
        elif self.kind == "boolean":
            hint = " (y/n)"
        elif self.format:
            hint = f" ({self.format})"
        if self.default is not None:
            shown = ("y" if self.default else "n") if self.kind == "boolean" else self.default
            if isinstance(self.default, list):
                shown = ", ".join(self._label(v) for v in self.default)
            hint += f" [{shown}]"
        elif not self.required:
            hint += " [skip]"
        star = "*" if self.required else ""
        return f"  {self.title}{star}{hint}: "

    def parse(self, text: str) -> Any:
        """The typed value of an answer; ValueError says what is wrong."""
        text = text.strip()
        if self.kind == "array":
            picked = [self._choice(part.strip()) for part in text.split(",") if part.strip()]
            picked = list(dict.fromkeys(picked))
            if self.min_items is not None and len(picked) < self.min_items:
                raise ValueError(f"choose at least {self.min_items}")
            if self.max_items is not None and len(picked) > self.max_items:
                raise ValueError(f"choose at most {self.max_items}")
            return picked
        if self.choices:
            return self._choice(text)
        if self.kind == "boolean":
            if text.lower() in _YES:
                return True
            if text.lower() in _NO:
                return False
            raise ValueError("answer y or n")
        if self.kind in ("number", "integer"):
            try:
                number: float | int = int(text) if self.kind == "integer" else float(text)
            except ValueError:
                raise ValueError(f"expected {'a whole number' if self.kind == 'integer' else 'a number'}") from None
            if self.minimum is not None and number < self.minimum:
                raise ValueError(f"at least {self.minimum:g}")
            if self.maximum is not None and number > self.maximum:
                raise ValueError(f"at most {self.maximum:g}")
            return number
        if self.min_length is not None and len(text) < self.min_length:
            raise ValueError(f"at least {self.min_length} characters")
        if self.max_length is not None and len(text) > self.max_length:
            raise ValueError(f"at most {self.max_length} characters")
        _check_format(self.format, text)
        return text

    def _choice(self, text: str) -> Any:
        for value, label in self.choices:
            if text in (str(value), label):
                return value
        if text.isdigit() and 1 <= int(text) <= len(self.choices):
            return self.choices[int(text) - 1][0]
        raise ValueError("choose one of: " + ", ".join(label for _, label in self.choices))

    def _label(self, value: Any) -> str:
        return next((label for v, label in self.choices if v == value), str(value))


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """The fields of a requested schema, in its order."""
    required = set(schema.get("required") or [])
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        # A multi-select lists its choices under `items`, as an enum or anyOf const/title pairs.
        choices = _choices(prop.get("items") or {}) if prop.get("type") == "array" else _choices(prop)
        out.append(
            FormField(
                name=name,
                kind=str(prop.get("type", "string")),
                title=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                required=name in required,
                default=prop.get("default"),
                choices=choices,
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                min_length=prop.get("minLength"),
                max_length=prop.get("maxLength"),
                format=prop.get("format"),
                min_items=prop.get("minItems"),
                max_items=prop.get("maxItems"),
            )
        )
    return out


def _choices(prop: dict[str, Any]) -> list[tuple[Any, str]]:
    """(value, label) pairs: an enum (with legacy enumNames), or oneOf/anyOf const/title pairs."""
    if isinstance(prop.get("enum"), list):
        names = prop.get("enumNames") or prop["enum"]
        return [(value, str(label)) for value, label in zip(prop["enum"], names, strict=False)]
    options = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(options, list):
        return [(o.get("const"), str(o.get("title", o.get("const")))) for o in options if "const" in o]
    return []


async def fill_form(
    server: str, message: str, schema: dict[str, Any], ask: Ask, show: Show
) -> tuple[Literal["accept", "decline", "cancel"], Any]:
    """Ask whether to answer, then each field; returns (action, content) for an ElicitResult."""
    fields = form_fields(schema)
    show(f"{server} asks: {message}")
    for f in fields:
        if f.description:
            show(f"  {f.title}: {f.description}")
    choice = (await ask("  answer? [a]ccept / [d]ecline / [c]ancel: ")).strip().lower()
    if choice in ("d", "decline"):
        return "decline", None
    if choice not in ("a", "accept", ""):
        return "cancel", None
    content: dict[str, Any] = {}
    for f in fields:
        while True:
            text = await ask(f.prompt())
            if not text.strip():
                if f.default is not None:
                    content[f.name] = f.default
                    break
                if not f.required:
                    break
                show(f"  {f.title} is required")
                continue
            try:
                content[f.name] = f.parse(text)
                break
            except ValueError as exc:
                show(f"  {f.title}: {exc}")
    return "accept", content
