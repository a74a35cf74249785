"""Exactly-once: an abortable transaction error aborts and rewinds; a fatal one stops the stage with a reason.

The stage's Kafka clients are real librdkafka objects pointed at a closed port; the producer and the
consumer are swapped for recorders that raise the errors librdkafka raises.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shoppulse.consumers.enrich.stage import EnrichStage, FatalStageError
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port
from tests.unit.consumers.assigning import AssigningConsumer


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def key(self) -> bytes:
        return b"u1"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_790_000_000_000)  # TIMESTAMP_CREATE_TIME

    def topic(self) -> str:
        return self._where[0]


class Producer:
    def __init__(self, fail_with: KafkaError | None) -> None:
        self.fail_with = fail_with
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any = None, **_: Any) -> None:
        self.calls.append(f"produce {topic}")

    def send_offsets_to_transaction(self, offsets: list[Any], metadata: Any, timeout: float) -> None:
        self.calls.append("send_offsets " + ",".join(f"{o.topic}[{o.partition}]@{o.offset}" for o in offsets))

    def commit_transaction(self, timeout: float) -> None:
        if self.fail_with is not None:
            raise KafkaException(self.fail_with)
        self.calls.append("commit")

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")


class Consumer(AssigningConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.seeks: list[tuple[str, int, int]] = []

    def consumer_group_metadata(self) -> object:
        return object()

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def close(self) -> None:
        pass


def make_stage(fail_with: KafkaError | None) -> tuple[EnrichStage, Producer, Consumer]:
    settings = load_settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        enrich={"exactly_once": True},
    )
    producer, consumer = Producer(fail_with), Consumer()
    stage = EnrichStage(
        settings, enricher=object(), install_signals=False, consumer=consumer, producer=producer
    )  # type: ignore[arg-type]
    stage.on_assign(consumer, [TopicPartition("reviews", 0), TopicPartition("clicks", 1)])  # type: ignore[arg-type]
    return stage, producer, consumer


def _batch(stage: EnrichStage) -> list[tuple[Any, Any, Any]]:
    """Two dead-letter records and one of another partition: outputs that need no model."""
    from shoppulse.consumers.coordinates import RecordCoordinates
    from shoppulse.consumers.deadletter import dead_letter_record

    def refused(topic: str, partition: int, offset: int, reason: str) -> tuple[Any, Any, Any]:
        source = RecordCoordinates(topic, partition, offset)
        letter = dead_letter_record(stage="enrich", raw=b"{", key=None, source=source, reason=reason, message="m")
        return FakeMessage(topic, partition, offset), source, letter

    return [
        refused("reviews", 0, 40, "bad_json"),
        refused("reviews", 0, 41, "bad_json"),
        refused("clicks", 1, 7, "missing_field"),
    ]


def test_a_committed_transaction_carries_the_outputs_and_the_next_offsets() -> None:
    stage, producer, consumer = make_stage(fail_with=None)
    stage.delivery.deliver(_batch(stage))
    assert producer.calls[0] == "begin" and producer.calls[-1] == "commit"
    assert producer.calls.count(f"produce {stage.topics.dead_letter}") == 3
    assert "send_offsets reviews[0]@42,clicks[1]@8" in producer.calls
    assert consumer.seeks == []


def test_an_abortable_error_aborts_and_rewinds_each_partition_to_its_first_offset() -> None:
    abortable = KafkaError(KafkaError._TIMED_OUT, "commit timed out", txn_requires_abort=True)
    stage, producer, consumer = make_stage(fail_with=abortable)
    stage.delivery.deliver(_batch(stage))
    assert producer.calls[-1] == "abort"
    assert sorted(consumer.seeks) == [("clicks", 1, 7), ("reviews", 0, 40)]  # redone, nothing skipped


def test_a_fenced_producer_stops_the_stage_and_says_what_to_change() -> None:
    fenced = KafkaError(KafkaError._FENCED, "producer fenced", fatal=True)
    stage, producer, consumer = make_stage(fail_with=fenced)
    with pytest.raises(FatalStageError) as err:
        stage.delivery.deliver(_batch(stage))
    assert "SHOPPULSE_ENRICH__TRANSACTIONAL_ID" in str(err.value) and stage.delivery.transactional_id in str(err.value)
    assert "abort" not in producer.calls and consumer.seeks == []


def test_an_error_that_is_neither_abortable_nor_fatal_stops_the_stage() -> None:
    odd = KafkaError(KafkaError._STATE, "erroneous state")
    stage, _, _ = make_stage(fail_with=odd)
    with pytest.raises(FatalStageError, match="cannot be aborted safely"):
        stage.delivery.deliver(_batch(stage))


class StuckProducer(Producer):
    """``send_offsets_to_transaction`` that never returns, as librdkafka#5456/#5511 describe."""

    def __init__(self) -> None:
        super().__init__(None)
        self.release = threading.Event()

    def send_offsets_to_transaction(self, offsets: list[Any], metadata: Any, timeout: float) -> None:
        self.release.wait()


def test_a_bounded_call_returns_its_value_or_raises_its_error_or_is_called_stalled() -> None:
    from shoppulse.consumers.enrich.delivery import StalledClientError, bounded

    assert bounded("answer", lambda: 42, 5.0) == 42
    with pytest.raises(KafkaException):
        bounded("failing", lambda: (_ for _ in ()).throw(KafkaException(KafkaError(KafkaError._TIMED_OUT))), 5.0)
    never = threading.Event()
    with pytest.raises(StalledClientError, match="stuck did not return within 0 s"):
        bounded("stuck", never.wait, 0.05)
    never.set()


def test_a_stalled_send_offsets_stops_the_batch_instead_of_hanging_the_stage() -> None:
    from shoppulse.consumers.enrich.delivery import StalledClientError

    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, enrich={"exactly_once": True})
    producer, consumer = StuckProducer(), Consumer()
    stage = EnrichStage(
        settings, enricher=object(), install_signals=False, consumer=consumer, producer=producer
    )  # type: ignore[arg-type]
    stage.delivery.stall_limit_s = 0.1  # type: ignore[attr-defined]
    with pytest.raises(StalledClientError):
        stage.delivery.deliver(_batch(stage))
    assert "commit" not in producer.calls  # the transaction stays open: the restart's init_transactions aborts it
    producer.release.set()
