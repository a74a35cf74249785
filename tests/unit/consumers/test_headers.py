"""Output headers (W3C traceparent continued from the input's, or a new trace) and record timestamps."""

import re

from shoppulse.consumers.headers import child_traceparent, header, output_headers, record_timestamp_ms

W3C = re.compile(rb"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_a_child_keeps_the_trace_and_flags_with_a_new_span() -> None:
    parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    child = child_traceparent(parent)
    assert W3C.match(child)
    assert child.split(b"-")[1] == parent.split(b"-")[1] and child.split(b"-")[3] == b"01"
    assert child.split(b"-")[2] != parent.split(b"-")[2]


def test_no_or_a_bad_parent_starts_a_new_trace() -> None:
    for parent in (None, b"", b"garbage", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01"):
        child = child_traceparent(parent)
        assert W3C.match(child) and child.split(b"-")[1] != b"0" * 32
    assert child_traceparent(None) != child_traceparent(None)


def test_headers_of_an_output() -> None:
    headers = output_headers(1, "r-1", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")
    assert [name for name, _ in headers] == ["content-type", "schema-version", "event-id", "traceparent"]
    assert header(headers, "event-id") == b"r-1" and header(headers, "schema-version") == b"1"
    assert header(output_headers(1, None, b"x"), "event-id") is None
    assert header([("a", b"1"), ("a", b"2")], "a") == b"2" and header(None, "a") is None


def test_record_timestamps_are_event_time_within_what_the_broker_keeps() -> None:
    now, week = 1_800_000_000_000, 7 * 24 * 3600 * 1000
    assert record_timestamp_ms(now - 1000, now, week) == now - 1000  # live: event time
    assert record_timestamp_ms(now - week, now, week) == now - week // 2  # older than half: kept half the week
    assert record_timestamp_ms(now + 2 * 3600_000, now, week) == now  # ahead of the clock: now
    assert record_timestamp_ms(now - 70 * week, now, None) == now - 70 * week  # compacted: no floor
    assert record_timestamp_ms(now + 1, now, None) == now
