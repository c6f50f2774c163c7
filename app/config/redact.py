"""Hide secret values before a config is shown."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|apikey|token|access[_-]?token|password|passwd|secret|authorization|auth|cookie|credentials?)($|[_-])",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """True for names like api_key, OPENAI_API_KEY, Authorization, X-Api-Key, db_password."""
    return bool(_SECRET_KEY.search(key))


def redact(data: Any) -> Any:
    """A copy of the data with the values of secret-looking keys masked."""
    if isinstance(data, dict):
        return {
            k: (MASK if is_secret_key(str(k)) and v not in (None, "") and not isinstance(v, dict | list) else redact(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def redact_url(url: str) -> str:
    """A URL with the password of its userinfo and every query value masked."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
