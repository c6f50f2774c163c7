"""A model that records each of its requests (model, tokens, duration) in the audit trail and as a span."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from agents.models.interface import Model

from app.audit.trail import AuditTrail
from app.telemetry import current_log


class AuditedModel(Model):
    """Wraps the model an agent (or a server's sampling request) uses; everything else is the inner model's."""

    def __init__(self, inner: Model, name: str, trail: AuditTrail | None) -> None:
        self.inner = inner
        self.name = name
        self.trail = trail

    def _span(self) -> Any:
        from app.otel import tracer

        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": self.name}
        turns = getattr(current_log(), "turns", None)
        context = None if turns is None else turns.next()  # each request to the model starts a turn
        return tracer().start_span(f"chat {self.name}", context=context, attributes=attributes)

    def _record(self, span: Any, started: float, usage: Any, error: BaseException | None) -> None:
        text = None if error is None else f"{type(error).__name__}: {error}"
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", getattr(usage, "input_tokens", 0) or 0)
            span.set_attribute("gen_ai.usage.output_tokens", getattr(usage, "output_tokens", 0) or 0)
        if text is not None:
            from opentelemetry.trace import StatusCode

            span.set_status(StatusCode.ERROR, text)
        span.end()
        if self.trail is None:
            return
        run = getattr(current_log(), "audit", None)
        if run is None:  # a sampling request outside any run's context: attributed to no run
            run = self.trail.run(None)
        run.model_call(self.name, time.perf_counter() - started, usage, text)

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        started, span = time.perf_counter(), self._span()
        try:
            response = await self.inner.get_response(*args, **kwargs)
        except Exception as exc:
            self._record(span, started, None, exc)
            raise
        self._record(span, started, response.usage, None)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return self._stream(args, kwargs)

    async def _stream(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        started, span = time.perf_counter(), self._span()
        usage = None
        try:
            async for event in self.inner.stream_response(*args, **kwargs):
                if getattr(event, "type", None) == "response.completed":
                    usage = getattr(getattr(event, "response", None), "usage", None)
                yield event
        except BaseException as exc:
            self._record(span, started, usage, exc)
            raise
        self._record(span, started, usage, None)

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)

    async def close(self) -> None:
        await self.inner.close()

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)
