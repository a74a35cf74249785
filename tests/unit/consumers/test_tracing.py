"""Spans over OTLP/HTTP (per enrich or insights batch, per profiles record), linked to the inputs'
traces; nothing, and no attribute built, without an endpoint."""

from __future__ import annotations

import sys

import pytest

from shoppulse.consumers.settings import TracingSettings
from shoppulse.consumers.tracing import (
    NoTracer,
    OtlpTracer,
    TracingUnavailable,
    make_tracer,
    span_context,
    traced_handler,
)
from tests.otlp_collector import otlp_collector

pytest.importorskip("opentelemetry.sdk", reason="the otel extra")

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01".encode()


def test_traceparent_headers_become_remote_span_contexts() -> None:
    context = span_context(PARENT)
    assert context is not None and f"{context.trace_id:032x}" == TRACE and context.is_remote
    assert context.trace_flags.sampled
    for bad in (None, b"", b"garbage", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", b"00-xyz-abc-01"):
        assert span_context(bad) is None, bad


def test_no_endpoint_no_tracer() -> None:
    assert type(make_tracer(TracingSettings(), "enrich")) is NoTracer


def test_a_batch_span_reaches_the_collector_with_its_attributes_and_links() -> None:
    with otlp_collector() as collector:
        tracer = make_tracer(TracingSettings(otlp_endpoint=collector.url, service_name="shop-a"), "enrich")
        assert isinstance(tracer, OtlpTracer)
        tracer.batch(
            "enrich.batch",
            1_000_000_000,
            1_250_000_000,
            lambda: {"messaging.batch.message_count": 3, "shoppulse.dead_lettered": 1},
            parents=[PARENT, None, b"garbage"],
        )
        tracer.shutdown()  # flushes the batch processor
        [span] = collector.spans
    assert span["name"] == "enrich.batch" and span["duration_ns"] == 250_000_000
    assert span["resource"]["service.name"] == "shop-a" and span["resource"]["shoppulse.stage"] == "enrich"
    assert span["attributes"] == {"messaging.batch.message_count": 3, "shoppulse.dead_lettered": 1}
    assert span["links"] == [TRACE]  # the malformed and missing parents are left out


def test_an_endpoint_without_the_packages_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(TracingUnavailable, match=r"pip install 'shoppulse\[otel\]'"):
        make_tracer(TracingSettings(otlp_endpoint="http://127.0.0.1:1/v1/traces"), "enrich")


class _Message:
    def __init__(self, partition: int, offset: int, headers: object) -> None:
        self.topic, self.partition, self.offset, self.headers = "user-signals", partition, offset, headers


class _Event:
    def __init__(self, partition: int, offset: int, headers: object = None) -> None:
        self.message = _Message(partition, offset, headers)


def test_without_an_endpoint_a_faust_handler_is_not_wrapped_and_no_attribute_is_built() -> None:
    async def handle(event: object) -> None:
        return None

    assert traced_handler(NoTracer(), "profiles.signal", handle, batch=False) is handle
    NoTracer().batch("enrich.batch", 0, 1, lambda: pytest.fail("attributes built with tracing off"))


def test_faust_handlers_record_a_span_per_call_linked_to_their_records_traces() -> None:
    import asyncio

    handled: list[object] = []

    async def handle(arg: object) -> str:
        handled.append(arg)
        return "done"

    with otlp_collector() as collector:
        tracer = make_tracer(TracingSettings(otlp_endpoint=collector.url), "profiles")
        one = traced_handler(tracer, "profiles.signal", handle, batch=False)
        many = traced_handler(tracer, "insights.batch", handle, batch=True)
        event = _Event(2, 17, [("traceparent", PARENT)])
        batch = [_Event(0, 5, {"traceparent": PARENT}), _Event(1, 9), _Event(0, 6, [("other", b"x")])]
        assert asyncio.run(one(event)) == "done" and asyncio.run(many(batch)) == "done"
        tracer.shutdown()
        spans = {span["name"]: span for span in collector.spans}
    assert handled == [event, batch]  # the handler ran, with what the agent handed it
    signal, insights = spans["profiles.signal"], spans["insights.batch"]
    assert signal["attributes"]["messaging.kafka.offsets"] == ["user-signals[2]@17"]
    assert signal["links"] == [TRACE] and signal["resource"]["shoppulse.stage"] == "profiles"
    assert insights["attributes"]["messaging.batch.message_count"] == 3
    assert insights["attributes"]["messaging.kafka.partitions"] == ["user-signals[0]", "user-signals[1]"]
    assert insights["links"] == [TRACE]  # headers as a mapping or as pairs; records without one add nothing
