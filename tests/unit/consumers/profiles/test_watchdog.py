"""The stall watch fires only for lag without progress, and resets on progress or no lag."""

from __future__ import annotations

from shoppulse.consumers.profiles.watchdog import StallWatch


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lag_without_progress_stalls_after_the_timeout() -> None:
    clock = Clock()
    watch = StallWatch(60, clock)
    for t in range(0, 70, 5):
        clock.now = t
        watch.observe(True, ((0, 10),))
    assert watch.stalled() and watch.stalled_for() >= 60


def test_progress_or_no_lag_resets() -> None:
    clock = Clock()
    watch = StallWatch(60, clock)
    for t in range(0, 200, 5):
        clock.now = t
        watch.observe(True, ((0, t),))  # offsets move
        assert not watch.stalled()
    clock.now = 300
    watch.observe(False, ((0, 195),))  # caught up: nothing waits
    clock.now = 1000
    watch.observe(False, ((0, 195),))
    assert not watch.stalled()
