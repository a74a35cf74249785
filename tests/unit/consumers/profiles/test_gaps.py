"""HoleFinder and TailWatch: which records the stream skipped, in the middle or at the end of a partition."""

from __future__ import annotations

from shoppulse.consumers.profiles.gaps import Hole, HoleFinder, PartitionProgress, TailWatch


def test_consecutive_offsets_have_no_hole() -> None:
    tracker = HoleFinder()
    assert [tracker.observe(0, offset) for offset in range(5)] == [None] * 5


def test_a_skipped_offset_is_reported_once_as_a_half_open_range() -> None:
    tracker = HoleFinder()
    for offset in (0, 1, 2):
        tracker.observe(1, offset)
    assert tracker.observe(1, 4) == Hole(partition=1, start=3, end=4)
    assert tracker.observe(1, 5) is None
    assert tracker.observe(1, 9) == Hole(partition=1, start=6, end=9)


def test_partitions_are_tracked_apart() -> None:
    tracker = HoleFinder()
    tracker.observe(0, 10)
    tracker.observe(1, 3)
    assert tracker.observe(0, 11) is None
    assert tracker.observe(1, 5) == Hole(1, 4, 5)


def test_the_first_offset_after_assignment_and_a_seek_back_are_not_holes() -> None:
    tracker = HoleFinder()
    assert tracker.observe(2, 500) is None  # wherever the committed offset was
    tracker.observe(2, 501)
    assert tracker.observe(2, 400) is None  # seek back to the committed offset: replays, no hole
    assert tracker.observe(2, 401) is None
    assert tracker.observe(2, 403) == Hole(2, 402, 403)


def test_forgotten_partitions_start_over() -> None:
    tracker = HoleFinder()
    tracker.observe(0, 7)
    tracker.forget([0])
    assert tracker.observe(0, 42) is None  # a new owner's first record, not a hole of 8..41


def test_a_skipped_first_record_is_a_hole_from_the_committed_offset() -> None:
    tracker = HoleFinder()
    assert tracker.observe(3, 120, start=117) == Hole(3, 117, 120)
    assert tracker.observe(3, 121, start=117) is None  # the start only matters for the first record
    fresh = HoleFinder()
    assert fresh.observe(4, 117, start=117) is None
    assert fresh.next(4) == 118


def _tick(watch: TailWatch, *views: tuple[int, int, int, int | None]) -> list[tuple[int, int, int]]:
    due = watch.check(PartitionProgress(p, handled, high, read) for p, handled, high, read in views)
    return [(p.partition, p.handled_next, p.highwater) for p in due]


def test_a_lagging_partition_that_stays_still_for_a_tick_is_probed_once_per_position() -> None:
    watch = TailWatch()
    # partition 0: the agent applied up to 41; the broker has written 43 offsets (a skip or a marker at 42).
    assert _tick(watch, (0, 42, 43, 42)) == []  # first sight: it may be applied right now
    assert _tick(watch, (0, 42, 43, 42)) == [(0, 42, 43)]
    assert _tick(watch, (0, 42, 43, 42)) == []  # probed once, not every tick
    assert _tick(watch, (0, 42, 45, 44)) == [(0, 42, 45)]  # more arrived and still nothing moved
    assert _tick(watch, (0, 46, 48, 47)) == []  # moved on
    assert _tick(watch, (0, 46, 48, 47)) == [(0, 46, 48)]


def test_caught_up_or_progressing_partitions_are_left_alone() -> None:
    watch = TailWatch()
    assert _tick(watch, (1, 50, 50, 49), (4, 100, 200, 150)) == []
    assert _tick(watch, (1, 50, 50, 49), (4, 130, 200, 160)) == []  # 1 has no lag, 4 progresses
    assert PartitionProgress(1, 50, 50, 49).lag == 0 and PartitionProgress(4, 130, 200, None).lag == 70


def test_advance_skips_offsets_that_hold_only_markers() -> None:
    tracker = HoleFinder()
    tracker.observe(0, 9)
    tracker.advance(0, 11)  # offset 10 is a commit marker
    assert tracker.next(0) == 11
    assert tracker.observe(0, 11) is None
    tracker.advance(0, 5)  # never backwards
    assert tracker.next(0) == 12
