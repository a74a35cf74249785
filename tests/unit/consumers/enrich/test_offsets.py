import pytest

from shoppulse.consumers.enrich.offsets import CommitTracker

TP = ("reviews", 0)


def test_commit_position_waits_for_every_output_of_every_earlier_input() -> None:
    t = CommitTracker()
    t.begin(TP, 10, 2)
    t.begin(TP, 11, 1)
    t.begin(TP, 12, 0)  # no outputs: done at once, but 10 and 11 are not
    assert t.positions.take() == {}
    t.ack(TP, 11)
    assert t.positions.take() == {}  # 10 still has two outputs in flight
    t.ack(TP, 10)
    assert t.positions.take() == {}
    t.ack(TP, 10)
    assert t.positions.take() == {TP: 13}  # 10, 11 and 12 all done: resume at 13
    assert t.positions.take() == {}  # handed out once
    assert t.in_flight() == 0


def test_a_failed_output_blocks_the_watermark() -> None:
    t = CommitTracker()
    t.begin(TP, 0, 1)
    t.begin(TP, 1, 1)
    t.fail(TP, 0, "timed out")
    t.ack(TP, 1)
    assert t.positions.take() == {}
    assert t.failed == [(TP, 0, "timed out")]
    assert t.in_flight(TP) == 2


def test_partitions_are_independent_and_revoked_ones_are_forgotten() -> None:
    t = CommitTracker()
    other = ("reviews", 1)
    t.begin(TP, 5, 1)
    t.begin(other, 7, 1)
    t.ack(other, 7)
    assert t.positions.take() == {other: 8}
    t.forget([TP])
    t.ack(TP, 5)  # a late acknowledgement for a revoked partition is ignored
    assert t.positions.take() == {}
    assert t.in_flight() == 0


def test_offsets_must_arrive_in_order() -> None:
    t = CommitTracker()
    t.begin(TP, 3, 1)
    with pytest.raises(ValueError, match="after 3"):
        t.begin(TP, 3, 1)


def test_commits_taken_for_revoked_partitions_leave_the_others_pending() -> None:
    t = CommitTracker()
    other = ("reviews", 1)
    t.begin(TP, 0, 0)
    t.begin(other, 4, 0)
    assert t.positions.take(only={TP}) == {TP: 1}
    assert t.positions.take() == {other: 5}  # not lost by the partial take


def test_only_limits_commits_to_the_partitions_named_whatever_their_order() -> None:
    tracker = CommitTracker()
    for tp in (("clicks", 0), ("reviews", 0), ("orders", 0)):
        tracker.begin(tp, 5, 0)
    assert tracker.positions.take(only={("orders", 0)}) == {("orders", 0): 6}  # the others come first: skipped
    assert tracker.positions.take() == {("clicks", 0): 6, ("reviews", 0): 6}


def test_in_flight_per_partition_and_forgetting_an_unknown_one() -> None:
    tracker = CommitTracker()
    assert tracker.in_flight(("reviews", 9)) == 0
    tracker.begin(("reviews", 1), 3, 2)
    assert tracker.in_flight(("reviews", 1)) == 1 and tracker.in_flight(("reviews", 9)) == 0
    tracker.forget([("reviews", 9), ("reviews", 1)])  # an unknown partition is no error
    assert tracker.in_flight() == 0
