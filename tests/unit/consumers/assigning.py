"""What a fake consumer needs for ``on_assign``: the group's committed offsets and ``incremental_assign``."""

from __future__ import annotations

from confluent_kafka import OFFSET_INVALID, TopicPartition


class AssigningConsumer:
    """Nothing committed yet (``committed`` says ``OFFSET_INVALID``); records what was assigned, at which offset."""

    def __init__(self) -> None:
        self.committed_at: dict[tuple[str, int], int] = {}
        self.started_at: dict[tuple[str, int], int] = {}

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(p.topic, p.partition, self.committed_at.get((p.topic, p.partition), OFFSET_INVALID))
            for p in partitions
        ]

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.started_at.update({(p.topic, p.partition): p.offset for p in partitions})
