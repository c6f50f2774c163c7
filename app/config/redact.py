"""The one redaction function: everything agentdeck prints that may carry a secret goes through `redact`.

A secret is recognised by its name (a config key, an environment variable, a header, a `--flag`),
by where it sits (a URL's password or query values, a bearer token), by its shape (well-known API
key prefixes), or because it is a value the caller knows to be secret (a server's stderr is
masked with the values of the config's and the environment's secrets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# Any name containing one of these is a secret: OPENAI_API_KEY, GITHUB_TOKEN, DB_PASSWORD, Authorization.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASS", "AUTH", "CREDENTIAL", "COOKIE", "SESSION")
# Short words count only as a whole part of the name: GITHUB_PAT is a secret, PATH is not.
_SECRET_PARTS = {"PAT", "SIG", "SIGNATURE"}  # not PWD: the shell's working directory
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])|[0-9]+")
# Values that are references or placeholders, not secrets: `${VAR}`, `...`, `***`.
_NOT_A_VALUE = re.compile(r"^(\$\{[^}]*\}|\.{3}|\*{3}|<[^>]*>)$")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_BEARER = re.compile(r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/=-]{4,}|\b(Basic)\s+[A-Za-z0-9+/]{8,}={0,2}")
# Inside free text: `api_key=VALUE` and `--token=VALUE`, `--api-key VALUE`, and header lines.
_ASSIGNED = re.compile(r"(?<![\w.\-/])(?P<name>-{0,2}[A-Za-z_][A-Za-z0-9_-]*)(?P<sep>=)(?P<value>[^\s,;&'\"]+)")
_FLAG_VALUE = re.compile(
    r"(?<![\w.\-/])(?P<name>--?[A-Za-z][A-Za-z0-9_-]*)(?P<sep>[ \t]+)(?P<value>[^\s\-,;&'\"][^\s,;&'\"]*)"
)
_HEADER = re.compile(r"(?m)^(?P<name>[ \t]*[A-Za-z][A-Za-z0-9_-]*)(?P<sep>:[ \t]*)(?P<value>\S.*)$")
_TOKEN_SHAPES = re.compile(
    r"\b(sk-[A-Za-z0-9_-]{16,}|ghp_[A-Za-z0-9]{20,}|gho_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})"
)
# Known secret values shorter than this are not masked in free text: they would hit ordinary words.
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    """True for names that mean a secret: api_key, GITHUB_PAT, Authorization, X-Api-Key, db_password."""
    upper = name.upper()
    if any(word in upper for word in _SECRET_WORDS):
        return True
    return any(part.upper() in _SECRET_PARTS for part in _NAME_PARTS.findall(name))


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` with every secret masked: mappings by key, argument lists, URLs and text."""
    known = _known(secrets)
    return _redact(value, known)


def _known(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret that contains another is masked whole.
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_item(str(k), v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return _redact_args(list(value), known)
        return [_redact(v, known) for v in value]
    if isinstance(value, str):
        return _redact_text(value, known)
    return value


def _redact_item(key: str, value: Any, known: list[str]) -> Any:
    if isinstance(value, str) and value and is_secret_name(key) and not _NOT_A_VALUE.match(value):
        return MASK
    return _redact(value, known)


def _redact_args(args: list[str], known: list[str]) -> list[str]:
    """A command line: the value after `--api-key`, `--token=VALUE`, `NAME=VALUE`, URLs."""
    out: list[str] = []
    secret_next = False
    for arg in args:
        if secret_next and not arg.startswith("-"):
            out.append(arg if _NOT_A_VALUE.match(arg) else MASK)
            secret_next = False
            continue
        secret_next = arg.startswith("-") and "=" not in arg and is_secret_name(arg.lstrip("-"))
        out.append(_redact_text(arg, known))
    return out


def _redact_text(text: str, known: list[str]) -> str:
    for secret in known:
        text = text.replace(secret, MASK)
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} {MASK}", text)
    text = _TOKEN_SHAPES.sub(MASK, text)

    def assigned(match: re.Match[str]) -> str:
        name, value = match.group("name"), match.group("value")
        if not is_secret_name(name.lstrip("-")) or _NOT_A_VALUE.match(value) or value == MASK:
            return match.group(0)
        return f"{name}{match.group('sep')}{MASK}"

    for pattern in (_ASSIGNED, _FLAG_VALUE, _HEADER):
        text = pattern.sub(assigned, text)
    return text


def mask_known(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of `value` with only the given secret values (and well-known key shapes) masked."""
    known = _known(secrets)

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            for secret in known:
                item = item.replace(secret, MASK)
            return _TOKEN_SHAPES.sub(MASK, item)
        return item

    return walk(value)


def redact_url(url: str) -> str:
    """A URL with the password of its userinfo and every query value masked."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password is not None:
        netloc = netloc.replace(f":{password}@", f":{MASK}@", 1)
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_command(argv: list[str], secrets: Iterable[str] = ()) -> str:
    """A command line for display, secrets masked."""
    return " ".join(redact(argv, secrets))


def secret_values(data: Any, environ: Mapping[str, str] | None = None) -> set[str]:
    """The secret values in config data and an environment, to mask them wherever else they appear."""
    found: set[str] = set()
    _collect(data, found)
    for name, value in (environ or {}).items():
        if value and is_secret_name(name):
            found.add(value)
    return {s for s in found if len(s) >= MIN_SECRET_LEN}


def known_secrets(loaded: Any) -> set[str]:
    """The secret values of a loaded config and of the environment it was interpolated from."""
    return secret_values(loaded.config.model_dump(mode="json", exclude_none=True), loaded.env)


def _collect(value: Any, found: set[str]) -> None:
    from urllib.parse import parse_qsl, urlsplit

    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and is_secret_name(str(key)) and not _NOT_A_VALUE.match(item):
                found.add(item)
                found.update(item.split()[1:])  # the token of `Bearer TOKEN`
            else:
                _collect(item, found)
    elif isinstance(value, list | tuple):
        items = [v for v in value if isinstance(v, str)]
        for before, arg in zip(["", *items], items, strict=False):
            if before.startswith("-") and "=" not in before and is_secret_name(before.lstrip("-")):
                found.add(arg)
            name, eq, rest = arg.partition("=")
            if eq and is_secret_name(name.lstrip("-")):
                found.add(rest)
        for item in value:
            _collect(item, found)
    elif isinstance(value, str) and "://" in value:
        for match in _URL.finditer(value):
            try:
                parts = urlsplit(match.group(0))
                if parts.password:
                    found.add(parts.password)
                found.update(v for _, v in parse_qsl(parts.query))
            except ValueError:
                continue
