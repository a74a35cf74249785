"""Find and re-read ``user-signals`` records that faust-streaming never handed to the agent.

Why this exists: faust-streaming 0.15.3 sometimes skips one record right after a worker
starts: a restarted worker can be handed offsets 0…185, 187… of a partition, 186 never,
because faust resumes the stream partitions *before* its "Seek stream partitions to committed
offsets" finishes and streams while it runs (the evidence: docs/profiles.md, "Skipped records
are re-read").
Faust marks the record read and later commits past it, so without help it is lost for good.

The agent therefore watches its own offsets: within one partition the next record it is handed
must be the one after the last. When a record arrives past a hole, ``GapReader`` reads the hole
from the broker with confluent-kafka (same settings object, so SASL/SSL apply) and the agent
applies what it finds *before* the record that revealed the hole (both read ``read_committed``:
a hole may also be an aborted transaction's records). Applying them then keeps each
input partition's order, which the exact deduplication relies on (``consumers.profiles.profile``).
A hole may also be legitimate: a transaction marker occupies an offset
and is never delivered, so reading it finds nothing (counted as ``empty``); with transactional
upstream (enrich in exactly-once mode) that is one read per transaction and partition, 2.2 ms
median on the embedded broker (``fetch.wait.max.ms`` below). The end of a partition has no later
record to reveal a hole: ``TailWatch`` covers it from the stage's gauge timer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shoppulse.consumers import metrics
from shoppulse.consumers.profiles.transport import ISOLATION_LEVEL
from shoppulse.consumers.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hole:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one partition were not delivered."""

    partition: int
    start: int
    end: int


class HoleFinder:
    """The next offset the agent should be handed, per partition, since it got the partition."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def observe(self, partition: int, offset: int, start: int | None = None) -> Hole | None:
        """Record a delivered offset; the hole before it, if the previous one was not ``offset - 1``.

        ``start`` is where the stream started in this partition (the committed offset), used
        for the first record after an assignment: if faust skipped the very first one, the
        hole runs from ``start``. An offset at or below the last one (a seek back to the
        committed offset after a rebalance, a replay) is not a hole: tracking restarts from it.
        """
        expected = self._next.get(partition, start)
        self._next[partition] = offset + 1
        if expected is not None and offset > expected:
            return Hole(partition, expected, offset)
        return None

    def next(self, partition: int) -> int | None:
        """The offset the agent expects next in ``partition`` (None until it was handed one)."""
        return self._next.get(partition)

    def positions(self) -> tuple[tuple[int, int], ...]:
        """Every tracked partition's next offset: it changes whenever the agent makes progress."""
        return tuple(sorted(self._next.items()))

    def advance(self, partition: int, offset: int) -> None:
        """Offsets below ``offset`` hold nothing to apply (transaction markers): expect ``offset`` next."""
        self._next[partition] = max(self._next.get(partition, offset), offset)

    def forget(self, partitions: Iterable[int]) -> None:
        """Stop tracking partitions (revoked: the next owner starts from the committed offset)."""
        for partition in partitions:
            self._next.pop(partition, None)


class GapReader:
    """Reads the records of a hole straight from the broker (no consumer group, nothing committed)."""

    def __init__(self, settings: Settings, topic: str, timeout_s: float = 10.0, group_id: str | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.profiles.app_id}-gap-reader"
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer: Any = None
        # The agent (holes) and the gauge timer (tails) read from their own threads; one client, one at a time.
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(
                self.settings.librdkafka(
                    **{
                        # A group id is required by the client; nothing is ever committed under it.
                        "group.id": self.group_id,
                        "enable.auto.commit": False,
                        "enable.partition.eof": True,
                        # As the stage's faust consumer reads (consumers/profiles/transport.py): a hole
                        # may be an aborted transaction's records, which must stay unread.
                        "isolation.level": ISOLATION_LEVEL,
                        # Reads are short and the partition is unassigned after each; with the default
                        # 500 ms long poll the next assign waits for the previous fetch: 502 ms per hole
                        # read against 2.2 ms with 1 ms (median of 59 marker holes, embedded Kafka).
                        "fetch.wait.max.ms": 1,
                    }
                )
            )
        return self._consumer

    def read(self, hole: Hole, limit: int | None = None) -> list[Any]:
        """The records at offsets ``hole.start`` … ``hole.end - 1`` (markers have none), at most ``limit``.

        Stops at the first record at or past ``hole.end`` (it exists: it revealed the hole) or at
        the end of the partition; raises ``TimeoutError`` when the broker does not answer.
        """
        with self._lock:
            return self._read(hole, limit)

    def _read(self, hole: Hole, limit: int | None) -> list[Any]:
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
                    if limit is not None and len(found) >= limit:
                        return found
        finally:
            consumer.unassign()

    def first_offset(self, hole: Hole) -> int | None:
        """The offset of the first record in ``hole`` (None: only transaction markers there)."""
        records = self.read(hole, limit=1)
        return records[0].offset() if records else None

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def committed_offset(app: Any, tp: Any) -> int | None:
    """The committed offset faust sought ``tp`` to (the next one to read), None before the seek."""
    committed = getattr(app.consumer, "_committed_offset", {}).get(tp)
    return committed if isinstance(committed, int) and committed >= 0 else None


class OrderedInput:
    """One input topic of a faust agent, handed to it with no offset skipped.

    ``catch_up`` runs before the agent applies a record: when the record comes after a hole in
    its partition's offsets, the hole's records are read from the broker and applied first, and
    only then told to faust as a gap, so no commit can pass them before they are applied. An
    agent that applies a batch of records and writes their effects at its end passes ``gaps``:
    the gaps are collected there, for ``add_gaps`` once the batch is written.
    """

    def __init__(self, settings: Settings, topic: str, stage: str, group_id: str | None = None) -> None:
        self.topic = topic
        self.stage = stage
        self.offsets = HoleFinder()
        self.reader = GapReader(settings, topic, group_id=group_id)

    async def catch_up(
        self,
        app: Any,
        message: Any,
        apply: Callable[[Any], Awaitable[Any]],
        gaps: list[tuple[Any, int, int]] | None = None,
    ) -> None:
        hole = self.offsets.observe(message.partition, message.offset, start=committed_offset(app, message.tp))
        if hole is None:
            return
        try:
            records = await asyncio.to_thread(self.reader.read, hole)
        except Exception as exc:  # the hole stays a hole: say so loudly, keep consuming
            metrics.OFFSET_HOLES.labels(self.stage, "failed").inc()
            log.error(
                "could not re-read %s[%d] offsets %d..%d: %s", self.topic, hole.partition, hole.start, hole.end - 1, exc
            )
            records = []
        else:
            metrics.OFFSET_HOLES.labels(self.stage, "recovered" if records else "empty").inc()
        for record in records:
            await apply(record)
        # faust commits only up to the first offset it was not handed: a transaction marker right
        # after its committed offset (with no record read before it) held its commits back for good.
        gap = (message.tp, hole.start, hole.end - 1)
        if gaps is None:
            await self.add_gaps(app, [gap])
        else:
            gaps.append(gap)

    @staticmethod
    async def add_gaps(app: Any, gaps: list[tuple[Any, int, int]]) -> None:
        """Tell faust the offsets it was never handed, so its commits can pass them."""
        for tp, first, last in gaps:
            await app.consumer._add_gap(tp, first, last)


@dataclass(frozen=True)
class PartitionProgress:
    """Where one partition stands at a gauge tick."""

    partition: int
    handled_next: int  # the next offset the agent has yet to apply
    highwater: int  # the next offset the broker will write
    stream_read: int | None  # the last offset faust marked read (None: nothing read since the seek)

    @property
    def lag(self) -> int:
        return max(self.highwater - self.handled_next, 0)


class TailWatch:
    """Finds partitions that show lag but have not moved for a whole tick: a tail to look at.

    ``HoleFinder`` notices a hole only when a later record of the same partition arrives, so
    two things at the *end* of a partition look alike: a record faust marked read but never
    handed to the agent (the skip, then the stream goes idle: the profile stays one signal short
    and faust commits past it), and a transaction marker (an exactly-once upstream ends every
    transaction with one; it takes an offset and is never delivered). Both leave the partition
    with a lag of one that never drains, which also made the stall watchdog fail /healthz.
    The stage tells them apart by reading the tail from the broker (``GapReader.first_offset``):
    nothing there means markers (the partition is caught up); a record there that faust already
    read past means a skip, and the stage seeks the stream back so faust delivers it again
    through the agent (the table needs an event context to write its changelog, so the agent
    must apply it). Each (position, highwater) pair is returned once, so a stuck worker is not
    probed every tick (the stall watchdog handles that one).
    """

    def __init__(self) -> None:
        self._previous: dict[int, int] = {}
        self._probed: dict[int, tuple[int, int]] = {}

    def check(self, progress: Iterable[PartitionProgress]) -> list[PartitionProgress]:
        """The partitions to probe; call once per tick with every owned partition."""
        due: list[PartitionProgress] = []
        current: dict[int, int] = {}
        for p in progress:
            current[p.partition] = p.handled_next
            still = self._previous.get(p.partition) == p.handled_next
            where = (p.handled_next, p.highwater)
            if still and p.lag > 0 and self._probed.get(p.partition) != where:
                due.append(p)
                self._probed[p.partition] = where
        self._previous = current
        return due
