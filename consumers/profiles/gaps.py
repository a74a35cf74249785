"""Find and re-read ``user-signals`` records that faust-streaming never handed to the agent.

Why this exists: faust-streaming 0.15.3 sometimes skips one record right after a worker
starts (docs/profiles.md, "Known issue"). Measured on 2026-11-30 with an offset log in the
agent: the restarted worker received offsets 0…185, 187… of a partition; 186 was never
delivered, in the same millisecond as faust's "Seek stream partitions to committed offsets"
finished (faust resumes the stream partitions *before* that seek and streams while it runs).
Faust marks the record read and later commits past it, so without help it is lost for good.

The agent therefore watches its own offsets: within one partition the next record it is handed
must be the one after the last. When a record arrives past a hole, ``GapReader`` reads the hole
from the broker with confluent-kafka (same settings object, so SASL/SSL apply) and the agent
applies what it finds *before* the record that revealed the hole. Applying late is safe because
a profile does not depend on the order of its signals (decay in event time) and replays are
ignored by ``event_id``. A hole may also be legitimate: a transaction marker occupies an offset
and is never delivered, so reading it finds nothing (counted as ``empty``); with transactional
upstream (enrich in exactly-once mode) that is one read per transaction and partition, 2.2 ms
median on the embedded broker (``fetch.wait.max.ms`` below).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from consumers.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hole:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one partition were not delivered."""

    partition: int
    start: int
    end: int


class OffsetTracker:
    """The next offset the agent should be handed, per partition, since it got the partition."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def observe(self, partition: int, offset: int) -> Hole | None:
        """Record a delivered offset; the hole before it, if the previous one was not ``offset - 1``.

        An offset at or below the last one (a seek back to the committed offset after a
        rebalance, a replay) is not a hole: tracking restarts from it.
        """
        expected = self._next.get(partition)
        self._next[partition] = offset + 1
        if expected is not None and offset > expected:
            return Hole(partition, expected, offset)
        return None

    def forget(self, partitions: Iterable[int]) -> None:
        """Stop tracking partitions (revoked: the next owner starts from the committed offset)."""
        for partition in partitions:
            self._next.pop(partition, None)


class GapReader:
    """Reads the records of a hole straight from the broker (no consumer group, nothing committed)."""

    def __init__(self, settings: Settings, topic: str, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer: Any = None

    def _client(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(
                self.settings.librdkafka(
                    **{
                        # A group id is required by the client; nothing is ever committed under it.
                        "group.id": f"{self.settings.profiles.app_id}-gap-reader",
                        "enable.auto.commit": False,
                        "enable.partition.eof": True,
                        # faust reads user-signals uncommitted (at-least-once), so the hole holds
                        # exactly what faust would have delivered.
                        "isolation.level": "read_uncommitted",
                        # Reads are short and the partition is unassigned after each; with the default
                        # 500 ms long poll the next assign waits for the previous fetch: 502 ms per hole
                        # read against 2.2 ms with 1 ms (median of 59 marker holes, embedded Kafka).
                        "fetch.wait.max.ms": 1,
                    }
                )
            )
        return self._consumer

    def read(self, hole: Hole) -> list[Any]:
        """The records at offsets ``hole.start`` … ``hole.end - 1`` (markers have none).

        Stops at the first record at or past ``hole.end`` (it exists: it revealed the hole) or at
        the end of the partition; raises ``TimeoutError`` when the broker does not answer.
        """
        from confluent_kafka import KafkaError, TopicPartition

        consumer = self._client()
        consumer.assign([TopicPartition(self.topic, hole.partition, hole.start)])
        found: list[Any] = []
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self.topic}[{hole.partition}] {hole.start}..{hole.end - 1}")
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return found
                    raise RuntimeError(f"reading a hole in {self.topic}[{hole.partition}]: {error}")
                if message.offset() >= hole.end:
                    return found
                if message.offset() >= hole.start:
                    found.append(message)
        finally:
            consumer.unassign()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
