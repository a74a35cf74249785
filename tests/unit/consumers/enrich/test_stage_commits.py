"""At-least-once commits: delivered offsets are committed at most every ``commit_interval_ms``.

The stage's producer is a real librdkafka object pointed at a closed port (it never connects);
its consumer is a recorder, so the commit cadence is observable, and its clock is the test's.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from shoppulse.consumers.enrich.delivery import FatalStageError
from shoppulse.consumers.enrich.stage import EnrichStage
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port
from tests.unit.consumers.assigning import AssigningConsumer

TP = ("reviews", 0)


class RecordingConsumer(AssigningConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.commits: list[dict[tuple[str, int], int]] = []
        self.refuse = 0  # how many commits to refuse as the broker does during a rebalance

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def list_topics(self, timeout: float) -> Any:  # the stage's broker probe (its clients never connect)
        return object()

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        if self.refuse:
            self.refuse -= 1
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


def make_stage(commit_interval_ms: int, clock: Clock) -> tuple[EnrichStage, RecordingConsumer]:
    settings = load_settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        enrich={"commit_interval_ms": commit_interval_ms},
    )
    recorder = RecordingConsumer()
    stage = EnrichStage(
        settings, enricher=object(), install_signals=False, consumer=recorder, monotonic=clock.monotonic
    )  # type: ignore[arg-type]
    return stage, recorder


def deliver(stage: EnrichStage, offset: int) -> None:
    stage.delivery.tracker.begin(TP, offset, 1)
    stage.delivery.tracker.ack(TP, offset)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_commits_wait_for_the_interval_and_cover_everything_delivered_meanwhile(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=1_000, clock=clock)
    deliver(stage, 10)
    stage.step()
    assert consumer.commits == [{TP: 11}]  # the first delivered offsets go out at once
    deliver(stage, 11)
    clock.now += 0.5
    stage.step()
    deliver(stage, 12)
    clock.now += 0.4
    stage.step()
    assert consumer.commits == [{TP: 11}]  # 0.9 s since the last commit: none yet
    clock.now += 0.1
    stage.step()
    assert consumer.commits == [{TP: 11}, {TP: 13}]  # one commit covers both batches


def test_revocation_and_shutdown_commit_at_once(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=60_000, clock=clock)
    deliver(stage, 0)
    stage.step()
    deliver(stage, 1)
    stage.step()
    assert consumer.commits == [{TP: 1}]
    stage.on_revoke(consumer, [TopicPartition(*TP)])  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 1}, {TP: 2}]  # a partition leaving takes its delivered offsets along
    stage.on_assign(consumer, [TopicPartition(*TP)])  # type: ignore[arg-type]
    deliver(stage, 2)
    stage.step()
    assert consumer.commits == [{TP: 1}, {TP: 2}]
    stage.drain()
    assert consumer.commits == [{TP: 1}, {TP: 2}, {TP: 3}]  # nothing delivered is left uncommitted at shutdown


def test_a_failed_asynchronous_commit_goes_out_again_when_no_new_record_arrives(clock: Clock) -> None:
    """A commit refused during a rebalance (reported to ``on_commit`` only) is not lost with the
    traffic: without it, a partition whose last records were delivered kept its old committed
    offset until a new record arrived there, and the group's lag never reached zero."""
    stage, consumer = make_stage(commit_interval_ms=1_000, clock=clock)
    deliver(stage, 10)
    stage.step()
    assert consumer.commits == [{TP: 11}]
    stage.on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [TopicPartition(*TP, 11)])
    clock.now += 0.5
    stage.step()
    assert consumer.commits == [{TP: 11}]  # within the interval: not yet
    clock.now += 0.5
    stage.step()
    assert consumer.commits == [{TP: 11}, {TP: 11}]  # nothing new was delivered; the position is
    stage.on_commit(None, [TopicPartition(*TP, 11)])  # taken this time
    clock.now += 1
    stage.step()
    assert consumer.commits == [{TP: 11}, {TP: 11}]


def test_a_failed_synchronous_commit_goes_out_again(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=0, clock=clock)
    consumer.refuse = 1
    deliver(stage, 4)
    stage.step()
    stage.step()
    assert consumer.commits == [{TP: 5}, {TP: 5}]  # the first was refused, the second went out


def test_zero_interval_commits_after_every_batch(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=0, clock=clock)
    for offset in range(3):
        deliver(stage, offset)
        stage.step()
    assert consumer.commits == [{TP: 1}, {TP: 2}, {TP: 3}]


def test_a_loop_turn_near_max_poll_interval_is_warned_about(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    stage, _ = make_stage(commit_interval_ms=1_000, clock=clock)
    budget_s = stage.settings.kafka.max_poll_interval_ms / 1000
    clock.now += budget_s * 0.4
    stage.step()
    assert "max.poll.interval.ms" not in caplog.text
    clock.now += budget_s * 0.6
    stage.step()
    assert caplog.text.count("max.poll.interval.ms") == 1 and "enrich.max_batch" in caplog.text


class PausingConsumer(RecordingConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.paused: list[tuple[str, int]] = []
        self.resumed: list[tuple[str, int]] = []

    def pause(self, parts: list[Any]) -> None:
        self.paused += [(p.topic, p.partition) for p in parts]

    def resume(self, parts: list[Any]) -> None:
        self.resumed += [(p.topic, p.partition) for p in parts]


def test_partitions_pause_when_too_many_outputs_await_delivery_and_resume_at_half(clock: Clock) -> None:
    settings = load_settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, enrich={"max_in_flight": 10}
    )
    consumer = PausingConsumer()
    stage = EnrichStage(settings, enricher=object(), install_signals=False, consumer=consumer)  # type: ignore[arg-type]
    stage.on_assign(consumer, [TopicPartition(*TP), TopicPartition("clicks", 2)])  # type: ignore[arg-type]
    for offset in range(10):  # ten inputs whose outputs are not acknowledged yet
        stage.delivery.tracker.begin(TP, offset, 1)
    stage.step()
    assert stage.paused and sorted(consumer.paused) == [("clicks", 2), TP]
    for offset in range(4):
        stage.delivery.tracker.ack(TP, offset)
    stage.step()  # 6 in flight: above half, still paused
    assert stage.paused and consumer.resumed == []
    stage.delivery.tracker.ack(TP, 4)
    stage.step()  # 5 = half: resume
    assert not stage.paused and sorted(consumer.resumed) == [("clicks", 2), TP]


def test_assigned_partitions_start_where_the_group_committed(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=1_000, clock=clock)
    consumer.committed_at = {TP: 57}
    stage.on_assign(consumer, [TopicPartition(*TP), TopicPartition("clicks", 2)])  # type: ignore[arg-type]
    assert consumer.started_at == {TP: 57, ("clicks", 2): OFFSET_BEGINNING}  # none committed: earliest


class NoCoordinator(RecordingConsumer):
    def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
        raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))


class TickingClock(Clock):
    def monotonic(self) -> float:
        self.now += 1_000.0  # every reading is 1,000 s later: any retry budget runs out at once
        return self.now


def test_committed_offsets_that_stay_unreadable_stop_the_stage_instead_of_a_silent_idle() -> None:
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    consumer = NoCoordinator()
    stage = EnrichStage(
        settings, enricher=object(), install_signals=False, consumer=consumer, monotonic=TickingClock().monotonic
    )  # type: ignore[arg-type]
    with pytest.raises(FatalStageError, match="committed offsets of 1 assigned partition"):
        stage.on_assign(consumer, [TopicPartition(*TP)])  # type: ignore[arg-type]
    assert consumer.started_at == {}
