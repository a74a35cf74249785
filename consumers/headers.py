"""Kafka headers and timestamps of the records shoppulse writes.

Why: windowed consumers downstream (Kafka Streams, Flink, ksqlDB) read a record's timestamp as
its event time, so outputs carry the input event's time, not the time they were produced; and a
reader should know what a record is without parsing it, and follow a trace across the stages.
Every output carries ``content-type``, ``schema-version``, ``event-id`` (when it comes from one
input event) and a W3C ``traceparent`` that continues the input's trace when it had one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

CONTENT_TYPE = b"application/json"
_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

Headers = list[tuple[str, bytes]]


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
