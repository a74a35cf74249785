"""Deterministic user sessions: view → click → add_to_cart → order → review, with drop-off.

Why this shape: the enrich stage's caches, the profile decay and the benchmarks only
mean something on a stream that looks like a shop: Zipf-like product popularity,
repeat buyers, titles that repeat, reviews whose sentiment and category are known.
Everything comes from one ``random.Random(seed)``, so a seed reproduces the stream.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shoppulse.consumers.contracts import SCHEMA_VERSION, dumps
from shoppulse.devkit.simulator import vocab
from shoppulse.devkit.simulator.incident import Incident

KINDS = ("review", "click", "order")


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str
    title: str
    price: Decimal


@dataclass(frozen=True)
class SimulatedEvent:
    """One Kafka record to produce: which input kind (topic), key and raw value."""

    kind: str
    key: bytes
    value: bytes
    event_id: str | None
    bad_reason: str | None = None
    review_truth: dict[str, Any] | None = None


@dataclass
class GroundTruth:
    """What the stream contains, for tests: per review its true sentiment and category."""

    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    valid_event_ids: list[str] = field(default_factory=list)
    personal_data: list[str] = field(default_factory=list)  # planted: no output may carry any of them

    def to_json(self) -> str:
        return json.dumps(
            {
                "reviews": self.reviews,
                "bad": self.bad,
                "counts": self.counts,
                "valid_event_ids": self.valid_event_ids,
                "personal_data": self.personal_data,
            },
            ensure_ascii=False,
            indent=1,
        )


class Simulator:
    """Generates ``n`` events from ``users`` simulated shoppers.

    ``start_ms`` fixes event time (deterministic streams); when None, events carry
    the wall-clock time at which they are generated (live streams, real latency).
    """

    def __init__(
        self,
        seed: int = 7,
        users: int = 1_000,
        start_ms: int | None = None,
        bad_fraction: float = 0.0,
        products_per_category: int = 40,
        clock: Callable[[], float] = time.time,
        pii_fraction: float = 0.0,
        incident: Incident | None = None,
    ) -> None:
        if not 0.0 <= bad_fraction < 1.0:
            raise ValueError("bad_fraction must be in [0, 1)")
        if not 0.0 <= pii_fraction <= 1.0:
            raise ValueError("pii_fraction must be in [0, 1]")
        self.pii_fraction = pii_fraction
        if users < 1:
            raise ValueError("users must be >= 1")
        self.rng = random.Random(seed)
        self.seed = seed
        self.start_ms = start_ms
        self.bad_fraction = bad_fraction
        self.clock = clock
        self.truth = GroundTruth()
        self.catalog = self._build_catalog(products_per_category)
        self.users = [f"u{n:06d}" for n in range(users)]
        self._user_weights = _zipf_weights(users, 1.05)  # a few heavy (repeat) buyers, a long tail
        self._user_prefs = {u: self.rng.sample(list(vocab.CATEGORIES), 2) for u in self.users}
        self._user_mood = {u: self.rng.betavariate(5, 2) for u in self.users}  # P(positive review)
        self._sim_ms = start_ms or 0
        self._seq = itertools.count()
        self._pending: list[tuple[int, int, str, tuple[Product, ...], str]] = []
        self.incident = incident
        # The incident's product: the most popular one of the first category (deterministic per seed).
        products, weights = self.catalog[next(iter(self.catalog))]
        self.incident_product = products[weights.index(max(weights))]
        self._incident_origin: int | None = None  # event time of the stream's first event
        self._incident_next = 0

    # --- catalog ------------------------------------------------------------------------------
    def _build_catalog(self, per_category: int) -> dict[str, tuple[list[Product], list[float]]]:
        catalog: dict[str, tuple[list[Product], list[float]]] = {}
        for c_idx, (category, words) in enumerate(vocab.CATEGORIES.items()):
            products = []
            for i in range(per_category):
                brand = self.rng.choice(words["brands"])
                item = self.rng.choice(words["items"])
                spec = self.rng.choice(["", " 旗舰款", " 新款", " 家庭装", " 限量版", " 经典款"])
                products.append(
                    Product(
                        product_id=f"p{c_idx:02d}{i:04d}",
                        category=category,
                        title=f"{brand}{item}{spec}".strip(),
                        price=Decimal(self.rng.choice(words["price"])),
                    )
                )
            weights = _zipf_weights(per_category, 1.1)
            self.rng.shuffle(weights)
            catalog[category] = (products, weights)
        return catalog

    # --- event construction -------------------------------------------------------------------
    def _ts(self) -> int:
        if self.start_ms is None:
            return int(self.clock() * 1000)
        return self._sim_ms

    def _advance(self, low_s: float, high_s: float) -> None:
        self._sim_ms += int(self.rng.uniform(low_s, high_s) * 1000)

    def _event_id(self, kind: str) -> str:
        return f"{kind[0]}-{self.seed}-{next(self._seq):08d}"

    def _review_text(self, product: Product, positive: bool) -> str:
        words = vocab.CATEGORIES[product.category]
        rng = self.rng
        opener = rng.choice(vocab.OPENERS_POS if positive else vocab.OPENERS_NEG)
        clauses = [f"{rng.choice(words['nouns'])}{rng.choice(words['pos' if positive else 'neg'])}"]
        if rng.random() < 0.5:
            clauses.append(rng.choice(words["pos" if positive else "neg"]))
        if rng.random() < 0.3:
            item = rng.choice(words["items"])
            clauses.insert(0, f"买的{item}")
        closer = rng.choice(vocab.CLOSERS_POS if positive else vocab.CLOSERS_NEG)
        if self.pii_fraction and rng.random() < self.pii_fraction:  # no draw at 0: streams stay byte for byte
            clauses.append(self._personal_clause())
        return f"{opener}{'，'.join(clauses)}{closer}"

    def _personal_datum(self) -> str:
        """A phone number, e-mail address, ID or bank-card number in one of the forms masking knows."""
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            datum = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        elif kind == 1:
            head = f"1{rng.choice('3456789')}{rng.randrange(10):d}"
            datum = f"+86 {head} {rng.randrange(10**4):04d} {rng.randrange(10**4):04d}"
        elif kind == 2:
            name = rng.choice(["zhang.san", "li_si", "wangwu"])
            datum = f"{name}{rng.randrange(10**4)}@{rng.choice(['qq.com', 'example.com.cn', '163.com'])}"
        elif kind == 3:
            datum = f"{rng.randrange(10**16, 10**17)}{rng.choice('0123456789X')}"
        elif kind == 4:
            datum = " ".join(f"{rng.randrange(10**4):04d}" for _ in range(4))
        else:
            datum = f"0{rng.randrange(10, 1000)}-{rng.randrange(10**7, 10**8)}"
        self.truth.personal_data.append(datum)
        return datum

    def _personal_clause(self) -> str:
        return f"{self.rng.choice(['快递员电话', '有问题联系', '我的号码', '客服说发到'])}{self._personal_datum()}"

    def _click(self, user: str, product: Product, action: str, query: str | None = None) -> SimulatedEvent:
        body: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self._event_id("click"),
            "user_id": user,
            "action": action,
            "ts": self._ts(),
        }
        if action == "search":
            if self.pii_fraction and self.rng.random() < self.pii_fraction:
                query = f"{query} {self._personal_datum()}"
            body["query"] = query
        else:
            body.update(product_id=product.product_id, title=product.title)
            if self.rng.random() < 0.5:  # half the clicks carry only the catalog category
                body.pop("title")
                body["category"] = product.category
        return self._emit("click", user, body)

    def _order(self, user: str, products: list[Product]) -> SimulatedEvent:
        items = []
        for product in products:
            quantity = self.rng.choice([1, 1, 1, 2, 3])
            items.append(
                {
                    "product_id": product.product_id,
                    "title": product.title,
                    "category": product.category,
                    "price": str(product.price),
                    "quantity": quantity,
                }
            )
        total = sum((Decimal(i["price"]) * i["quantity"] for i in items), Decimal("0"))
        body = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self._event_id("order"),
            "user_id": user,
            "order_id": f"o-{self.seed}-{next(self._seq):08d}",
            "items": items,
            "total": str(total),
            "currency": "CNY",
            "ts": self._ts(),
        }
        return self._emit("order", user, body)

    def _review(
        self, user: str, product: Product, order_id: str | None, ts_ms: int | None = None, positive: bool | None = None
    ) -> SimulatedEvent:
        if positive is None:
            positive = self.rng.random() < self._user_mood[user]
        body: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self._event_id("review"),
            "user_id": user,
            "product_id": product.product_id,
            "text": self._review_text(product, positive),
            "ts": ts_ms if ts_ms is not None else self._ts(),
        }
        if order_id:
            body["order_id"] = order_id
        if self.rng.random() < 0.8:
            body["rating"] = self.rng.choice([4, 5]) if positive else self.rng.choice([1, 2])
        truth = {"label": int(positive), "category": product.category}
        return self._emit("review", user, body, truth)

    @staticmethod
    def _emit(
        kind: str, user: str, body: dict[str, Any], truth: dict[str, Any] | None = None
    ) -> SimulatedEvent:
        return SimulatedEvent(kind, user.encode(), dumps(body), body["event_id"], review_truth=truth)

    def _record(self, event: SimulatedEvent) -> None:
        """Ground truth covers what is yielded (a valid event may be swapped for a bad one)."""
        if event.bad_reason is not None or event.event_id is None:
            return
        self.truth.counts[event.kind] += 1
        self.truth.valid_event_ids.append(event.event_id)
        if event.review_truth is not None:
            self.truth.reviews[event.event_id] = event.review_truth

    def _bad(self, kind: str, user: str) -> SimulatedEvent:
        """A malformed record of a known kind; the expected dead-letter reason is recorded."""
        rng = self.rng
        base = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self._event_id("bad"),
            "user_id": user,
            "ts": self._ts(),
        }
        choice = rng.randrange(8)
        if choice == 0:
            value, reason = b'{"event_id": "x", "user_id": ', "bad_json"
        elif choice == 1:
            value, reason = b"\xff\xfe\x00not-utf8\xc3\x28", "not_utf8"
        elif choice == 2:
            body = dict(base)
            body.pop("user_id")
            value, reason = dumps(body | {"text": "好", "product_id": "p1"}), "missing_field"
        elif choice == 3:
            value, reason = (
                dumps(base | {"product_id": "p1", "text": 12345, "action": 7, "items": "x"}),
                "wrong_type",
            )
        elif choice == 4:
            value, reason = dumps(base | {"product_id": "p1", "text": "长" * 300_000}), "too_large"
        elif choice == 5:
            year_3000 = 32_503_680_000_000
            body = base | {"ts": year_3000, "product_id": "p1", "text": "不错", "action": "view"}
            body |= {"order_id": "o1", "items": [{"product_id": "p1", "price": "1", "quantity": 1}]}
            value, reason = dumps(body | {"total": "1", "currency": "CNY"}), "ts_out_of_range"
        elif choice == 6:
            value, reason = b"[1, 2, 3]", "not_object"
        else:
            value, reason = dumps(base | {"schema_version": 99}), "unsupported_schema_version"
        self.truth.bad.append({"kind": kind, "reason": reason, "key": user})
        return SimulatedEvent(kind, user.encode(), value, None, bad_reason=reason)

    # --- sessions -----------------------------------------------------------------------------
    def _pick_product(self, user: str) -> Product:
        prefs = self._user_prefs[user]
        category = (
            prefs[0]
            if self.rng.random() < 0.6
            else (prefs[1] if self.rng.random() < 0.7 else self.rng.choice(list(vocab.CATEGORIES)))
        )
        products, weights = self.catalog[category]
        return self.rng.choices(products, weights)[0]

    def _session(self) -> Iterator[SimulatedEvent]:
        rng = self.rng
        user = rng.choices(self.users, self._user_weights)[0]
        self._advance(1, 120)
        product = self._pick_product(user)
        if rng.random() < 0.15:
            suffix = rng.choice(vocab.SEARCH_SUFFIX)
            yield self._click(user, product, "search", query=f"{product.title.split(' ')[0]}{suffix}")
            self._advance(1, 10)
        yield self._click(user, product, "view")
        if rng.random() > 0.6:
            return
        self._advance(2, 30)
        yield self._click(user, product, "click")
        if rng.random() < 0.1:
            yield self._click(user, product, "favorite")
        if rng.random() > 0.45:
            return
        self._advance(2, 60)
        yield self._click(user, product, "add_to_cart")
        if rng.random() > 0.6:
            return
        self._advance(10, 300)
        basket = [product] + ([self._pick_product(user)] if rng.random() < 0.2 else [])
        order = self._order(user, basket)
        yield order
        if rng.random() > 0.85:
            return
        # Reviews come hours to days later: scheduled, and emitted when the clock gets there.
        due = self._sim_ms + int(rng.uniform(3600, 3 * 86400) * 1000)
        order_id = json.loads(order.value)["order_id"]
        heapq.heappush(self._pending, (due, next(self._seq), user, tuple(basket), order_id))

    def _due_reviews(self) -> Iterator[SimulatedEvent]:
        """Reviews whose scheduled time the simulated clock has passed, stamped with that time."""
        while self._pending and self._pending[0][0] <= self._sim_ms:
            due, _, user, basket, order_id = heapq.heappop(self._pending)
            for bought in basket:
                yield self._review(user, bought, order_id, ts_ms=due if self.start_ms is not None else None)

    def _incident_reviews(self) -> Iterator[SimulatedEvent]:
        """The incident product's reviews due by now: a steady trickle, then the burst (``Incident``)."""
        if self.incident is None:
            return
        now = self._ts()
        if self._incident_origin is None:
            self._incident_origin = self._incident_next = now
        incident, product = self.incident, self.incident_product
        while self._incident_next <= now:
            offset = self._incident_next - self._incident_origin
            negative = self.rng.random() < incident.negative_share(offset)
            user = self.rng.choices(self.users, self._user_weights)[0]
            event = self._review(user, product, None, ts_ms=self._incident_next, positive=not negative)
            body = json.loads(event.value)
            body["text"] = incident.phrase(negative, self.rng.randrange(1_000))
            body["rating"] = self.rng.choice([1, 2]) if negative else self.rng.choice([4, 5])
            truth = {"label": int(not negative), "category": product.category, "incident": incident.in_burst(offset)}
            yield self._emit("review", user, body, truth)
            self._incident_next += incident.interval_ms(offset)

    def events(self, n: int, kinds: tuple[str, ...] = KINDS) -> Iterator[SimulatedEvent]:
        """The first ``n`` events of the stream (only of ``kinds`` when restricted).

        Restricting to reviews keeps the session structure, so it is the same reviews
        as in the full stream, not a different distribution.
        """
        produced = 0
        while produced < n:
            for event in itertools.chain(self._incident_reviews(), self._due_reviews(), self._session()):
                if event.kind not in kinds:
                    continue
                if self.bad_fraction and self.rng.random() < self.bad_fraction:
                    event = self._bad(event.kind, event.key.decode())
                self._record(event)
                yield event
                produced += 1
                if produced >= n:
                    return


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]
