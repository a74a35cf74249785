"""ProfilesStage._settle_still_tails: a still tail is markers (caught up) or a skip (seek back), decided by a read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from shoppulse.consumers import metrics
from shoppulse.consumers.profiles.app import ProfilesStage
from shoppulse.consumers.profiles.gaps import Hole, HoleFinder, PartitionProgress, TailWatch

TOPIC = "user-signals"


class FakeReader:
    def __init__(self, first: int | Exception | None) -> None:
        self.first = first
        self.asked: list[Hole] = []

    def first_offset(self, hole: Hole) -> int | None:
        self.asked.append(hole)
        if isinstance(self.first, Exception):
            raise self.first
        return self.first


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


def _stage(first: int | Exception | None) -> Any:
    tp = SimpleNamespace(topic=TOPIC, partition=2)
    return SimpleNamespace(
        tail_watch=TailWatch(),
        gap_reader=FakeReader(first),
        offsets=HoleFinder(),
        signals_topic_name=TOPIC,
        app=SimpleNamespace(consumer=FakeConsumer(), assignor=SimpleNamespace(assigned_actives=lambda: [tp])),
    )


def _settle_twice(stage: Any, progress: PartitionProgress) -> None:
    """Two gauge ticks without progress: the second one looks at the tail."""
    for _ in range(2):
        asyncio.run(ProfilesStage._settle_still_tails(stage, [progress]))


def _holes(outcome: str) -> float:
    return metrics.OFFSET_HOLES.labels("profiles", outcome)._value.get()


def test_a_tail_of_markers_only_counts_as_caught_up() -> None:
    stage, before = _stage(first=None), _holes("empty")
    _settle_twice(stage, PartitionProgress(2, handled_next=40, highwater=41, stream_read=39))
    assert stage.gap_reader.asked == [Hole(2, 40, 41)]
    assert stage.offsets.next(2) == 41  # lag from here on: 0
    assert stage.app.consumer.seeks == []
    assert _holes("empty") == before + 1


def test_a_record_the_stream_read_past_is_sought_back_for_redelivery() -> None:
    stage, before = _stage(first=40), _holes("redelivered")
    _settle_twice(stage, PartitionProgress(2, handled_next=40, highwater=41, stream_read=40))
    assert [(tp.partition, offset) for tp, offset in stage.app.consumer.seeks] == [(2, 40)]
    assert stage.offsets.next(2) is None  # the record is still to be applied
    assert _holes("redelivered") == before + 1


def test_a_record_the_stream_has_not_read_yet_is_left_to_arrive() -> None:
    stage = _stage(first=40)
    _settle_twice(stage, PartitionProgress(2, handled_next=40, highwater=41, stream_read=39))
    assert stage.app.consumer.seeks == [] and stage.offsets.next(2) is None


def test_a_failed_read_is_counted_and_leaves_everything_as_it_was() -> None:
    stage, before = _stage(first=TimeoutError("broker gone")), _holes("failed")
    _settle_twice(stage, PartitionProgress(2, handled_next=40, highwater=41, stream_read=40))
    assert stage.app.consumer.seeks == [] and stage.offsets.next(2) is None
    assert _holes("failed") == before + 1
