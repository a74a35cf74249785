"""Start newly assigned partitions at their committed offsets, fetched by the stage itself.

Why: left to itself, librdkafka fetches the committed offsets of a new assignment once. When the
group coordinator has just moved and the broker asked answers ``NOT_COORDINATOR`` for the whole
request, the partitions are never started and the fetch is never retried
(confluentinc/librdkafka#5586): the consumer stays in the group, owns the partitions and reads
nothing, silently, until it is restarted. It happens after a broker hangs or dies and the
coordinator moves away and back (docs/reliability.md, "Broker failover"). ``Consumer.committed``
raises on that error instead, so it can be retried here; partitions assigned with explicit offsets
are started by librdkafka at once, without a fetch of its own. A partition with no committed offset
is assigned at the stage's reset position (``OFFSET_BEGINNING``, as ``auto.offset.reset=earliest``),
never at ``OFFSET_INVALID``: librdkafka reads that as "fetch the committed offset" and would do the
fetch that can hang.

For every confluent-kafka loop that joins a group with the cooperative protocol: call
``assign_at_committed`` from its ``on_assign`` callback (confluent-kafka then does not assign again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0  # one OffsetFetch round trip, coordinator lookup included
FIRST_RETRY_S, MAX_RETRY_S = 0.5, 8.0


def budget_for(max_poll_interval_ms: int) -> float:
    """How long an assignment may wait for its committed offsets: half the time the group waits for a
    poll, so the member gives up (and says why) before the group evicts it."""
    return max_poll_interval_ms / 2000


class CommittedOffsetsUnavailable(KafkaException):
    """The group's committed offsets could not be read within the budget: the stage cannot start them."""


def committed_offsets(
    consumer: Any,
    partitions: list[TopicPartition],
    budget_s: float,
    *,
    when_none: int = OFFSET_BEGINNING,
    sleep: Callable[[float], object] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[TopicPartition]:
    """The committed offset of each partition (``when_none`` where none was committed), retried with
    backoff for up to ``budget_s``.

    A failure is a request error (coordinator moving or loading) or a partition's own error
    (``UNSTABLE_OFFSET_COMMIT`` while a transaction that commits its offsets is still open): both
    clear by themselves, and the read is only correct once they have. ``sleep`` waits between
    attempts; when it returns true (``threading.Event.wait`` of a stage that is stopping) the
    retries end at once.
    """
    deadline = monotonic() + budget_s
    delay = FIRST_RETRY_S
    attempt = 0
    while True:
        attempt += 1
        try:
            found = consumer.committed(partitions, timeout=CALL_TIMEOUT_S)
            failed = [p for p in found if p.error is not None]
            if not failed:
                return [TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else when_none) for p in found]
            first = failed[0]
            problem = f"{len(failed)} partition(s) failed, e.g. {first.topic}[{first.partition}]: {first.error}"
        except KafkaException as exc:
            problem = str(exc.args[0] if exc.args else exc)
        if monotonic() + delay > deadline:
            raise CommittedOffsetsUnavailable(
                f"committed offsets of {len(partitions)} assigned partition(s) unreadable after {attempt} "
                f"attempt(s) in {budget_s:.0f} s: {problem}"
            )
        log.warning("committed offsets not readable yet (attempt %d: %s); retrying in %.1f s", attempt, problem, delay)
        if sleep(delay):  # a stop event's wait: the stage is stopping, so give up now
            raise CommittedOffsetsUnavailable(f"stopped while reading committed offsets: {problem}")
        delay = min(delay * 2, MAX_RETRY_S)


def assign_at_committed(consumer: Any, partitions: list[TopicPartition], budget_s: float, **clock: Any) -> None:
    """``incremental_assign`` the newly assigned ``partitions`` at their committed offsets."""
    if partitions:
        consumer.incremental_assign(committed_offsets(consumer, partitions, budget_s, **clock))
