"""Coalescing: leading edge at once, at most one publish per interval, the last change never lost."""

from __future__ import annotations

import itertools
import random

from shoppulse.consumers.profiles.publish import Coalescer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_change_publishes_at_once_then_coalesces() -> None:
    clock = FakeClock()
    c = Coalescer(1.0, clock)
    assert c.changed("u1") is True
    clock.now = 0.2
    assert c.changed("u1") is False
    assert c.changed("u1") is False
    assert c.due() == []  # interval not over
    clock.now = 1.0
    assert c.due() == ["u1"]
    assert c.due() == []
    clock.now = 1.5
    assert c.changed("u1") is False  # published at 1.0: wait until 2.0
    clock.now = 2.0
    assert c.due() == ["u1"]


def test_random_bursts_respect_the_interval_and_end_published() -> None:
    clock = FakeClock()
    interval = 1.0
    c = Coalescer(interval, clock)
    rng = random.Random(4)
    publishes: dict[str, list[float]] = {}
    last_change: dict[str, float] = {}
    for _ in range(3000):
        clock.now += rng.expovariate(50.0)
        user = f"u{rng.randrange(8)}"
        last_change[user] = clock.now
        if c.changed(user):
            publishes.setdefault(user, []).append(clock.now)
        if rng.random() < 0.2:
            for key in c.due():
                publishes.setdefault(key, []).append(clock.now)
    clock.now += interval
    for key in c.due():
        publishes.setdefault(key, []).append(clock.now)
    assert len(c) == 0
    for user, times in publishes.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps, default=interval) >= interval
        assert times[-1] >= last_change[user]  # the last state went out after the last change


def test_zero_interval_publishes_every_change() -> None:
    c = Coalescer(0.0, FakeClock())
    assert all(c.changed("u") for _ in range(5))


def test_force_and_drop_partitions() -> None:
    clock = FakeClock()
    c = Coalescer(10.0, clock)
    assert c.changed("a", 0)
    c.changed("a", 0)
    c.force([("b", 1), ("c", 2)])
    assert sorted(c.due()) == ["b", "c"]  # forced keys do not wait
    c.changed("b", 1)
    c.changed("c", 2)
    assert c.drop_partitions([0, 2]) == 2
    clock.now = 10.0
    assert c.due() == ["b"]
