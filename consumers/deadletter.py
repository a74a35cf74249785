"""The dead-letter envelope both stages write: why a record was refused, where it came from, its bytes.

One module so that both stages mask and bound the same way (docs/events.md, "dead-letter").
Everything readable in the envelope is masked before it is cut (``mask_and_cut``): the message
may quote a field's value (a phone number sent as ``ts``), the key or a field name may be one.
Every readable part is bounded, so the envelope always fits the broker's message limit whatever
the refused record held (a 200 KB key of control characters escaped to 1.2 MB of JSON once).
Only the raw bytes stay unmasked, base64-encoded, because replaying a fixed record needs them:
give the topic the ACLs of the input topics.
"""

from __future__ import annotations

import base64
import logging
import time

from shoppulse.consumers import metrics
from shoppulse.consumers.contracts import dumps
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.headers import Headers, child_traceparent, output_headers
from shoppulse.consumers.records import DeadLetter
from shoppulse.models.serving.text import mask_and_cut

log = logging.getLogger(__name__)

DEAD_LETTER_SCHEMA_VERSION = 1
# Raw bytes kept: base64 grows them by 4/3, and the broker's default limit is 1 MB.
MAX_RAW_BYTES = 256 * 1024
PREVIEW_CHARS = 200
KEY_CHARS = 256
MESSAGE_CHARS = 500
FIELD_CHARS = 200


def _shown(value: bytes | str | None, limit: int) -> str | None:
    if value is None or value == b"" or value == "":
        return None
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    return mask_and_cut(text, limit)


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the input key, masked and bounded like the envelope's ``key``."""
    shown = _shown(key, KEY_CHARS)
    return shown.encode("utf-8") if shown is not None else None


def dead_letter_record(
    *,
    stage: str,
    raw: bytes | None,
    key: bytes | None,
    source: RecordCoordinates,
    reason: str,
    message: str,
    field: str | None = None,
    now_ms: int | None = None,
) -> DeadLetter:
    """The envelope of one refused record; ``source`` is where it sits in Kafka."""
    kept = raw[:MAX_RAW_BYTES] if raw else b""
    # Bytes enough for PREVIEW_CHARS characters of any script (UTF-8: at most 4 bytes each).
    preview = _shown(kept[: 4 * PREVIEW_CHARS + 64], PREVIEW_CHARS)
    return DeadLetter(
        schema_version=DEAD_LETTER_SCHEMA_VERSION,
        reason=reason,
        message=_shown(message, MESSAGE_CHARS) or "",
        field=_shown(field, FIELD_CHARS),
        source=source,
        key=_shown(key, KEY_CHARS),
        value_base64=base64.b64encode(kept).decode("ascii") if kept else None,
        value_bytes=len(raw) if raw else 0,
        value_truncated=bool(raw) and len(raw) > MAX_RAW_BYTES,
        value_preview=preview or "",
        stage=stage,
        time=now_ms if now_ms is not None else int(time.time() * 1000),
    )


def dead_letter_message(
    stage: str, raw: bytes | None, key: bytes | None, source: RecordCoordinates, reason: str, message: str
) -> tuple[bytes | None, bytes, Headers]:
    """Count and log one refused record; its dead letter's Kafka key, value and headers, ready to send.

    What the faust stages and stage 3's rekeyer send; enrich builds its own outputs (its dead letters
    continue the input's trace and keep its time, ``consumers.enrich.delivery.outputs_of``).
    """
    metrics.EVENTS_DEAD_LETTERED.labels(stage, source.topic, reason).inc()
    log.warning("dead-lettering %s[%d]@%d (%s)", source.topic, source.partition, source.offset, reason)
    record = dead_letter_record(stage=stage, raw=raw, key=key, source=source, reason=reason, message=message)
    headers = output_headers(DEAD_LETTER_SCHEMA_VERSION, None, child_traceparent(None))
    return dead_letter_key(key), dumps(record.to_wire()), headers
