"""From enrich's records to facts: keys from the taxonomy only, order lines merged per key, bad input refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.insights.facts import facts_from_json, facts_to_json, review_facts, signal_facts
from shoppulse.consumers.records import SignalError
from shoppulse.models.serving.taxonomy import default_taxonomy

TAXONOMY = default_taxonomy()
SOURCE = {"topic": "orders", "partition": 2, "offset": 9}


def _order(items: list[dict]) -> dict:
    return {
        "kind": "order",
        "event_id": "o1",
        "user_id": "u1",
        "ts": 1_790_000_000_000,
        "action": "order",
        "weight": 6.0,
        "tags": {},
        "product_ids": [i["product_id"] for i in items if isinstance(i, dict)],
        "items": items,
        "amount": "1",
        "currency": "CNY",
        "source": SOURCE,
    }


def _review() -> dict:
    return {
        "event_id": "r1",
        "ts": 1_790_000_000_000,
        "product_id": "p1",
        "rating": 2,
        "sentiment": {"label": "negative"},
        "interest": {"category": "手机"},
        "keywords": ["卡顿"],
        "aspects": [{"aspect": "性能", "sentiment": {"label": "negative"}}, {"aspect": "物流", "sentiment": None}],
        "source": {"topic": "reviews", "partition": 0, "offset": 4},
    }


def test_a_review_becomes_product_category_and_tag_facts() -> None:
    facts = review_facts(_review(), TAXONOMY)
    assert [f.key for f in facts] == ["p:p1", "c:手机", "t:数码"]
    assert facts[0].negative and facts[0].aspects == {"性能": "negative"} and facts[0].keywords == ("卡顿",)
    assert (facts[0].source, facts[0].item) == (RecordCoordinates("reviews", 0, 4), 0)
    assert facts[1].product_id == "p1" and facts[0].product_id is None  # who a category complaint is about


def test_order_lines_of_one_product_add_up_and_free_text_categories_make_no_key() -> None:
    items = [
        {"product_id": "p1", "category": "手机", "quantity": 2, "amount": "0.10"},
        {"product_id": "p2", "category": "我的小店 13812345678", "quantity": 1, "amount": "5"},
        {"product_id": "p1", "category": "手机", "quantity": 1, "amount": "0.20"},
    ]
    facts = {f.key: f for f in signal_facts(_order(items), TAXONOMY)}
    assert sorted(facts) == ["c:手机", "p:p1", "p:p2", "t:数码"]
    assert (facts["p:p1"].units, facts["p:p1"].revenue, facts["p:p1"].item) == (3, Decimal("0.30"), 0)
    assert facts["p:p2"].item == 1 and facts["p:p2"].currency == "CNY"


def test_searches_and_review_signals_give_no_facts() -> None:
    base = {"event_id": "e", "user_id": "u1", "ts": 1_790_000_000_000, "weight": 1.0, "tags": {}, "source": SOURCE}
    assert signal_facts(base | {"kind": "click", "action": "search", "query": "手机"}, TAXONOMY) == []
    assert signal_facts(base | {"kind": "review", "action": "review", "product_id": "p1"}, TAXONOMY) == []


@pytest.mark.parametrize(
    "items",
    [
        [{"product_id": "p1", "quantity": 0, "amount": "1"}],
        [{"product_id": "p1", "quantity": 1, "amount": "NaN"}],
        [{"product_id": "p1", "quantity": 1, "amount": "-1"}],
        [{"product_id": "", "quantity": 1, "amount": "1"}],
        ["p1"],
        [],
    ],
)
def test_bad_order_lines_are_refused(items: list) -> None:
    with pytest.raises(SignalError):
        signal_facts(_order(items), TAXONOMY)


def test_facts_survive_the_facts_topic_in_order_and_a_single_fact_record_is_still_read() -> None:
    facts = signal_facts(
        _order([{"product_id": "p1", "category": "手机", "quantity": 2, "amount": "0.1"}]), TAXONOMY
    ) + review_facts(_review(), TAXONOMY)
    record = json.loads(facts_to_json(facts))
    assert facts_from_json(record) == facts
    assert facts_from_json(record[0]) == facts[:1]  # the form an older worker wrote: one fact per record
    with pytest.raises(SignalError):
        facts_from_json([record[0], {"k": "p:p1"}])
