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
- Idempotence, exact: every signal names the input record it came from (``source``: topic,
  partition, offset), and the row keeps, per input partition, the highest offset applied.
  Enrich writes a user's signals in input order (inputs are keyed by ``user_id``, its producer
  is idempotent and gapless), so any replay, however late (a crash of either stage, a
  rebalance, an aborted transaction re-sent), carries an offset at or below that mark and is
  ignored. The state is bounded by the input partitions a user's events arrive on. The last
  ``dedup_window`` event_ids are kept as well: they catch a shop that sent the same event twice
  (two input records, one event_id), within that window.
- Bounded: interests decayed below ``interest_floor`` are forgotten, at most ``max_interests``
  are kept (the strongest), and every other map and list has a cap, so a rendered profile and
  a stored row stay far below Kafka's message limit whatever the signals hold
  (``tests/unit/consumers/profiles/test_bounds.py`` builds the largest one). Pruning by score
  depends on arrival order only for tags at the very bottom of a full profile.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shoppulse.consumers.contracts import R_BAD_VALUE
from shoppulse.consumers.records import Signal, SignalError, UserProfile

PROFILE_SCHEMA_VERSION = 1
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class FoldParams:
    """The knobs of the fold (from ``ProfileSettings``)."""

    half_life_days: float = 7.0
    top_k: int = 5
    recent_products: int = 20
    dedup_window: int = 256
    max_interests: int = 64
    interest_floor: float = 1e-6

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
            max_interests=profiles.max_interests,
            interest_floor=profiles.interest_floor,
        )


# Caps of a stored row beyond those of one signal (see the module docstring).
MAX_SENTIMENT_GROUPS = 64  # per-tag and per-aspect sentiment entries
MAX_CURRENCIES = 32
MAX_INPUT_PARTITIONS = 256  # offset marks per user: a user's events use one partition per input topic


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
    applied: dict[str, int] = field(default_factory=dict)  # "topic:partition" of an input -> last offset applied
    seen: list[str] = field(default_factory=list)  # digests of the last dedup_window event_ids, oldest first
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
            "applied": self.applied,
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
            applied=dict(row.get("applied") or {}),  # rows written before exact deduplication have none
            seen=list(row["seen"]),
            as_of=row["as_of"],
            version=row["version"],
            updated_at=row.get("updated_at"),
            partition=row.get("partition"),
        )


def event_digest(signal: Signal) -> str:
    """16 hex characters for an event_id in the row: a 128-character id of CJK characters is 768
    bytes in faust's ASCII-escaped JSON, and a row must fit a Kafka record (64-bit: no collision
    among a user's last ``dedup_window`` events in practice)."""
    return hashlib.blake2b(signal.event_id.encode("utf-8"), digest_size=8).hexdigest()


def apply_signal(state: ProfileState, signal: Signal, params: FoldParams, now_ms: int | None = None) -> bool:
    """Fold one signal into ``state`` in place; False (and no change) when it was already applied:
    a replay (its input offset is at or below the mark of its input partition), or a repeated event_id."""
    digest, mark = event_digest(signal), signal.source.partition_key
    if state.applied.get(mark, -1) >= signal.source.offset or digest in state.seen:
        return False
    if mark not in state.applied and len(state.applied) >= MAX_INPUT_PARTITIONS:
        raise SignalError(R_BAD_VALUE, f"a user's signals come from more than {MAX_INPUT_PARTITIONS} input partitions")
    state.applied[mark] = signal.source.offset
    state.seen.append(digest)
    if len(state.seen) > params.dedup_window:
        del state.seen[: len(state.seen) - params.dedup_window]

    as_of = signal.ts if state.as_of is None else max(state.as_of, signal.ts)
    _add_interests(state.interests, signal, params.half_life_ms)
    _prune_interests(state.interests, as_of, params)
    if signal.sentiment_label is not None and signal.sentiment_probability is not None:
        _add_review(state.sentiment, signal)
    if signal.amount is not None and signal.currency is not None:
        _add_order(state.orders, signal)
    if params.recent_products > 0:
        _add_recent(state.recent, signal, params.recent_products)

    state.as_of = as_of
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


def _prune_interests(interests: dict[str, list[float]], as_of: int, params: FoldParams) -> None:
    """Forget tags decayed below the floor at ``as_of``, then keep the ``max_interests`` strongest."""
    scores = {tag: value * decay(params.half_life_ms, int(ref), as_of) for tag, (value, ref) in interests.items()}
    for tag, score in scores.items():
        if score < params.interest_floor:
            del interests[tag]
    if len(interests) > params.max_interests:
        keep = set(sorted(interests, key=lambda tag: (-scores[tag], tag))[: params.max_interests])
        for tag in [tag for tag in interests if tag not in keep]:
            del interests[tag]


def _group(groups: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The sentiment entry of a tag or aspect; None when the map is full and ``name`` is new (not counted)."""
    entry = groups.get(name)
    if entry is None and len(groups) < MAX_SENTIMENT_GROUPS:
        entry = groups[name] = _empty_sentiment()
    return entry


def _add_review(sentiment: dict[str, Any], signal: Signal) -> None:
    label, probability = signal.sentiment_label, signal.sentiment_probability
    assert label is not None and probability is not None
    _add_sentiment(sentiment["overall"], label, probability)
    tag = dominant_tag(signal.tags)
    if tag is not None and (entry := _group(sentiment["tags"], tag)) is not None:
        _add_sentiment(entry, label, probability)
    for aspect, aspect_label in signal.aspects.items():
        if (entry := _group(sentiment["aspects"], aspect)) is not None:
            _add_sentiment(entry, aspect_label, probability)


def _add_order(orders: dict[str, Any], signal: Signal) -> None:
    assert signal.amount is not None and signal.currency is not None
    currency = signal.currency
    orders["count"] += 1
    first, last = orders["first_ts"], orders["last_ts"]
    orders["first_ts"] = signal.ts if first is None else min(first, signal.ts)
    orders["last_ts"] = signal.ts if last is None else max(last, signal.ts)
    if currency not in orders["totals"] and len(orders["totals"]) >= MAX_CURRENCIES:
        return  # counted, not summed: no real user pays in this many currencies
    orders["totals"][currency] = str(Decimal(orders["totals"].get(currency, "0")) + signal.amount)
    orders["counts"][currency] = orders["counts"].get(currency, 0) + 1


def _add_recent(recent: dict[str, list[Any]], signal: Signal, keep: int) -> None:
    entry = [signal.ts, signal.event_id, signal.action]
    for product_id in signal.product_ids:
        current = recent.get(product_id)
        if current is None or tuple(entry) > tuple(current):
            recent[product_id] = list(entry)
    if len(recent) > keep:  # one sort, not a scan per product dropped (20,000 ids took 30 s)
        newest = heapq.nlargest(keep, recent, key=lambda pid: (*recent[pid], pid))
        for pid in set(recent) - set(newest):
            del recent[pid]


def render(state: ProfileState, params: FoldParams, as_of: int | None = None) -> dict[str, Any]:
    """The public profile as it goes on the wire (schema in ``docs/events.md``); see ``profile_record``."""
    return profile_record(state, params, as_of).to_wire()


def profile_record(state: ProfileState, params: FoldParams, as_of: int | None = None) -> UserProfile:
    """The public profile, interest scores decayed to ``as_of``.

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
    return UserProfile(
        schema_version=PROFILE_SCHEMA_VERSION,
        user_id=state.user_id,
        as_of=target,
        version=state.version,
        updated_at=state.updated_at,
        half_life_days=params.half_life_days,
        interests=interests,
        top_tags=[{"tag": tag, "score": score} for tag, score in ranked],
        sentiment={
            "overall": _render_sentiment(state.sentiment["overall"]),
            "by_tag": {k: _render_sentiment(v) for k, v in sorted(state.sentiment["tags"].items())},
            "by_aspect": {k: _render_sentiment(v) for k, v in sorted(state.sentiment["aspects"].items())},
        },
        orders=_render_orders(state.orders),
        recent_products=[
            {"product_id": pid, "action": action, "ts": ts, "event_id": event_id}
            for pid, (ts, event_id, action) in sorted(
                state.recent.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[1][2], kv[0]), reverse=True
            )
        ],
    )


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
