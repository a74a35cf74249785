"""GapReader against real Kafka: a hole's records come back, a transaction marker's hole is empty."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from shoppulse.consumers.profiles.gaps import GapReader, Hole
from shoppulse.consumers.settings import Settings
from shoppulse.devkit.broker import EmbeddedBroker
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration


def test_holes_are_read_back_and_markers_read_as_empty(kafka_broker: EmbeddedBroker) -> None:
    settings = isolated_settings(kafka_broker.bootstrap, partitions=1)
    topic = settings.topics.user_signals
    plain = Producer(settings.librdkafka())
    for i in range(3):  # offsets 0, 1, 2
        plain.produce(topic, key=b"u1", value=f"plain-{i}".encode(), partition=0)
    assert plain.flush(30) == 0
    transactional = Producer(settings.librdkafka(**{"transactional.id": f"gap-test-{uuid.uuid4().hex[:8]}"}))
    transactional.init_transactions(30)
    transactional.begin_transaction()
    transactional.produce(topic, key=b"u1", value=b"in-transaction", partition=0)  # offset 3
    transactional.commit_transaction(30)  # the commit marker takes offset 4 ...
    _wait_for_end_offset(settings, topic, 5)  # ... written by the coordinator after the commit returns
    plain.produce(topic, key=b"u1", value=b"after-marker", partition=0)  # offset 5
    assert plain.flush(30) == 0

    reader = GapReader(settings, topic)
    try:
        assert [m.value() for m in reader.read(Hole(0, 1, 3))] == [b"plain-1", b"plain-2"]
        assert [m.offset() for m in reader.read(Hole(0, 3, 5))] == [3]
        assert reader.read(Hole(0, 4, 5)) == []  # only the marker: nothing was skipped
        assert [m.value() for m in reader.read(Hole(0, 5, 99))] == [b"after-marker"]  # stops at the end
        assert [m.offset() for m in reader.read(Hole(0, 0, 6), limit=2)] == [0, 1]
        assert reader.first_offset(Hole(0, 4, 5)) is None  # a tail of markers: caught up
        assert reader.first_offset(Hole(0, 4, 6)) == 5
    finally:
        reader.close()


def _wait_for_end_offset(settings: Settings, topic: str, end: int, timeout_s: float = 30.0) -> None:
    consumer = Consumer(settings.librdkafka(**{"group.id": f"end-{uuid.uuid4().hex[:8]}"}))
    try:
        deadline = time.monotonic() + timeout_s
        while consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1] < end:
            assert time.monotonic() < deadline, f"{topic}[0] never reached offset {end}"
            time.sleep(0.05)
    finally:
        consumer.close()
