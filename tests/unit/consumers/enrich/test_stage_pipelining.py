"""At-least-once pipelining: one batch in the model while the previous one is finished and produced.

The stage runs on recording clients passed in; the enricher's model call is a future the test
completes by hand, so "in the model" is a state we hold.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from shoppulse.consumers.contracts import Event, dumps, event_to_dict
from shoppulse.consumers.coordinates import RecordCoordinates
from shoppulse.consumers.enrich.enricher import Enriched, Plan
from shoppulse.consumers.enrich.stage import EnrichStage
from shoppulse.consumers.records import UserSignal
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port
from tests.unit.consumers.assigning import AssigningConsumer

TS = 1_780_000_000_000


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._topic, self._partition, self._offset, self._value = topic, partition, offset, value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"u1"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_790_000_000_000)  # TIMESTAMP_CREATE_TIME

    def error(self) -> None:
        return None


def review_message(partition: int, offset: int) -> FakeMessage:
    event = Event(kind="review", event_id=f"r{partition}-{offset}", user_id="u1", ts_ms=TS, product_id="p", text="好")
    return FakeMessage("reviews", partition, offset, dumps(event_to_dict(event)))


class ScriptedConsumer(AssigningConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[FakeMessage]] = []
        self.timeouts: list[float] = []
        self.commits: list[dict[tuple[str, int], int]] = []

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.timeouts.append(timeout)
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def get_watermark_offsets(self, tp: Any, cached: bool = True) -> tuple[int, int]:
        return 0, 100

    def list_topics(self, timeout: float) -> None:  # the broker answers
        return None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.subscribed = topics

    def close(self) -> None:
        pass


class AckingProducer:
    """Records produce calls; delivery reports arrive on poll/flush, all successful."""

    def __init__(self) -> None:
        self.produced: list[tuple[str, dict[str, Any]]] = []
        self._reports: list[tuple[Any, FakeMessage]] = []

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, on_delivery: Any = None, **_: Any
    ) -> None:
        self.produced.append((topic, json.loads(value)))
        self._reports.append((on_delivery, FakeMessage(topic, 0, 0, value)))

    def poll(self, timeout: float = 0) -> int:
        reports, self._reports = self._reports, []
        for callback, msg in reports:
            if callback is not None:
                callback(None, msg)
        return len(reports)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


def signal_of(event: Event, source: RecordCoordinates) -> UserSignal:
    return UserSignal(
        kind=event.kind, event_id=event.event_id, user_id=event.user_id, ts=event.ts_ms, action="review",
        weight=3.0, tags={}, model={}, source=source,
    )  # fmt: skip


class HeldEnricher:
    """Plans one text per review; the model call is a future the test resolves."""

    def __init__(self) -> None:
        self.model = {"name": "fake", "version": "0", "precision": "int8"}
        self.futures: list[Future[dict[str, Any]]] = []

    def plan(self, batch: list[tuple[Event, RecordCoordinates]]) -> Plan:
        return Plan(list(batch), [e.text or "" for e, _ in batch], {}, {})

    def infer_async(self, plan: Plan) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        self.futures.append(future)
        return future

    def infer(self, texts: list[str]) -> dict[str, Any]:
        return {}

    def finish(self, plan: Plan, probs: dict[str, Any]) -> list[Enriched]:
        return [Enriched(e, s, None, signal_of(e, s)) for e, s in plan.batch]


def built_stage(**enrich: Any) -> EnrichStage:
    settings = load_settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, enrich={"commit_interval_ms": 0, **enrich}
    )
    consumer = ScriptedConsumer()
    built = EnrichStage(
        settings, enricher=HeldEnricher(), install_signals=False, consumer=consumer, producer=AckingProducer()
    )  # type: ignore[arg-type]
    built.on_assign(consumer, [TopicPartition("reviews", 0), TopicPartition("reviews", 1)])  # type: ignore[arg-type]
    return built


@pytest.fixture
def stage() -> EnrichStage:
    return built_stage()


def produced_ids(stage: EnrichStage) -> list[str]:
    return [value["event_id"] for topic, value in stage.producer.produced if topic == "user-signals"]  # type: ignore[attr-defined]


def test_the_next_batch_is_taken_in_while_one_is_in_the_model(stage: EnrichStage) -> None:
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 0), review_message(0, 1)], [review_message(0, 2)]]
    stage.step()
    assert len(enricher.futures) == 1 and produced_ids(stage) == []  # batch 1 in the model, nothing out
    assert consumer.commits == []
    enricher.futures[0].set_result({})
    stage.step()  # takes batch 2 in (no waiting: timeout 0), then finishes batch 1
    assert consumer.timeouts[1] == 0.0
    assert len(enricher.futures) == 2
    assert produced_ids(stage) == ["r0-0", "r0-1"]
    enricher.futures[1].set_result({})
    stage.step()  # nothing new: batch 2 is finished at once
    assert produced_ids(stage) == ["r0-0", "r0-1", "r0-2"]
    stage.step()
    assert consumer.commits[-1] == {("reviews", 0): 3}  # every delivered input, and no further
    assert consumer.timeouts[-1] == stage.cfg.max_wait_ms / 1000.0  # idle again: wait to fill a batch


def test_a_revocation_finishes_the_batch_in_the_model_before_committing(stage: EnrichStage) -> None:
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 5), review_message(1, 7)]]
    stage.step()
    enricher.futures[0].set_result({})
    stage.on_revoke(consumer, [TopicPartition("reviews", 0)])  # type: ignore[arg-type]
    assert produced_ids(stage) == ["r0-5", "r1-7"]
    assert consumer.commits == [{("reviews", 0): 6}]  # the revoked partition's input, delivered then committed
    stage.step()
    assert produced_ids(stage) == ["r0-5", "r1-7"]  # finished once: nothing left in the model to produce again


def test_events_of_a_partition_lost_meanwhile_are_left_to_the_new_owner(stage: EnrichStage) -> None:
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 1), review_message(1, 1)]]
    stage.step()
    stage.on_lost(consumer, [TopicPartition("reviews", 1)])  # type: ignore[arg-type]
    enricher.futures[0].set_result({})
    stage.step()
    assert produced_ids(stage) == ["r0-1"]
    stage.step()
    assert all(("reviews", 1) not in commit for commit in consumer.commits)


def test_shutdown_finishes_the_batch_in_the_model(stage: EnrichStage) -> None:
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 0)]]
    stage.step()
    enricher.futures[0].set_result({})
    stage.drain()
    assert produced_ids(stage) == ["r0-0"]
    assert consumer.commits[-1] == {("reviews", 0): 1}


def test_after_a_fatal_error_the_batch_in_the_model_is_neither_produced_nor_committed(stage: EnrichStage) -> None:
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 0)]]
    take_batch = consumer.consume

    def consume_then_fail(num_messages: int, timeout: float) -> list[Any]:
        batch = take_batch(num_messages, timeout)
        stage.on_error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))  # librdkafka reports it meanwhile
        return batch

    consumer.consume = consume_then_fail  # type: ignore[method-assign]
    assert stage.run() == 1
    assert len(enricher.futures) == 1  # the batch reached the model, then the stage stopped
    enricher.futures[0].set_result({})
    assert produced_ids(stage) == [] and consumer.commits == []


def test_exactly_once_runs_one_batch_at_a_time(stage: EnrichStage) -> None:
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, enrich={"exactly_once": True})
    transactional = EnrichStage(settings, enricher=HeldEnricher(), install_signals=False)  # type: ignore[arg-type]
    transactional.consumer.close()
    assert transactional.delivery.pipelined is False and stage.delivery.pipelined is True
    # the sequential path: the model call runs in this thread and the batch goes out in the same step
    stage.delivery.pipelined = False
    consumer: ScriptedConsumer = stage.consumer  # type: ignore[assignment]
    enricher: HeldEnricher = stage.enricher  # type: ignore[assignment]
    consumer.batches = [[review_message(0, 0)]]
    stage.step()
    assert enricher.futures == [] and produced_ids(stage) == ["r0-0"]
