"""The per-user profile as a pure, order-independent fold over ``user-signals``.

Why a pure fold, kept apart from faust: the stage's correctness (late events, duplicates,
replays after a crash) is a property of this function alone, so it is tested here without a
broker, and the faust app only stores its rows and publishes its renderings.

Order independence, piece by piece:

- ``interests``: each tag is kept as (value at reference time r). Adding weight w at event
  time ts brings both to the later of the two times: ``value·2^(−(ts−r)/H) + w`` when ts ≥ r,
  else ``value + w·2^(−(r−ts)/H)``. Either way the value equals Σ wᵢ·2^(−(r−tsᵢ)/H) over the
  signals seen, whatever their order, up to floating-point rounding (~1e-15 relative).
- counts and Decimal sums are exact and commutative; min/max of times likewise.
- ``recent_products`` keeps, per product, its greatest (ts, event_id, action) and only the N
  greatest products: a product pruned earlier can only come back with a key greater than the
  N-th, which its true maximum then is, so the kept set is the same for any arrival order.
- Idempotence: the last ``dedup_window`` applied event_ids (in arrival order) live inside the
  row, so a replay after a crash, whose table write and offset commit are not atomic, is
  recognised and ignored. A duplicate arriving after more than ``dedup_window`` newer
  signals of the same user is applied again: that is the documented window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from consumers.contracts import MAX_AMOUNT

PROFILE_SCHEMA_VERSION = 1
MS_PER_DAY = 86_400_000


class SignalError(ValueError):
    """A user-signal the fold cannot use; ``reason`` is a stable code for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FoldParams:
    """The knobs of the fold (from ``ProfileSettings``)."""

    half_life_days: float = 7.0
    top_k: int = 5
    recent_products: int = 20
    dedup_window: int = 512

    @property
    def half_life_ms(self) -> float:
        return self.half_life_days * MS_PER_DAY

    @classmethod
    def from_settings(cls, profiles: Any) -> FoldParams:
        return cls(
            half_life_days=profiles.half_life_days,
            top_k=profiles.top_k,
            recent_products=profiles.recent_products,
            dedup_window=profiles.dedup_window,
        )


# Bounds of a signal the fold accepts: enrich never writes past them, so a record beyond is a bad one
# (and would otherwise overflow a score or a total, or poison a profile for good).
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_WEIGHT = 1_000.0  # action weights are 1-6
MAX_TAGS = 64


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

    @classmethod
    def from_json(cls, data: Any) -> Signal:
        """Validate a decoded JSON value; raises ``SignalError`` with a reason code."""
        if not isinstance(data, dict):
            raise SignalError("not_object", "a signal must be a JSON object")
        event_id = _str(data, "event_id")
        user_id = _str(data, "user_id")
        ts = data.get("ts")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise SignalError("wrong_type", "ts must be a non-negative integer (epoch ms)")
        if ts > MAX_TS_MS:
            raise SignalError("bad_value", "ts is past the year 9999")
        weight = _number(data.get("weight", 0.0), "weight")
        if not 0 <= weight <= MAX_WEIGHT:
            raise SignalError("bad_value", f"weight must be within [0, {MAX_WEIGHT:g}]")
        raw_tags = data.get("tags") or {}
        if not isinstance(raw_tags, dict):
            raise SignalError("wrong_type", "tags must be an object")
        if len(raw_tags) > MAX_TAGS:
            raise SignalError("bad_value", f"more than {MAX_TAGS} tags")
        tags = {str(tag): _number(w, f"tags.{tag}") for tag, w in raw_tags.items()}
        # A distribution (enrich normalises to a sum of 1 and rounds to 6 places): a weight past 1 is a bad
        # record, and a huge one would overflow the decayed scores to inf (not JSON).
        if any(not 0 <= w <= 1 + 1e-6 for w in tags.values()):
            raise SignalError("bad_value", "tag weights must be within [0, 1]")
        products = data.get("product_ids") or ()
        if not isinstance(products, list | tuple) or not all(isinstance(p, str) for p in products):
            raise SignalError("wrong_type", "product_ids must be a list of strings")
        product_id = data.get("product_id")
        if product_id is not None and not isinstance(product_id, str):
            raise SignalError("wrong_type", "product_id must be a string or null")
        product_ids = tuple(products) if products else ((product_id,) if product_id else ())
        label = probability = None
        sentiment = data.get("sentiment")
        if sentiment is not None:
            if not isinstance(sentiment, dict) or not isinstance(sentiment.get("label"), str):
                raise SignalError("wrong_type", "sentiment must be an object with a string label")
            label = sentiment["label"]
            probability = _number(sentiment.get("probability"), "sentiment.probability")
            if not 0.0 <= probability <= 1.0:
                raise SignalError("bad_value", "sentiment.probability must be within [0, 1]")
        aspects = data.get("aspects") or {}
        if not isinstance(aspects, dict) or not all(isinstance(v, str) for v in aspects.values()):
            raise SignalError("wrong_type", "aspects must map aspect to a label string")
        amount = currency = None
        if data.get("amount") is not None:
            try:
                amount = Decimal(str(data["amount"]))
            except InvalidOperation:
                raise SignalError("bad_value", "amount must be a decimal string") from None
            if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
                raise SignalError("bad_value", "amount must be a finite decimal within [0, 1e12]")
            currency = data.get("currency")
            if not isinstance(currency, str) or not currency:
                raise SignalError("missing_field", "an order amount needs a currency")
        return cls(
            event_id=event_id,
            user_id=user_id,
            ts=ts,
            kind=str(data.get("kind") or ""),
            action=str(data.get("action") or ""),
            weight=weight,
            tags=tags,
            product_ids=product_ids,
            sentiment_label=label,
            sentiment_probability=probability,
            aspects={str(k): v for k, v in aspects.items()},
            amount=amount,
            currency=currency,
        )


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise SignalError("missing_field", f"{key} is required")
    if not isinstance(value, str) or not value:
        raise SignalError("wrong_type", f"{key} must be a non-empty string")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignalError("wrong_type", f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise SignalError("bad_value", f"{name} must be finite")
    return number


def decay(half_life_ms: float, from_ms: int, to_ms: int) -> float:
    """The factor 2^(−(to−from)/H) that carries a score from one time to a later one."""
    return 2.0 ** (-(to_ms - from_ms) / half_life_ms)


def dominant_tag(tags: Mapping[str, float]) -> str | None:
    """The tag with the greatest weight (ties: the smallest name); None without positive weights."""
    best = [(-w, tag) for tag, w in tags.items() if w > 0]
    return min(best)[1] if best else None


def _empty_sentiment() -> dict[str, Any]:
    return {"labels": {}, "reviews": 0, "probability_sum": 0.0}


def _add_sentiment(stats: dict[str, Any], label: str, probability: float) -> None:
    stats["labels"][label] = stats["labels"].get(label, 0) + 1
    stats["reviews"] += 1
    stats["probability_sum"] += probability


@dataclass
class ProfileState:
    """One user's stored row: everything needed to continue the fold and to render the profile.

    It round-trips through JSON (``to_row``/``from_row``) because that is how the faust table
    and its changelog store it.
    """

    user_id: str
    interests: dict[str, list[float]] = field(default_factory=dict)  # tag -> [value, ref_ms]
    sentiment: dict[str, Any] = field(
        default_factory=lambda: {"overall": _empty_sentiment(), "tags": {}, "aspects": {}}
    )
    orders: dict[str, Any] = field(
        default_factory=lambda: {"count": 0, "totals": {}, "counts": {}, "first_ts": None, "last_ts": None}
    )
    recent: dict[str, list[Any]] = field(default_factory=dict)  # product_id -> [ts, event_id, action]
    seen: list[str] = field(default_factory=list)  # last dedup_window applied event_ids, oldest first
    as_of: int | None = None
    version: int = 0
    updated_at: int | None = None
    partition: int | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "interests": self.interests,
            "sentiment": self.sentiment,
            "orders": self.orders,
            "recent": self.recent,
            "seen": self.seen,
            "as_of": self.as_of,
            "version": self.version,
            "updated_at": self.updated_at,
            "partition": self.partition,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProfileState:
        return cls(
            user_id=row["user_id"],
            interests={tag: list(vr) for tag, vr in row["interests"].items()},
            sentiment=row["sentiment"],
            orders=row["orders"],
            recent={pid: list(entry) for pid, entry in row["recent"].items()},
            seen=list(row["seen"]),
            as_of=row["as_of"],
            version=row["version"],
            updated_at=row.get("updated_at"),
            partition=row.get("partition"),
        )


def apply_signal(state: ProfileState, signal: Signal, params: FoldParams, now_ms: int | None = None) -> bool:
    """Fold one signal into ``state`` in place; False (and no change) when it was already applied."""
    if signal.event_id in state.seen:
        return False
    state.seen.append(signal.event_id)
    if len(state.seen) > params.dedup_window:
        del state.seen[: len(state.seen) - params.dedup_window]

    _add_interests(state.interests, signal, params.half_life_ms)
    if signal.sentiment_label is not None and signal.sentiment_probability is not None:
        _add_review(state.sentiment, signal)
    if signal.amount is not None and signal.currency is not None:
        _add_order(state.orders, signal)
    if params.recent_products > 0:
        _add_recent(state.recent, signal, params.recent_products)

    state.as_of = signal.ts if state.as_of is None else max(state.as_of, signal.ts)
    state.version += 1
    state.updated_at = now_ms if now_ms is not None else int(time.time() * 1000)
    return True


def _add_interests(interests: dict[str, list[float]], signal: Signal, half_life_ms: float) -> None:
    for tag, tag_weight in signal.tags.items():
        contribution = signal.weight * tag_weight
        if contribution == 0.0:
            continue
        entry = interests.get(tag)
        if entry is None:
            interests[tag] = [contribution, signal.ts]
            continue
        value, ref = entry[0], int(entry[1])
        if signal.ts >= ref:
            interests[tag] = [value * decay(half_life_ms, ref, signal.ts) + contribution, signal.ts]
        else:
            interests[tag] = [value + contribution * decay(half_life_ms, signal.ts, ref), ref]


def _add_review(sentiment: dict[str, Any], signal: Signal) -> None:
    label, probability = signal.sentiment_label, signal.sentiment_probability
    assert label is not None and probability is not None
    _add_sentiment(sentiment["overall"], label, probability)
    tag = dominant_tag(signal.tags)
    if tag is not None:
        _add_sentiment(sentiment["tags"].setdefault(tag, _empty_sentiment()), label, probability)
    for aspect, aspect_label in signal.aspects.items():
        _add_sentiment(sentiment["aspects"].setdefault(aspect, _empty_sentiment()), aspect_label, probability)


def _add_order(orders: dict[str, Any], signal: Signal) -> None:
    assert signal.amount is not None and signal.currency is not None
    currency = signal.currency
    orders["count"] += 1
    orders["totals"][currency] = str(Decimal(orders["totals"].get(currency, "0")) + signal.amount)
    orders["counts"][currency] = orders["counts"].get(currency, 0) + 1
    first, last = orders["first_ts"], orders["last_ts"]
    orders["first_ts"] = signal.ts if first is None else min(first, signal.ts)
    orders["last_ts"] = signal.ts if last is None else max(last, signal.ts)


def _add_recent(recent: dict[str, list[Any]], signal: Signal, keep: int) -> None:
    entry = [signal.ts, signal.event_id, signal.action]
    for product_id in signal.product_ids:
        current = recent.get(product_id)
        if current is None or tuple(entry) > tuple(current):
            recent[product_id] = list(entry)
    while len(recent) > keep:
        oldest = min(recent, key=lambda pid: (*recent[pid], pid))
        del recent[oldest]


def render(state: ProfileState, params: FoldParams, as_of: int | None = None) -> dict[str, Any]:
    """The public profile (schema in ``docs/events.md``), interest scores decayed to ``as_of``.

    ``as_of`` defaults to the profile's own event time (the latest signal's ts); an earlier
    time is refused because signals after it would be amplified, not decayed.
    """
    target = state.as_of if as_of is None else as_of
    if target is not None and state.as_of is not None and target < state.as_of:
        raise ValueError(f"as_of {target} is before the profile's latest signal ({state.as_of})")
    interests = {
        tag: value * decay(params.half_life_ms, int(ref), target) if target is not None else value
        for tag, (value, ref) in sorted(state.interests.items())
    }
    ranked = sorted(interests.items(), key=lambda kv: (-kv[1], kv[0]))[: params.top_k]
    return {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "user_id": state.user_id,
        "as_of": target,
        "version": state.version,
        "updated_at": state.updated_at,
        "half_life_days": params.half_life_days,
        "interests": interests,
        "top_tags": [{"tag": tag, "score": score} for tag, score in ranked],
        "sentiment": {
            "overall": _render_sentiment(state.sentiment["overall"]),
            "by_tag": {k: _render_sentiment(v) for k, v in sorted(state.sentiment["tags"].items())},
            "by_aspect": {k: _render_sentiment(v) for k, v in sorted(state.sentiment["aspects"].items())},
        },
        "orders": _render_orders(state.orders),
        "recent_products": [
            {"product_id": pid, "action": action, "ts": ts, "event_id": event_id}
            for pid, (ts, event_id, action) in sorted(
                state.recent.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[1][2], kv[0]), reverse=True
            )
        ],
    }


def _render_sentiment(stats: Mapping[str, Any]) -> dict[str, Any]:
    labels = stats["labels"]
    reviews = stats["reviews"]
    return {
        "positive": labels.get("positive", 0),
        "negative": labels.get("negative", 0),
        "reviews": reviews,
        "mean_probability": stats["probability_sum"] / reviews if reviews else None,
    }


def average(total: Decimal, count: int) -> Decimal:
    """Total/count rounded half-even to the total's own precision (cents stay cents)."""
    exponent = Decimal(1).scaleb(min(total.as_tuple().exponent, 0))  # type: ignore[arg-type]
    return (total / count).quantize(exponent, rounding=ROUND_HALF_EVEN)


def _render_orders(orders: Mapping[str, Any]) -> dict[str, Any]:
    totals = {cur: Decimal(total) for cur, total in sorted(orders["totals"].items())}
    return {
        "count": orders["count"],
        "totals": {cur: str(total) for cur, total in totals.items()},
        "average_order_value": {cur: str(average(total, orders["counts"][cur])) for cur, total in totals.items()},
        "first_order_ts": orders["first_ts"],
        "last_order_ts": orders["last_ts"],
    }


def fold(signals: Iterable[Signal], user_id: str, params: FoldParams) -> ProfileState:
    """Apply signals in the order given (convenience for tools and tests)."""
    state = ProfileState(user_id=user_id)
    for signal in signals:
        apply_signal(state, signal, params, now_ms=0)
    return state
