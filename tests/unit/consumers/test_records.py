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


def test_a_review_insight_on_the_wire_field_by_field() -> None:
    from shoppulse.consumers.records import AspectVerdict, Interest, ReviewInsight

    negative = Verdict("negative", 0.8, 0.2)
    insight = ReviewInsight(
        event_id="r1", user_id="u1", product_id="p1", order_id="o1", rating=2, ts=5, sentiment=negative,
        interest=Interest("平板", 0.9, {"平板": 0.9, "手机": 0.1}, {"数码": 1.0}), keywords=["电池"],
        aspects=[AspectVerdict("性能", "电池不耐用", negative), AspectVerdict("外观", "外观还行", None)],
        text_chars=12, clipped=["text"], model={"name": "m"}, source=RecordCoordinates("reviews", 1, 2),
        processed_at=6,
    )  # fmt: skip
    assert to_wire(insight) == {
        "schema_version": 1, "event_id": "r1", "user_id": "u1", "product_id": "p1", "order_id": "o1",
        "rating": 2, "ts": 5, "sentiment": {"label": "negative", "probability": 0.8, "p_positive": 0.2},
        "interest": {"category": "平板", "probability": 0.9, "top_categories": {"平板": 0.9, "手机": 0.1},
                     "tags": {"数码": 1.0}},
        "keywords": ["电池"],
        "aspects": [
            {"aspect": "性能", "clause": "电池不耐用",
             "sentiment": {"label": "negative", "probability": 0.8, "p_positive": 0.2}},
            {"aspect": "外观", "clause": "外观还行", "sentiment": None},
        ],
        "text_chars": 12, "clipped": ["text"], "model": {"name": "m"},
        "source": {"topic": "reviews", "partition": 1, "offset": 2}, "processed_at": 6,
    }  # fmt: skip
    unread = ReviewInsight(**{**insight.__dict__, "sentiment": None, "interest": None})
    assert (to_wire(unread)["sentiment"], to_wire(unread)["interest"]) == (None, None)
    assert to_wire([insight, unread]) == [to_wire(insight), to_wire(unread)]


def _click_wire(**changes: object) -> dict:
    written = UserSignal(
        kind="click", event_id="c1", user_id="u1", ts=1_790_000_000_000, action="view", weight=1.0, tags={},
        model={}, source=RecordCoordinates("clicks", 0, 1),
    )  # fmt: skip
    return {**to_wire(written), **changes}


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        ([], "not_object", "a signal must be a JSON object"),
        (_click_wire(tags={"数码": 1.5}), "bad_value", "tag weights must be within [0, 1]"),
        (_click_wire(sentiment={"label": "positive", "probability": "high"}), "wrong_type",
         "sentiment.probability must be a number"),
    ],
)  # fmt: skip
def test_each_refusal_says_its_reason_and_what_is_wrong(data: object, reason: str, message: str) -> None:
    with pytest.raises(SignalError) as refused:
        Signal.from_json(data)
    assert (refused.value.reason, str(refused.value)) == (reason, message)


def test_a_signal_without_a_weight_weighs_nothing_and_a_tag_may_carry_all_of_it() -> None:
    data = _click_wire(tags={"数码": 1 + 1e-6})
    del data["weight"]
    read = Signal.from_json(data)
    assert read.weight == 0.0 and dict(read.tags) == {"数码": 1 + 1e-6}
