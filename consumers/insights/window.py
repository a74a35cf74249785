"""Windowed business figures of one product or category as a pure fold over facts.

Why a fold of our own instead of faust's windowed tables: a faust window is one table key per
window, so the deduplication marks (which input records were already counted) could not live
beside the figures they guard. Here one row per product or category holds its recent tumbling
windows *and* those marks, and both reach the changelog in one write. The faust stage
(``consumers.insights.app``) only stores rows and publishes their renderings; everything that
decides a number is here and tested without a broker.

- **Exact once.** A fact names its input record (``source``: topic, partition, offset) and
  its ``item`` within it. The row keeps, per input partition, the greatest (offset, item) applied. The
  facts of one input partition reach a row in input order (one forwarder per input partition,
  order kept per output partition), so a replay after a crash carries a mark at or below it
  and is ignored.
- **Event time.** A fact counts in the window its ``ts`` falls in. Lateness is judged within the
  fact's own input partition: the mark keeps that partition's greatest ``ts`` so far, and a
  fact whose window ended more than ``grace`` before it is *late*: not counted (its mark still
  moves, so a replay of it is recognised) and reported for the late metric. Why per input
  partition and not per row: a row is fed by many partitions that run at different speeds (a
  backlog, a restarted enrich replica), and a row-wide clock would call a slow partition's
  on-time events late; within one partition, order is the order events were produced, so
  "late" means what a person means by it and does not depend on how partitions interleave.
  The row's ``watermark`` (greatest ``ts`` from any partition) decides retention and when a
  window is reported ``closed``; a fact older than the retention is late as well.
- **Exact money.** Revenue is a ``Decimal`` sum per currency, written as a string.
- **Bounded.** At most ``retention / window`` windows, ``MAX_ASPECTS`` aspects,
  ``MAX_KEYWORDS`` negative-review keywords (the space-saving heavy-hitter sketch: when full,
  the least counted word makes room and the newcomer inherits its count, so every word with
  more than total/k mentions is kept), ``MAX_EXAMPLES`` example event ids, ``MAX_CURRENCIES``
  currencies and ``MAX_INPUT_PARTITIONS`` marks per row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shoppulse.consumers.coordinates import RecordCoordinates

INSIGHTS_SCHEMA_VERSION = 1
MAX_ASPECTS = 32
MAX_KEYWORDS = 32
MAX_EXAMPLES = 5
MAX_CURRENCIES = 32
MAX_INPUT_PARTITIONS = 256
MAX_COMPLAINERS = 16  # products tracked per aspect in a category window (category-wide alerts)
COUNTERS = ("reviews", "negative", "rating_sum", "ratings", "views", "clicks", "carts", "favorites", "orders", "units")
CLICK_FIELDS = {"view": "views", "click": "clicks", "add_to_cart": "carts", "favorite": "favorites"}
SCOPES = {"p": "product", "c": "category", "t": "tag"}


@dataclass(frozen=True)
class WindowParams:
    """Window length, how long windows are kept, and how late a fact may still count."""

    window_ms: int = 3_600_000
    retention_ms: int = 48 * 3_600_000
    grace_ms: int = 600_000
    rolling_ms: int = 24 * 3_600_000

    @classmethod
    def from_settings(cls, insights: Any) -> WindowParams:
        return cls(
            window_ms=int(insights.window_s * 1000),
            retention_ms=int(insights.retention_s * 1000),
            grace_ms=int(insights.grace_s * 1000),
            rolling_ms=int(insights.rolling_s * 1000),
        )

    def start_of(self, ts: int) -> int:
        return ts - ts % self.window_ms


@dataclass(frozen=True)
class Fact:
    """One countable thing about one product or category: a review, a click action or an order line."""

    key: str  # "p:<product_id>", "c:<fine category>" or "t:<interest tag>"
    kind: str  # review, view, click, add_to_cart, favorite, order
    ts: int
    event_id: str
    source: RecordCoordinates  # the input record
    item: int = 0  # which fact of that record (the first line of an order's product or category)
    negative: bool = False
    rating: int | None = None
    aspects: Mapping[str, str] = field(default_factory=dict)  # aspect -> positive/negative
    keywords: tuple[str, ...] = ()
    units: int = 0
    revenue: Decimal | None = None
    currency: str | None = None
    product_id: str | None = None  # on category and tag facts of reviews: who the complaint is about

    @property
    def mark(self) -> tuple[int, int]:
        return self.source.offset, self.item


def empty_window() -> dict[str, Any]:
    return {
        "reviews": 0,
        "negative": 0,
        "rating_sum": 0,
        "ratings": 0,
        "aspects": {},  # aspect -> [positive, negative]
        "keywords": {},  # keyword of a negative review -> count (space-saving sketch)
        "examples": [],  # [ts, event_id] of the latest negative reviews
        "views": 0,
        "clicks": 0,
        "carts": 0,
        "favorites": 0,
        "orders": 0,
        "units": 0,
        "revenue": {},  # currency -> exact decimal string
        "complainers": {},  # category rows: aspect -> {product_id: negative mentions}, the first 16 products
    }


@dataclass
class InsightState:
    """One product's or category's row: its windows (by start, ms), watermark and applied marks."""

    key: str
    windows: dict[int, dict[str, Any]] = field(default_factory=dict)
    watermark: int = 0
    applied: dict[str, list[int]] = field(default_factory=dict)  # "topic:partition" -> [offset, item, max ts]
    alerted: list[str] = field(default_factory=list)  # alert ids raised (kept while their window is)
    partition: int | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "windows": {str(start): w for start, w in self.windows.items()},
            "watermark": self.watermark,
            "applied": self.applied,
            "alerted": self.alerted,
            "partition": self.partition,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InsightState:
        return cls(
            key=row["key"],
            windows={int(start): w for start, w in row.get("windows", {}).items()},
            watermark=row.get("watermark", 0),
            applied={k: list(v) for k, v in row.get("applied", {}).items()},
            alerted=list(row.get("alerted", [])),
            partition=row.get("partition"),
        )


class FactRefused(ValueError):
    """A fact the row cannot take (too many input partitions for one row)."""


def apply_fact(state: InsightState, fact: Fact, params: WindowParams) -> str:
    """Fold one fact in; returns ``"applied"``, ``"duplicate"`` or ``"late"``."""
    mark_key = fact.source.partition_key
    previous = state.applied.get(mark_key)
    if previous is not None and (previous[0], previous[1]) >= fact.mark:
        return "duplicate"
    if previous is None and len(state.applied) >= MAX_INPUT_PARTITIONS:
        raise FactRefused(f"more than {MAX_INPUT_PARTITIONS} input partitions feed {state.key!r}")
    partition_time = previous[2] if previous is not None else fact.ts
    state.applied[mark_key] = [*fact.mark, max(partition_time, fact.ts)]
    start = params.start_of(fact.ts)
    closed = partition_time >= start + params.window_ms + params.grace_ms
    expired = start <= state.watermark - params.retention_ms
    if closed or expired:
        return "late"
    window = state.windows.setdefault(start, empty_window())
    _add(window, fact)
    if fact.ts > state.watermark:  # only a later watermark can push a window past the retention
        state.watermark = fact.ts
        _expire(state, params)
    return "applied"


def _add(window: dict[str, Any], fact: Fact) -> None:
    if fact.kind == "review":
        window["reviews"] += 1
        if fact.negative:
            window["negative"] += 1
            _add_keywords(window["keywords"], fact.keywords)
            _add_example(window["examples"], fact.ts, fact.event_id)
        if fact.rating is not None:
            window["rating_sum"] += fact.rating
            window["ratings"] += 1
        for aspect, label in fact.aspects.items():
            counts = window["aspects"].get(aspect)
            if counts is None:
                if len(window["aspects"]) >= MAX_ASPECTS:
                    continue
                counts = window["aspects"][aspect] = [0, 0]
            counts[1 if label == "negative" else 0] += 1
            if label == "negative" and fact.product_id is not None:
                by_product = window.setdefault("complainers", {}).setdefault(aspect, {})
                if fact.product_id in by_product or len(by_product) < MAX_COMPLAINERS:
                    by_product[fact.product_id] = by_product.get(fact.product_id, 0) + 1
    elif fact.kind == "order":
        window["orders"] += 1
        window["units"] += fact.units
        if fact.revenue is not None and fact.currency is not None:
            revenue = window["revenue"]
            if fact.currency in revenue or len(revenue) < MAX_CURRENCIES:
                revenue[fact.currency] = str(Decimal(revenue.get(fact.currency, "0")) + fact.revenue)
    elif fact.kind in CLICK_FIELDS:
        window[CLICK_FIELDS[fact.kind]] += 1


def _add_example(examples: list[list[Any]], ts: int, event_id: str) -> None:
    """Keep the latest ``MAX_EXAMPLES`` negative reviews by (ts, event_id): the same set in any arrival order."""
    examples.append([ts, event_id])
    examples.sort(reverse=True)
    del examples[MAX_EXAMPLES:]


def _add_keywords(counts: dict[str, int], words: Iterable[str]) -> None:
    """The space-saving sketch: exact until ``MAX_KEYWORDS`` words, then the least counted makes room."""
    for word in words:
        if word in counts:
            counts[word] += 1
        elif len(counts) < MAX_KEYWORDS:
            counts[word] = 1
        else:
            least = min(counts, key=lambda w: (counts[w], w))
            counts[word] = counts.pop(least) + 1


def _expire(state: InsightState, params: WindowParams) -> None:
    horizon = state.watermark - params.retention_ms
    for start in [s for s in state.windows if s <= horizon]:
        del state.windows[start]
        state.alerted = [a for a in state.alerted if not a.endswith(f"/{start}")]


def closed(state: InsightState, start: int, params: WindowParams) -> bool:
    """True when no fact can change the window any more (the watermark passed its end + grace)."""
    return state.watermark >= start + params.window_ms + params.grace_ms


def merge(windows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum windows into one (the rolling figures); keywords and examples merged, still bounded."""
    total = empty_window()
    for w in windows:
        for name in COUNTERS:
            total[name] += w[name]
        for aspect, (pos, neg) in w["aspects"].items():
            counts = total["aspects"].setdefault(aspect, [0, 0])
            counts[0] += pos
            counts[1] += neg
        for word, n in w["keywords"].items():
            total["keywords"][word] = total["keywords"].get(word, 0) + n
        for ts, event_id in w["examples"]:
            _add_example(total["examples"], ts, event_id)
        for currency, amount in w["revenue"].items():
            total["revenue"][currency] = str(Decimal(total["revenue"].get(currency, "0")) + Decimal(amount))
    total["keywords"] = dict(sorted(total["keywords"].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_KEYWORDS])
    return total


def figures(window: Mapping[str, Any], top_keywords: int = 5) -> dict[str, Any]:
    """The published form of a window's counters: shares, means, conversion and top-k lists."""
    reviews, negative = window["reviews"], window["negative"]
    aspects = {a: {"positive": pos, "negative": neg} for a, (pos, neg) in sorted(window["aspects"].items())}
    keywords = sorted(window["keywords"].items(), key=lambda kv: (-kv[1], kv[0]))[:top_keywords]
    return {
        "reviews": reviews,
        "negative_reviews": negative,
        "negative_share": round(negative / reviews, 6) if reviews else None,
        "mean_rating": round(window["rating_sum"] / window["ratings"], 6) if window["ratings"] else None,
        "aspects": aspects,
        "top_complaint_aspects": top_complaints(window),
        "negative_keywords": [{"keyword": w, "count": n} for w, n in keywords],
        "negative_examples": [event_id for _, event_id in window["examples"]],
        "views": window["views"],
        "clicks": window["clicks"],
        "add_to_carts": window["carts"],
        "favorites": window["favorites"],
        "orders": window["orders"],
        "units": window["units"],
        "revenue": dict(sorted(window["revenue"].items())),
        "conversion": round(window["orders"] / window["views"], 6) if window["views"] else None,
    }


def top_complaints(window: Mapping[str, Any], k: int = 3) -> list[str]:
    ranked = sorted(((neg, a) for a, (_, neg) in window["aspects"].items() if neg > 0), key=lambda x: (-x[0], x[1]))
    return [a for _, a in ranked[:k]]


def identity(key: str) -> dict[str, str]:
    """What a record says it is about: ``scope`` plus ``product_id``, ``category`` or ``tag``."""
    scope, _, name = key.partition(":")
    field_name = "product_id" if scope == "p" else "category" if scope == "c" else "tag"
    return {"scope": SCOPES.get(scope, scope), field_name: name}


def _record(state: InsightState, window: dict[str, Any], counters: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"schema_version": INSIGHTS_SCHEMA_VERSION, **identity(state.key)}
    record["window"] = window
    record["watermark"] = state.watermark
    record.update(figures(counters))
    if record["scope"] != "product":
        record["gmv"] = record["revenue"]
    return record


def render_window(state: InsightState, start: int, params: WindowParams) -> dict[str, Any]:
    """The ``product-insights`` / ``category-insights`` record of one window of a row."""
    window = {"start": start, "end": start + params.window_ms, "closed": closed(state, start, params)}
    return _record(state, window, state.windows.get(start, empty_window()))


def render_rolling(state: InsightState, params: WindowParams, end: int | None = None) -> dict[str, Any]:
    """The figures of the last ``rolling_ms`` up to ``end`` (default: the end of the newest window)."""
    if end is None:
        end = params.start_of(state.watermark) + params.window_ms if state.windows else 0
    begin = end - params.rolling_ms
    inside = [w for s, w in sorted(state.windows.items()) if begin <= s < end]
    return _record(state, {"start": begin, "end": end, "rolling": True}, merge(inside))


@dataclass
class RowChange:
    """What one batch did to one row: the row, its table partition and the windows it changed."""

    state: InsightState
    partition: int
    changed: set[int] = field(default_factory=set)  # window starts whose figures changed
    reviewed: set[int] = field(default_factory=set)  # window starts that took a review (alerts look there)
    marked: bool = False  # a mark moved (applied or late facts): the row must be written


class FoldBatch:
    """A batch of facts folded into their rows: each row loaded once and written once per batch.

    Why: a row holds all its windows, and loading, rendering and writing it per fact cost more
    than the fact itself. ``load`` reads a row from the table (None: a new row). Facts of one
    row arrive in input order, so the result equals folding them one by one.
    """

    def __init__(self, load: Callable[[str], InsightState | None], params: WindowParams) -> None:
        self.load = load
        self.params = params
        self.rows: dict[str, RowChange] = {}
        self.results: Counter[str] = Counter()  # applied, duplicate, late
        self.late: list[Fact] = []
        self.applied: list[Fact] = []

    def apply(self, key: str, facts: Iterable[Fact], partition: int) -> None:
        """Fold one record's facts (all of row ``key``); ``FactRefused`` stops at the refused fact."""
        change = self.rows.get(key)
        if change is None:
            change = self.rows[key] = RowChange(self.load(key) or InsightState(key=key), partition)
        change.partition = partition
        for fact in facts:
            result = apply_fact(change.state, fact, self.params)
            self.results[result] += 1
            if result == "duplicate":
                continue
            change.marked = True
            if result == "late":
                self.late.append(fact)
                continue
            self.applied.append(fact)
            start = self.params.start_of(fact.ts)
            change.changed.add(start)
            if fact.kind == "review":
                change.reviewed.add(start)


def fold(facts: Iterable[Fact], key: str, params: WindowParams) -> tuple[InsightState, int]:
    """The row a stream of facts gives, and how many were late (the reference the tests compare to)."""
    state = InsightState(key=key)
    late = 0
    for fact in facts:
        late += apply_fact(state, fact, params) == "late"
    return state, late
