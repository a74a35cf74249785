"""The re-key loop's batch: facts grouped per row in input order, bad records dead-lettered, and the
offsets committed only once every record of the batch is delivered.

The loop's Kafka clients are real librdkafka objects pointed at a closed port, swapped for recorders.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from shoppulse.consumers.insights.rekey import Rekeyer, RekeyFailed
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port
from shoppulse.models.serving.taxonomy import default_taxonomy
from tests.unit.consumers.assigning import AssigningConsumer


class Message:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None, key: bytes = b"u1") -> None:
        self._where, self._value, self._key = (topic, partition, offset), value, key

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return self._key

    def error(self) -> None:
        return None


class Producer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.records: list[tuple[str, bytes | None, bytes]] = []
        self.callbacks: list[Any] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any = None, **_: Any) -> None:
        self.records.append((topic, key, value))
        self.callbacks.append((on_delivery, topic))

    def flush(self, timeout: float) -> int:
        for callback, topic in self.callbacks:
            callback("broker down" if self.fail else None, Message(topic, 0, 0, None))
        self.callbacks.clear()
        return 0

    def poll(self, timeout: float) -> int:
        return 0


class Consumer(AssigningConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.commits: list[list[tuple[str, int, int]]] = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append([(o.topic, o.partition, o.offset) for o in offsets])

    def get_watermark_offsets(self, tp: Any, cached: bool) -> tuple[int, int]:
        return 0, 100


def _rekeyer(fail: bool = False) -> Rekeyer:
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    rekeyer = Rekeyer(settings, default_taxonomy(), stopped=lambda reason: None)
    rekeyer.consumer, rekeyer.producer = Consumer(), Producer(fail)  # type: ignore[assignment]
    return rekeyer


def _click(offset: int, product: str, category: str = "手机") -> bytes:
    signal = {
        "kind": "click",
        "event_id": f"c{offset}",
        "user_id": "u1",
        "ts": 1_790_000_000_000 + offset,
        "action": "view",
        "weight": 1.0,
        "tags": {},
        "product_ids": [product],
        "category": category,
        "source": {"topic": "clicks", "partition": 0, "offset": offset},
    }
    return json.dumps(signal).encode()


def test_one_record_per_row_in_input_order_bad_ones_dead_lettered_then_committed() -> None:
    rekeyer = _rekeyer()
    t = rekeyer.settings.topics
    batch = [
        Message(t.user_signals, 0, 10, _click(10, "p1")),
        Message(t.user_signals, 0, 11, b"{not json"),
        Message(t.user_signals, 1, 5, _click(5, "p2")),
        Message(t.user_signals, 0, 12, _click(12, "p1")),
    ]
    rekeyer.process(batch)  # type: ignore[arg-type]
    produced = rekeyer.producer.records  # type: ignore[attr-defined]
    facts = {key.decode(): json.loads(value) for topic, key, value in produced if topic == t.insight_facts}
    assert sorted(facts) == ["c:手机", "p:p1", "p:p2", "t:数码"]
    assert [f["src"][2] for f in facts["p:p1"]] == [10, 12]  # one record for the row, in input order
    assert [f["src"][2] for f in facts["c:手机"]] == [10, 5, 12]
    [dead] = [json.loads(value) for topic, _, value in produced if topic == t.dead_letter]
    assert dead["reason"] == "bad_json" and dead["source"]["offset"] == 11
    assert rekeyer.consumer.commits == [[(t.user_signals, 0, 13), (t.user_signals, 1, 6)]]  # type: ignore[attr-defined]


def test_a_batch_not_delivered_is_not_committed() -> None:
    rekeyer = _rekeyer(fail=True)
    t = rekeyer.settings.topics
    with pytest.raises(RekeyFailed, match="broker down"):
        rekeyer.process([Message(t.user_signals, 0, 1, _click(1, "p1"))])  # type: ignore[list-item]
    assert rekeyer.consumer.commits == []  # type: ignore[attr-defined]


def test_a_failed_commit_goes_out_again_and_before_its_partition_is_revoked() -> None:
    """The last batch's commit refused during a rebalance must not leave the group's offset behind
    until new traffic arrives: the idle loop sends it again, and a revocation sends it before the
    next owner reads."""
    rekeyer = _rekeyer()
    t = rekeyer.settings.topics
    rekeyer.process([Message(t.user_signals, 0, 7, _click(7, "p1"))])  # type: ignore[list-item]
    refused = [TopicPartition(t.user_signals, 0, 8)]
    rekeyer.positions.on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), refused)
    assert rekeyer.positions.pending()
    rekeyer.positions.commit(rekeyer.consumer, asynchronous=True)  # what the loop does on a turn without records
    assert rekeyer.consumer.commits[-2:] == [[(t.user_signals, 0, 8)]] * 2  # type: ignore[attr-defined]
    rekeyer.positions.on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), refused)
    rekeyer.on_revoke(rekeyer.consumer, refused)  # type: ignore[arg-type]
    assert rekeyer.consumer.commits[-1] == [(t.user_signals, 0, 8)]  # type: ignore[attr-defined]
    assert len(rekeyer.consumer.commits) == 3 and not rekeyer.positions.pending()  # type: ignore[attr-defined]


def test_assigned_partitions_start_where_the_re_key_group_committed() -> None:
    rekeyer = _rekeyer()
    consumer = rekeyer.consumer
    topic = rekeyer.settings.topics.review_insights
    consumer.committed_at = {(topic, 1): 12}  # type: ignore[attr-defined]
    rekeyer.on_assign(consumer, [TopicPartition(topic, 1), TopicPartition(topic, 2)])  # type: ignore[arg-type]
    assert consumer.started_at == {(topic, 1): 12, (topic, 2): OFFSET_BEGINNING}  # type: ignore[attr-defined]
    assert rekeyer.assigned == {(topic, 1), (topic, 2)}

