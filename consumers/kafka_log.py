"""librdkafka's own log lines, through Python logging (logger ``librdkafka``), with repeats folded.

Why: librdkafka writes to stderr in its own format (``%3|1796...|FAIL|rdkafka#producer-3| ...``),
outside the stages' log format and level, and while a broker is down it repeats one line per
reconnect attempt. Every client shoppulse builds gets this logger (``Settings.librdkafka``):
its lines carry the stage's format, can be filtered by name, and the same line (numbers aside)
is shown once per ``REPEAT_WINDOW_S`` with the count of those folded since.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

LOGGER_NAME = "librdkafka"
REPEAT_WINDOW_S = 30.0
_NUMBERS = re.compile(r"\d+")


class FoldRepeats(logging.Filter):
    """Passes a record unless one with the same level and text (digits aside) passed within the window."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._last: dict[tuple[int, str], tuple[float, int]] = {}  # key -> (shown at, folded since)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self.clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} (and {seen[1]} like it in the last {now - seen[0]:.0f}s)"
        if len(self._last) > 1000:  # bounded: keys are few (messages of a handful of kinds)
            self._last.clear()
        self._last[key] = (now, 0)
        return True


_logger: logging.Logger | None = None


def kafka_logger() -> logging.Logger:
    """The logger every librdkafka client is given (one, with the repeat filter installed once)."""
    global _logger
    if _logger is None:
        _logger = logging.getLogger(LOGGER_NAME)
        _logger.addFilter(FoldRepeats())
    return _logger
