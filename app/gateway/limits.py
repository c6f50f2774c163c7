"""Rate limits of gateway callers: token buckets per identity and per (identity, tool)."""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable

from app.config.governance import RateLimit
from app.gateway.tokens import Identity


class Bucket:
    """Holds up to `calls` tokens, refilled at calls/per per second; each call takes one."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.capacity = float(limit.calls)
        self.rate = limit.calls / limit.per
        self.tokens = self.capacity
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0: one is there now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class Limiter:
    """Every caller's buckets, created on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def check(self, identity: Identity, prefixed: str, original: str) -> str | None:
        """None when the call may go ahead, else the refusal (naming the limit and when to retry)."""
        now = self.clock()
        limits: list[tuple[str, str, RateLimit]] = []
        for pattern, limit in identity.tool_rates:
            if fnmatch.fnmatchcase(prefixed, pattern) or fnmatch.fnmatchcase(original, pattern):
                limits.append((f"tool:{prefixed}", f"'{prefixed}'", limit))
                break
        if identity.rate is not None:
            limits.append(("*", "all tools", identity.rate))
        buckets = [(self.buckets.setdefault((identity.name, key), Bucket(limit, now)), what, limit)
                   for key, what, limit in limits]  # fmt: skip
        for bucket, what, limit in buckets:
            wait = bucket.wait(now)
            if wait > 0:  # nothing is taken from any bucket for a refused call
                retry = max(1, math.ceil(wait))
                return (
                    f"rate limit: '{identity.name}' may make {limit.calls} call(s) to {what} per {limit.per:g} s; "
                    f"Retry-After: {retry} s"
                )
        for bucket, _, _ in buckets:
            bucket.tokens -= 1
        return None
