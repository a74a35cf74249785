"""Newly assigned partitions start at the committed offsets the stage read itself, retried until readable."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from shoppulse.consumers.start_offsets import CommittedOffsetsUnavailable, assign_at_committed
from tests.unit.consumers.assigning import AssigningConsumer

UNSTABLE = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
PARTS = [TopicPartition("reviews", 0), TopicPartition("reviews", 1)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakyCommitted(AssigningConsumer):
    """The coordinator answers with ``failures`` (one per call, in order) before it answers properly."""

    def __init__(self, failures: list[KafkaError | str]) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[Any]:
        self.calls += 1
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, KafkaError):  # the whole request failed
                raise KafkaException(failure)
            found: list[Any] = super().committed(partitions, timeout)  # one partition's own error
            found[0] = SimpleNamespace(topic="reviews", partition=0, offset=OFFSET_INVALID, error=UNSTABLE)
            return found
        return super().committed(partitions, timeout)


def test_partitions_start_at_their_committed_offsets_or_at_the_reset_position() -> None:
    """Never at OFFSET_INVALID: librdkafka turns it into "fetch the committed offset" (its own fetch)."""
    consumer = AssigningConsumer()
    consumer.committed_at = {("reviews", 0): 42}
    assign_at_committed(consumer, PARTS, budget_s=60)
    assert consumer.started_at == {("reviews", 0): 42, ("reviews", 1): OFFSET_BEGINNING}
    assign_at_committed(consumer, [TopicPartition("clicks", 0)], budget_s=60, when_none=OFFSET_END)
    assert consumer.started_at[("clicks", 0)] == OFFSET_END


def test_a_coordinator_that_moved_is_asked_again_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka's own fetch gives up on NOT_COORDINATOR for good (#5586); here it is retried."""
    consumer = FlakyCommitted([KafkaError(KafkaError.NOT_COORDINATOR), KafkaError(KafkaError._TIMED_OUT), "unstable"])
    consumer.committed_at = {("reviews", 1): 7}
    clock = Clock()
    with caplog.at_level(logging.WARNING):
        assign_at_committed(consumer, PARTS, budget_s=60, sleep=clock.sleep, monotonic=clock.monotonic)
    assert consumer.calls == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert consumer.started_at == {("reviews", 0): OFFSET_BEGINNING, ("reviews", 1): 7}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "attempt 1" in warnings[0] and "NOT_COORDINATOR" in warnings[0].upper().replace(" ", "_")
    assert "reviews[0]" in warnings[2] and "UNSTABLE_OFFSET_COMMIT" in warnings[2].upper().replace(" ", "_")


def test_backoff_is_capped() -> None:
    consumer = FlakyCommitted([KafkaError(KafkaError.NOT_COORDINATOR)] * 7)
    clock = Clock()
    assign_at_committed(consumer, PARTS, budget_s=1_000, sleep=clock.sleep, monotonic=clock.monotonic)
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_offsets_still_unreadable_past_the_budget_fail_loudly_and_assign_nothing() -> None:
    consumer = FlakyCommitted([KafkaError(KafkaError.NOT_COORDINATOR)] * 100)
    clock = Clock()
    with pytest.raises(CommittedOffsetsUnavailable, match=r"2 assigned partition\(s\) unreadable after 4 attempt"):
        assign_at_committed(consumer, PARTS, budget_s=5, sleep=clock.sleep, monotonic=clock.monotonic)
    assert clock.sleeps == [0.5, 1.0, 2.0]  # 3.5 s slept; one more 4 s wait would pass the 5 s budget
    assert consumer.started_at == {}


def test_an_empty_assignment_asks_nothing() -> None:
    consumer = FlakyCommitted([])
    assign_at_committed(consumer, [], budget_s=5)
    assert consumer.calls == 0 and consumer.started_at == {}


def test_a_stage_that_is_stopping_gives_up_at_once() -> None:
    consumer = FlakyCommitted([KafkaError(KafkaError.NOT_COORDINATOR)] * 100)
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(CommittedOffsetsUnavailable, match="stopped while reading committed offsets"):
        assign_at_committed(consumer, PARTS, budget_s=1_000, sleep=stopping.wait)
    assert consumer.calls == 1 and consumer.started_at == {}
