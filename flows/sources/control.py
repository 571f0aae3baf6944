"""Sources that connect a running dataflow to the program around it.

* :class:`SubscriptionSource` turns tracked-query changes pushed from any
  thread (the websocket server's loop) into the dataflow's subscription input.
* :class:`Stoppable` wraps a source so that setting a :class:`threading.Event`
  ends it cleanly: the flow sees end of input, closes its windows, flushes its
  sinks and returns, instead of being killed mid-batch.

Neither blocks in ``next_batch``: an idle partition asks to be woken again
after :data:`POLL_INTERVAL` through ``next_awake``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from flows.matching import Subscription

__all__ = ["POLL_INTERVAL", "Stoppable", "SubscriptionSource"]

POLL_INTERVAL: Final = timedelta(milliseconds=20)
"""How often an idle partition looks for new items or a stop request."""

MAX_BATCH: Final = 1000

X = TypeVar("X")
S = TypeVar("S")


class _SubscriptionPartition(StatefulSourcePartition[Subscription, None]):
    def __init__(self, changes: queue.SimpleQueue[Subscription], stop: threading.Event) -> None:
        self._changes = changes
        self._stop = stop
        self._awake: datetime | None = None

    @override
    def next_batch(self) -> list[Subscription]:
        batch: list[Subscription] = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._changes.get_nowait())
            except queue.Empty:
                break
        if not batch and self._stop.is_set():
            raise StopIteration
        self._awake = None if batch else datetime.now(UTC) + POLL_INTERVAL
        return batch

    @override
    def next_awake(self) -> datetime | None:
        return self._awake

    @override
    def snapshot(self) -> None:
        # Not resumable on purpose: after a restart the server re-sends the
        # queries its connected clients track.
        return None


class SubscriptionSource(FixedPartitionedSource[Subscription, None]):
    """Query changes pushed with :meth:`push` from any thread, read by one worker."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._changes: queue.SimpleQueue[Subscription] = queue.SimpleQueue()
        self._stop = stop or threading.Event()

    def push(self, change: Subscription) -> None:
        """Queue a change for the dataflow; thread-safe, never blocks."""
        self._changes.put(change)

    def push_all(self, changes: Iterable[Subscription]) -> None:
        """Queue several changes in order."""
        for change in changes:
            self._changes.put(change)

    @override
    def list_parts(self) -> list[str]:
        return ["subscriptions"]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _SubscriptionPartition:
        return _SubscriptionPartition(self._changes, self._stop)


class _StoppablePartition(StatefulSourcePartition[X, S], Generic[X, S]):
    def __init__(self, inner: StatefulSourcePartition[X, S], stop: threading.Event) -> None:
        self._inner = inner
        self._stop = stop

    @override
    def next_batch(self) -> Iterable[X]:
        if self._stop.is_set():
            raise StopIteration
        return self._inner.next_batch()

    @override
    def next_awake(self) -> datetime | None:
        awake = self._inner.next_awake()
        if awake is None:
            return None
        # Wake at least every poll interval so a stop request is seen promptly.
        return min(awake, datetime.now(UTC) + POLL_INTERVAL)

    @override
    def snapshot(self) -> S:
        return self._inner.snapshot()

    @override
    def close(self) -> None:
        self._inner.close()


class Stoppable(FixedPartitionedSource[X, S], Generic[X, S]):
    """``inner``, ending as soon as ``stop`` is set (checked before every batch)."""

    def __init__(self, inner: FixedPartitionedSource[X, S], stop: threading.Event) -> None:
        self.inner = inner
        self.stop = stop

    @override
    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    @override
    def build_part(
        self, step_id: str, for_part: str, resume_state: S | None
    ) -> _StoppablePartition[X, S]:
        return _StoppablePartition(
            self.inner.build_part(step_id, for_part, resume_state), self.stop
        )
