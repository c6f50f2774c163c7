"""OpenTelemetry export (the optional `otel` extra).

agentdeck opens a span per run, per turn and per model request; the `mcp` client adds a span per
request to a server (under the turn that asked for it) and carries the trace to it as `traceparent`
in `_meta`. Both use OpenTelemetry's global
tracer provider, which this module sets when `telemetry:` is configured (without it every span is
a no-op).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from app.config.loader import LoadedConfig
from app.errors import ConfigError


def start_telemetry(loaded: LoadedConfig) -> Callable[[], None] | None:
    """Export spans to the configured OTLP/HTTP endpoint; returns the flush-and-stop function (None when off)."""
    settings = loaded.config.telemetry
    if settings is None:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(
            f"{loaded.where('telemetry')}: exporting traces needs the OpenTelemetry SDK",
            hint="pip install 'agentdeck[otel]' (or remove telemetry: from the config)",
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces", headers=settings.headers)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.shutdown


def tracer() -> Any:
    """agentdeck's tracer (a no-op one unless telemetry is on)."""
    from opentelemetry import trace

    return trace.get_tracer("agentdeck")


class Turns:
    """A run's turns as spans: each model request opens the next turn, whose tool calls hang under it.

    The Agents SDK may make the model request in a task of its own, so a turn cannot simply be
    made current there; the model wrapper asks for `next()` and each tool call enters `current()`.
    """

    def __init__(self, run_span: Any) -> None:
        self.run_span = run_span
        self.count = 0
        self.span: Any = None

    def next(self) -> Any:
        """End the turn in progress and open the next one; the OpenTelemetry context to start its model span in."""
        from opentelemetry import trace

        self.close()
        self.count += 1
        parent = trace.set_span_in_context(self.run_span)
        self.span = tracer().start_span(f"agentdeck turn {self.count}", context=parent)
        return trace.set_span_in_context(self.span)

    def current(self) -> AbstractContextManager[Any]:
        """A block whose spans (the mcp client's tool-call span) belong to the turn in progress."""
        from opentelemetry import trace

        if self.span is None:
            return nullcontext()
        # A failed tool call is that call's error (its own span says so), not the turn's.
        return trace.use_span(self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False)

    def close(self) -> None:
        """End the turn in progress, if any."""
        if self.span is not None:
            self.span.end()
            self.span = None


def in_turn(turns: Turns | None) -> AbstractContextManager[Any]:
    """The turn in progress's block, or nothing when the run keeps no turns."""
    return nullcontext() if turns is None else turns.current()
