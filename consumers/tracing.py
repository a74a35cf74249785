"""OpenTelemetry tracing of the enrich stage: one span per micro-batch, off by default.

Why per batch: an event's work is done in its batch (one model call, one produce round), so a
span per event would be thousands of identical children. The span carries the batch's size,
what was dead-lettered and the input partitions, and *links* to the traces its inputs arrived
with (their W3C ``traceparent`` headers), so a trace that entered Kafka upstream reaches the batch
that enriched it; each output record's own ``traceparent`` continues its input's trace
(``consumers.headers``). Spans are exported over OTLP/HTTP by a background batch processor, so the
stage never waits for the collector.

``NoTracer`` is what runs without ``tracing.otlp_endpoint``: the stage calls the same methods and
nothing happens, so the loop has no tracing branches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from shoppulse.consumers.settings import TracingSettings

log = logging.getLogger(__name__)

Attributes = Mapping[str, Any]
Parents = Iterable[bytes | None]  # the inputs' traceparent headers

MAX_LINKS = 32  # links per batch span: enough to follow the inputs, bounded for a 4,096-event batch


class TracingUnavailable(RuntimeError):
    """An endpoint is configured but the OpenTelemetry packages are not installed."""


class NoTracer:
    def batch(self, name: str, start_ns: int, end_ns: int, attributes: Attributes, parents: Parents = ()) -> None:
        """Nothing: tracing is off."""

    def shutdown(self) -> None:
        """Nothing to flush."""


class OtlpTracer(NoTracer):
    """Spans to an OTLP/HTTP collector through the OpenTelemetry SDK."""

    def __init__(self, endpoint: str, service_name: str, stage: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise TracingUnavailable(
                f"tracing.otlp_endpoint is set but OpenTelemetry is not installed ({exc}): "
                "pip install 'shoppulse[otel]'"
            ) from None
        resource = Resource.create({"service.name": service_name, "shoppulse.stage": stage})
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("shoppulse")
        log.info("tracing: a span per batch to %s", endpoint)

    def batch(self, name: str, start_ns: int, end_ns: int, attributes: Attributes, parents: Parents = ()) -> None:
        from opentelemetry.trace import Link

        links = []
        for traceparent in parents:
            context = span_context(traceparent)
            if context is not None:
                links.append(Link(context))
                if len(links) == MAX_LINKS:
                    break
        span = self._tracer.start_span(name, start_time=start_ns, attributes=dict(attributes), links=links)
        span.end(end_time=end_ns)

    def shutdown(self) -> None:
        self._provider.shutdown()  # flushes what the batch processor still holds


def span_context(traceparent: bytes | None) -> Any | None:
    """The remote ``SpanContext`` of a W3C ``traceparent`` header, or None if it is absent or malformed."""
    if not traceparent:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    parts = traceparent.decode("ascii", "replace").strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


def make_tracer(settings: TracingSettings, stage: str) -> NoTracer:
    """``OtlpTracer`` when an endpoint is configured, else ``NoTracer``."""
    if not settings.otlp_endpoint:
        return NoTracer()
    return OtlpTracer(settings.otlp_endpoint, settings.service_name, stage)
