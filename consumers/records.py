"""The records stage 1 writes, typed: ``review-insights`` and ``user-signals``, with their serialiser.

Why classes and not dicts: a field name mistyped in the writer becomes an error where it is
made, not a missing key in a consumer downstream; docs/events.md is tested against these
classes (``tests/unit/consumers/test_events_doc.py``), so the contract, the writer and the doc
cannot drift apart. ``to_wire`` turns a record into the JSON object docs/events.md shows, key
for key and in the same order. The readers (stage 2's ``Signal``, stage 3's facts) validate
what they read on their own: a record on a topic may come from any producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoppulse.consumers.contracts import SCHEMA_VERSION
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


def _verdict(verdict: Verdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {"label": verdict.label, "probability": verdict.probability, "p_positive": verdict.p_positive}


def to_wire(value: Any) -> Any:
    """A record (or a list of records) as the JSON object docs/events.md shows, keys in wire order."""
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value.to_wire()

