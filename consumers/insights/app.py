"""The faust app of stage 3: enrich's outputs → facts by product/category → windowed rows → insights, alerts.

Two steps, both in this worker, joined by a Kafka topic as faust's ``group_by`` would be:

1. **Re-key** (``consumers.insights.rekey``, a confluent-kafka loop in a thread of this worker):
   ``review-insights`` and ``user-signals`` records (keyed by user) become facts
   (``consumers.insights.facts``) sent to ``insight-facts`` keyed by the row they belong to
   (``p:<product>``, ``c:<category>``, ``t:<tag>``): one record per row and batch of input
   records, its facts in input order, at least once and in order.
2. **Fold.** An agent on ``insight-facts`` folds each batch of records into the rows of the
   ``insights`` table (changelog-backed, partitioned like ``insight-facts``) with the pure fold of
   ``consumers.insights.window``: exact deduplication by source record (per fact, so a replay
   batched differently is still recognised), event-time windows with a grace period, late facts
   counted in a metric. Each changed row is written once per batch; its windows that took a review
   are checked for the alert conditions (``consumers.insights.alerts``) and new alerts sent to
   ``alerts``; changed windows are published (coalesced) to ``product-insights`` /
   ``category-insights``.

Why batches: a row holds all its windows, so loading, writing and checking it per fact cost more
than the fact; a batch (up to ``BATCH_EVENTS`` records, or what came in ``BATCH_WITHIN_S``) pays
that once per row. Alerts are looked at after each batch instead of after each review.

``insight-facts`` is read ``read_committed`` and handed to the fold without holes, as in stage 2
(``consumers.profiles.gaps.OrderedInput``): the exact deduplication needs each partition in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust

from shoppulse.consumers import metrics
from shoppulse.consumers.contracts import R_BAD_VALUE, R_FOLD_FAILED, R_KEY_MISMATCH, dumps
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.faust_stage import (
    as_current_event,
    broker_reachable,
    finish_recovery,
    publish_tick,
    send_dead_letter,
    watched_batch_agent,
)
from shoppulse.consumers.headers import child_traceparent, output_headers, record_timestamp_ms
from shoppulse.consumers.insights.alerts import ALERT_SCHEMA_VERSION, ASPECT_SURGE, NEGATIVE_SPIKE, AlertParams, detect
from shoppulse.consumers.insights.facts import facts_from_json
from shoppulse.consumers.insights.rekey import Rekeyer
from shoppulse.consumers.insights.window import (
    INSIGHTS_SCHEMA_VERSION,
    Fact,
    FactRefused,
    FoldBatch,
    InsightState,
    WindowParams,
    render_rolling,
    render_window,
)
from shoppulse.consumers.profiles.app import load_json, make_faust_app
from shoppulse.consumers.profiles.gaps import OrderedInput
from shoppulse.consumers.profiles.publish import Coalescer
from shoppulse.consumers.records import SignalError
from shoppulse.consumers.settings import Settings
from shoppulse.consumers.tracing import NoTracer, traced_handler
from shoppulse.models.serving.keywords import load_aspects
from shoppulse.models.serving.taxonomy import default_taxonomy

log = logging.getLogger(__name__)

STAGE = "insights"
TABLE_NAME = "insights"
GAUGE_INTERVAL_S = 5.0
# The fold takes its input in batches of up to BATCH_EVENTS records, or what came in BATCH_WITHIN_S:
# a row is then loaded, written and looked at for alerts once per batch, not once per fact. The wait
# adds at most BATCH_WITHIN_S to an insight's latency (windows are an hour by default).
BATCH_EVENTS = 4000
BATCH_WITHIN_S = 0.2


class InsightsStage:
    """Owns the faust app, the insights table, the three agents, publishing and alerts."""

    def __init__(
        self, settings: Settings, partitions: int, app: faust.App | None = None, tracer: NoTracer | None = None
    ) -> None:
        self.settings = settings
        self.tracer = tracer or NoTracer()  # consumers.tracing: a span per batch when configured
        self.partitions = partitions
        cfg = settings.insights
        self.window = WindowParams.from_settings(cfg)
        self.alert_params = AlertParams.from_settings(cfg)
        self.taxonomy = default_taxonomy()
        self.known_aspects = set(load_aspects().triggers)
        self.app = app or make_faust_app(settings, partitions, stage=cfg, port=settings.http.insights_port)
        t = settings.topics

        def topic(name: str, **kw: Any) -> Any:
            return self.app.topic(name, key_type=bytes, value_type=bytes, **kw)

        self.facts_topic = topic(t.insight_facts, partitions=partitions)
        self.product_topic = topic(t.product_insights)
        self.category_topic = topic(t.category_insights)
        self.alerts_topic = topic(t.alerts)
        self.dead_letter_topic = topic(t.dead_letter)
        group = f"{settings.insights.app_id}-gap-reader"
        self.facts_input = OrderedInput(settings, t.insight_facts, STAGE, group_id=group)
        self.rekeyer = Rekeyer(settings, self.taxonomy, self._agent_stopped)
        self.table = self.app.Table(
            TABLE_NAME,
            default=None,
            partitions=partitions,
            key_type=bytes,
            help="per product/category rows of windowed figures (see consumers.insights.window)",
        )
        self.coalescer = Coalescer(cfg.publish_interval_s)
        self.broker_up: bool | None = None
        self.agent_failure: str | None = None
        self._recovered = asyncio.Event()
        self._republished: set[int] = set()
        self._init_metrics()
        self._wire()

    def _init_metrics(self) -> None:
        t = self.settings.topics
        for name in (t.review_insights, t.user_signals, t.insight_facts):
            metrics.EVENTS_CONSUMED.labels(STAGE, name)
        for name in t.inputs():
            metrics.LATE_EVENTS.labels(STAGE, name)
        for result in ("applied", "duplicate", "late"):
            metrics.INSIGHT_FACTS.labels(STAGE, result)
        for kind, scope in ((NEGATIVE_SPIKE, "product"), (ASPECT_SURGE, "product"), (ASPECT_SURGE, "category")):
            metrics.ALERTS_RAISED.labels(STAGE, kind, scope)
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(0)
        metrics.BROKER_UP.labels(STAGE).set(0)

    # --- wiring ---------------------------------------------------------------------------------
    def _wire(self) -> None:
        app = self.app
        t = self.settings.topics

        def agent(handle: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
            return watched_batch_agent(handle, self._agent_stopped, "an insights agent", BATCH_EVENTS, BATCH_WITHIN_S)

        app_id = self.settings.insights.app_id
        app.agent(self.facts_topic, name=f"{app_id}.fold")(
            agent(traced_handler(self.tracer, "insights.batch", self.handle_facts, batch=True))
        )
        app.task(self._start_rekey)
        app.on_before_shutdown.connect(self._stop_rekey)
        app.on_before_shutdown.connect(self._stop_tracer)
        app.timer(publish_tick(self.settings.insights.publish_interval_s), name="insights-publish-due")(
            self.publish_due
        )
        app.timer(GAUGE_INTERVAL_S, name="insights-gauges")(self.update_gauges)

        async def on_revoked(sender: Any, revoked: Iterable[Any], **_: Any) -> None:
            gone: dict[str, set[int]] = {}
            for tp in revoked:
                gone.setdefault(tp.topic, set()).add(tp.partition)
            self.facts_input.offsets.forget(gone.get(t.insight_facts, set()))
            self.coalescer.drop_partitions(gone.get(t.insight_facts, set()))
            self._republished -= gone.get(t.insight_facts, set())
            self._recovered.clear()

        async def on_rebalance_complete(sender: Any, **_: Any) -> None:
            await finish_recovery(self.republish_new_partitions, self._recovered, "windows")

        self._handlers = (on_revoked, on_rebalance_complete)
        app.on_partitions_revoked.connect(on_revoked)
        app.on_rebalance_complete.connect(on_rebalance_complete)

        from shoppulse.consumers.insights.web import register_pages

        register_pages(self)

    def _agent_stopped(self, reason: str) -> None:
        self.agent_failure = reason

    # --- step 1: re-key (consumers.insights.rekey, a thread of its own) ------------------------------
    async def _start_rekey(self) -> None:
        self.rekeyer.start()

    async def _stop_rekey(self, sender: Any = None, **_: Any) -> None:
        await asyncio.to_thread(self.rekeyer.stop)

    async def _stop_tracer(self, sender: Any = None, **_: Any) -> None:
        self.tracer.shutdown()  # flushes the spans still queued

    # --- step 2: fold -----------------------------------------------------------------------------
    async def handle_facts(self, events: list[Any]) -> None:
        """Fold a batch of ``insight-facts`` records, then write each row it changed once, raise its
        alerts and queue its windows for publishing; only then are the batch's gaps given to faust."""
        batch = FoldBatch(self._load_row, self.window)
        gaps: list[tuple[Any, int, int]] = []
        carriers: dict[str, Any] = {}  # row key -> an event of its partition, for the table write

        for event in events:
            message = event.message

            async def reread(record: Any, event: Any = event) -> None:
                key = await self._apply(record.key(), record.value(), record.partition(), record.offset(), batch)
                if key is not None:
                    carriers[key] = event  # the re-read record's partition is the event's

            await self.facts_input.catch_up(self.app, message, reread, gaps)
            key = await self._apply(event.key, event.value, message.partition, message.offset, batch)
            if key is not None:
                carriers[key] = event
        await self._write(batch, carriers)
        await self.facts_input.add_gaps(self.app, gaps)

    def _load_row(self, key: str) -> InsightState | None:
        row = self.table.get(key.encode("utf-8"))
        return InsightState.from_row(row) if row is not None else None

    async def _apply(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, batch: FoldBatch
    ) -> str | None:
        """Fold one record into the batch; the row key it went to, or None when it was dead-lettered."""
        topic = self.settings.topics.insight_facts
        metrics.EVENTS_CONSUMED.labels(STAGE, topic).inc()
        try:
            facts = facts_from_json(load_json(value))
            if not facts:
                raise SignalError(R_BAD_VALUE, "an insight-facts record without facts")
            if key is None or any(fact.key.encode("utf-8") != key for fact in facts):
                raise SignalError(R_KEY_MISMATCH, "the record key differs from a fact's key")
            batch.apply(facts[0].key, facts, partition)
        except SignalError as err:
            await self._dead_letter(value, key, topic, partition, offset, err)
            return None
        except FactRefused as exc:  # the facts before it are applied and written; the record is dead-lettered
            await self._dead_letter(value, key, topic, partition, offset, SignalError(R_FOLD_FAILED, str(exc)))
        return facts[0].key

    async def _write(self, batch: FoldBatch, carriers: dict[str, Any]) -> None:
        for result, n in batch.results.items():
            metrics.INSIGHT_FACTS.labels(STAGE, result).inc(n)
        for fact in batch.late:
            metrics.LATE_EVENTS.labels(STAGE, self._input_topic(fact)).inc()
        for fact in batch.applied:
            self._count(fact)
        for key, change in batch.rows.items():
            if not change.marked:
                continue  # duplicates only: the row is as it was
            state = change.state
            # Products, and categories for complaints spread over several products (one product's burst
            # also moves its category, and one incident should page once); tags repeat their categories.
            alerts: list[dict[str, Any]] = []
            if key.startswith(("p:", "c:")):
                for start in sorted(change.reviewed):
                    alerts += detect(state, start, self.window, self.alert_params)
            state.partition = change.partition
            row_key = key.encode("utf-8")
            with as_current_event(carriers[key]):
                self.table[row_key] = state.to_row()
            for alert in alerts:
                await self._raise(alert)
            for start in sorted(change.changed):
                if self.coalescer.changed((row_key, start), change.partition):
                    await self.publish(row_key, start)

    def _input_topic(self, fact: Fact) -> str:
        """The shop's input topic a fact's event came in on (a bounded label, whatever ``source`` says)."""
        t = self.settings.topics
        return t.reviews if fact.kind == "review" else t.orders if fact.kind == "order" else t.clicks

    def _count(self, fact: Fact) -> None:
        """Per-category Prometheus series (bounded labels: taxonomy categories, tags and known aspects)."""
        if not fact.key.startswith("c:"):
            return
        category = fact.key[2:]
        tag = self.taxonomy.fine_to_tag.get(category, "other")
        if fact.kind == "review":
            metrics.INSIGHT_REVIEWS.labels(category, tag, "negative" if fact.negative else "positive").inc()
            for aspect, label in fact.aspects.items():
                name = aspect if aspect in self.known_aspects else "other"
                metrics.INSIGHT_ASPECTS.labels(category, name, label).inc()
        else:
            metrics.INSIGHT_ACTIONS.labels(category, tag, fact.kind).inc()
            if fact.revenue is not None and fact.currency is not None:
                metrics.INSIGHT_REVENUE.labels(category, tag, fact.currency).inc(float(fact.revenue))

    async def _raise(self, alert: dict[str, Any]) -> None:
        metrics.ALERTS_RAISED.labels(STAGE, alert["kind"], alert["scope"]).inc()
        log.warning(
            "ALERT %s %s %s window %d: %s vs baseline %s",
            alert["kind"],
            alert["scope"],
            alert.get("product_id") or alert.get("category") or alert.get("tag"),
            alert["window"]["start"],
            alert["observed"],
            alert["baseline"],
        )
        await self.alerts_topic.send(
            key=alert["alert_id"].encode("utf-8"),
            value=dumps(alert),
            timestamp=record_timestamp_ms(alert["raised_at"], int(time.time() * 1000)) / 1000,
            headers=output_headers(ALERT_SCHEMA_VERSION, None, child_traceparent(None)),
        )

    async def _dead_letter(
        self, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int, err: SignalError
    ) -> None:
        await send_dead_letter(
            self.dead_letter_topic, STAGE, raw, key, RecordCoordinates(topic, partition, offset), err.reason, str(err)
        )

    # --- publishing -------------------------------------------------------------------------------
    def active_partitions(self) -> set[int]:
        name = self.settings.topics.insight_facts
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name}

    def row(self, key: bytes) -> InsightState | None:
        row = self.table.get(key)
        return InsightState.from_row(row) if row is not None else None

    def window_record(self, key: bytes, start: int | None = None) -> dict[str, Any] | None:
        state = self.row(key)
        if state is None or not state.windows:
            return None
        return render_window(state, max(state.windows) if start is None else start, self.window)

    def rolling_record(self, key: bytes) -> dict[str, Any] | None:
        state = self.row(key)
        return render_rolling(state, self.window) if state is not None else None

    async def publish(self, key: bytes, start: int) -> None:
        state = self.row(key)
        if state is None or state.partition not in self.active_partitions() or start not in state.windows:
            return  # revoked meanwhile (the new owner publishes on its next change) or expired
        record = render_window(state, start, self.window)
        out = self.product_topic if state.key.startswith("p:") else self.category_topic
        try:
            await out.send(
                key=f"{state.key}|{start}".encode(),
                value=dumps(record),
                timestamp=record_timestamp_ms(state.watermark, int(time.time() * 1000)) / 1000,
                headers=output_headers(INSIGHTS_SCHEMA_VERSION, None, child_traceparent(None)),
            )
        except Exception as exc:  # the window goes out on its next change
            metrics.PRODUCE_ERRORS.labels(STAGE, out.get_topic_name()).inc()
            log.error("publishing %s failed: %r", state.key, exc)

    async def republish_new_partitions(self) -> None:
        """Queue every window of the rows in partitions this worker newly owns.

        A crash loses the publishes still pending (coalesced) when it struck, and a window that
        gets no new fact would never go out again: ``product-insights`` would keep a stale record.
        Windows are bounded by the retention, and the topics are compacted, so a repeat is harmless.
        """
        active = self.active_partitions()
        new = active - self._republished
        self._republished = active
        if not new:
            return
        queued = 0
        for i, (key, row) in enumerate(self.table.items()):
            if row and row.get("partition") in new:
                starts = [int(start) for start in row.get("windows", {})]
                self.coalescer.force(((key, start), row["partition"]) for start in starts)
                queued += len(starts)
            if i % 1000 == 999:
                await asyncio.sleep(0)
        log.info("partitions %s recovered: %d windows queued for republishing", sorted(new), queued)

    async def publish_due(self) -> None:
        for key, start in self.coalescer.due():  # type: ignore[misc]
            await self.publish(key, start)

    # --- gauges and readiness ---------------------------------------------------------------------
    async def update_gauges(self) -> None:
        actives = list(self.app.assignor.assigned_actives())
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(len(actives))
        consumer = self.app.consumer
        for tp in actives:
            try:
                highwater = consumer.highwater(tp)
            except Exception:
                continue
            # The re-key loop sets its inputs' lag itself (consumers.insights.rekey).
            handled = self.facts_input.offsets.next(tp.partition) if tp.topic == self.facts_input.topic else None
            if highwater is not None and handled is not None:
                metrics.CONSUMER_LAG.labels(STAGE, tp.topic, str(tp.partition)).set(max(0, highwater - handled))
        up = await broker_reachable(self.app)
        metrics.BROKER_UP.labels(STAGE).set(1 if up else 0)
        self.broker_up = up

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        recovered = self._recovered.is_set() and not self.app.rebalancing
        rekey = self.rekeyer.readiness()
        return recovered and self.broker_up is not False and rekey["alive"], {
            "recovered": recovered,
            "broker_reachable": self.broker_up,
            "assigned_partitions": sorted(self.active_partitions()) if recovered else [],
            "rekey": rekey,
            "pending_publishes": len(self.coalescer),
        }
