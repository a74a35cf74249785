"""HTTP on the insights worker: product and category lookups, recent alerts, metrics and probes.

- ``GET /products/{product_id}/insights?window=1h|24h[&start=MS]``: the newest tumbling window
  (or the one starting at ``start``), or the rolling figures; routed to the worker that owns
  the product's row, as stage 2 routes profile lookups (``consumers.profiles.web``).
- ``GET /categories/{category}/insights?window=1h|24h``: a fine category (手机) or an interest
  tag (数码), the same way.
- ``GET /alerts?since=MS[&limit=N]``: alerts raised at or after ``since`` (event time), read
  from the ``alerts`` topic itself, so any worker answers for all of them.
- ``/metrics``, ``/healthz``, ``/readyz`` (``consumers.faust_web``), as on stage 2.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from shoppulse.consumers.faust_web import ROUTED_HEADER, forward, owner_url, register_probes
from shoppulse.consumers.faust_web import json_response as _json

if TYPE_CHECKING:
    from shoppulse.consumers.insights.app import InsightsStage

MAX_KEY_CHARS = 128
MAX_ALERTS = 1000
WINDOWS = ("1h", "24h")


async def _lookup(view: View, stage: InsightsStage, request: Request, key: bytes) -> Response:
    """The record of row ``key``: from this worker if it owns the row, else from the owner."""
    window = request.query.get("window", "1h")
    if window not in WINDOWS:
        return _json(view, {"error": f"window must be one of {', '.join(WINDOWS)}", "window": window}, 400)
    start = request.query.get("start")
    try:
        start_ms = int(start) if start else None
    except ValueError:
        return _json(view, {"error": "start must be an integer (epoch milliseconds)", "start": start}, 400)
    _, details = stage.readiness()
    row = stage.table.get(key) if details["recovered"] else None
    owned_here = row is not None and row.get("partition") in stage.active_partitions()
    if not owned_here and request.headers.get(ROUTED_HEADER) is None:
        owner = owner_url(stage.app, stage.table.name, key)
        if owner is None:
            return _json(view, {"error": "partition owners unknown (rebalancing); retry"}, 503)
        if owner != str(stage.app.conf.canonical_url):
            return await forward(view, request, owner)
    if not details["recovered"]:
        return _json(view, {"error": "this worker is recovering its table", **details}, 503)
    record = None
    if row is not None:
        record = stage.rolling_record(key) if window == "24h" else stage.window_record(key, start_ms)
    if record is None:
        return _json(view, {"error": "nothing counted for this key (in this window)", "key": key.decode()}, 404)
    return _json(view, record)


def read_alerts(stage: InsightsStage, since_ms: int, limit: int) -> list[dict[str, Any]]:
    """Alerts with a timestamp at or after ``since_ms``, one per alert id, from every partition."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    settings = stage.settings
    topic = settings.topics.alerts
    consumer = Consumer(
        settings.librdkafka(
            **{
                "group.id": f"{settings.insights.app_id}-alerts-reader",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
        assign = [tp for tp in starts if tp.offset >= 0]
        if not assign:
            return []
        consumer.assign(assign)
        found: dict[str, dict[str, Any]] = {}
        open_partitions = {tp.partition for tp in assign}
        deadline = time.monotonic() + 10
        while open_partitions and time.monotonic() < deadline and len(found) < limit:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(message.partition())
                continue
            try:
                alert = json.loads(message.value())
            except (TypeError, ValueError):
                continue
            found[alert.get("alert_id", "")] = alert
        return sorted(found.values(), key=lambda a: (a.get("raised_at", 0), a.get("alert_id", "")))
    finally:
        consumer.close()


def register_pages(stage: InsightsStage) -> None:
    app = stage.app

    @app.page("/products/{product_id}/insights", name="product-insights")
    class ProductView(View):
        async def get(self, request: Request, product_id: str) -> Response:
            if not product_id or len(product_id) > MAX_KEY_CHARS:
                return _json(self, {"error": "bad product_id"}, 400)
            return await _lookup(self, stage, request, f"p:{product_id}".encode())

    @app.page("/categories/{category}/insights", name="category-insights")
    class CategoryView(View):
        async def get(self, request: Request, category: str) -> Response:
            if not category or len(category) > MAX_KEY_CHARS:
                return _json(self, {"error": "bad category"}, 400)
            if category in stage.taxonomy.fine_to_tag:
                return await _lookup(self, stage, request, f"c:{category}".encode())
            if category in stage.taxonomy.tags:
                return await _lookup(self, stage, request, f"t:{category}".encode())
            known = [*stage.taxonomy.categories, *stage.taxonomy.tags]
            return _json(self, {"error": "unknown category or tag", "known": known}, 404)

    @app.page("/alerts", name="alerts")
    class AlertsView(View):
        async def get(self, request: Request) -> Response:
            try:
                since = int(request.query.get("since", "0"))
                limit = min(int(request.query.get("limit", str(MAX_ALERTS))), MAX_ALERTS)
            except ValueError:
                return _json(self, {"error": "since and limit must be integers"}, 400)
            try:
                alerts = await asyncio.to_thread(read_alerts, stage, since, limit)
            except Exception as exc:
                return _json(self, {"error": f"reading alerts failed: {exc}"}, 502)
            return _json(self, {"since": since, "alerts": alerts[-limit:]})

    def liveness() -> tuple[int, dict[str, Any]]:
        if stage.agent_failure is not None:
            return 503, {"status": "agent stopped", "reason": stage.agent_failure}
        return 200, {"status": "ok"}

    register_probes(app, liveness, stage.readiness)
