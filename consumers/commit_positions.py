"""Offsets to commit per partition, kept until the broker took them, for every confluent-kafka loop.

Why: an asynchronous commit that fails (``REBALANCE_IN_PROGRESS`` while the group hands a leaving
member's partitions over, a coordinator that moved) is only reported to the ``on_commit``
callback. A loop that forgot the position when it sent it leaves that partition's committed offset
behind until a *new* record arrives there: when the traffic stops, the group's lag never reaches
zero and a restart replays what was already delivered. Here a failed position is put back and goes
out with the next commit, unless a later position was sent meanwhile (it covers it) or the
partition was revoked (its new owner resumes from the committed offset; putting an old position
back after it returned would move the commit backwards).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shoppulse.consumers.coordinates import TopicPart

log = logging.getLogger(__name__)


class CommitPositions:
    """Per partition: the next position to commit, and the last one handed out for a commit."""

    def __init__(self) -> None:
        self._due: dict[TopicPart, int] = {}
        self._sent: dict[TopicPart, int] = {}
        self._failing = False  # the last commit reported failed: one warning per run of failures

    def advance(self, tp: TopicPart, position: int) -> None:
        """``position`` (the next offset to read) may be committed for ``tp``."""
        self._due[tp] = position

    def take(self, only: set[TopicPart] | None = None) -> dict[TopicPart, int]:
        """Positions due (of the partitions in ``only``, when given), handed out for one commit."""
        out = {tp: pos for tp, pos in self._due.items() if only is None or tp in only}
        for tp, pos in out.items():
            del self._due[tp]
            self._sent[tp] = pos
        return out

    def restore(self, failed: dict[TopicPart, int]) -> int:
        """A commit of ``failed`` did not happen: due again, where nothing newer replaced it. Returns
        how many positions were put back."""
        restored = 0
        for tp, pos in failed.items():
            if self._sent.get(tp) != pos or tp in self._due:
                continue  # a later commit covers it, or the partition left and came back
            self._due[tp] = pos
            restored += 1
        return restored

    def on_commit(self, err: KafkaError | None, partitions: Iterable[Any]) -> None:
        """librdkafka's ``on_commit`` callback: put back what a failed commit carried. A run of failures
        (a broker down for minutes, retried every commit interval) logs one warning, and the first
        commit that goes through again one line."""
        failed = {(tp.topic, tp.partition): tp.offset for tp in partitions if err is not None or tp.error is not None}
        if not failed:
            if self._failing:
                log.info("commits go through again")
            self._failing = False
            return
        if self.restore(failed) and not self._failing:
            log.warning("commit failed (%s); committed again with the next one", err or "per partition")
            self._failing = True

    def forget(self, tps: Iterable[TopicPart]) -> None:
        """Partitions revoked: nothing of theirs is committed from here any more."""
        for tp in tps:
            self._due.pop(tp, None)
            self._sent.pop(tp, None)

    def pending(self) -> bool:
        return bool(self._due)

    def commit(self, consumer: Any, asynchronous: bool, only: set[TopicPart] | None = None) -> bool:
        """Commit the positions due (of ``only``, when given) with ``consumer``; True when a commit went
        out. One that fails is due again: raised here, or reported to ``on_commit`` later."""
        due = self.take(only)
        if not due:
            return False
        try:
            consumer.commit(offsets=to_topic_partitions(due), asynchronous=asynchronous)
        except KafkaException as exc:
            self.restore(due)
            log.warning("commit failed (%s); committed again with the next one", exc)
            return False
        return True


def to_topic_partitions(positions: dict[TopicPart, int]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, pos) for (topic, partition), pos in positions.items()]
