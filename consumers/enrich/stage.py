"""The enrich stage's loop: poll → parse → enrich → deliver, with readiness, back-pressure and drain.

How a batch is delivered (at-least-once or exactly-once) is the delivery's business
(``delivery.py``, built by mode); the loop never asks which one runs. Pipelining, where the
delivery allows it (at-least-once): batch N's model call runs on the model sessions' threads
while this thread finishes batch N-1 (jieba keywords, JSON, produce), since ONNX Runtime
releases the GIL. At most one batch is in the model; it is finished before a revocation
commits, at shutdown, and dropped (uncommitted, so redone by the next owner) after a fatal
error or for partitions lost meanwhile.

Back-pressure: when more than ``max_in_flight`` inputs are waiting for acknowledgements
(a slow or absent broker), the assigned partitions are paused and resumed at half.
SIGTERM drains: finish the batch, deliver, commit, leave the group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from shoppulse.consumers import metrics
from shoppulse.consumers.consumed import usable
from shoppulse.consumers.contracts import R_PARSE_FAILED, ContractError, Event, parse_event
from shoppulse.consumers.coordinates import RecordCoordinates, TopicPart
from shoppulse.consumers.deadletter import dead_letter_record
from shoppulse.consumers.enrich.delivery import (
    Delivered,
    Delivery,
    FatalStageError,
    StalledClientError,
    delivery_for,
)
from shoppulse.consumers.enrich.enricher import STAGE, Enricher, InferenceHandle, Plan
from shoppulse.consumers.headers import header
from shoppulse.consumers.records import DeadLetter
from shoppulse.consumers.settings import Settings
from shoppulse.consumers.start_offsets import CommittedOffsetsUnavailable, assign_at_committed, budget_for
from shoppulse.consumers.tracing import NoTracer

log = logging.getLogger(__name__)

_KIND_BY_TOPIC_FIELD = {"reviews": "review", "clicks": "click", "orders": "order"}


BROKER_PROBE_INTERVAL_S = 5.0
BROKER_PROBE_TIMEOUT_S = 1.0  # the loop waits this long at most, only while the broker is unreachable


def _parse_failure(exc: Exception, source: RecordCoordinates) -> ContractError:
    """A validator error that is not a ContractError is our bug: log it whole, dead-letter the record."""
    log.error(
        "validating %s[%d]@%d failed unexpectedly (%r); dead-lettered as %s",
        source.topic,
        source.partition,
        source.offset,
        exc,
        R_PARSE_FAILED,
        exc_info=exc,
    )
    return ContractError(R_PARSE_FAILED, f"the validator failed: {type(exc).__name__}")


@dataclass
class _Pending:
    """A batch taken in: its messages, its dead letters, and its model work (running or to run)."""

    batch: list[Message]
    dead: dict[RecordCoordinates, tuple[Message, RecordCoordinates, DeadLetter]]
    plan: Plan
    inference: InferenceHandle | None
    started_ns: int  # wall clock when the batch was taken in: its span's start


class EnrichStage:
    """Owns the consumer, the producer and the loop; ``run()`` returns the exit code.

    ``run()`` is ``wait_for_broker`` → ``delivery.start`` → ``subscribe`` → ``step()`` until stopped →
    ``drain()``. Those steps and librdkafka's callbacks (``on_assign``, ``on_revoke``, ``on_lost``,
    ``on_error``) are the stage's surface; an embedding application or a test drives it through them,
    with its own ``consumer``, ``producer`` or ``delivery`` and ``monotonic`` clock when it passes them.
    """

    def __init__(
        self,
        settings: Settings,
        enricher: Enricher,
        install_signals: bool = True,
        tracer: NoTracer | None = None,
        *,
        consumer: Any | None = None,
        producer: Any | None = None,
        delivery: Delivery | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        hard_exit: Callable[[int], Any] = os._exit,
    ) -> None:
        self.settings = settings
        self.enricher = enricher
        self.tracer = tracer or NoTracer()  # consumers.tracing: a span per batch when configured
        self.cfg = settings.enrich
        self.topics = settings.topics
        self.kind_of = {getattr(self.topics, name): kind for name, kind in _KIND_BY_TOPIC_FIELD.items()}
        self.monotonic = monotonic  # poll gaps, broker probes, the drain deadline (and the commit interval)
        self.hard_exit = hard_exit  # leaves without draining: when a client call is stuck (StalledClientError)
        self.stop_event = threading.Event()
        self.assigned: set[TopicPart] = set()
        self.paused = False
        self._next_probe = 0.0  # monotonic time of the next broker probe while it is unreachable
        self.broker_up = False
        self._last_poll = monotonic()
        self._drain_deadline: float | None = None
        self._pending: _Pending | None = None
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.delivery: Delivery = delivery or delivery_for(
            settings,
            consumer if consumer is not None else Consumer(self._consumer_config()),
            self._owns,
            self._flush_budget,
            self.on_error,
            producer=producer,
            monotonic=monotonic,
        )
        self._init_series()

    # The clients live in the delivery (it commits, seeks, produces); the loop polls through these.
    @property
    def consumer(self) -> Any:
        return self.delivery.consumer

    @property
    def producer(self) -> Any:
        return self.delivery.producer

    def _init_series(self) -> None:
        """Create every series at zero, so dashboards and alerts see 0, not "no data", before the first event."""
        for topic in self.topics.outputs():
            metrics.PRODUCE_ERRORS.labels(STAGE, topic)
        metrics.TRANSACTION_ABORTS.labels(STAGE)
        metrics.COMMITS.labels(STAGE)
        metrics.PAUSED_PARTITIONS.labels(STAGE).set(0)
        metrics.IN_FLIGHT.labels(STAGE).set(0)
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(0)
        metrics.BROKER_UP.labels(STAGE).set(0)

    # --- configuration ------------------------------------------------------------------------
    def _consumer_config(self) -> dict[str, Any]:
        k = self.settings.kafka
        return self.settings.librdkafka(
            **{
                "group.id": self.cfg.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": k.session_timeout_ms,
                "max.poll.interval.ms": k.max_poll_interval_ms,
                "queued.max.messages.kbytes": 16_384,  # bounded prefetch: memory stays flat under a flood
                "isolation.level": "read_committed",
                "error_cb": self.on_error,
                "on_commit": self.on_commit,
            }
        )

    # --- callbacks ----------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: draining (finish batch, deliver, commit, leave group)", signum)
        self.stop_event.set()

    def on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_broker_up(False)
            self._next_probe = self.monotonic() + BROKER_PROBE_INTERVAL_S
            log.warning("all brokers are down; librdkafka keeps retrying: %s", err)
        elif err.fatal():
            log.error("fatal Kafka error: %s", err)
            self._fatal = err
        else:
            log.info("kafka: %s", err)

    _fatal: KafkaError | None = None

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """A commit's result (served by ``consume``): a failed one is committed again with the next."""
        self.delivery.on_commit(err, partitions)

    def _set_broker_up(self, up: bool) -> None:
        self.broker_up = up
        metrics.BROKER_UP.labels(STAGE).set(1 if up else 0)

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._set_broker_up(True)  # the group coordinator answered
        try:
            budget_s = budget_for(self.settings.kafka.max_poll_interval_ms)
            assign_at_committed(consumer, partitions, budget_s, sleep=self.stop_event.wait, monotonic=self.monotonic)
        except CommittedOffsetsUnavailable as exc:
            raise FatalStageError(str(exc)) from exc
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(len(self.assigned))
        log.info("assigned %s", sorted(f"{p.topic}[{p.partition}]" for p in partitions))
        if self.paused and partitions:
            consumer.pause(partitions)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.info("revoked %s: delivering and committing what is done", sorted(f"{t}[{p}]" for t, p in tps))
        self._finish_pending()  # the batch in the model still holds these partitions' events
        self.delivery.on_revoke(tps)
        self._forget(tps)

    def _owns(self, tp: TopicPart) -> bool:
        return tp in self.assigned

    def _forget(self, tps: list[TopicPart]) -> None:
        """Drop the state and the lag series of partitions we no longer own (no double counting)."""
        self.delivery.forget(tps)
        self.assigned -= set(tps)
        for topic, partition in tps:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(STAGE, topic, str(partition))
        metrics.ASSIGNED_PARTITIONS.labels(STAGE).set(len(self.assigned))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.warning("lost %s (session expired): another member owns them now", tps)
        self._forget(tps)

    # --- readiness ----------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready = model loaded and broker reachable; assignment is reported, not required
        (a replica beyond the partition count is idle but healthy)."""
        details = {
            "model_loaded": True,
            "model": self.enricher.model,
            "broker_reachable": self.broker_up,
            "assigned_partitions": len(self.assigned),
            "paused": self.paused,
            "in_flight": self.delivery.in_flight(),
        }
        return self.broker_up, details

    # --- startup ------------------------------------------------------------------------------
    def wait_for_broker(self, max_backoff_s: float = 30.0) -> bool:
        """Retry metadata with exponential backoff until the broker answers or we are stopped."""
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self.consumer.list_topics(timeout=5)
                self._set_broker_up(True)
                return True
            except KafkaException as exc:
                log.warning(
                    "broker %s not reachable (%s); retrying in %.1fs",
                    self.settings.kafka.bootstrap_servers,
                    exc,
                    delay,
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, max_backoff_s)
        return False

    def subscribe(self) -> None:
        """Join the input topics' group, with this stage's rebalance callbacks."""
        self.consumer.subscribe(
            self.topics.inputs(), on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost
        )

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> int:
        if not self.wait_for_broker():
            self.consumer.close()
            return 0
        if not self.delivery.start():
            self.consumer.close()
            return 1
        self.subscribe()
        log.info(
            "enrich running: %s → %s (%s)",
            self.topics.inputs(),
            self.topics.outputs(),
            self.delivery.name,
        )
        code, stalled = 0, False
        self._last_poll = self.monotonic()
        try:
            while not self.stop_event.is_set():
                if self._fatal is not None:
                    raise FatalStageError(f"fatal Kafka error: {self._fatal}")
                self.step()
        except StalledClientError as exc:  # the stuck call holds the producer: draining would wait on it too
            log.error("%s; exiting at once, a restart resumes from the last committed transaction", exc)
            for handler in logging.getLogger().handlers:
                handler.flush()
            code, stalled = 1, True
            self.hard_exit(1)
        except FatalStageError as exc:
            log.error("%s; stopping without committing past undelivered outputs", exc)
            self._pending = None  # taken in, never produced: stays uncommitted, the next owner redoes it
            code = 1
        finally:
            if not stalled:
                self.drain()
        return code

    def step(self) -> None:
        """One turn of the loop: poll a batch, take it in, finish the one before it, deliver."""
        self._apply_backpressure()
        # With a batch in the model already, take only what has arrived: waiting here would delay it.
        timeout = 0.0 if self._pending is not None else self.cfg.max_wait_ms / 1000.0
        self._check_poll_gap()
        messages = self.consumer.consume(self.cfg.max_batch, timeout)
        self.producer.poll(0)  # delivery reports arrive here
        # Before anything new is produced: a failed output stops the loop (outputs after it would leave a
        # gap in a user's signals); a due commit goes out.
        self.delivery.after_step()
        batch = [m for m in messages if self._usable(m)]
        started = None
        if batch:
            self._set_broker_up(True)
            started = self._start(batch)
        elif not self.broker_up:
            self._probe_broker()
        self._finish_pending()
        if started is not None:
            self._pending = started
            if not self.delivery.pipelined:  # one batch at a time: out in this same step
                self._finish_pending()
        metrics.IN_FLIGHT.labels(STAGE).set(self.delivery.in_flight())

    def _probe_broker(self) -> None:
        """After an outage with no input arriving, ask for metadata now and then: readiness must not wait
        for the next record to notice that the broker is back."""
        now = self.monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + BROKER_PROBE_INTERVAL_S
        try:
            self.consumer.list_topics(timeout=BROKER_PROBE_TIMEOUT_S)
        except KafkaException as exc:
            log.info("broker still unreachable: %s", exc)
            return
        log.info("broker reachable again")
        self._set_broker_up(True)

    def _check_poll_gap(self) -> None:
        """Warn when one loop turn nears ``max.poll.interval.ms``: past it the group evicts this member.

        A turn is one batch through the model (at most one more in flight), so its length is bounded
        by ``max_batch`` and the model's speed: milliseconds with the default bundle, seconds with a
        large model on few cores. Kafka's default interval (300 s) leaves a wide margin; the warning
        names the two settings to change before the margin is gone.
        """
        now = self.monotonic()
        gap, self._last_poll = now - self._last_poll, now
        budget = self.settings.kafka.max_poll_interval_ms / 1000.0
        if gap > budget / 2:  # rare by construction: a turn of minutes, so no rate limit is needed
            log.warning(
                "%.1fs between polls, over half of max.poll.interval.ms (%.0fs): lower enrich.max_batch "
                "or raise kafka.max_poll_interval_ms before the group evicts this process",
                gap,
                budget,
            )

    def _usable(self, msg: Message) -> bool:
        return usable(msg, lambda err: FatalStageError(f"consumer: {err}"), "enrich")

    def _start(self, batch: list[Message]) -> _Pending:
        """Parse the batch, dead-letter what is malformed, and hand the rest's model work out."""
        started_ns = time.time_ns()
        metrics.BATCH_SIZE.labels(STAGE).observe(len(batch))
        metrics.BATCH_FILL_RATIO.labels(STAGE).observe(len(batch) / self.cfg.max_batch)
        self._record_lag(batch)
        valid: list[tuple[Event, RecordCoordinates]] = []
        dead: dict[RecordCoordinates, tuple[Message, RecordCoordinates, DeadLetter]] = {}
        now_ms = int(time.time() * 1000)
        for msg in batch:
            topic = msg.topic()
            source = RecordCoordinates(topic, msg.partition(), msg.offset())
            metrics.EVENTS_CONSUMED.labels(STAGE, topic).inc()
            try:
                event = parse_event(self.kind_of[topic], msg.value(), now=now_ms)  # type: ignore[arg-type]
            except Exception as exc:  # a ContractError, or a validator bug: never a crash loop on one record
                err = exc if isinstance(exc, ContractError) else _parse_failure(exc, source)
                record = dead_letter_record(
                    stage=STAGE,
                    raw=msg.value(),
                    key=msg.key(),
                    source=source,
                    reason=err.reason,
                    message=err.message,
                    field=err.field,
                )
                metrics.EVENTS_DEAD_LETTERED.labels(STAGE, topic, err.reason).inc()
                dead[source] = (msg, source, record)
                continue
            valid.append((event, source))
        plan = self.enricher.plan(valid)
        inference = self.enricher.infer_async(plan) if self.delivery.pipelined and plan.texts else None
        return _Pending(batch, dead, plan, inference, started_ns)

    def _finish_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._finish(pending)

    def _finish(self, pending: _Pending) -> None:
        """Build the batch's records and produce them, in input order."""
        plan = pending.plan
        probs = pending.inference.result() if pending.inference is not None else self.enricher.infer(plan.texts)
        enriched = {e.source: e for e in self.enricher.finish(plan, probs)}
        ordered: list[Delivered] = []
        for msg in pending.batch:
            if (msg.topic(), msg.partition()) not in self.assigned:
                continue  # lost while its batch was in the model: the new owner redoes it from its commit
            key = RecordCoordinates(msg.topic(), msg.partition(), msg.offset())
            if key in pending.dead:
                ordered.append(pending.dead[key])
            else:
                item = enriched[key]
                ordered.append((msg, item.source, item))
        self.delivery.deliver(ordered)
        self.tracer.batch(
            "enrich.batch",
            pending.started_ns,
            time.time_ns(),
            lambda: {
                "messaging.system": "kafka",
                "messaging.batch.message_count": len(pending.batch),
                "shoppulse.dead_lettered": len(pending.dead),
                "shoppulse.model_texts": len(plan.texts),
                "shoppulse.delivery": self.delivery.name,
                "messaging.kafka.partitions": sorted({f"{m.topic()}[{m.partition()}]" for m in pending.batch}),
            },
            parents=(header(msg.headers(), "traceparent") for msg in pending.batch),
        )

    # --- commits, lag, back-pressure ----------------------------------------------------------
    def _record_lag(self, batch: list[Message]) -> None:
        """Lag from the high watermark that came with the fetch (right on every broker, Tansu too)."""
        last: dict[TopicPart, int] = {}
        for msg in batch:
            last[(msg.topic(), msg.partition())] = msg.offset()
        for (topic, partition), offset in last.items():
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high is not None and high >= 0:
                metrics.CONSUMER_LAG.labels(STAGE, topic, str(partition)).set(max(0, high - offset - 1))

    def _apply_backpressure(self) -> None:
        in_flight = self.delivery.in_flight()
        limit = self.cfg.max_in_flight
        if not self.paused and in_flight >= limit:
            parts = [TopicPartition(t, p) for t, p in self.assigned]
            self.consumer.pause(parts)
            self.paused = True
            metrics.PAUSED_PARTITIONS.labels(STAGE).set(len(parts))
            log.warning(
                "paused %d partitions: %d events await delivery (max_in_flight %d)",
                len(parts),
                in_flight,
                limit,
            )
        elif self.paused and in_flight <= limit // 2:
            parts = [TopicPartition(t, p) for t, p in self.assigned]
            self.consumer.resume(parts)
            self.paused = False
            metrics.PAUSED_PARTITIONS.labels(STAGE).set(0)
            log.info("resumed %d partitions", len(parts))
        if self.paused:
            self.producer.poll(0.1)

    def _flush_budget(self) -> float:
        """How long a flush may wait: the shutdown budget, or what is left of it once draining began
        (closing the consumer revokes the partitions, and that flush must not restart the clock)."""
        if self._drain_deadline is None:
            return self.cfg.shutdown_timeout_s
        return max(0.1, self._drain_deadline - self.monotonic())

    def drain(self) -> None:
        """Deliver what is in flight, commit it, leave the group: within shutdown_timeout_s."""
        self._drain_deadline = self.monotonic() + self.cfg.shutdown_timeout_s
        try:
            self._finish_pending()
            self.delivery.drain()
        finally:
            self.consumer.close()
            self.tracer.shutdown()
            log.info("enrich stopped (pid %s)", os.getpid())
