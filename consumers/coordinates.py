"""Where a record sits in Kafka: one name for each shape the stages pass around.

- ``RecordCoordinates``: the input record an output came from (topic, partition, offset); written
  into every output as ``source`` (docs/events.md) and into dead letters.
- ``TopicPart``: a partition, ``(topic, partition)``, the key of per-partition bookkeeping.

confluent-kafka's ``TopicPartition`` appears only at the client boundary (commits, seeks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TopicPart = tuple[str, int]


@dataclass(frozen=True)
class RecordCoordinates:
    topic: str
    partition: int
    offset: int

    @property
    def topic_part(self) -> TopicPart:
        return self.topic, self.partition

    @property
    def partition_key(self) -> str:
        """``topic:partition``: how a stored row keys its applied-offset marks per input partition."""
        return f"{self.topic}:{self.partition}"

    def as_dict(self) -> dict[str, Any]:
        """The ``source`` object of an output record."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}
