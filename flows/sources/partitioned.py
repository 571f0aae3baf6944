"""Synthetic posts split into partitions, so every process of a cluster reads.

Partition ``i`` of ``p`` emits posts ``n = i, i + p, i + 2p, ...`` of the same
stream :class:`~flows.sources.synthetic.SyntheticSource` emits, each at
``rate / p`` per second: together they are the one stream at ``rate``, with the
same post ids, but read by ``p`` workers (bytewax spreads the partitions over
the workers of all processes). The resume state is the partition's next ``n``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from flows.model import Line
from flows.platforms.synthetic import created_at_for, synthetic_line

__all__ = ["PartitionedSyntheticSource"]

MAX_LAG: Final = timedelta(seconds=1)


class _StridedPartition(StatefulSourcePartition[Line, int]):
    def __init__(
        self,
        *,
        first: int,
        stride: int,
        count: int | None,
        seed: int,
        rate: float,
        start: datetime | None,
        batch: int,
    ) -> None:
        self._next = first
        self._stride = stride
        self._count = count
        self._seed = seed
        self._rate = rate
        self._start = start
        self._batch = batch
        # Live mode: post n is due at anchor_time + (n - anchor_n) / rate.
        self._anchor_time = datetime.now(UTC)
        self._anchor_n = first

    def _ended(self) -> bool:
        return self._count is not None and self._next >= self._count

    def _due(self, n: int) -> datetime:
        return self._anchor_time + timedelta(seconds=(n - self._anchor_n) / self._rate)

    @override
    def next_batch(self) -> list[Line]:
        if self._ended():
            raise StopIteration
        now = datetime.now(UTC)
        if self._start is None and now - self._due(self._next) > MAX_LAG:
            self._anchor_time, self._anchor_n = now - MAX_LAG, self._next
        batch: list[Line] = []
        while len(batch) < self._batch and not self._ended():
            n = self._next
            if self._start is None:
                created_at = self._due(n)
                if created_at > now:
                    break
            else:
                created_at = created_at_for(n, start=self._start, rate=self._rate)
            text = synthetic_line(n, seed=self._seed, created_at=created_at)
            batch.append(Line(text, origin=f"synthetic:{self._seed}:{n}"))
            self._next += self._stride
        return batch

    @override
    def next_awake(self) -> datetime | None:
        if self._start is not None or self._ended():
            return None
        return self._due(self._next)

    @override
    def snapshot(self) -> int:
        return self._next


class PartitionedSyntheticSource(FixedPartitionedSource[Line, int]):
    """The synthetic stream of ``seed`` in ``partitions`` disjoint, interleaved parts.

    ``start=None`` paces the whole stream to ``rate`` posts per second, stamped
    with the wall clock; with a ``start`` post ``n`` is stamped
    ``start + n / rate`` and emitted as fast as the dataflow takes it (two runs
    give identical posts). ``count=None`` never ends.
    """

    def __init__(
        self,
        *,
        partitions: int,
        count: int | None = None,
        seed: int = 0,
        rate: float = 50.0,
        start: datetime | None = None,
        batch_size: int = 100,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0 or None, got {count}")
        if not 0 < rate < math.inf:
            raise ValueError(f"rate must be a positive, finite number of posts per second: {rate}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.partitions = partitions
        self.count = count
        self.seed = seed
        self.rate = rate
        self.start = start
        self.batch_size = batch_size

    @override
    def list_parts(self) -> list[str]:
        return [f"synthetic-{i}-of-{self.partitions}" for i in range(self.partitions)]

    @override
    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _StridedPartition:
        index = int(for_part.split("-")[1])
        return _StridedPartition(
            first=index if resume_state is None else resume_state,
            stride=self.partitions,
            count=self.count,
            seed=self.seed,
            # Post n is due at n / rate in every partition: each emits rate / partitions.
            rate=self.rate,
            start=self.start,
            batch=self.batch_size,
        )
