"""OpenTelemetry export (the optional `otel` extra).

agentdeck opens a span per run and per model request; the `mcp` client adds a span per request to
a server and carries the trace to it as `traceparent` in `_meta`. Both use OpenTelemetry's global
tracer provider, which this module sets when `telemetry:` is configured (without it every span is
a no-op).
"""

from __future__ import annotations

from collections.abc import Callable
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
