"""Sources that connect a running dataflow to the program around it.

* :class:`QueueSource` turns items pushed from any thread into a dataflow
  input; :class:`SubscriptionSource` is the one carrying tracked-query changes
  from the websocket server's loop.
* :class:`Stoppable` wraps a source so that setting a :class:`threading.Event`
  ends it cleanly: the flow sees end of input, closes its windows, flushes its
  sinks and returns, instead of being killed mid-batch.

Neither blocks in ``next_batch``: an idle partition asks to be woken again
after :data:`POLL_INTERVAL` through ``next_awake``.
"""

from __future__ import annotations

import queue
import threading
from abc import abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from flows.matching import Subscription

__all__ = [
    "POLL_INTERVAL",
    "Interrupted",
    "PollingPartition",
    "QueueSource",
    "Stoppable",
    "SubscriptionSource",
]

POLL_INTERVAL: Final = timedelta(milliseconds=20)
"""How often an idle partition looks for new items or a stop request."""

MAX_BATCH: Final = 1000

X = TypeVar("X")
S = TypeVar("S")


class PollingPartition(StatefulSourcePartition[X, S], Generic[X, S]):
    """A partition fed by another thread: it never blocks, and when it has
    nothing it asks to be woken again after :attr:`poll`.

    Subclasses implement :meth:`fetch` (which may raise ``StopIteration``).
    """

    poll: timedelta = POLL_INTERVAL
    _awake: datetime | None = None

    @abstractmethod
    def fetch(self) -> list[X]:
        """What is ready now, without waiting; ``[]`` if nothing is."""

    @override
    def next_batch(self) -> list[X]:
        batch = self.fetch()
        self._awake = None if batch else datetime.now(UTC) + self.poll
        return batch

    @override
    def next_awake(self) -> datetime | None:
        return self._awake


class _QueuePartition(PollingPartition[X, None], Generic[X]):
    def __init__(self, items: queue.SimpleQueue[X], stop: threading.Event) -> None:
        self._items = items
        self._stop = stop

    @override
    def fetch(self) -> list[X]:
        batch: list[X] = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._items.get_nowait())
            except queue.Empty:
                break
        if not batch and self._stop.is_set():
            raise StopIteration
        return batch

    @override
    def snapshot(self) -> None:
        # Not resumable on purpose: what was pushed lives in memory only (after a
        # restart the server re-sends the queries its clients track).
        return None


class QueueSource(FixedPartitionedSource[X, None], Generic[X]):
    """Items pushed with :meth:`push` from any thread, read by one worker.

    It ends when ``stop`` is set and everything pushed before has been read.
    """

    def __init__(self, stop: threading.Event | None = None, *, name: str = "queue") -> None:
        self._items: queue.SimpleQueue[X] = queue.SimpleQueue()
        self._name = name
        self.stop = stop or threading.Event()

    def push(self, item: X) -> None:
        """Queue an item for the dataflow; thread-safe, never blocks."""
        self._items.put(item)

    def push_all(self, items: Iterable[X]) -> None:
        """Queue several items in order."""
        for item in items:
            self._items.put(item)

    @override
    def list_parts(self) -> list[str]:
        return [self._name]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _QueuePartition[X]:
        return _QueuePartition(self._items, self.stop)


class SubscriptionSource(QueueSource[Subscription]):
    """Tracked-query changes for the dataflow, pushed by the server."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        super().__init__(stop, name="subscriptions")


class Interrupted(Exception):
    """Raised inside the flow to stop it without closing its windows (see :class:`Stoppable`)."""


class _StoppablePartition(StatefulSourcePartition[X, S], Generic[X, S]):
    def __init__(
        self, inner: StatefulSourcePartition[X, S], stop: threading.Event, *, abort: bool
    ) -> None:
        self._inner = inner
        self._stop = stop
        self._abort = abort

    @override
    def next_batch(self) -> Iterable[X]:
        if self._stop.is_set():
            if self._abort:
                raise Interrupted("stop requested")
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
    """``inner``, stopping as soon as ``stop`` is set (checked before every batch).

    By default it ends the input: windows close and sinks flush. With ``abort``
    it raises :class:`Interrupted` instead, as a crash would: open windows stay
    in the last recovery snapshot for the resumed run to complete, rather than
    being stored half-counted.
    """

    def __init__(
        self, inner: FixedPartitionedSource[X, S], stop: threading.Event, *, abort: bool = False
    ) -> None:
        self.inner = inner
        self.stop = stop
        self.abort = abort

    @override
    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    @override
    def build_part(
        self, step_id: str, for_part: str, resume_state: S | None
    ) -> _StoppablePartition[X, S]:
        return _StoppablePartition(
            self.inner.build_part(step_id, for_part, resume_state), self.stop, abort=self.abort
        )
