"""Sources that connect a running dataflow to the program around it.

* :class:`QueueSource` turns items pushed from any thread into a dataflow
  input; :class:`SubscriptionSource` is the one carrying tracked-query changes
  from the websocket server's loop.
* :class:`Stoppable` wraps a source so that setting a :class:`threading.Event`
  ends it cleanly: the flow sees end of input, closes its windows, flushes its
  sinks and returns, instead of being killed mid-batch.
* :class:`FlowStop` is that event, and also how a source reports that it
  cannot go on: a :class:`Stoppable` whose source raises records the error in
  it and ends the input like a stop, so the error never unwinds through
  Bytewax's runtime (which would print a Rust panic); whoever runs the flow
  then raises :class:`SourceFailed` (see :mod:`flows.runtime.runner`).

Neither blocks in ``next_batch``: an idle partition asks to be woken again
after :data:`POLL_INTERVAL` through ``next_awake``.
"""

from __future__ import annotations

import logging
import queue
import threading
from abc import abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from flows.errors import SentiError
from flows.routing.matching import Subscription

__all__ = [
    "POLL_INTERVAL",
    "FlowStop",
    "Interrupted",
    "PollingPartition",
    "QueueSource",
    "SourceError",
    "SourceFailed",
    "Stoppable",
    "SubscriptionSource",
    "failure_reason",
]

logger = logging.getLogger("senti.sources")

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


# Failures


class SourceError(SentiError):
    """Root of the errors a source raises when it cannot go on; messages are meant for the user.

    The Bluesky and X sources' errors derive from it (a refused connection, bad
    credentials); any other exception from a source is reported as unexpected.
    """


class SourceFailed(SentiError):
    """A source of the flow could not go on; raised by whoever ran the flow.

    The message is one line, the reason (see :func:`failure_reason`); the
    caller names the source. :attr:`error` is what the source raised.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(failure_reason(error))
        self.error = error


def failure_reason(error: BaseException) -> str:
    """One line saying why a source failed: its own message for a :class:`SourceError`
    or an :class:`OSError`, the exception's type and message for anything else (a bug)."""
    if isinstance(error, SourceError):
        text = str(error) or type(error).__name__
    elif isinstance(error, OSError):
        where = f"cannot read {error.filename}: " if error.filename is not None else ""
        text = f"{where}{error.strerror or error}"
    else:
        text = f"unexpected error: {type(error).__name__}: {error}"
    return " ".join(text.split())


class FlowStop(threading.Event):
    """The stop request shared by a flow's :class:`Stoppable` sources and its runner.

    Set it to stop the flow. A source that fails calls :meth:`fail`, which
    keeps the first error in :attr:`failure` and sets the event, so the
    flow's other inputs end too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._failure_lock = threading.Lock()
        self.failure: BaseException | None = None
        """What the first failed source raised, if one did."""

    def fail(self, error: BaseException) -> None:
        """Record that a source failed with ``error`` (the first one wins) and stop the flow."""
        with self._failure_lock:
            if self.failure is None:
                self.failure = error
        self.set()


def _failed(stop: threading.Event, error: Exception, where: str) -> None:
    """Record a source's failure in ``stop``, or re-raise it if ``stop`` cannot hold it."""
    if not isinstance(stop, FlowStop):
        raise error
    logger.debug("source failed in %s", where, exc_info=error)
    stop.fail(error)


class _EndedPartition(StatefulSourcePartition[X, S], Generic[X, S]):
    """Stands in for a partition that could not be built: it ends at once."""

    def __init__(self, resume_state: S | None) -> None:
        self._resume_state = resume_state

    @override
    def next_batch(self) -> Iterable[X]:
        raise StopIteration

    @override
    def snapshot(self) -> S:
        return self._resume_state  # type: ignore[return-value]  # what it was resumed from


class _StoppablePartition(StatefulSourcePartition[X, S], Generic[X, S]):
    def __init__(
        self, inner: StatefulSourcePartition[X, S], stop: threading.Event, *, abort: bool
    ) -> None:
        self._inner = inner
        self._stop = stop
        self._abort = abort

    def _end(self) -> Iterable[X]:
        if self._abort:
            raise Interrupted("stop requested")
        raise StopIteration

    @override
    def next_batch(self) -> Iterable[X]:
        if self._stop.is_set():
            return self._end()
        try:
            return self._inner.next_batch()
        except StopIteration:
            raise
        except Exception as exc:  # the source cannot go on: end the input, report it
            _failed(self._stop, exc, "next_batch")
            return self._end()

    @override
    def next_awake(self) -> datetime | None:
        try:
            awake = self._inner.next_awake()
        except Exception as exc:
            _failed(self._stop, exc, "next_awake")
            return None
        if awake is None:
            return None
        # Wake at least every poll interval so a stop request is seen promptly.
        return min(awake, datetime.now(UTC) + POLL_INTERVAL)

    @override
    def snapshot(self) -> S:
        return self._inner.snapshot()

    @override
    def close(self) -> None:
        try:
            self._inner.close()
        except Exception as exc:
            _failed(self._stop, exc, "close")


class Stoppable(FixedPartitionedSource[X, S], Generic[X, S]):
    """``inner``, stopping as soon as ``stop`` is set (checked before every batch).

    By default it ends the input: windows close and sinks flush. With ``abort``
    it raises :class:`Interrupted` instead, as a crash would: open windows stay
    in the last recovery snapshot for the resumed run to complete, rather than
    being stored half-counted.

    When ``stop`` is a :class:`FlowStop`, an exception from the inner source
    (building a partition, reading a batch, closing) is recorded in it with
    :meth:`FlowStop.fail` and the input ends as for a stop; with a plain event
    it propagates.
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
        inner: StatefulSourcePartition[X, S]
        try:
            inner = self.inner.build_part(step_id, for_part, resume_state)
        except Exception as exc:
            _failed(self.stop, exc, "build_part")
            inner = _EndedPartition(resume_state)
        return _StoppablePartition(inner, self.stop, abort=self.abort)
