"""What ``Consumer.consume`` hands back is records and errors: sort them, for every confluent-kafka loop."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, Message

log = logging.getLogger(__name__)


def usable(msg: Message, fatal: Callable[[KafkaError], Exception], what: str) -> bool:
    """True for a record to process; False for the end of a partition or a transient error (logged,
    librdkafka retries); a fatal error raises ``fatal(err)``: the loop cannot go on."""
    err = msg.error()
    if err is None:
        return True
    if err.code() == KafkaError._PARTITION_EOF:
        return False
    if err.fatal():
        raise fatal(err)
    log.warning("%s: consumer error: %s", what, err)
    return False
