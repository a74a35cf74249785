"""The records stages 1 and 2 write and the dead letters every stage writes, typed, and the one
validated reading of ``user-signals``.

- ``ReviewInsight`` and ``UserSignal`` are what enrich writes to ``review-insights`` and
  ``user-signals``, ``UserProfile`` what the profiles stage publishes, and ``DeadLetter`` the
  envelope of a refused record from any stage (built, masked and bounded by
  ``consumers.deadletter``). Why classes and not dicts: a field name mistyped in the writer
  becomes an error where it is made, not a missing key in a consumer downstream. ``to_wire``
  turns a record into the JSON object docs/events.md shows, key for key and in the same order.
- ``Signal.from_json`` is how stages 2 and 3 read a ``user-signals`` record: validated field by
  field, bounded, with a reason code (``SignalError``) for the dead letter when it fails. It
  validates rather than trusts the writer because a record on a topic may come from any producer.

docs/events.md is tested against both sides (``tests/unit/consumers/test_events_doc.py``): its
examples have the writer's fields in wire order and are signals the reader accepts, so the
contract, the writer, the reader and the doc cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from shoppulse.consumers.contracts import (
    CLICK_ACTIONS,
    MAX_AMOUNT,
    MAX_AMOUNT_PLACES,
    MAX_ID_CHARS,
    MAX_ORDER_ITEMS,
    MIN_TS_MS,
    R_BAD_VALUE,
    R_MISSING,
    R_NOT_OBJECT,
    R_WRONG_TYPE,
    SCHEMA_VERSION,
)
from shoppulse.consumers.coordinates import RecordCoordinates


@dataclass(frozen=True)
class Verdict:
    """A sentiment: the label, its calibrated probability, and ``p_positive``."""

    label: str
    probability: float
    p_positive: float


@dataclass(frozen=True)
class Interest:
    """A review's product interest: fine category, its probability, the top three, and coarse tags."""

    category: str
    probability: float
    top_categories: dict[str, float]
    tags: dict[str, float]


@dataclass(frozen=True)
class AspectVerdict:
    """The first clause that names an aspect (masked), and its own verdict (None: no verdict)."""

    aspect: str
    clause: str
    sentiment: Verdict | None


@dataclass(frozen=True)
class ReviewInsight:
    """One per valid review (topic ``review-insights``)."""

    event_id: str
    user_id: str
    product_id: str | None
    order_id: str | None
    rating: int | None
    ts: int
    sentiment: Verdict | None
    interest: Interest | None
    keywords: list[str]
    aspects: list[AspectVerdict]
    text_chars: int
    clipped: list[str]
    model: dict[str, Any]
    source: RecordCoordinates
    processed_at: int
    schema_version: int = SCHEMA_VERSION

    def to_wire(self) -> dict[str, Any]:
        """Spelled out rather than walked: this runs twice per review on the stage's hot path."""
        interest = self.interest
        return {
            "schema_version": self.schema_version,
            "event_id": self.event_id,
            "user_id": self.user_id,
            "product_id": self.product_id,
            "order_id": self.order_id,
            "rating": self.rating,
            "ts": self.ts,
            "sentiment": _verdict(self.sentiment),
            "interest": None
            if interest is None
            else {
                "category": interest.category,
                "probability": interest.probability,
                "top_categories": interest.top_categories,
                "tags": interest.tags,
            },
            "keywords": self.keywords,
            "aspects": [
                {"aspect": a.aspect, "clause": a.clause, "sentiment": _verdict(a.sentiment)} for a in self.aspects
            ],
            "text_chars": self.text_chars,
            "clipped": self.clipped,
            "model": self.model,
            "source": self.source.as_dict(),
            "processed_at": self.processed_at,
        }


@dataclass(frozen=True)
class UserSignal:
    """One per valid input event (topic ``user-signals``): what stage 2 folds into a profile."""

    kind: str
    event_id: str
    user_id: str
    ts: int
    action: str
    weight: float
    tags: dict[str, float]
    model: dict[str, Any]
    source: RecordCoordinates
    category: str | None = None
    product_id: str | None = None
    product_ids: list[str] | None = None
    items: list[dict[str, Any]] | None = None
    query: str | None = None
    sentiment: Verdict | None = None
    aspects: dict[str, str] = field(default_factory=dict)
    amount: str | None = None
    currency: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_wire(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "event_id": self.event_id,
            "user_id": self.user_id,
            "ts": self.ts,
            "action": self.action,
            "weight": self.weight,
            "tags": self.tags,
            "category": self.category,
            "product_id": self.product_id,
            "product_ids": self.product_ids,
            "items": self.items,
            "query": self.query,
            "sentiment": _verdict(self.sentiment),
            "aspects": self.aspects,
            "amount": self.amount,
            "currency": self.currency,
            "model": self.model,
            "source": self.source.as_dict(),
        }


@dataclass(frozen=True)
class DeadLetter:
    """One refused record (topic ``dead-letter``), as ``consumers.deadletter`` builds it: masked, bounded."""

    schema_version: int
    reason: str
    message: str
    field: str | None
    source: RecordCoordinates
    key: str | None
    value_base64: str | None
    value_bytes: int
    value_truncated: bool
    value_preview: str
    stage: str
    time: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "reason": self.reason,
            "message": self.message,
            "field": self.field,
            "source": self.source.as_dict(),
            "key": self.key,
            "value_base64": self.value_base64,
            "value_bytes": self.value_bytes,
            "value_truncated": self.value_truncated,
            "value_preview": self.value_preview,
            "stage": self.stage,
            "time": self.time,
        }


@dataclass(frozen=True)
class UserProfile:
    """One user's profile (topic ``user-profiles`` and the HTTP lookup), as the fold renders it."""

    schema_version: int
    user_id: str
    as_of: int | None
    version: int
    updated_at: int | None
    half_life_days: float
    interests: dict[str, float]
    top_tags: list[dict[str, Any]]
    sentiment: dict[str, Any]
    orders: dict[str, Any]
    recent_products: list[dict[str, Any]]

    def to_wire(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "user_id": self.user_id,
            "as_of": self.as_of,
            "version": self.version,
            "updated_at": self.updated_at,
            "half_life_days": self.half_life_days,
            "interests": self.interests,
            "top_tags": self.top_tags,
            "sentiment": self.sentiment,
            "orders": self.orders,
            "recent_products": self.recent_products,
        }


def _verdict(verdict: Verdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {"label": verdict.label, "probability": verdict.probability, "p_positive": verdict.p_positive}


def to_wire(value: Any) -> Any:
    """A record (or a list of records) as the JSON object docs/events.md shows, keys in wire order."""
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value.to_wire()


class SignalError(ValueError):
    """A user-signal the fold cannot use; ``reason`` is a stable code for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason



# Bounds of a signal the fold accepts: enrich never writes past them, so a record beyond is a bad one
# (and would otherwise overflow a score or a total, or poison a profile for good).
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_WEIGHT = 1_000.0  # action weights are 1-6
MAX_TAGS = 64
MAX_TAG_CHARS = 64
MAX_ASPECTS = 32
MAX_TOPIC_CHARS = 249  # Kafka's own limit
MAX_OFFSET = 2**63 - 1
KINDS = ("review", "click", "order")
ACTIONS = (*CLICK_ACTIONS, "review", "order")
SENTIMENT_LABELS = ("positive", "negative")


UNKNOWN_SOURCE = RecordCoordinates("", 0, 0)  # a signal built in code, not read from a record


@dataclass(frozen=True)
class Signal:
    """The part of a ``user-signals`` record the profile uses, validated."""

    event_id: str
    user_id: str
    ts: int
    kind: str
    action: str
    weight: float
    tags: Mapping[str, float]
    product_ids: tuple[str, ...] = ()
    sentiment_label: str | None = None
    sentiment_probability: float | None = None
    aspects: Mapping[str, str] = field(default_factory=dict)
    amount: Decimal | None = None
    currency: str | None = None
    source: RecordCoordinates = UNKNOWN_SOURCE  # the input record

    @classmethod
    def from_json(cls, data: Any) -> Signal:
        """Validate a decoded JSON value; raises ``SignalError`` with a reason code."""
        if not isinstance(data, dict):
            raise SignalError(R_NOT_OBJECT, "a signal must be a JSON object")
        event_id = required_str(data, "event_id")
        user_id = required_str(data, "user_id")
        ts = data.get("ts")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise SignalError(R_WRONG_TYPE, "ts must be an integer (epoch ms)")
        if not MIN_TS_MS <= ts <= MAX_TS_MS:
            raise SignalError(R_BAD_VALUE, "ts must be within [2000-01-01, 9999-12-31]")
        kind = _choice(data, "kind", KINDS)
        action = _choice(data, "action", ACTIONS)
        weight = _number(data.get("weight", 0.0), "weight")
        if not 0 <= weight <= MAX_WEIGHT:
            raise SignalError(R_BAD_VALUE, f"weight must be within [0, {MAX_WEIGHT:g}]")
        raw_tags = data.get("tags") or {}
        if not isinstance(raw_tags, dict):
            raise SignalError(R_WRONG_TYPE, "tags must be an object")
        if len(raw_tags) > MAX_TAGS:
            raise SignalError(R_BAD_VALUE, f"more than {MAX_TAGS} tags")
        if any(not tag or len(tag) > MAX_TAG_CHARS for tag in raw_tags):
            raise SignalError(R_BAD_VALUE, f"a tag must be 1..{MAX_TAG_CHARS} characters")
        tags = {str(tag): _number(w, "tags") for tag, w in raw_tags.items()}
        # A distribution (enrich normalises to a sum of 1 and rounds to 6 places): a weight past 1 is a bad
        # record, and a huge one would overflow the decayed scores to inf (not JSON).
        if any(not 0 <= w <= 1 + 1e-6 for w in tags.values()):
            raise SignalError(R_BAD_VALUE, "tag weights must be within [0, 1]")
        products = data.get("product_ids") or ()
        if not isinstance(products, list | tuple) or not all(isinstance(p, str) for p in products):
            raise SignalError(R_WRONG_TYPE, "product_ids must be a list of strings")
        if len(products) > MAX_ORDER_ITEMS:
            raise SignalError(R_BAD_VALUE, f"more than {MAX_ORDER_ITEMS} product_ids")
        product_id = data.get("product_id")
        if product_id is not None and not isinstance(product_id, str):
            raise SignalError(R_WRONG_TYPE, "product_id must be a string or null")
        product_ids = tuple(products) if products else ((product_id,) if product_id else ())
        if any(not p or len(p) > MAX_ID_CHARS for p in product_ids):
            raise SignalError(R_BAD_VALUE, f"a product id must be 1..{MAX_ID_CHARS} characters")
        label = probability = None
        sentiment = data.get("sentiment")
        if sentiment is not None:
            if not isinstance(sentiment, dict):
                raise SignalError(R_WRONG_TYPE, "sentiment must be an object with a label")
            label = _choice(sentiment, "label", SENTIMENT_LABELS, "sentiment.label")
            probability = _number(sentiment.get("probability"), "sentiment.probability")
            if not 0.0 <= probability <= 1.0:
                raise SignalError(R_BAD_VALUE, "sentiment.probability must be within [0, 1]")
        aspects = data.get("aspects") or {}
        if not isinstance(aspects, dict):
            raise SignalError(R_WRONG_TYPE, "aspects must map aspect to a label string")
        if len(aspects) > MAX_ASPECTS or any(not a or len(a) > MAX_TAG_CHARS for a in aspects):
            raise SignalError(R_BAD_VALUE, f"at most {MAX_ASPECTS} aspects of 1..{MAX_TAG_CHARS} characters")
        if any(v not in SENTIMENT_LABELS for v in aspects.values()):
            raise SignalError(R_BAD_VALUE, f"an aspect label must be one of {', '.join(SENTIMENT_LABELS)}")
        amount = currency = None
        if data.get("amount") is not None:
            amount = amount_of(data["amount"])
            currency = data.get("currency")
            if currency is None:
                raise SignalError(R_MISSING, "an order amount needs a currency")
            if not isinstance(currency, str) or not (len(currency) == 3 and currency.isascii() and currency.isupper()):
                raise SignalError(R_BAD_VALUE, "currency must be an ISO-4217 code such as CNY")
        return cls(
            event_id=event_id,
            user_id=user_id,
            ts=ts,
            kind=kind,
            action=action,
            weight=weight,
            tags=tags,
            product_ids=product_ids,
            sentiment_label=label,
            sentiment_probability=probability,
            aspects={str(k): v for k, v in aspects.items()},
            amount=amount,
            currency=currency,
            source=source_of(data.get("source")),
        )


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], name: str | None = None) -> str:
    value = data.get(key)
    if value is None:
        raise SignalError(R_MISSING, f"{name or key} is required")
    if value not in allowed:
        raise SignalError(R_BAD_VALUE, f"{name or key} must be one of {', '.join(allowed)}")
    return str(value)


def source_of(value: Any) -> RecordCoordinates:
    """The input record a signal came from: what makes deduplication exact."""
    if value is None:
        raise SignalError(R_MISSING, "source {topic, partition, offset} is required")
    if not isinstance(value, dict):
        raise SignalError(R_WRONG_TYPE, "source must be an object {topic, partition, offset}")
    topic, partition, offset = value.get("topic"), value.get("partition"), value.get("offset")
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_CHARS:
        raise SignalError(R_BAD_VALUE, "source.topic must be a topic name")
    for name, number in (("partition", partition), ("offset", offset)):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= MAX_OFFSET:
            raise SignalError(R_BAD_VALUE, f"source.{name} must be a non-negative integer")
    return RecordCoordinates(topic, partition, offset)  # type: ignore[arg-type]


def amount_of(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise SignalError(R_BAD_VALUE, "amount must be a decimal string") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        raise SignalError(R_BAD_VALUE, "amount must be a finite decimal within [0, 1e12]")
    if amount.as_tuple().exponent < -MAX_AMOUNT_PLACES:  # type: ignore[operator]
        raise SignalError(R_BAD_VALUE, f"amount has more than {MAX_AMOUNT_PLACES} decimal places")
    return amount


def required_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise SignalError(R_MISSING, f"{key} is required")
    if not isinstance(value, str) or not value:
        raise SignalError(R_WRONG_TYPE, f"{key} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise SignalError(R_BAD_VALUE, f"{key} must be at most {MAX_ID_CHARS} characters")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignalError(R_WRONG_TYPE, f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise SignalError(R_BAD_VALUE, f"{name} must be finite") from None
    if not math.isfinite(number):
        raise SignalError(R_BAD_VALUE, f"{name} must be finite")
    return number
