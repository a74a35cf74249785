"""At-least-once commits: delivered offsets are committed at most every ``commit_interval_ms``.

The stage's Kafka clients are real librdkafka objects pointed at a closed port (they never
connect); the consumer is swapped for a recorder so the commit cadence is observable.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import TopicPartition

from shoppulse.consumers.enrich import stage as stage_module
from shoppulse.consumers.enrich.stage import EnrichStage
from shoppulse.consumers.settings import load_settings
from shoppulse.devkit.broker import free_port

TP = ("reviews", 0)


class RecordingConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def list_topics(self, timeout: float) -> Any:  # the stage's broker probe (its clients never connect)
        return object()

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


def make_stage(commit_interval_ms: int, clock: Clock) -> tuple[EnrichStage, RecordingConsumer]:
    settings = load_settings(
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        enrich={"commit_interval_ms": commit_interval_ms},
    )
    stage = EnrichStage(settings, enricher=object(), install_signals=False)  # type: ignore[arg-type]
    recorder = RecordingConsumer()
    stage.consumer.close()
    stage.consumer = recorder  # type: ignore[assignment]
    stage.delivery.monotonic = clock.monotonic  # type: ignore[attr-defined]  # the commit interval's clock
    return stage, recorder


def deliver(stage: EnrichStage, offset: int) -> None:
    stage.delivery.tracker.begin(TP, offset, 1)
    stage.delivery.tracker.ack(TP, offset)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(stage_module, "time", fake)
    return fake


def test_commits_wait_for_the_interval_and_cover_everything_delivered_meanwhile(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=1_000, clock=clock)
    deliver(stage, 10)
    stage._step()
    assert consumer.commits == [{TP: 11}]  # the first delivered offsets go out at once
    deliver(stage, 11)
    clock.now += 0.5
    stage._step()
    deliver(stage, 12)
    clock.now += 0.4
    stage._step()
    assert consumer.commits == [{TP: 11}]  # 0.9 s since the last commit: none yet
    clock.now += 0.1
    stage._step()
    assert consumer.commits == [{TP: 11}, {TP: 13}]  # one commit covers both batches


def test_revocation_and_shutdown_commit_at_once(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=60_000, clock=clock)
    deliver(stage, 0)
    stage._step()
    deliver(stage, 1)
    stage._step()
    assert consumer.commits == [{TP: 1}]
    stage._on_revoke(consumer, [TopicPartition(*TP)])  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 1}, {TP: 2}]  # a partition leaving takes its delivered offsets along
    stage.assigned.add(TP)
    deliver(stage, 2)
    stage._step()
    assert consumer.commits == [{TP: 1}, {TP: 2}]
    stage._drain()
    assert consumer.commits == [{TP: 1}, {TP: 2}, {TP: 3}]  # nothing delivered is left uncommitted at shutdown


def test_zero_interval_commits_after_every_batch(clock: Clock) -> None:
    stage, consumer = make_stage(commit_interval_ms=0, clock=clock)
    for offset in range(3):
        deliver(stage, offset)
        stage._step()
    assert consumer.commits == [{TP: 1}, {TP: 2}, {TP: 3}]


def test_a_loop_turn_near_max_poll_interval_is_warned_about(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    stage, _ = make_stage(commit_interval_ms=1_000, clock=clock)
    stage._last_poll = clock.now
    budget_s = stage.settings.kafka.max_poll_interval_ms / 1000
    clock.now += budget_s * 0.4
    stage._step()
    assert "max.poll.interval.ms" not in caplog.text
    clock.now += budget_s * 0.6
    stage._step()
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
    stage = EnrichStage(settings, enricher=object(), install_signals=False)  # type: ignore[arg-type]
    stage.consumer.close()
    consumer = PausingConsumer()
    stage.consumer = consumer  # type: ignore[assignment]
    stage.assigned = {TP, ("clicks", 2)}
    for offset in range(10):  # ten inputs whose outputs are not acknowledged yet
        stage.delivery.tracker.begin(TP, offset, 1)
    stage._apply_backpressure()
    assert stage.paused and sorted(consumer.paused) == sorted(stage.assigned)
    for offset in range(4):
        stage.delivery.tracker.ack(TP, offset)
    stage._apply_backpressure()  # 6 in flight: above half, still paused
    assert stage.paused and consumer.resumed == []
    stage.delivery.tracker.ack(TP, 4)
    stage._apply_backpressure()  # 5 = half: resume
    assert not stage.paused and sorted(consumer.resumed) == sorted(stage.assigned)
