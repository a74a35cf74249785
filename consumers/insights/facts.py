"""From enrich's outputs to the facts stage 3 counts, keyed by product, category and tag.

- A ``review-insights`` record gives one review fact to its product, to its (model-read) fine
  category and to that category's interest tag.
- A ``user-signals`` click (view, click, add_to_cart, favorite) gives one fact to its product,
  and to the catalog category when ``models/data/taxonomy.json`` knows it. A search names no
  product and gives none. Review signals give none: reviews are counted from
  ``review-insights``, which carries their aspects, keywords and rating.
- An order signal gives, per product (and category, tag) it contains, one order fact with the
  units and the exact revenue of its lines (``items``; a signal without items, from an older
  enrich, counts the order with no units or revenue).

Category keys come from the taxonomy only, so a shop's free-text category can never become a
key, a Prometheus label or a row. Every record is validated; a bad one raises ``SignalError``
with a reason code and goes to ``dead-letter``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from shoppulse.consumers.contracts import MAX_ID_CHARS, MAX_ORDER_ITEMS, R_BAD_VALUE, R_NOT_OBJECT, R_WRONG_TYPE
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.insights.window import CLICK_FIELDS, Fact
from shoppulse.consumers.records import (
    MAX_ASPECTS,
    MAX_TAG_CHARS,
    SENTIMENT_LABELS,
    Signal,
    SignalError,
    required_str,
    source_of,
)
from shoppulse.models.serving.taxonomy import Taxonomy

MAX_KEYWORDS_PER_REVIEW = 16
MAX_QUANTITY = 100_000
MAX_LINE_AMOUNT = Decimal("1e17")


def review_facts(data: Any, taxonomy: Taxonomy) -> list[Fact]:
    """The facts of one ``review-insights`` record (none without a product or category)."""
    if not isinstance(data, dict):
        raise SignalError(R_NOT_OBJECT, "a review insight must be a JSON object")
    event_id = required_str(data, "event_id")
    ts = data.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise SignalError(R_WRONG_TYPE, "ts must be an integer (epoch ms)")
    source = source_of(data.get("source"))
    sentiment = data.get("sentiment")
    negative = False
    if sentiment is not None:
        if not isinstance(sentiment, dict) or sentiment.get("label") not in SENTIMENT_LABELS:
            raise SignalError(R_BAD_VALUE, "sentiment.label must be positive or negative")
        negative = sentiment["label"] == "negative"
    rating = data.get("rating")
    if rating is not None and (not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5):
        raise SignalError(R_BAD_VALUE, "rating must be an integer 1-5")
    aspects = _aspects(data.get("aspects"))
    keywords = _keywords(data.get("keywords")) if negative else ()
    base = {
        "kind": "review",
        "ts": ts,
        "event_id": event_id,
        "source": source,
        "negative": negative,
        "rating": rating,
        "aspects": aspects,
        "keywords": keywords,
    }
    product_id = data.get("product_id")
    if product_id is not None:
        product_id = _id(product_id, "product_id")
    interest = data.get("interest")
    categories = _category_keys(interest.get("category"), taxonomy) if isinstance(interest, dict) else []
    facts = [Fact(key=key, product_id=product_id, **base) for key in categories]  # type: ignore[arg-type]
    if product_id is not None:
        facts.insert(0, Fact(key="p:" + product_id, **base))  # type: ignore[arg-type]
    return facts


def signal_facts(data: Any, taxonomy: Taxonomy) -> list[Fact]:
    """The facts of one ``user-signals`` record: clicks and orders (reviews come from review-insights)."""
    signal = Signal.from_json(data)
    if signal.kind == "click":
        if signal.action not in CLICK_FIELDS or not signal.product_ids:
            return []
        keys = ["p:" + signal.product_ids[0], *_category_keys(data.get("category"), taxonomy)]
        return [
            Fact(key=k, kind=signal.action, ts=signal.ts, event_id=signal.event_id, source=signal.source) for k in keys
        ]
    if signal.kind != "order":
        return []
    lines = _items(data.get("items"), signal)
    # Lines of one product (or category) add up to one order fact of that key, marked by its first line.
    merged: dict[str, tuple[int, int, Decimal | None]] = {}
    for index, (product_id, category, units, revenue) in enumerate(lines):
        for key in ["p:" + product_id, *_category_keys(category, taxonomy)]:
            if key in merged:
                first, n, total = merged[key]
                merged[key] = (first, n + units, None if total is None or revenue is None else total + revenue)
            else:
                merged[key] = (index, units, revenue)
    return [
        Fact(
            key=key,
            kind="order",
            ts=signal.ts,
            event_id=signal.event_id,
            source=signal.source,
            item=first,
            units=units,
            revenue=revenue,
            currency=signal.currency if revenue is not None else None,
        )
        for key, (first, units, revenue) in merged.items()
    ]


def _items(raw: Any, signal: Signal) -> list[tuple[str, str | None, int, Decimal | None]]:
    """(product_id, category, units, revenue) per order line; from ``product_ids`` when there are no items."""
    if raw is None:
        return [(p, None, 0, None) for p in signal.product_ids]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ORDER_ITEMS:
        raise SignalError(R_BAD_VALUE, f"items must be a list of 1..{MAX_ORDER_ITEMS} lines")
    lines = []
    for item in raw:
        if not isinstance(item, dict):
            raise SignalError(R_WRONG_TYPE, "an order line must be an object")
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
            raise SignalError(R_BAD_VALUE, f"items[].quantity must be an integer 1..{MAX_QUANTITY}")
        category = item.get("category")
        if category is not None and not isinstance(category, str):
            raise SignalError(R_WRONG_TYPE, "items[].category must be a string or null")
        product_id = _id(item.get("product_id"), "items[].product_id")
        lines.append((product_id, category, quantity, _line_amount(item.get("amount"))))
    return lines


def _category_keys(category: Any, taxonomy: Taxonomy) -> list[str]:
    if not isinstance(category, str) or category not in taxonomy.fine_to_tag:
        return []
    return ["c:" + category, "t:" + taxonomy.fine_to_tag[category]]


def _id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise SignalError(R_BAD_VALUE, f"{name} must be a string of 1..{MAX_ID_CHARS} characters")
    return value


def _aspects(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or len(raw) > MAX_ASPECTS:
        raise SignalError(R_BAD_VALUE, f"aspects must be a list of at most {MAX_ASPECTS}")
    out = {}
    for mention in raw:
        if not isinstance(mention, dict):
            raise SignalError(R_WRONG_TYPE, "an aspect mention must be an object")
        aspect, sentiment = mention.get("aspect"), mention.get("sentiment")
        if not isinstance(aspect, str) or not 0 < len(aspect) <= MAX_TAG_CHARS:
            raise SignalError(R_BAD_VALUE, f"aspects[].aspect must be 1..{MAX_TAG_CHARS} characters")
        if sentiment is None:
            continue  # a mention without a verdict counts for no side
        if not isinstance(sentiment, dict) or sentiment.get("label") not in SENTIMENT_LABELS:
            raise SignalError(R_BAD_VALUE, "aspects[].sentiment.label must be positive or negative")
        out.setdefault(aspect, sentiment["label"])
    return out


def _keywords(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(w, str) and 0 < len(w) <= MAX_TAG_CHARS for w in raw):
        raise SignalError(R_BAD_VALUE, f"keywords must be a list of 1..{MAX_TAG_CHARS}-character strings")
    return tuple(raw[:MAX_KEYWORDS_PER_REVIEW])


def _line_amount(value: Any) -> Decimal:
    """An order line's price × quantity: exact, finite, non-negative (up to 1e12 × 100,000)."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise SignalError(R_BAD_VALUE, "items[].amount must be a decimal string") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_LINE_AMOUNT:
        raise SignalError(R_BAD_VALUE, "items[].amount must be a finite decimal within [0, 1e17]")
    return amount


def facts_to_json(facts: list[Fact]) -> bytes:
    """The ``insight-facts`` record of one row's facts from one batch of inputs, in input order: a JSON
    array of compact objects (an internal topic: short keys, only what is set)."""
    return json.dumps([_fact_body(f) for f in facts], ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def facts_from_json(data: Any) -> list[Fact]:
    """Read back an ``insight-facts`` record: an array of facts, or one fact (an older worker's record)."""
    if isinstance(data, list):
        return [fact_from_json(item) for item in data]
    return [fact_from_json(data)]


def _fact_body(fact: Fact) -> dict[str, Any]:
    body: dict[str, Any] = {
        "k": fact.key,
        "kind": fact.kind,
        "ts": fact.ts,
        "id": fact.event_id,
        "src": [fact.source.topic, fact.source.partition, fact.source.offset, fact.item],
    }
    if fact.kind == "review":
        body.update(neg=fact.negative, rating=fact.rating, aspects=dict(fact.aspects), kw=list(fact.keywords))
        if fact.product_id is not None:
            body["pid"] = fact.product_id
    if fact.kind == "order":
        body.update(units=fact.units, revenue=None if fact.revenue is None else str(fact.revenue), cur=fact.currency)
    return body


def fact_from_json(data: Any) -> Fact:
    """Read back an ``insight-facts`` record; ``SignalError`` when it is not one we wrote."""
    try:
        topic, partition, offset, item = data["src"]
        revenue = data.get("revenue")
        return Fact(
            key=str(data["k"]),
            kind=str(data["kind"]),
            ts=int(data["ts"]),
            event_id=str(data["id"]),
            source=RecordCoordinates(str(topic), int(partition), int(offset)),
            item=int(item),
            negative=bool(data.get("neg", False)),
            rating=data.get("rating"),
            aspects=dict(data.get("aspects") or {}),
            keywords=tuple(data.get("kw") or ()),
            units=int(data.get("units", 0)),
            revenue=None if revenue is None else Decimal(revenue),
            currency=data.get("cur"),
            product_id=data.get("pid"),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise SignalError(R_BAD_VALUE, f"not an insight fact: {type(exc).__name__}: {exc}") from None
