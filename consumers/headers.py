"""Kafka headers and timestamps of the records shoppulse writes.

Why: windowed consumers downstream (Kafka Streams, Flink, ksqlDB) read a record's timestamp as
its event time, so outputs carry the input event's time (within the bounds the broker keeps, see
``record_timestamp_ms``), not the time they were produced; and a reader should know what a record
is without parsing it, and follow a trace across the stages. Every output carries
``content-type``, ``schema-version``, ``event-id`` (when it comes from one input event) and a W3C
``traceparent`` that continues the input's trace when it had one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

CONTENT_TYPE = b"application/json"
_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

Headers = list[tuple[str, bytes]]

DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000


def record_timestamp_ms(event_ms: int, now_ms: int, retention_ms: int | None = None) -> int:
    """The Kafka timestamp of an output whose event happened at ``event_ms``: event time, clamped
    into [now − retention/2, now].

    - Never ahead of now: a broker refuses a record more than ``message.timestamp.after.max.ms``
      ahead of its clock (one hour by default since Kafka 4.0) with INVALID_TIMESTAMP, which would
      stop the stage on one event from a fast client clock (the contracts admit a day of skew).
    - Never older than half the topic's ``retention_ms`` (topics with time retention): the broker
      deletes a segment once its newest timestamp is older than the retention, at its next check,
      so a backfill of old events would lose its outputs before stages 2 and 3 read them. Clamped,
      every output is kept at least half the retention after it is written. Compacted topics
      (``retention_ms`` None) keep event time however old.

    The value always carries the event's own ``ts``.
    """
    ceiling = min(event_ms, now_ms)
    if retention_ms is None:
        return ceiling
    return max(ceiling, now_ms - retention_ms // 2)


def header(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The last value of header ``name`` (Kafka allows repeats), or None."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found


def child_traceparent(parent: bytes | None) -> bytes:
    """A traceparent for an output: the parent's trace id with a new span id, or a new trace.

    A malformed parent (or an all-zero trace id, invalid in W3C Trace Context) starts a new trace.
    """
    match = _TRACEPARENT.match(parent or b"")
    trace_id = match.group(1) if match and match.group(1) != b"0" * 32 else os.urandom(16).hex().encode()
    flags = match.group(3) if match else b"01"
    return b"00-" + trace_id + b"-" + os.urandom(8).hex().encode() + b"-" + flags


def output_headers(schema_version: int, event_id: str | None, traceparent: bytes) -> Headers:
    headers: Headers = [("content-type", CONTENT_TYPE), ("schema-version", str(schema_version).encode())]
    if event_id:
        headers.append(("event-id", event_id.encode("utf-8")))
    headers.append(("traceparent", traceparent))
    return headers
