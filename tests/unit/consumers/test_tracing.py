"""A span per enrich batch over OTLP/HTTP, linked to the inputs' traces; nothing without an endpoint."""

from __future__ import annotations

import sys

import pytest

from shoppulse.consumers.settings import TracingSettings
from shoppulse.consumers.tracing import NoTracer, OtlpTracer, TracingUnavailable, make_tracer, span_context
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
            {"messaging.batch.message_count": 3, "shoppulse.dead_lettered": 1},
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
