"""Stage 3's re-key step: enrich's outputs → facts, one ``insight-facts`` record per row and batch.

Why a confluent-kafka loop and not a faust agent: re-keying is stateless, and as a faust agent
it cost more in faust's per-record machinery and aiokafka's fetcher than in the re-keying itself
(stage 3 then read about half of what enrich writes at enrich's capacity; docs/insights.md).
Here librdkafka fetches and produces in C, and the Python work per record is parsing it and
building its facts (``consumers.insights.facts``). The fold stays a faust agent, since it owns
the changelog-backed table.

Delivery, at least once and in order, so that the fold's exact deduplication holds: a batch
(up to ``BATCH_RECORDS`` records, or what came within ``BATCH_WAIT_S``) becomes one record per
row with its facts in input order; they are produced by an idempotent producer (the
``murmur2_random`` partitioner: how faust partitions ``insight-facts``, which the fold's table
follows), flushed, and only then are the batch's offsets committed. A crash replays from the
last commit, and each input partition's facts still reach a row in order, so the fold's marks
recognise every replayed fact. Inputs are read ``read_committed``; librdkafka steps over
transaction markers and aborted records itself. One loop per worker, in a thread of its own,
in the consumer group ``<insights.app_id>-rekey``: replicas split the input partitions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from shoppulse.consumers import metrics
from shoppulse.consumers.commit_positions import CommitPositions
from shoppulse.consumers.consumed import usable
from shoppulse.consumers.contracts import R_PARSE_FAILED
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.deadletter import dead_letter_message
from shoppulse.consumers.insights.facts import facts_to_json, review_facts, signal_facts
from shoppulse.consumers.insights.window import Fact
from shoppulse.consumers.profiles.app import load_json
from shoppulse.consumers.records import SignalError
from shoppulse.consumers.settings import Settings
from shoppulse.consumers.start_offsets import assign_at_committed, budget_for
from shoppulse.models.serving.taxonomy import Taxonomy

log = logging.getLogger(__name__)

STAGE = "insights"
BATCH_RECORDS = 4000
BATCH_WAIT_S = 0.2
FLUSH_TIMEOUT_S = 60.0


def rekey_group(settings: Settings) -> str:
    """The consumer group of the re-key loops: stage 3's ``app_id`` (the fold's group) + ``-rekey``."""
    return f"{settings.insights.app_id}-rekey"


class RekeyFailed(RuntimeError):
    """The batch's facts could not be delivered: its offsets stay uncommitted, the next owner redoes it."""


class Rekeyer:
    """The re-key loop; ``start()`` runs it in a daemon thread, ``stop()`` ends it after the batch."""

    def __init__(self, settings: Settings, taxonomy: Taxonomy, stopped: Callable[[str], None]) -> None:
        t = settings.topics
        self.settings = settings
        self.taxonomy = taxonomy
        self.stopped = stopped
        self.facts_topic = t.insight_facts
        self.dead_letter_topic = t.dead_letter
        self.to_facts: dict[str, Callable[[Any, Taxonomy], list[Fact]]] = {
            t.review_insights: review_facts,
            t.user_signals: signal_facts,
        }
        self.group_id = rekey_group(settings)
        self.assigned: set[tuple[str, int]] = set()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="insights-rekey", daemon=True)
        self._errors: list[str] = []
        self.positions = CommitPositions()  # a failed asynchronous commit is sent again, traffic or not
        k = settings.kafka
        self.consumer = Consumer(
            settings.librdkafka(
                **{
                    "group.id": self.group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                    "partition.assignment.strategy": "cooperative-sticky",
                    "session.timeout.ms": k.session_timeout_ms,
                    "max.poll.interval.ms": k.max_poll_interval_ms,
                    "on_commit": self.positions.on_commit,
                }
            )
        )
        self.producer = Producer(
            settings.librdkafka(
                **{
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "partitioner": "murmur2_random",
                    "enable.gapless.guarantee": True,
                }
            )
        )

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    def run(self) -> None:
        self.consumer.subscribe(list(self.to_facts), on_assign=self.on_assign, on_revoke=self.on_revoke)
        try:
            while not self.stop_event.is_set():
                messages = self.consumer.consume(BATCH_RECORDS, BATCH_WAIT_S)
                batch = [m for m in messages if self._usable(m)]
                if batch:
                    self.process(batch)
                elif self.positions.pending():
                    self.positions.commit(self.consumer, asynchronous=True)
        except Exception as exc:  # the stage cannot re-key any more: fail /healthz, the pod restarts
            reason = f"re-key loop: {type(exc).__name__}: {exc}"[:500]
            log.critical("%s; failing /healthz so the pod is restarted", reason, exc_info=exc)
            self.stopped(reason)
        finally:
            self.consumer.close()

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        budget_s = budget_for(self.settings.kafka.max_poll_interval_ms)
        assign_at_committed(consumer, partitions, budget_s, sleep=self.stop_event.wait)
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("re-key: assigned %s", sorted(f"{p.topic}[{p.partition}]" for p in partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are delivered and committed before the next consume: nothing is in flight here, but
        # a commit that failed is still due; it goes out now, before the next owner reads.
        revoked = {(p.topic, p.partition) for p in partitions}
        self.positions.commit(self.consumer, asynchronous=False, only=revoked)
        self.positions.forget(revoked)
        self.assigned -= revoked

    def _usable(self, msg: Message) -> bool:
        return usable(msg, KafkaException, "insights re-key")

    # --- one batch --------------------------------------------------------------------------------
    def process(self, batch: list[Message]) -> None:
        """Facts of every record, one record per row in input order, flushed; then the offsets committed."""
        by_row: dict[str, list[Fact]] = {}
        last: dict[tuple[str, int], int] = {}
        for msg in batch:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            last[(topic, partition)] = offset
            metrics.EVENTS_CONSUMED.labels(STAGE, topic).inc()
            try:
                facts = self.to_facts[topic](load_json(msg.value()), self.taxonomy)
            except SignalError as err:
                self._dead_letter(msg, err.reason, str(err))
                continue
            except Exception as exc:  # a validator bug must not stop the stage: this record is dead-lettered
                log.exception("re-key: reading %s[%d]@%d failed; dead-lettered", topic, partition, offset)
                self._dead_letter(msg, R_PARSE_FAILED, repr(exc))
                continue
            for fact in facts:
                by_row.setdefault(fact.key, []).append(fact)
        for key, facts in by_row.items():
            self._produce(self.facts_topic, key.encode("utf-8"), facts_to_json(facts), None)
        remaining = self.producer.flush(FLUSH_TIMEOUT_S)
        if remaining or self._errors:
            raise RekeyFailed(f"{remaining} facts records undelivered; first errors: {self._errors[:3]}")
        for tp, offset in last.items():
            self.positions.advance(tp, offset + 1)
        self.positions.commit(self.consumer, asynchronous=True)
        self._record_lag(last)

    def _dead_letter(self, msg: Message, reason: str, message: str) -> None:
        source = RecordCoordinates(msg.topic(), msg.partition(), msg.offset())
        letter_key, value, headers = dead_letter_message(STAGE, msg.value(), msg.key(), source, reason, message)
        self._produce(self.dead_letter_topic, letter_key, value, headers)

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: serve delivery reports, then retry

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            metrics.PRODUCE_ERRORS.labels(STAGE, msg.topic()).inc()
            self._errors.append(str(err))
        else:
            metrics.EVENTS_PRODUCED.labels(STAGE, msg.topic()).inc()

    def _record_lag(self, last: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in last.items():
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high is not None and high >= 0:
                metrics.CONSUMER_LAG.labels(STAGE, topic, str(partition)).set(max(0, high - offset - 1))

    def readiness(self) -> dict[str, Any]:
        return {"alive": self.thread.is_alive(), "assigned_partitions": len(self.assigned)}
