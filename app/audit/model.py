"""A model that records each of its requests (model, tokens, duration) in the audit trail."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from agents.models.interface import Model

from app.audit.trail import AuditTrail
from app.telemetry import current_log


class AuditedModel(Model):
    """Wraps the model an agent (or a server's sampling request) uses; everything else is the inner model's."""

    def __init__(self, inner: Model, name: str, trail: AuditTrail) -> None:
        self.inner = inner
        self.name = name
        self.trail = trail

    def _record(self, started: float, usage: Any, error: BaseException | None) -> None:
        log = current_log()
        run = getattr(log, "audit", None)
        if run is None:  # a sampling request outside any run's context: attributed to no run
            run = self.trail.run(None)
        text = None if error is None else f"{type(error).__name__}: {error}"
        run.model_call(self.name, time.perf_counter() - started, usage, text)

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = await self.inner.get_response(*args, **kwargs)
        except Exception as exc:
            self._record(started, None, exc)
            raise
        self._record(started, response.usage, None)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return self._stream(args, kwargs)

    async def _stream(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        usage = None
        try:
            async for event in self.inner.stream_response(*args, **kwargs):
                if getattr(event, "type", None) == "response.completed":
                    usage = getattr(getattr(event, "response", None), "usage", None)
                yield event
        except Exception as exc:
            self._record(started, usage, exc)
            raise
        self._record(started, usage, None)

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)

    async def close(self) -> None:
        await self.inner.close()

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)
