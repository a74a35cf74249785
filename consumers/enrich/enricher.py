"""Turn a micro-batch of validated events into insight and signal records.

Why one model call per batch: reviews, the clauses that mention aspects, and the
product titles that missed the cache are all sent through the predictor together; it
sorts them by token length, so padding stays small and both heads come out of one
forward pass per text.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from shoppulse.consumers import metrics
from shoppulse.consumers.contracts import Event
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.records import AspectVerdict, Interest, ReviewInsight, UserSignal, Verdict
from shoppulse.models.serving.clauses import clause_is_positive
from shoppulse.models.serving.keywords import AspectLexicon, keywords
from shoppulse.models.serving.taxonomy import Taxonomy
from shoppulse.models.serving.text import clean_text, mask_pii

STAGE = "enrich"

# How much an action says about interest; documented in docs/events.md (user-signals).
ACTION_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "search": 1.0,
    "click": 2.0,
    "favorite": 3.0,
    "review": 3.0,
    "add_to_cart": 4.0,
    "order": 6.0,
}
MIN_TAG_WEIGHT = 0.05  # tags below this share are dropped from a signal, the rest renormalised


@dataclass
class Enriched:
    """The outputs of one input event."""

    event: Event
    source: RecordCoordinates
    insight: ReviewInsight | None
    signal: UserSignal


@dataclass
class Plan:
    """A batch's model work: ``texts`` to infer and where each event's results sit among them."""

    batch: list[tuple[Event, RecordCoordinates]]
    texts: list[str]
    review_slots: dict[int, tuple[int, list[tuple[str, str, int]]]]  # event index → (text, clauses)
    title_slots: dict[bytes, int]  # title key → text index (titles the cache did not have)


class TitleCache:
    """Bounded LRU of interest probabilities keyed by a hash of the cleaned title."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(clean_text(text).encode("utf-8"), digest_size=16).digest()

    def get(self, text: str) -> np.ndarray | None:
        key = self.key(text)
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            metrics.CACHE_REQUESTS.labels(STAGE, "title_tags", "miss").inc()
            return None
        self._data.move_to_end(key)
        self.hits += 1
        metrics.CACHE_REQUESTS.labels(STAGE, "title_tags", "hit").inc()
        return value

    def peek(self, text: str) -> np.ndarray | None:
        """The cached value without counting a lookup (the lookup was counted when the batch was planned)."""
        return self._data.get(self.key(text))

    def count_hit(self) -> None:
        self.hits += 1
        metrics.CACHE_REQUESTS.labels(STAGE, "title_tags", "hit").inc()

    def put(self, text: str, value: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        key = self.key(text)
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class InferenceHandle:
    """A batch's model call in flight; ``result()`` waits for it and records its duration once."""

    def __init__(self, enricher: Enricher, pending: Any, started: float) -> None:
        self._enricher = enricher
        self._pending = pending
        self._started = started  # before tokenization, as the sequential path measures
        self._probs: dict[str, np.ndarray] | None = None

    def result(self) -> dict[str, np.ndarray]:
        if self._probs is None:
            self._probs = self._pending.result()
            if len(next(iter(self._probs.values()), ())):
                self._enricher.observe_inference(max(0.0, self._pending.finished_at - self._started))
        return self._probs


class Enricher:
    """Model + jieba + taxonomy → output records; no Kafka in here (unit-testable)."""

    def __init__(
        self,
        predictor: Any,
        taxonomy: Taxonomy,
        aspects: AspectLexicon,
        title_cache_size: int = 50_000,
        keywords_top_k: int = 5,
        batch_size: int = 64,
    ) -> None:
        self.predictor = predictor
        self.taxonomy = taxonomy
        self.aspects = aspects
        self.cache = TitleCache(title_cache_size)
        self.keywords_top_k = keywords_top_k
        self.batch_size = batch_size
        bundle = predictor.bundle
        self.model = {"name": bundle.name, "version": bundle.version, "precision": predictor.precision}
        heads = bundle.heads
        self.sentiment_labels: list[str] | None = heads.get("sentiment")
        self.interest_labels: list[str] | None = heads.get("interest")
        self._positive = self._positive_index(self.sentiment_labels)
        self._clause_threshold = bundle.clause_threshold  # models.serving.clauses: clauses are not whole reviews
        self._head_label = "+".join(heads)
        self._known_tags = frozenset(taxonomy.fine_to_tag.values())

    @staticmethod
    def _positive_index(labels: list[str] | None) -> int | None:
        if not labels:
            return None
        lowered = [label.lower() for label in labels]
        for name in ("positive", "pos", "1", "正面"):
            if name in lowered:
                return lowered.index(name)
        return len(labels) - 1  # binary heads conventionally put the positive class last

    # --- the batch ----------------------------------------------------------------------------
    def enrich(self, batch: Sequence[tuple[Event, RecordCoordinates]]) -> list[Enriched]:
        """Plan, infer and finish one batch in this thread."""
        plan = self.plan(batch)
        return self.finish(plan, self.infer(plan.texts))

    def infer_async(self, plan: Plan) -> InferenceHandle:
        """Tokenize the plan's texts here, then queue their model call on the sessions' threads.

        The stage finishes the previous batch (jieba, JSON, produce: Python, holding the GIL)
        while ONNX Runtime, which releases the GIL, computes this one; slices of successive
        batches queue behind each other, so the sessions never wait for this thread.
        """
        started = time.perf_counter()
        encoded = self.predictor.encode(plan.texts) if plan.texts else []
        return InferenceHandle(self, self.predictor.predict_encoded_async(encoded, batch_size=self.batch_size), started)

    def plan(self, batch: Sequence[tuple[Event, RecordCoordinates]]) -> Plan:
        """Which texts the batch needs the model for: reviews, their aspect clauses, uncached titles."""
        texts: list[str] = []
        review_slots: dict[int, tuple[int, list[tuple[str, str, int]]]] = {}
        title_slots: dict[bytes, int] = {}
        for i, (event, _) in enumerate(batch):
            if event.kind == "review" and event.text is not None:
                idx = len(texts)
                texts.append(event.text)
                # A clause is classified once, however many aspects it mentions; a review that is a
                # single clause already has its verdict (the clause *is* the review).
                whole = mask_pii(clean_text(event.text))
                slot_of: dict[str, int] = {whole: idx}
                clause_slots = []
                for mention in self.aspects.find(event.text):
                    if mention.clause not in slot_of:
                        slot_of[mention.clause] = len(texts)
                        texts.append(mention.clause)
                    clause_slots.append((mention.aspect, mention.clause, slot_of[mention.clause]))
                review_slots[i] = (idx, clause_slots)
            elif self.interest_labels is not None:
                for title in self._titles(event):
                    # One counted lookup per title: a repeat inside this batch is served by its one inference.
                    key = TitleCache.key(title)
                    if key in title_slots:
                        self.cache.count_hit()
                    elif self.cache.get(title) is None:
                        title_slots[key] = len(texts)
                        texts.append(title)
        return Plan(list(batch), texts, review_slots, title_slots)

    def finish(self, plan: Plan, probs: dict[str, np.ndarray]) -> list[Enriched]:
        """Records of every event of the plan, from the model's probabilities for its texts."""
        texts = plan.texts
        # This batch's titles come from its own results, not back from the cache: a cache smaller than
        # the batch's distinct titles (or size 0) would otherwise drop them for the category fallback.
        fresh: dict[bytes, np.ndarray] = {}
        for key, idx in plan.title_slots.items():
            fresh[key] = probs["interest"][idx]
            self.cache.put(texts[idx], fresh[key])
        out = []
        for i, (event, source) in enumerate(plan.batch):
            if i in plan.review_slots:
                idx, clause_slots = plan.review_slots[i]
                out.append(self._review(event, source, probs, idx, clause_slots))
            else:
                out.append(Enriched(event, source, None, self._signal(event, source, self._tags_for(event, fresh))))
        return out

    def infer(self, texts: list[str]) -> dict[str, np.ndarray]:
        if not texts:
            return {}
        started = time.perf_counter()
        probs = self.predictor.predict(texts, batch_size=self.batch_size)
        self.observe_inference(time.perf_counter() - started)
        return probs

    def observe_inference(self, seconds: float) -> None:
        metrics.INFERENCE_SECONDS.labels(STAGE, self.model["name"], self._head_label).observe(seconds)

    @staticmethod
    def _titles(event: Event) -> list[str]:
        if event.kind == "click":
            text = event.title or event.query
            return [text] if text else []
        if event.kind == "order":
            return [item.title for item in event.items if item.title]
        return []

    # --- interest tags ------------------------------------------------------------------------
    def _tag_distribution(self, fine_probs: np.ndarray) -> dict[str, float]:
        assert self.interest_labels is not None
        tags: dict[str, float] = {}
        for label, p in zip(self.interest_labels, fine_probs.tolist(), strict=True):
            tag = self.taxonomy.fine_to_tag.get(label, label)
            tags[tag] = tags.get(tag, 0.0) + float(p)
        return tags

    def _category_tags(self, category: str) -> dict[str, float]:
        """The tag of a catalog category the taxonomy knows (a fine category or a tag); else none.

        Tags come from the taxonomy alone: a shop's free-text category passed through as a tag
        would carry whatever it holds (personal data included) into every profile, and let a
        profile's interests grow without bound.
        """
        tag = self.taxonomy.fine_to_tag.get(category)
        if tag is None and category in self._known_tags:
            tag = category
        return {tag: 1.0} if tag is not None else {}

    def _title_probs(self, title: str | None, fresh: dict[bytes, np.ndarray]) -> np.ndarray | None:
        """The interest probabilities of ``title``: inferred in this batch, else cached, else None."""
        if not title or not self.interest_labels:
            return None
        found = fresh.get(TitleCache.key(title))
        return found if found is not None else self.cache.peek(title)

    def _tags_for(self, event: Event, fresh: dict[bytes, np.ndarray]) -> dict[str, float]:
        """Tags of a click or order: title via the model (this batch or the cache), else the catalog category."""
        if event.kind == "click":
            title = event.title or event.query
            cached = self._title_probs(title, fresh)
            if cached is not None:
                return _normalise(self._tag_distribution(cached))
            return _normalise(self._category_tags(event.category)) if event.category else {}
        combined: dict[str, float] = {}
        amounts = [item.price * item.quantity for item in event.items]
        total = sum(amounts, Decimal("0")) or Decimal(len(event.items))
        for item, amount in zip(event.items, amounts, strict=True):
            share = float(amount / total) if total else 1.0 / len(event.items)
            cached = self._title_probs(item.title, fresh)
            if cached is not None:
                dist = self._tag_distribution(cached)
            elif item.category:
                dist = self._category_tags(item.category)
            else:
                continue
            for tag, weight in dist.items():
                combined[tag] = combined.get(tag, 0.0) + share * weight
        return _normalise(combined)

    # --- records --------------------------------------------------------------------------------
    def _sentiment(
        self, probs: dict[str, np.ndarray], idx: int, clause_threshold: float | None = None
    ) -> Verdict | None:
        """A review's sentiment (argmax), or a clause's (``p_positive`` against the bundle's clause threshold)."""
        if self.sentiment_labels is None or self._positive is None:
            return None
        row = probs["sentiment"][idx]
        p_pos = float(row[self._positive])
        if clause_threshold is None:
            positive = int(np.argmax(row)) == self._positive
        else:
            positive = clause_is_positive(p_pos, clause_threshold)
        probability = p_pos if positive else 1.0 - p_pos
        label = "positive" if positive else "negative"
        return Verdict(label, round(probability, 6), round(p_pos, 6))

    def _review(
        self,
        event: Event,
        source: RecordCoordinates,
        probs: dict[str, np.ndarray],
        idx: int,
        clause_slots: list[tuple[str, str, int]],
    ) -> Enriched:
        sentiment = self._sentiment(probs, idx)
        interest: Interest | None = None
        tags: dict[str, float] = {}
        if self.interest_labels is not None:
            row = probs["interest"][idx]
            order = np.argsort(-row)[:3]
            tags = _normalise(self._tag_distribution(row))
            interest = Interest(
                category=self.interest_labels[int(order[0])],
                probability=round(float(row[order[0]]), 6),
                top_categories={self.interest_labels[int(j)]: round(float(row[j]), 6) for j in order},
                tags=tags,
            )
        aspects = []
        for aspect, clause, clause_idx in clause_slots:
            clause_sentiment = self._sentiment(probs, clause_idx, self._clause_threshold)
            aspects.append(AspectVerdict(aspect, clause, clause_sentiment))
        if sentiment is not None:
            metrics.SENTIMENT_EMITTED.labels(STAGE, sentiment.label).inc()
        insight = ReviewInsight(
            event_id=event.event_id,
            user_id=event.user_id,
            product_id=event.product_id,
            order_id=event.order_id,
            rating=event.rating,
            ts=event.ts_ms,
            sentiment=sentiment,
            interest=interest,
            keywords=keywords(event.text or "", self.keywords_top_k),
            aspects=aspects,
            text_chars=len(event.text or ""),
            clipped=list(event.clipped),
            model=self.model,
            source=source,
            processed_at=int(time.time() * 1000),
        )
        verdicts = {a.aspect: a.sentiment.label for a in aspects if a.sentiment is not None}
        category = interest.category if interest is not None else None
        signal = self._signal(event, source, tags, sentiment, verdicts, category)
        return Enriched(event, source, insight, signal)

    def _signal(
        self,
        event: Event,
        source: RecordCoordinates,
        tags: dict[str, float],
        sentiment: Verdict | None = None,
        aspects: dict[str, str] | None = None,
        review_category: str | None = None,
    ) -> UserSignal:
        """``review_category``: a review's predicted fine category (a label of the model, not free text)."""
        action = event.action if event.kind == "click" else event.kind
        assert action is not None
        if tags:
            top = max(tags, key=lambda t: tags[t])
            metrics.INTEREST_TAGS_EMITTED.labels(STAGE, top).inc()
        category = None
        if event.kind == "click":
            category = event.category
        elif event.kind == "order" and event.items:
            category = event.items[0].category
        order = event.kind == "order"
        return UserSignal(
            kind=event.kind,
            event_id=event.event_id,
            user_id=event.user_id,
            ts=event.ts_ms,
            action=action,
            weight=ACTION_WEIGHTS[action],
            tags=tags,
            # free text from the shop (bounded): masked; a review's is the model's own label
            category=review_category or (mask_pii(category) if category else None),
            product_id=event.product_id,
            product_ids=[item.product_id for item in event.items] if order else None,
            items=_order_lines(event) if order else None,
            query=mask_pii(event.query) if event.query else None,
            sentiment=sentiment,
            aspects=aspects or {},
            amount=str(event.total) if event.total is not None else None,
            currency=event.currency,
            model=self.model,
            source=source,
        )


def _order_lines(event: Event) -> list[dict[str, Any]]:
    """Per order line: product, catalog category (masked free text), units and exact amount (stage 3 sums them)."""
    return [
        {
            "product_id": item.product_id,
            "category": mask_pii(item.category) if item.category else None,
            "quantity": item.quantity,
            "amount": str(item.price * item.quantity),
        }
        for item in event.items
    ]


def _normalise(tags: dict[str, float]) -> dict[str, float]:
    """Drop tags under ``MIN_TAG_WEIGHT`` and rescale the rest to sum to 1 (rounded for the wire)."""
    kept = {t: w for t, w in tags.items() if w >= MIN_TAG_WEIGHT}
    total = sum(kept.values())
    if total <= 0:
        return {}
    return {t: round(w / total, 6) for t, w in sorted(kept.items(), key=lambda kv: -kv[1])}
