"""Which input offsets may be committed: only those whose every output the broker acknowledged.

Why a tracker and not "commit after the batch": outputs are delivered asynchronously
(the next batch is inferred while the previous one is in flight), and a partition's
committed offset may only move past an input when that input *and every input before
it* are fully delivered. Per partition we keep inputs in consume order and advance a
watermark over the done prefix.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from shoppulse.consumers.commit_positions import CommitPositions
from shoppulse.consumers.coordinates import TopicPart


@dataclass
class _PartitionState:
    order: deque[int] = field(default_factory=deque)
    pending: dict[int, int] = field(default_factory=dict)  # offset -> outputs not yet acknowledged


class CommitTracker:
    """Counts unacknowledged outputs per input offset; hands out commit positions (``positions``:
    the next offset to consume per partition, every input before it delivered)."""

    def __init__(self) -> None:
        self._parts: dict[TopicPart, _PartitionState] = {}
        self.failed: list[tuple[TopicPart, int, str]] = []
        self.positions = CommitPositions()

    def begin(self, tp: TopicPart, offset: int, outputs: int) -> None:
        """Register an input with the number of outputs it will produce (0 → done at once)."""
        state = self._parts.setdefault(tp, _PartitionState())
        if state.order and offset <= state.order[-1]:
            raise ValueError(f"{tp}: offset {offset} registered after {state.order[-1]}")
        state.order.append(offset)
        state.pending[offset] = outputs
        self._advance(tp, state)

    def ack(self, tp: TopicPart, offset: int) -> None:
        """One output of (tp, offset) was acknowledged."""
        state = self._parts.get(tp)
        if state is None or offset not in state.pending:
            return  # partition revoked meanwhile: nothing to commit for it here
        state.pending[offset] -= 1
        self._advance(tp, state)

    def fail(self, tp: TopicPart, offset: int, reason: str) -> None:
        """An output could not be delivered: the watermark must never pass this offset."""
        self.failed.append((tp, offset, reason))

    def _advance(self, tp: TopicPart, state: _PartitionState) -> None:
        done = None
        while state.order and state.pending[state.order[0]] <= 0:
            done = state.order.popleft()
            del state.pending[done]
        if done is not None:
            self.positions.advance(tp, done + 1)

    def in_flight(self, tp: TopicPart | None = None) -> int:
        if tp is not None:
            state = self._parts.get(tp)
            return len(state.order) if state else 0
        return sum(len(s.order) for s in self._parts.values())

    def forget(self, tps: list[TopicPart]) -> None:
        """Partitions revoked: their state goes (the new owner resumes from the committed offset)."""
        for tp in tps:
            self._parts.pop(tp, None)
        self.positions.forget(tps)
