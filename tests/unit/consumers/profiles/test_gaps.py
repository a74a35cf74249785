"""OffsetTracker: which delivered offsets reveal a hole the stream skipped."""

from __future__ import annotations

from consumers.profiles.gaps import Hole, OffsetTracker


def test_consecutive_offsets_have_no_hole() -> None:
    tracker = OffsetTracker()
    assert [tracker.observe(0, offset) for offset in range(5)] == [None] * 5


def test_a_skipped_offset_is_reported_once_as_a_half_open_range() -> None:
    tracker = OffsetTracker()
    for offset in (0, 1, 2):
        tracker.observe(1, offset)
    assert tracker.observe(1, 4) == Hole(partition=1, start=3, end=4)
    assert tracker.observe(1, 5) is None
    assert tracker.observe(1, 9) == Hole(partition=1, start=6, end=9)


def test_partitions_are_tracked_apart() -> None:
    tracker = OffsetTracker()
    tracker.observe(0, 10)
    tracker.observe(1, 3)
    assert tracker.observe(0, 11) is None
    assert tracker.observe(1, 5) == Hole(1, 4, 5)


def test_the_first_offset_after_assignment_and_a_seek_back_are_not_holes() -> None:
    tracker = OffsetTracker()
    assert tracker.observe(2, 500) is None  # wherever the committed offset was
    tracker.observe(2, 501)
    assert tracker.observe(2, 400) is None  # seek back to the committed offset: replays, no hole
    assert tracker.observe(2, 401) is None
    assert tracker.observe(2, 403) == Hole(2, 402, 403)


def test_forgotten_partitions_start_over() -> None:
    tracker = OffsetTracker()
    tracker.observe(0, 7)
    tracker.forget([0])
    assert tracker.observe(0, 42) is None  # a new owner's first record, not a hole of 8..41
