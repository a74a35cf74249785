"""Stage 3 on real Kafka: windowed figures equal a reference from the raw inputs, also across kill -9;
an injected incident raises exactly one alert of each kind, a steady stream none; the lookups answer.

Enrich's two outputs are written here directly (review-insights and user-signals records in their
documented form, keyed by user with the murmur2 partitioner), so every number is known in advance.
Windows are one minute of event time to keep the streams short; the code is the same for an hour.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from confluent_kafka import Consumer, Producer

from shoppulse.consumers.profiles.app import murmur2_partition
from shoppulse.consumers.settings import Settings
from tests.conftest import isolated_settings
from tests.integration.profiles_harness import Worker, wait_for

pytestmark = pytest.mark.integration

WINDOW_MS = 60_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % WINDOW_MS
CATEGORIES = ["手机", "水果", "酒店"]
PRODUCTS = {f"p{i}": CATEGORIES[i % 3] for i in range(6)}


def insight_settings(bootstrap: str) -> Settings:
    return isolated_settings(
        bootstrap,
        insights={
            "app_id": f"insights-{uuid.uuid4().hex[:8]}",
            "window_s": 60,
            "rolling_s": 600,
            "retention_s": 3600,
            "grace_s": 10,
            "publish_interval_s": 0.2,
        },
    )


class Stream:
    """Enrich-shaped records with their offsets per (topic, partition) assigned on production."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.records: list[tuple[str, str, dict[str, Any]]] = []  # (topic kind, user, record)
        self.offsets: dict[tuple[str, int], int] = defaultdict(int)

    def _add(self, kind: str, user: str, record: dict[str, Any]) -> None:
        """Append with its ``source``: the input record enrich read (the user's murmur2 partition)."""
        part = murmur2_partition(user.encode(), 3)
        record["source"] = {"topic": f"in-{kind}", "partition": part, "offset": self.offsets[(kind, part)]}
        self.offsets[(kind, part)] += 1
        self.records.append((kind, user, record))

    def review(self, ts: int, product: str, negative: bool, aspect: str = "物流") -> None:
        self.n += 1
        label = "negative" if negative else "positive"
        record = {
            "schema_version": 1,
            "event_id": f"r{self.n}",
            "user_id": f"u{self.rng.randrange(20)}",
            "product_id": product,
            "rating": 1 if negative else 5,
            "ts": ts,
            "sentiment": {"label": label, "probability": 0.9, "p_positive": 0.1 if negative else 0.9},
            "interest": {"category": PRODUCTS[product], "probability": 0.9, "top_categories": {}, "tags": {}},
            "keywords": ["太慢"] if negative else ["不错"],
            "aspects": [{"aspect": aspect, "clause": "…", "sentiment": {"label": label, "probability": 0.9}}],
        }
        self._add("reviews", record["user_id"], record)

    def click(self, ts: int, product: str, action: str) -> None:
        self.n += 1
        user = f"u{self.rng.randrange(20)}"
        record = {
            "schema_version": 1,
            "kind": "click",
            "event_id": f"c{self.n}",
            "user_id": user,
            "ts": ts,
            "action": action,
            "weight": 1.0,
            "tags": {},
            "category": PRODUCTS[product],
            "product_id": product,
        }
        self._add("signals", user, record)

    def order(self, ts: int, lines: list[tuple[str, int, str]]) -> None:
        self.n += 1
        user = f"u{self.rng.randrange(20)}"
        items = [
            {"product_id": p, "category": PRODUCTS[p], "quantity": q, "amount": str(Decimal(price) * q)}
            for p, q, price in lines
        ]
        total = sum(Decimal(i["amount"]) for i in items)
        record = {
            "schema_version": 1,
            "kind": "order",
            "event_id": f"o{self.n}",
            "user_id": user,
            "ts": ts,
            "action": "order",
            "weight": 6.0,
            "tags": {},
            "product_ids": [p for p, _, _ in lines],
            "items": items,
            "amount": str(total),
            "currency": "CNY",
        }
        self._add("signals", user, record)

    def steady(self, minutes: int, per_minute: int, negative_share: float, start_minute: int = 0) -> None:
        for m in range(start_minute, start_minute + minutes):
            for j in range(per_minute):
                ts = T0 + m * WINDOW_MS + j * (WINDOW_MS // per_minute)
                product = self.rng.choice(sorted(PRODUCTS))
                self.review(ts, product, self.rng.random() < negative_share, self.rng.choice(["物流", "质量"]))
                self.click(ts + 1, product, "view")
                if self.rng.random() < 0.3:
                    self.order(ts + 2, [(product, self.rng.randint(1, 3), "19.99"), ("p5", 1, "0.01")])


def produce(settings: Settings, records: list[tuple[str, str, dict[str, Any]]]) -> None:
    topics = {"reviews": settings.topics.review_insights, "signals": settings.topics.user_signals}
    producer = Producer(settings.librdkafka(partitioner="murmur2_random", **{"enable.idempotence": True}))

    def stamp(err: Any, msg: Any) -> None:
        assert err is None, err

    for kind, user, record in records:
        topic = topics[kind]
        producer.produce(topic, json.dumps(record, ensure_ascii=False).encode(), user.encode(), on_delivery=stamp)
        producer.poll(0)
    assert producer.flush(30) == 0


def reference(records: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (product, window start): counted straight from the records, independently of the stage."""
    ref: dict[tuple[str, int], dict[str, Any]] = defaultdict(
        lambda: {
            "reviews": 0,
            "negative": 0,
            "aspects": Counter(),
            "views": 0,
            "orders": 0,
            "units": 0,
            "revenue": Decimal(0),
        }
    )
    for kind, _, r in records:
        start = r["ts"] - r["ts"] % WINDOW_MS
        if kind == "reviews":
            row = ref[(r["product_id"], start)]
            row["reviews"] += 1
            neg = r["sentiment"]["label"] == "negative"
            row["negative"] += neg
            for a in r["aspects"]:
                row["aspects"][(a["aspect"], a["sentiment"]["label"])] += 1
        elif r["kind"] == "click":
            ref[(r["product_id"], start)]["views"] += 1
        else:
            for product in {i["product_id"] for i in r["items"]}:
                row = ref[(product, start)]
                row["orders"] += 1
                for item in r["items"]:
                    if item["product_id"] == product:
                        row["units"] += item["quantity"]
                        row["revenue"] += Decimal(item["amount"])
    return ref


def as_reference(record: dict[str, Any]) -> dict[str, Any]:
    aspects = Counter()
    for aspect, counts in record["aspects"].items():
        for label, n in counts.items():
            if n:
                aspects[(aspect, label)] = n
    return {
        "reviews": record["reviews"],
        "negative": record["negative_reviews"],
        "aspects": aspects,
        "views": record["views"],
        "orders": record["orders"],
        "units": record["units"],
        "revenue": Decimal(record["revenue"].get("CNY", "0")),
    }


class Latest:
    """The newest record per key of a compacted output topic."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.consumer = Consumer(
            settings.librdkafka(**{"group.id": f"r-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
        )
        self.consumer.subscribe([topic])

    def poll(self, seconds: float = 0.5) -> dict[str, dict[str, Any]]:
        for msg in self.consumer.consume(1000, seconds):
            if msg.error() is None:
                self.latest[msg.key().decode()] = json.loads(msg.value())
        return self.latest

    def close(self) -> None:
        self.consumer.close()


def _published(reader: Latest) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["product_id"], r["window"]["start"]): as_reference(r) for r in reader.poll().values()}


def _differences(got: dict, expected: dict) -> str:
    keys = sorted(set(got) | set(expected))
    return "\n".join(f"{k}: got {got.get(k)} expected {expected.get(k)}" for k in keys if got.get(k) != expected.get(k))


def test_windows_equal_the_reference_across_a_kill_9(kafka_broker: Any, tmp_path: Path) -> None:
    settings = insight_settings(kafka_broker.bootstrap)
    stream = Stream(seed=7)
    stream.steady(minutes=6, per_minute=20, negative_share=0.3)
    first, rest = stream.records[: len(stream.records) // 2], stream.records[len(stream.records) // 2 :]
    worker = Worker(settings, tmp_path, "a", stage="insights", module="shoppulse.consumers.insights.cli").start()
    reader = Latest(settings, settings.topics.product_insights)
    try:
        wait_for(worker.ready, 90, "insights worker ready", [worker])
        produce(settings, first)
        wait_for(lambda: len(reader.poll()) > 0, 60, "first product windows published", [worker])
        worker.kill9()
        produce(settings, rest)
        worker = Worker(settings, tmp_path, "b", stage="insights", module="shoppulse.consumers.insights.cli").start()
        expected = reference(stream.records)
        wait_for(
            lambda: _published(reader) == expected,
            120,
            "published windows equal the reference",
            [worker],
            details=lambda: _differences(_published(reader), expected),
        )
        status, body = worker.get("/products/p1/insights?window=24h")
        assert status == 200
        assert body["reviews"] == sum(v["reviews"] for (p, _), v in expected.items() if p == "p1")
        status, body = worker.get(f"/categories/{quote(PRODUCTS['p1'])}/insights?window=1h")
        assert status == 200 and body["scope"] == "category" and "gmv" in body
        assert worker.get(f"/categories/{quote('不存在')}/insights")[0] == 404
        assert worker.get("/products/p1/insights?window=7d")[0] == 400
        metrics = worker.get_text("/metrics")
        assert 'shoppulse_category_reviews_total{category="手机"' in metrics
        assert "p1" not in "".join(line for line in metrics.splitlines() if line.startswith("shoppulse_category"))
    finally:
        reader.close()
        assert worker.stop() == 0, worker.log_tail()


def _alerts(reader: Latest) -> list[dict[str, Any]]:
    return list(reader.poll().values())


def test_an_incident_raises_one_alert_of_each_kind_and_a_steady_stream_none(kafka_broker: Any, tmp_path: Path) -> None:
    settings = insight_settings(kafka_broker.bootstrap)
    stream = Stream(seed=11)
    stream.steady(minutes=30, per_minute=30, negative_share=0.2)
    worker = Worker(settings, tmp_path, "a", stage="insights", module="shoppulse.consumers.insights.cli").start()
    reader = Latest(settings, settings.topics.alerts)
    products = Latest(settings, settings.topics.product_insights)
    try:
        wait_for(worker.ready, 90, "insights worker ready", [worker])
        produce(settings, stream.records)
        last = T0 + 29 * WINDOW_MS
        wait_for(
            lambda: any(r["window"]["start"] == last for r in products.poll().values()),
            90,
            "steady stream in",
            [worker],
        )
        assert _alerts(reader) == [], "a steady stream raised an alert"
        # The incident: one product gets a burst of negative logistics reviews in minute 30.
        before = len(stream.records)
        for j in range(40):
            stream.review(T0 + 30 * WINDOW_MS + j * 1000, "p2", negative=True, aspect="物流")
        produce(settings, stream.records[before:])
        wait_for(lambda: len(_alerts(reader)) >= 2, 60, "the incident's alerts", [worker])
        products.poll(3)  # let anything else that would fire arrive
        alerts = _alerts(reader)
        kinds = sorted(
            (a["kind"], a["scope"], a.get(a["scope"] if a["scope"] != "product" else "product_id"), a["aspect"] or "")
            for a in alerts
        )
        assert kinds == [("aspect_surge", "product", "p2", "物流"), ("negative_spike", "product", "p2", "")], kinds
        spike = next(a for a in alerts if a["kind"] == "negative_spike")
        assert spike["window"]["start"] == T0 + 30 * WINDOW_MS
        assert spike["top_complaint_aspects"][0] == "物流" and spike["examples"]
        status, body = worker.get(f"/alerts?since={T0}")
        assert status == 200 and sorted(a["alert_id"] for a in body["alerts"]) == sorted(a["alert_id"] for a in alerts)
    finally:
        reader.close()
        products.close()
        assert worker.stop() == 0, worker.log_tail()
