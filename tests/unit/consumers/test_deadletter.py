"""Dead-letter records: nothing readable echoes personal data, every part is bounded, a validator bug is a record."""

from __future__ import annotations

import base64
import json

import pytest

from shoppulse.consumers.contracts import ContractError, dumps, parse_event
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.deadletter import MAX_RAW_BYTES, dead_letter_key, dead_letter_record
from shoppulse.consumers.enrich.stage import _parse_failure

NOW = 1_780_000_000_000
SOURCE = RecordCoordinates("reviews", 1, 88)
SECRETS = ("13812345678", "zhang.san@example.com", "110101199003071234", "6222021234567890123")


def _record(raw: bytes | None, key: bytes | None, message: str = "m", field: str | None = None) -> dict:
    """The envelope as it goes on the wire."""
    return dead_letter_record(
        stage="enrich", raw=raw, key=key, source=SOURCE, reason="bad_json", message=message, field=field
    ).to_wire()


def _readable(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "value_base64"}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ts", 13812345678), ("ts", "zhang.san@example.com"), ("rating", 6222020200112233445)],
)
def test_messages_that_quote_a_field_are_masked(field: str, value: object) -> None:
    body = {"event_id": "r-1", "user_id": "u1", "product_id": "p1", "text": "好", "ts": NOW, field: value}
    payload = json.dumps(body).encode()
    with pytest.raises(ContractError) as err:
        parse_event("review", payload, now=NOW)
    assert str(value) in err.value.message  # the validator quotes it: the record must not
    e = err.value
    record = _record(payload, b"13812345678", e.message, e.field)
    readable = _readable(record)
    assert str(value) not in readable and "13812345678" not in readable, readable
    assert base64.b64decode(record["value_base64"]) == payload  # the raw bytes stay, for replay


def test_a_field_name_that_is_personal_data_is_masked() -> None:
    payload = b'{"13812345678": "\\ud800"}'
    with pytest.raises(ContractError) as err:
        parse_event("review", payload, now=NOW)
    assert err.value.field == "13812345678"
    record = _record(payload, None, err.value.message, err.value.field)
    assert "13812345678" not in _readable(record)


def test_the_preview_is_masked_even_where_it_is_cut() -> None:
    for pad in range(0, 220, 7):
        raw = dumps({"text": "好" * pad + "电话13812345678，邮箱zhang.san@example.com，" + "好" * 300})
        preview = _record(raw, b"u1")["value_preview"]
        assert len(preview) <= 200
        assert not any(run in preview for run in ("1381", "2345", "5678", "zhang", "example")), (pad, preview)


@pytest.mark.parametrize("key", [b"k" * 200_000, b"\x01" * 200_000, "张".encode() * 70_000, b"13812345678" * 1000])
def test_huge_keys_give_a_bounded_record_and_a_bounded_kafka_key(key: bytes) -> None:
    record = _record(b"{not json" * 200_000, key)  # 1.8 MB value, 200 KB key
    assert len(dumps(record)) < 400_000  # the broker's default limit is 1 MB
    assert len(record["key"]) <= 256
    assert len(base64.b64decode(record["value_base64"])) == MAX_RAW_BYTES and record["value_truncated"]
    kafka_key = dead_letter_key(key)
    assert kafka_key is not None and len(kafka_key) <= 4 * 256
    assert b"13812345678" not in kafka_key


def test_personal_data_in_the_key_is_masked_in_the_record_and_the_kafka_key() -> None:
    for secret in SECRETS:
        key = f"user-{secret}".encode()
        assert secret.encode() not in (dead_letter_key(key) or b"")
        assert secret not in _readable(_record(b"x", key))


def test_a_validator_bug_becomes_a_parse_failed_record() -> None:
    err = _parse_failure(KeyError("oops"), SOURCE)
    assert (err.reason, err.message) == ("parse_failed", "the validator failed: KeyError")


def test_the_envelope_field_by_field() -> None:
    raw = dumps({"text": "好评", "ts": "x"})
    record = dead_letter_record(
        stage="profiles", raw=raw, key=b"u1", source=SOURCE, reason="bad_value", message="bad ts", field="ts", now_ms=7
    )
    assert record.to_wire() == {
        "schema_version": 1,
        "reason": "bad_value",
        "message": "bad ts",
        "field": "ts",
        "source": {"topic": "reviews", "partition": 1, "offset": 88},
        "key": "u1",
        "value_base64": base64.b64encode(raw).decode("ascii"),
        "value_bytes": len(raw),
        "value_truncated": False,
        "value_preview": raw.decode("utf-8"),
        "stage": "profiles",
        "time": 7,
    }


def test_an_empty_record_and_the_clock() -> None:
    import time

    before = int(time.time() * 1000)
    for raw in (None, b""):
        record = _record(raw, None, message="")
        assert (record["value_base64"], record["value_bytes"], record["value_truncated"]) == (None, 0, False)
        assert (record["value_preview"], record["key"], record["message"], record["field"]) == ("", None, "", None)
        assert before <= record["time"] <= int(time.time() * 1000)
    assert _record(b"x", b"")["key"] is None and dead_letter_key(b"") is None and dead_letter_key(None) is None


def test_raw_bytes_are_kept_up_to_the_limit_exactly() -> None:
    at_limit = _record(b"x" * MAX_RAW_BYTES, None)
    assert at_limit["value_truncated"] is False and at_limit["value_bytes"] == MAX_RAW_BYTES
    over = _record(b"x" * (MAX_RAW_BYTES + 1), None)
    assert over["value_truncated"] is True and len(base64.b64decode(over["value_base64"])) == MAX_RAW_BYTES


def test_the_preview_shows_200_characters_of_any_script() -> None:
    for char in ("ab ", "好", "😀"):
        raw = (char * 300).encode("utf-8")
        assert _record(raw, None)["value_preview"] == (char * 300)[:200]
    assert _record("好".encode() * 10, None)["value_preview"] == "好" * 10


def test_the_message_a_stage_sends_for_a_refused_record_is_counted_keyed_and_labelled() -> None:
    from shoppulse.consumers import metrics
    from shoppulse.consumers.deadletter import dead_letter_message

    counter = metrics.EVENTS_DEAD_LETTERED.labels("profiles", "reviews", "bad_json")
    before = counter._value.get()
    key, value, headers = dead_letter_message("profiles", b"{", b"13812345678", SOURCE, "bad_json", "not JSON")
    assert counter._value.get() == before + 1
    assert key == dead_letter_key(b"13812345678") and b"13812345678" not in key
    envelope = json.loads(value)
    assert (envelope["reason"], envelope["stage"], envelope["source"]) == (
        "bad_json", "profiles", {"topic": "reviews", "partition": 1, "offset": 88}
    )  # fmt: skip
    assert ("schema-version", b"1") in headers and any(name == "traceparent" for name, _ in headers)
