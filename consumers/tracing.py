"""OpenTelemetry tracing of the stages: one span per batch (enrich, insights) or record (profiles), off by default.

Why per batch: an event's work is done in its batch (one model call, one produce round), so a
span per event would be thousands of identical children. The span carries the batch's size,
what was dead-lettered and the input partitions, and *links* to the traces its inputs arrived
with (their W3C ``traceparent`` headers), so a trace that entered Kafka upstream reaches the batch
that enriched it; each output record's own ``traceparent`` continues its input's trace
(``consumers.headers``). Spans are exported over OTLP/HTTP by a background batch processor, so the
stage never waits for the collector.

``NoTracer`` is what runs without ``tracing.otlp_endpoint``: the stage calls the same methods and
nothing happens, so the loop has no tracing branches; span attributes are passed as a function,
which ``NoTracer`` never calls. The faust stages wrap their agents' handlers with
``traced_handler`` (a span per call, linked to the records' ``traceparent`` headers); with
``NoTracer`` the handler is returned unwrapped.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from shoppulse.consumers.headers import header
from shoppulse.consumers.settings import TracingSettings

log = logging.getLogger(__name__)

Attributes = Mapping[str, Any]
LazyAttributes = Callable[[], Attributes]  # built only when a span is recorded
Parents = Iterable[bytes | None]  # the inputs' traceparent headers

MAX_LINKS = 32  # links per batch span: enough to follow the inputs, bounded for a 4,096-event batch


class TracingUnavailable(RuntimeError):
    """An endpoint is configured but the OpenTelemetry packages are not installed."""


class NoTracer:
    def batch(self, name: str, start_ns: int, end_ns: int, attributes: LazyAttributes, parents: Parents = ()) -> None:
        """Nothing: tracing is off (``attributes`` is never called)."""

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

    def batch(self, name: str, start_ns: int, end_ns: int, attributes: LazyAttributes, parents: Parents = ()) -> None:
        from opentelemetry.trace import Link

        links = []
        for traceparent in parents:
            context = span_context(traceparent)
            if context is not None:
                links.append(Link(context))
                if len(links) == MAX_LINKS:
                    break
        span = self._tracer.start_span(name, start_time=start_ns, attributes=dict(attributes()), links=links)
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


def stage_tracer(settings: TracingSettings, stage: str) -> NoTracer:
    """``make_tracer`` for ``shoppulse run STAGE``: a missing extra is one line and exit 2, before any wait."""
    try:
        return make_tracer(settings, stage)
    except TracingUnavailable as exc:
        print(f"shoppulse run {stage}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _traceparent(event: Any) -> bytes | None:
    """A faust event's ``traceparent`` header (faust hands headers as a list of pairs or a mapping)."""
    headers = getattr(event.message, "headers", None) or ()
    return header(list(headers.items()) if isinstance(headers, Mapping) else headers, "traceparent")


def traced_handler(
    tracer: NoTracer, name: str, handle: Callable[[Any], Awaitable[Any]], batch: bool
) -> Callable[[Any], Awaitable[Any]]:
    """``handle`` (of one event, or of a list when ``batch``) recording a span per call, linked to the
    events' traces; ``handle`` itself when tracing is off."""
    if type(tracer) is NoTracer:
        return handle

    async def traced(arg: Any) -> Any:
        events = arg if batch else [arg]
        started = time.time_ns()
        try:
            return await handle(arg)
        finally:

            def attributes() -> dict[str, Any]:
                messages = [e.message for e in events]
                return {
                    "messaging.system": "kafka",
                    "messaging.batch.message_count": len(events),
                    "messaging.kafka.partitions": sorted({f"{m.topic}[{m.partition}]" for m in messages}),
                    "messaging.kafka.offsets": [f"{m.topic}[{m.partition}]@{m.offset}" for m in messages][:MAX_LINKS],
                }

            tracer.batch(name, started, time.time_ns(), attributes, parents=(_traceparent(e) for e in events))

    return traced
