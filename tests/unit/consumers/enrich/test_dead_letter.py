"""Dead-letter records: nothing readable in them echoes personal data; a validator bug is a record, not a crash."""

from __future__ import annotations

import base64
import json

import pytest

from consumers.contracts import ContractError, parse_event
from consumers.enrich.enricher import Source
from consumers.enrich.stage import _parse_failure, dead_letter_record

NOW = 1_780_000_000_000
SOURCE = Source("reviews", 1, 88)


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
    record = dead_letter_record(payload, b"13812345678", SOURCE, err.value.reason, err.value.message, err.value.field)
    readable = json.dumps({k: v for k, v in record.items() if k != "value_base64"}, ensure_ascii=False)
    assert str(value) not in readable and "13812345678" not in readable, readable
    assert base64.b64decode(record["value_base64"]) == payload  # the raw bytes stay, for replay


def test_a_validator_bug_becomes_a_parse_failed_record() -> None:
    err = _parse_failure(KeyError("oops"), SOURCE)
    assert (err.reason, err.message) == ("parse_failed", "the validator failed: KeyError")
