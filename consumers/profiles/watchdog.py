"""Liveness for a worker that is up but no longer consuming.

Why: faust can end a rebalance "ready" with its streams never resumed (we saw it a few times in
the kill -9 tests before moving work out of the rebalance hook, and faust's tracker has similar
reports). The HTTP server still answers, so a plain liveness probe would keep such a pod
forever. ``StallWatch`` notices "there is lag, the broker answers, yet no offset moved for
``timeout_s``", and ``/healthz`` then fails so Kubernetes restarts the worker, which recovers
from the changelog like after any crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class StallWatch:
    """Tracks how long the worker has been lagging without progress."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._marker: Hashable = None
        self._since: float | None = None

    def observe(self, lagging: bool, progress: Hashable) -> None:
        """``lagging``: input is waiting and we could read it; ``progress``: e.g. the last offsets."""
        now = self._clock()
        if not lagging:
            self._since = None
        elif self._since is None or progress != self._marker:
            self._since = now
        self._marker = progress

    def stalled_for(self) -> float:
        return 0.0 if self._since is None else self._clock() - self._since

    def stalled(self) -> bool:
        return self.stalled_for() >= self.timeout_s
