"""How a finished batch reaches Kafka: at-least-once or exactly-once, behind one small interface.

The stage loop (``stage.py``) is poll → parse → enrich → ``deliver``; it never asks which mode
runs. ``delivery_for(settings, ...)`` builds the one the settings ask for, with its producer:

- ``AtLeastOnceDelivery`` (default): an idempotent producer sends asynchronously; an input
  offset is committed only when every output it caused is acknowledged (``CommitTracker``), so
  a crash replays, never loses. Commits are batched (``enrich.commit_interval_ms``); a
  revocation or shutdown flushes and commits at once. It allows pipelining: the next batch's
  model call may run while this one is delivered.
- ``TransactionalDelivery`` (``enrich.exactly_once``): one batch = one Kafka transaction that
  also carries the consumed offsets (``send_offsets_to_transaction``). On an abortable error the
  transaction is aborted and the partitions rewound to the batch's first offsets; a fatal one
  (fenced) stops the stage. One batch at a time: a rewind must not straddle a batch taken in.

Both share ``outputs_of`` (records → Kafka records with headers and event-time timestamps) and
a produce that waits for room when librdkafka's local queue is full.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, Message, Producer, TopicPartition

from shoppulse.consumers import metrics
from shoppulse.consumers.contracts import SCHEMA_VERSION, dumps
from shoppulse.consumers.coordinates import RecordCoordinates, TopicPart
from shoppulse.consumers.deadletter import DEAD_LETTER_SCHEMA_VERSION, dead_letter_key
from shoppulse.consumers.enrich.enricher import STAGE, Enriched
from shoppulse.consumers.enrich.offsets import CommitTracker
from shoppulse.consumers.headers import (
    DEAD_LETTER_RETENTION_MS,
    Headers,
    child_traceparent,
    header,
    output_headers,
    record_timestamp_ms,
)
from shoppulse.consumers.records import DeadLetter, to_wire
from shoppulse.consumers.settings import Settings

log = logging.getLogger(__name__)

# One input's outcome, in input order: an enriched event, or a dead letter (its envelope).
Delivered = tuple[Message, RecordCoordinates, Enriched | DeadLetter]


class Output(NamedTuple):
    """One record to produce: where, what, its headers, and its timestamp (ms; 0 = the broker's time)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp: int


class FatalStageError(RuntimeError):
    """The stage cannot go on safely (fenced producer, undeliverable output); exit, restart resumes."""


TXN_CALL_S = 30  # the timeout each transactional call is given


class StalledClientError(FatalStageError):
    """A librdkafka call did not return within its own timeout and a margin: it is still blocked in
    another thread, so the stage exits at once (no drain, which would need the same client)."""


def bounded(what: str, call: Callable[[], Any], limit_s: float) -> Any:
    """``call()``, given ``limit_s`` to return; ``StalledClientError`` if it has not by then.

    Why: ``send_offsets_to_transaction`` does not check its timeout and can wait for good after the
    group coordinator's broker left the cluster (confluentinc/librdkafka#5456, #5511). A call stuck
    in C cannot be interrupted; running it on a daemon thread lets the stage notice and exit, and in
    exactly-once mode the restart aborts the open transaction (``init_transactions``).
    """
    done = threading.Event()
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name=f"bounded-{what}", daemon=True).start()
    if not done.wait(limit_s):
        raise StalledClientError(
            f"{what} did not return within {limit_s:.0f} s (librdkafka ignores its timeout when the group "
            "coordinator is gone: confluentinc/librdkafka#5456, #5511)"
        )
    if failure:
        raise failure[0]
    return outcome[0]


class Delivery(Protocol):
    """What the loop needs from a delivery mode."""

    name: str  # "at-least-once" or "exactly-once", for logs and spans
    pipelined: bool  # may the next batch's model call overlap this batch's delivery?
    producer: Any
    consumer: Any

    def start(self) -> bool:
        """Before subscribing; False (after logging why) when the stage cannot run."""

    def deliver(self, ordered: list[Delivered]) -> None:
        """Produce one batch's outputs, in input order."""

    def after_step(self) -> None:
        """Between batches: raise ``FatalStageError`` for an output that failed; commit when due."""

    def on_revoke(self, tps: list[TopicPart]) -> None:
        """Partitions are going: deliver and commit what is done for them."""

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's ``on_commit`` callback: a failed commit's positions go out with the next."""

    def forget(self, tps: list[TopicPart]) -> None:
        """Partitions are gone: drop their bookkeeping."""

    def in_flight(self) -> int:
        """Inputs whose outputs await acknowledgement (back-pressure pauses past ``max_in_flight``)."""

    def drain(self) -> None:
        """At shutdown, within the flush budget: deliver what is in flight and commit it."""


def outputs_of(msg: Message, item: Enriched | DeadLetter, settings: Settings) -> list[Output]:
    """The records one input becomes, with headers and a timestamp: the event's time for insights
    and signals, the input record's for a dead letter, each clamped by ``record_timestamp_ms``."""
    topics = settings.topics
    trace = child_traceparent(header(msg.headers(), "traceparent"))
    now_ms = int(time.time() * 1000)
    if isinstance(item, DeadLetter):
        kind, input_ts = msg.timestamp()
        headers = output_headers(DEAD_LETTER_SCHEMA_VERSION, None, trace)
        input_ms = input_ts if kind != TIMESTAMP_NOT_AVAILABLE else now_ms
        ts = record_timestamp_ms(input_ms, now_ms, DEAD_LETTER_RETENTION_MS)
        return [Output(topics.dead_letter, dead_letter_key(msg.key()), dumps(to_wire(item)), headers, ts)]
    key = item.event.user_id.encode("utf-8")
    headers = output_headers(SCHEMA_VERSION, item.event.event_id, trace)
    ts = record_timestamp_ms(item.event.ts_ms, now_ms, settings.kafka.input_retention_ms)
    out = []
    if item.insight is not None:
        out.append(Output(topics.review_insights, key, dumps(to_wire(item.insight)), headers, ts))
    out.append(Output(topics.user_signals, key, dumps(to_wire(item.signal)), headers, ts))
    return out


def producer_config(settings: Settings, on_error: Callable[[KafkaError], None]) -> dict[str, Any]:
    """The idempotent producer both modes start from (the transactional one adds its id and timeouts)."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # The Java client's partitioner, as faust/aiokafka use: stage 2 finds a user's partition by it.
        "partitioner": "murmur2_random",
        "message.timeout.ms": 600_000,
        # Stage 2 deduplicates exactly by each input partition's highest offset applied, which needs a
        # user's signals in input order with no gap: a failed batch that would leave one is fatal.
        "enable.gapless.guarantee": True,
        "error_cb": on_error,
    }


class _Producing:
    """What both modes share: the settings, the clients, and a produce that waits for queue room."""

    def __init__(self, settings: Settings, producer: Any, consumer: Any, flush_budget: Callable[[], float]) -> None:
        self.settings = settings
        self.producer = producer
        self.consumer = consumer
        self.flush_budget = flush_budget

    def produce(self, output: Output, callback: Callable[..., None] | None = None) -> None:
        while True:
            try:
                self.producer.produce(
                    output.topic,
                    output.value,
                    output.key,
                    on_delivery=callback,
                    headers=output.headers,
                    timestamp=output.timestamp,
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: serve delivery reports, then retry

    def start(self) -> bool:
        return True

    def forget(self, tps: list[TopicPart]) -> None:
        pass

    def in_flight(self) -> int:
        return 0

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        pass  # the consumer commits nothing itself in this mode


class AtLeastOnceDelivery(_Producing):
    name = "at-least-once"

    def __init__(self, settings: Settings, producer: Any, consumer: Any, flush_budget: Callable[[], float]) -> None:
        super().__init__(settings, producer, consumer, flush_budget)
        self.pipelined = True
        self.tracker = CommitTracker()
        self.monotonic: Callable[[], float] = time.monotonic  # the commit interval's clock: the stage's
        self._next_commit = 0.0  # monotonic time of the next between-batch commit

    def deliver(self, ordered: list[Delivered]) -> None:
        for msg, source, item in ordered:
            outputs = outputs_of(msg, item, self.settings)
            tp = source.topic_part
            self.tracker.begin(tp, source.offset, len(outputs))
            event_ts = item.event.ts_ms if isinstance(item, Enriched) else None
            for i, output in enumerate(outputs):
                last = i == len(outputs) - 1
                self.produce(output, self._on_delivery(tp, source.offset, source.topic, event_ts if last else None))

    def _on_delivery(
        self, tp: TopicPart, offset: int, input_topic: str, event_ts: int | None
    ) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                metrics.PRODUCE_ERRORS.labels(STAGE, msg.topic()).inc()
                self.tracker.fail(tp, offset, str(err))
                return
            metrics.EVENTS_PRODUCED.labels(STAGE, msg.topic()).inc()
            if event_ts is not None:
                metrics.END_TO_END_SECONDS.labels(STAGE, input_topic).observe(max(0.0, time.time() - event_ts / 1000))
            self.tracker.ack(tp, offset)

        return on_delivery

    def after_step(self) -> None:
        if self.tracker.failed:
            tp, offset, reason = self.tracker.failed[0]
            raise FatalStageError(f"output of {tp[0]}[{tp[1]}]@{offset} was not delivered: {reason}")
        # At most one commit per commit_interval_ms between batches: a commit per micro-batch (50/s at a
        # 20 ms wait) cost the single-node broker more CPU than the records did. Revocation and shutdown
        # commit at once, so the interval only bounds what a crash replays.
        now = self.monotonic()
        if now >= self._next_commit:
            self._next_commit = now + self.settings.enrich.commit_interval_ms / 1000.0
            self.commit(sync=False)

    def on_revoke(self, tps: list[TopicPart]) -> None:
        self.producer.flush(self.flush_budget())
        self.commit(sync=True, only=set(tps))

    def forget(self, tps: list[TopicPart]) -> None:
        self.tracker.forget(tps)

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self.tracker.positions.on_commit(err, partitions)

    def in_flight(self) -> int:
        return self.tracker.in_flight()

    def drain(self) -> None:
        remaining = self.producer.flush(self.flush_budget())
        if remaining:
            log.warning("%d outputs undelivered at shutdown; their inputs stay uncommitted", remaining)
        self.commit(sync=True)  # the tracker never passes an undelivered output

    def commit(self, sync: bool, only: set[TopicPart] | None = None) -> None:
        if self.tracker.positions.commit(self.consumer, asynchronous=not sync, only=only):
            metrics.COMMITS.labels(STAGE).inc()


class TransactionalDelivery(_Producing):
    name = "exactly-once"

    def __init__(
        self,
        settings: Settings,
        producer: Any,
        consumer: Any,
        flush_budget: Callable[[], float],
        owns: Callable[[TopicPart], bool],
    ) -> None:
        super().__init__(settings, producer, consumer, flush_budget)
        self.pipelined = False
        self.stall_limit_s = TXN_CALL_S + 15.0  # past this, a transactional call is taken as stalled
        self.owns = owns  # is a partition still assigned to us? only those are rewound

    @staticmethod
    def transactional_id_of(settings: Settings) -> str:
        """Stable across restarts of one host/pod, so a restart fences (aborts) its predecessor's open transaction."""
        return f"{settings.enrich.transactional_id}-{socket.gethostname()}"

    @property
    def transactional_id(self) -> str:
        return self.transactional_id_of(self.settings)

    def start(self) -> bool:
        try:
            self.producer.init_transactions(60)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            log.error(
                "cannot start exactly-once: init_transactions for transactional.id %s failed: %s%s",
                self.transactional_id,
                err,
                self._fenced_hint(err),
            )
            return False
        return True

    def deliver(self, ordered: list[Delivered]) -> None:
        """One batch = one transaction: outputs + consumed offsets commit atomically."""
        first: dict[TopicPart, int] = {}
        last: dict[TopicPart, int] = {}
        for _, source, _ in ordered:
            first.setdefault(source.topic_part, source.offset)
            last[source.topic_part] = source.offset
        try:
            self.producer.begin_transaction()
            for msg, _, item in ordered:
                for output in outputs_of(msg, item, self.settings):
                    self.produce(output, self._on_delivery)
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
            group = self.consumer.consumer_group_metadata()
            bounded(
                "send_offsets_to_transaction",
                lambda: self.producer.send_offsets_to_transaction(offsets, group, TXN_CALL_S),
                self.stall_limit_s,
            )
            self._commit_transaction()
            metrics.COMMITS.labels(STAGE).inc()
            now = time.time()
            for _, source, item in ordered:
                if isinstance(item, Enriched):
                    metrics.END_TO_END_SECONDS.labels(STAGE, source.topic).observe(
                        max(0.0, now - item.event.ts_ms / 1000)
                    )
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise FatalStageError(f"transactional producer: {err}{self._fenced_hint(err)}") from exc
            if not err.txn_requires_abort():
                raise FatalStageError(f"transaction failed and cannot be aborted safely: {err}") from exc
            log.warning("aborting transaction (%s); rewinding %d partitions", err, len(first))
            self.producer.abort_transaction(30)
            metrics.TRANSACTION_ABORTS.labels(STAGE).inc()
            for (topic, partition), offset in first.items():
                if self.owns((topic, partition)):
                    self.consumer.seek(TopicPartition(topic, partition, offset))

    def _fenced_hint(self, err: KafkaError) -> str:
        """What to do when another producer took our transactional.id (or the broker says we are stale)."""
        fenced = {getattr(KafkaError, name, None) for name in ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")}
        if err.code() not in fenced:
            return ""
        return (
            f" — another producer now uses transactional.id {self.transactional_id!r}: two exactly-once processes on "
            "one host need different SHOPPULSE_ENRICH__TRANSACTIONAL_ID prefixes (the host name is appended)"
        )

    @staticmethod
    def _on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            metrics.EVENTS_PRODUCED.labels(STAGE, msg.topic()).inc()
        else:
            metrics.PRODUCE_ERRORS.labels(STAGE, msg.topic()).inc()

    def _commit_transaction(self) -> None:
        for attempt in range(5):
            try:
                self.producer.commit_transaction(30)
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.retriable() and attempt < 4:
                    continue
                raise

    def after_step(self) -> None:
        pass  # each batch committed with its transaction

    def on_revoke(self, tps: list[TopicPart]) -> None:
        pass  # nothing is open between batches

    def drain(self) -> None:
        self.producer.flush(self.flush_budget())


def delivery_for(
    settings: Settings,
    consumer: Any,
    owns: Callable[[TopicPart], bool],
    flush_budget: Callable[[], float],
    on_error: Callable[[KafkaError], None],
    *,
    producer: Any | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Delivery:
    """The delivery ``enrich.exactly_once`` asks for, with a producer configured for it (or ``producer``)."""
    conf = producer_config(settings, on_error)
    if not settings.enrich.exactly_once:
        if producer is None:
            producer = Producer(settings.librdkafka(**conf))
        at_least_once = AtLeastOnceDelivery(settings, producer, consumer, flush_budget)
        at_least_once.monotonic = monotonic
        return at_least_once
    conf["transactional.id"] = TransactionalDelivery.transactional_id_of(settings)
    conf["transaction.timeout.ms"] = 60_000
    conf["message.timeout.ms"] = 60_000  # librdkafka requires <= transaction.timeout.ms
    if producer is None:
        producer = Producer(settings.librdkafka(**conf))
    return TransactionalDelivery(settings, producer, consumer, flush_budget, owns)
