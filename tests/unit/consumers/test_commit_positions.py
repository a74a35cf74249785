from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shoppulse.consumers.commit_positions import CommitPositions, to_topic_partitions

A = ("reviews", 0)
B = ("clicks", 1)
C = ("orders", 2)
REBALANCE = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)


def test_take_hands_out_each_position_once_and_only_the_partitions_asked_for() -> None:
    positions = CommitPositions()
    positions.advance(A, 5)
    positions.advance(A, 7)
    positions.advance(B, 3)
    assert positions.take({B}) == {B: 3}
    assert positions.take() == {A: 7}
    assert positions.take() == {} and not positions.pending()


def test_a_failed_commit_is_due_again() -> None:
    positions = CommitPositions()
    positions.advance(A, 5)
    sent = positions.take()
    assert positions.restore(sent) == 1
    assert positions.take() == {A: 5}


def test_a_later_position_is_never_replaced_by_an_older_failed_one() -> None:
    positions = CommitPositions()
    positions.advance(A, 5)
    first = positions.take()
    positions.advance(A, 9)
    assert positions.restore(first) == 0  # 9 is due: it covers 5
    second = positions.take()
    assert second == {A: 9}
    assert positions.restore(first) == 0  # 9 was sent after 5: 5 failing changes nothing
    assert positions.take() == {}
    assert positions.restore(second) == 1
    assert positions.take() == {A: 9}


def test_a_revoked_partition_is_not_committed_from_here_even_when_it_returns() -> None:
    positions = CommitPositions()
    positions.advance(A, 5)
    sent = positions.take()
    positions.forget([A])  # the next owner resumes from the committed offset, maybe beyond 5
    assert positions.restore(sent) == 0
    positions.advance(A, 3)  # assigned back, resuming below the failed position
    assert positions.restore(sent) == 0
    assert positions.take() == {A: 3}


def test_on_commit_restores_what_failed_as_a_whole_or_per_partition() -> None:
    positions = CommitPositions()
    positions.advance(A, 5)
    positions.advance(B, 8)
    positions.take()
    positions.on_commit(None, [TopicPartition(*A, 5), TopicPartition(*B, 8)])
    assert positions.take() == {}  # both taken: nothing to do
    positions.on_commit(REBALANCE, [TopicPartition(*A, 5), TopicPartition(*B, 8)])
    assert positions.take() == {A: 5, B: 8}
    # librdkafka's per-partition result (TopicPartition.error is read-only from Python)
    failed_b = SimpleNamespace(topic=B[0], partition=B[1], offset=8, error=REBALANCE)
    positions.on_commit(None, [TopicPartition(*A, 5), failed_b])
    assert positions.take() == {B: 8}


def test_restore_goes_through_every_partition_and_counts_what_it_put_back() -> None:
    positions = CommitPositions()
    for tp, pos in ((A, 5), (B, 8), (C, 2)):
        positions.advance(tp, pos)
    sent = positions.take()
    positions.advance(A, 6)  # A has a newer position due: its failure is skipped, the others are not
    assert positions.restore(sent) == 2
    assert positions.take() == {A: 6, B: 8, C: 2}


def test_a_run_of_failed_commits_is_logged_once_and_its_end_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    positions = CommitPositions()
    positions.advance(A, 5)
    positions.take()
    positions.on_commit(REBALANCE, [TopicPartition(*A, 5)])
    positions.take()
    positions.on_commit(REBALANCE, [TopicPartition(*A, 5)])  # the same run of failures: no second line
    positions.take()
    positions.on_commit(None, [TopicPartition(*A, 5)])
    positions.on_commit(None, [TopicPartition(*A, 5)])
    positions.advance(A, 6)
    positions.take()
    positions.on_commit(None, [SimpleNamespace(topic=A[0], partition=A[1], offset=6, error=REBALANCE)])
    positions.on_commit(REBALANCE, [TopicPartition(*A, 4)])  # nothing put back: nothing logged
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"commit failed ({REBALANCE}); committed again with the next one"),
        ("INFO", "commits go through again"),
        ("WARNING", "commit failed (per partition); committed again with the next one"),
    ]


def test_forgetting_drops_what_was_due_and_pending_says_whether_anything_is() -> None:
    positions = CommitPositions()
    assert not positions.pending()
    positions.advance(A, 5)
    positions.advance(B, 8)
    assert positions.pending()
    positions.forget([A])
    assert positions.take() == {B: 8}


class RefusingConsumer:
    def __init__(self, refuse: int) -> None:
        self.refuse, self.commits = refuse, []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(({(tp.topic, tp.partition): tp.offset for tp in offsets}, asynchronous))
        if self.refuse:
            self.refuse -= 1
            raise KafkaException(REBALANCE)


def test_commit_sends_what_is_due_and_keeps_what_the_consumer_refused(caplog: pytest.LogCaptureFixture) -> None:
    positions, consumer = CommitPositions(), RefusingConsumer(refuse=1)
    assert not positions.commit(consumer, asynchronous=True)  # nothing due: the consumer is not called
    assert consumer.commits == []
    positions.advance(A, 5)
    positions.advance(B, 8)
    assert not positions.commit(consumer, asynchronous=False, only={A})
    assert [r.getMessage() for r in caplog.records] == [
        f"commit failed ({KafkaException(REBALANCE)}); committed again with the next one"
    ]
    assert positions.commit(consumer, asynchronous=True)
    assert consumer.commits == [({A: 5}, False), ({A: 5, B: 8}, True)] and not positions.pending()


def test_to_topic_partitions() -> None:
    [tp] = to_topic_partitions({A: 5})
    assert (tp.topic, tp.partition, tp.offset) == ("reviews", 0, 5)
