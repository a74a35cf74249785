"""The records stage 1 writes, typed: ``review-insights`` and ``user-signals``, with their serialiser.

Why classes and not dicts: a field name mistyped in the writer becomes an error where it is
made, not a missing key in a consumer downstream; docs/events.md is tested against these
classes (``tests/unit/consumers/test_events_doc.py``), so the contract, the writer and the doc
cannot drift apart. ``to_wire`` turns a record into the JSON object docs/events.md shows, key
for key and in the same order. The readers (stage 2's ``Signal``, stage 3's facts) validate
what they read on their own: a record on a topic may come from any producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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


# The order of keys on the wire (docs/events.md): schema_version first, then as documented.
_WIRE_ORDER: dict[type, tuple[str, ...]] = {
    ReviewInsight: (
        "schema_version", "event_id", "user_id", "product_id", "order_id", "rating", "ts", "sentiment",
        "interest", "keywords", "aspects", "text_chars", "clipped", "model", "source", "processed_at",
    ),
    UserSignal: (
        "schema_version", "kind", "event_id", "user_id", "ts", "action", "weight", "tags", "category",
        "product_id", "product_ids", "items", "query", "sentiment", "aspects", "amount", "currency", "model",
        "source",
    ),
}  # fmt: skip


def to_wire(value: Any) -> Any:
    """A record (or any value holding records) as plain JSON-ready values, keys in wire order."""
    if isinstance(value, RecordCoordinates):
        return value.as_dict()
    order = _WIRE_ORDER.get(type(value))
    if order is not None:
        return {name: to_wire(getattr(value, name)) for name in order}
    if isinstance(value, Verdict | Interest | AspectVerdict):
        return {f.name: to_wire(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def wire_fields(record_type: type) -> tuple[str, ...]:
    """The top-level keys of a record type on the wire."""
    return _WIRE_ORDER[record_type]
