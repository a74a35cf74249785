"""Coalesced publishing: at most one publish per user per interval, never losing the last state.

Why coalesce: a burst of signals for one user (a session of 50 clicks) would otherwise write
50 full profiles to ``user-profiles``; readers only want the latest. Why both edges: the first
change after a quiet period publishes at once (low latency), later changes inside the interval
only mark the user pending, and a timer publishes the pending users whose interval has passed,
reading the table *at that moment*, so the last state always goes out.

The ``Coalescer`` is pure bookkeeping with an injected clock, so its guarantees are tested
without faust; the app calls ``changed`` from the agent and ``due`` from a timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable


class Coalescer:
    """Decides when each key may be published.

    ``changed(key, partition)`` returns True when the caller should publish now; otherwise the
    key is pending and a later ``due()`` returns it once ``interval_s`` has passed since its
    last publish. ``force`` queues keys for the next ``due()`` regardless of the interval
    (republish after recovery); ``drop_partitions`` forgets pending keys of revoked partitions,
    whose new owner republishes them.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._pending: dict[Hashable, int | None] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def changed(self, key: Hashable, partition: int | None = None) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if key not in self._pending and (last is None or now - last >= self.interval_s):
            self._last[key] = now
            return True
        self._pending[key] = partition
        return False

    def force(self, keys: Iterable[tuple[Hashable, int | None]]) -> None:
        for key, partition in keys:
            self._pending[key] = partition
            self._last.pop(key, None)

    def due(self) -> list[Hashable]:
        """Pending keys whose interval has passed, now counted as published; prunes old entries."""
        now = self._clock()
        ready = [key for key in self._pending if (last := self._last.get(key)) is None or now - last >= self.interval_s]
        for key in ready:
            del self._pending[key]
            self._last[key] = now
        if len(self._last) > 2 * len(self._pending) + 1024:
            # A key last published more than an interval ago behaves exactly like a new one.
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval_s}
        return ready

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        gone = set(partitions)
        dropped = [k for k, p in self._pending.items() if p in gone]
        for key in dropped:
            del self._pending[key]
        return len(dropped)
