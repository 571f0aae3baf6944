"""A bytewax source of synthetic X API v2 stream lines, and a writer for files of them.

The posts themselves come from :mod:`flows.platforms.synthetic`; this module only paces
them and keeps the resume state (the number of the next post).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.model import Line
from flows.platforms.synthetic import generate_lines, synthetic_line

__all__ = ["MAX_LAG", "SyntheticSource", "write_synthetic"]

MAX_LAG: Final = timedelta(seconds=1)
"""How far a paced source may fall behind its schedule before it stops catching up.

When the dataflow is slower than the requested rate, a paced source emits at
most this much backlog at once, then re-anchors its schedule to the clock
instead of bursting to make up for lost time.
"""

_PARTITION: Final = "synthetic"

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _DeterministicPartition(StatefulSourcePartition[Line, int]):
    """Emits posts with fixed timestamps as fast as the dataflow takes them."""

    def __init__(
        self,
        *,
        first: int,
        count: int | None,
        seed: int,
        start: datetime,
        rate: float,
        batch: int,
        events: bool,
    ) -> None:
        self._next = first
        self._count = count
        self._seed = seed
        self._batch = batch
        self._lines = generate_lines(
            count, seed=seed, start=start, rate=rate, first=first, events=events
        )

    def next_batch(self) -> list[Line]:
        if self._count is not None and self._next >= self._count:
            raise StopIteration
        batch: list[Line] = []
        for text in self._lines:
            batch.append(Line(text, origin=f"synthetic:{self._seed}:{self._next}"))
            self._next += 1
            if len(batch) >= self._batch:
                break
        return batch

    def snapshot(self) -> int:
        return self._next


class _LivePartition(StatefulSourcePartition[Line, int]):
    """Emits ``rate`` posts per second, each stamped with the time it is due."""

    def __init__(
        self,
        *,
        first: int,
        count: int | None,
        seed: int,
        rate: float,
        batch: int,
        clock: Clock,
        events: bool,
    ) -> None:
        self._next = first
        self._count = count
        self._seed = seed
        self._events = events
        self._rate = rate
        self._batch = batch
        self._clock = clock
        # Post n is due at anchor_time + (n - anchor_n) / rate.
        self._anchor_time = clock()
        self._anchor_n = first

    def _due(self, n: int) -> datetime:
        return self._anchor_time + timedelta(seconds=(n - self._anchor_n) / self._rate)

    def next_batch(self) -> list[Line]:
        if self._count is not None and self._next >= self._count:
            raise StopIteration
        now = self._clock()
        if now - self._due(self._next) > MAX_LAG:
            # Too far behind: drop the backlog of time, not of posts.
            self._anchor_time = now - MAX_LAG
            self._anchor_n = self._next
        batch: list[Line] = []
        while len(batch) < self._batch and (self._count is None or self._next < self._count):
            due = self._due(self._next)
            if due > now:
                break
            text = synthetic_line(self._next, seed=self._seed, created_at=due, events=self._events)
            batch.append(Line(text, origin=f"synthetic:{self._seed}:{self._next}"))
            self._next += 1
        return batch

    def next_awake(self) -> datetime | None:
        if self._count is not None and self._next >= self._count:
            return None
        return self._due(self._next)

    def snapshot(self) -> int:
        return self._next


class SyntheticSource(FixedPartitionedSource[Line, int]):
    """Synthetic X API v2 stream lines from :mod:`flows.platforms.synthetic`, one partition.

    The resume state is the number ``n`` of the next post, so a resumed flow
    continues with exactly the posts it had not emitted yet.

    With ``start=None`` (live mode) posts are paced to ``rate`` per second with
    :meth:`next_awake` and each is stamped with the time it is emitted. With a
    ``start`` (deterministic mode) post ``n`` is stamped ``start + n / rate``
    and posts are emitted as fast as the dataflow takes them, so two runs give
    identical lines. ``count=None`` never ends. ``events=False`` leaves out
    the seeded sentiment events (:func:`flows.platforms.synthetic.event_schedule`).

    Raises :class:`ValueError` for a negative ``count``, a ``rate`` that is not
    positive and finite, a ``batch_size`` below 1 or a naive ``start``.
    """

    def __init__(
        self,
        *,
        count: int | None = None,
        seed: int = 0,
        rate: float = 50.0,
        start: datetime | None = None,
        batch_size: int = 100,
        clock: Clock | None = None,
        events: bool = True,
    ) -> None:
        """Configure the source; nothing is generated until the flow builds it.

        ``clock`` replaces the wall clock of live mode, for tests.
        """
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0 or None, got {count}")
        if not (0 < rate < math.inf):
            raise ValueError(f"rate must be a positive, finite number of posts per second: {rate}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.count = count
        self.seed = seed
        self.rate = rate
        self.start = start
        self.batch_size = batch_size
        self._clock = clock or _utc_now
        self.events = events

    def list_parts(self) -> list[str]:
        return [_PARTITION]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> StatefulSourcePartition[Line, int]:
        first = 0 if resume_state is None else resume_state
        if self.start is None:
            return _LivePartition(
                first=first,
                count=self.count,
                seed=self.seed,
                rate=self.rate,
                batch=self.batch_size,
                clock=self._clock,
                events=self.events,
            )
        return _DeterministicPartition(
            first=first,
            count=self.count,
            seed=self.seed,
            start=self.start,
            rate=self.rate,
            batch=self.batch_size,
            events=self.events,
        )


def write_synthetic(path: Path, *, count: int, seed: int = 0, start: datetime, rate: float) -> int:
    """Write posts ``0`` to ``count - 1`` of stream ``seed`` to ``path``, one line each.

    The file is UTF-8 with ``\\n`` line ends, the format :class:`flows.sources.replay.ReplaySource`
    reads; an existing file is replaced. Returns the number of lines written.
    """
    lines = generate_lines(count, seed=seed, start=start, rate=rate)  # validates first
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for text in lines:
            out.write(text)
            out.write("\n")
            written += 1
    return written
