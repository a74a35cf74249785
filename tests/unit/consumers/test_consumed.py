"""Sorting what consume() returns: records pass, end-of-partition and transient errors are skipped,
a fatal error stops the loop with the loop's own exception."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from shoppulse.consumers.consumed import usable


class Message:
    def __init__(self, err: KafkaError | None) -> None:
        self.err = err

    def error(self) -> KafkaError | None:
        return self.err


class Stop(Exception):
    pass


def test_records_pass_and_errors_do_not() -> None:
    assert usable(Message(None), Stop, "t") is True  # type: ignore[arg-type]
    assert usable(Message(KafkaError(KafkaError._PARTITION_EOF)), Stop, "t") is False  # type: ignore[arg-type]
    assert usable(Message(KafkaError(KafkaError._TRANSPORT)), Stop, "t") is False  # type: ignore[arg-type]
    with pytest.raises(Stop):
        usable(Message(KafkaError(KafkaError._FENCED, fatal=True)), Stop, "t")  # type: ignore[arg-type]
