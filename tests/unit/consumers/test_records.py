"""The writer's records and the reader's view of them: what enrich writes, stages 2 and 3 read back whole."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.records import Signal, SignalError, UserSignal, Verdict, to_wire


def read_back(signal: UserSignal) -> Signal:
    return Signal.from_json(json.loads(json.dumps(to_wire(signal), ensure_ascii=False)))


def test_a_review_signal_reads_back_with_its_verdicts_tags_and_source() -> None:
    written = UserSignal(
        kind="review", event_id="r1", user_id="u1", ts=1_790_000_000_000, action="review", weight=3.0,
        tags={"数码": 0.75, "家居": 0.25}, model={"name": "m"}, source=RecordCoordinates("reviews", 3, 41),
        product_id="p9", sentiment=Verdict("negative", 0.91, 0.09), aspects={"电池": "negative"},
    )  # fmt: skip
    read = read_back(written)
    assert (read.event_id, read.user_id, read.kind, read.action) == ("r1", "u1", "review", "review")
    assert read.ts == 1_790_000_000_000
    assert read.weight == 3.0 and dict(read.tags) == {"数码": 0.75, "家居": 0.25}
    assert read.product_ids == ("p9",)
    assert (read.sentiment_label, read.sentiment_probability) == ("negative", 0.91)
    assert dict(read.aspects) == {"电池": "negative"}
    assert read.source == RecordCoordinates("reviews", 3, 41)


def test_an_order_signal_reads_back_with_its_exact_amount() -> None:
    written = UserSignal(
        kind="order", event_id="o1", user_id="u1", ts=1_790_000_000_000, action="order", weight=5.0, tags={},
        model={}, source=RecordCoordinates("orders", 0, 7), product_ids=["p1", "p2"], amount="19.90", currency="CNY",
    )  # fmt: skip
    read = read_back(written)
    assert read.product_ids == ("p1", "p2")
    assert (read.amount, read.currency) == (Decimal("19.90"), "CNY")


def test_a_record_the_writer_would_never_make_is_refused_with_a_reason() -> None:
    written = to_wire(
        UserSignal(
            kind="click", event_id="c1", user_id="u1", ts=1_790_000_000_000, action="view", weight=1.0, tags={},
            model={}, source=RecordCoordinates("clicks", 0, 1),
        )
    )  # fmt: skip
    with pytest.raises(SignalError) as refused:
        Signal.from_json({**written, "weight": 10**400})
    assert refused.value.reason == "bad_value"
