"""What every live source does, whatever the platform (X, Bluesky and Mastodon extend it).

A live source has three parts; this module holds what they share:

* :class:`LiveStream` owns a reader thread that connects to the platform,
  reconnects with :class:`~flows.platforms.x_backoff.Backoff` waits, and feeds a bounded
  queue of :class:`Received` lines. It keeps the counters
  (:class:`LiveStats`), drops what a reconnect or a resume replays (the last
  ``dedup_size`` keys, and everything at or before the resume position), and
  records the error that ends it for good. It says why it retries: the first
  failure of a run of failures is a warning with its reason and the wait
  before the next attempt, then one warning every :attr:`LiveStream.warn_every`
  seconds while the failures go on (the attempts between are debug), and a
  connection after failures is logged with their count. A platform implements
  :meth:`LiveStream._connect_and_read` (one connection, read until it ends)
  and classifies its errors in :meth:`LiveStream._failure`; it hands what it
  reads to :meth:`LiveStream._deliver`, :meth:`LiveStream._reject` and
  :meth:`LiveStream._skip`, and may keep counters of its own
  (:attr:`LiveStream.counters`). :meth:`LiveStream.drain` hands the queue out;
  a :class:`PositionedStream` (Bluesky, Mastodon: posts with positions) hands
  it out through ``take`` too, an X stream (no positions) as lines.
* :class:`LiveSource` is the bytewax input reading that queue: one
  partition, ``next_batch`` never blocks, and a failed stream's error is
  raised there (so ``senti`` exits non-zero with one line). Its resume state
  is the position (an integer) of the last post emitted, reported to
  :class:`~flows.runtime.cursors.Positions` for the store.
* :func:`capture` records a stream to a file; :func:`read_settings` reads a
  platform's settings (:class:`LiveSettings` are what the stream needs of them)
  with an error naming each invalid variable.

Positions are integers that grow along the stream (Jetstream's ``time_us``,
Mastodon's status ids); ``None`` is "no position".

The module is longer than most (about 570 lines) on purpose: it is the one
design every live source shares, and its parts are read together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bytewax.inputs import FixedPartitionedSource
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from typing_extensions import override

from flows.errors import SentiError
from flows.model import Line, RejectCode
from flows.platforms.x_backoff import Backoff, BackoffPolicy, Failure
from flows.runtime.cursors import Positions
from flows.sources.control import POLL_INTERVAL, PollingPartition

__all__ = [
    "LiveSettings",
    "LiveSource",
    "LiveStats",
    "LiveStream",
    "PositionedStream",
    "Received",
    "capture",
    "read_settings",
]

_COUNTERS = (
    "connections",
    "reconnects",
    "events",
    "posts",
    "skipped",
    "rejected",
    "dropped",
    "duplicates",
)


class LiveSettings(Protocol):
    """What every live source's settings have (``SENTI_<PLATFORM>_QUEUE_SIZE``...)."""

    @property
    def queue_size(self) -> int:
        """Posts held for the dataflow; the oldest is dropped beyond this."""
        ...

    @property
    def dedup_size(self) -> int:
        """Recent post keys remembered to drop what a reconnect replays."""
        ...


SettingsT = TypeVar("SettingsT", bound=LiveSettings)
FromEnv = TypeVar("FromEnv", bound=BaseSettings)


def read_settings(cls: type[FromEnv], error: type[SentiError], **overrides: Any) -> FromEnv:
    """``cls`` from its environment variables (and ``overrides``).

    Raises ``error`` naming each invalid variable (``SENTI_JETSTREAM_URL: ...``).
    """
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix") or "")
        problems = "; ".join(
            f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise error(problems) from None


@dataclass(frozen=True, slots=True)
class LiveStats:
    """Counters of a :class:`LiveStream`; totals except ``connected`` and ``cursor``."""

    connected: bool = False
    """Whether the connection is up now (a gauge)."""
    connections: int = 0
    """Connections that succeeded."""
    reconnects: int = 0
    """Connection attempts after the first."""
    events: int = 0
    """Messages received."""
    posts: int = 0
    """Posts queued for the dataflow."""
    skipped: int = 0
    """Events that are not new posts (deletes, boosts, languages not wanted...)."""
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    """``skipped`` by reason, sorted."""
    rejected: int = 0
    """Malformed events, passed on to the dataflow as rejected lines."""
    dropped: int = 0
    """Posts dropped because the queue was full (the oldest go first)."""
    duplicates: int = 0
    """Posts dropped because a reconnect or resume replayed them."""
    cursor: int | None = None
    """The latest position seen, where the next reconnect resumes."""


@dataclass(frozen=True, slots=True)
class Received:
    """A queued post (or rejected event): its line and its position in the stream."""

    line: Line
    position: int | None
    """``None`` for a rejected event without a usable position."""


class LiveStream(Generic[SettingsT]):
    """One live subscription on its own thread, feeding a bounded queue.

    ``settings`` are the platform's (their ``queue_size`` and ``dedup_size``
    bound the queue and the keys remembered). Lifecycle: :meth:`start`
    connects (once), :meth:`stop` closes the connection and joins the thread.
    ``sleep(seconds)`` waits before a reconnect (default: a wait :meth:`stop`
    interrupts); ``backoff`` overrides the waits; ``clock`` (monotonic
    seconds) paces the retry warnings. Nothing connects before :meth:`start`.
    """

    name: str = "live"
    """The platform's name in logs and thread names."""
    warn_every: float = 60.0
    """Seconds between warnings while connection attempts keep failing."""
    counters: tuple[str, ...] = ()
    """The platform's own counters, beside :class:`LiveStats`'; :meth:`_count` adds to them."""

    def __init__(
        self,
        settings: SettingsT,
        *,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self._backoff = Backoff(backoff)
        self._clock = clock or time.monotonic
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._dedup_size = settings.dedup_size
        self._logger = logging.getLogger(f"senti.{self.name}")

        # Reader thread -> dataflow
        self._lock = threading.Condition()
        self._queue: deque[Received] = deque(maxlen=settings.queue_size)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._floor: int | None = None
        """Posts at or before this position were delivered before a restart."""
        self._start_cursor: int | None = None
        self._cursor: int | None = None
        self._counts = dict.fromkeys(_COUNTERS + self.counters, 0)
        self._reasons: dict[str, int] = {}
        self._is_connected = False
        self._thread: threading.Thread | None = None
        self._closer: Callable[[], object] | None = None
        # Retry reporting (reader thread only)
        self._reason: str | None = None
        """Why the latest attempt failed, in words."""
        self._failures = 0
        """Consecutive failed attempts since the last connection."""
        self._failing_since = 0.0
        self._warned_at = 0.0
        self.error: BaseException | None = None
        """What ended the stream, if it failed; :class:`LiveSource` raises it."""

    # What a platform implements

    def _connect_and_read(self) -> None:
        """Open one connection and read it until it ends (raises when it breaks)."""
        raise NotImplementedError

    def _failure(self, error: Exception) -> Failure | None:
        """How a connection error counts: a reconnect after a wait, or ``None`` (done).

        The default treats :class:`OSError` as a network failure and lets
        anything else through (a bug ends the stream with it). A platform
        calls :meth:`_fail` before returning ``None`` for a refusal.
        """
        if isinstance(error, OSError):
            self._lost(error)
            return Failure.NETWORK
        raise error

    def _endpoint(self) -> str:
        """What the stream connects to, for logs (a URL; ``""`` when there is none)."""
        return ""

    def _start_position(self, resume_after: int | None, configured: int | None) -> int | None:
        """Where the first connection starts, given a resume position (or the configured one)."""
        return resume_after if resume_after is not None else configured

    # Lifecycle

    def start(self, *, resume_after: int | None = None, configured: int | None = None) -> None:
        """Connect on a new thread, if not already started.

        ``resume_after`` is the position of the last post delivered before a
        restart: what comes again at or before it is dropped. Without it the
        stream starts at ``configured`` (live when ``None``).
        """
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            if resume_after is not None:
                self._floor = resume_after
            self._start_cursor = self._start_position(resume_after, configured)
            self._thread = threading.Thread(
                target=self._run, name=f"senti-{self.name}", daemon=True
            )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and wait (up to ``timeout`` s) for the thread; idempotent."""
        self._stopping.set()
        with self._lock:
            closer = self._closer
        if closer is not None:
            closer()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            self._lock.notify_all()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called or the stream failed."""
        return self._stopping.is_set() or self.error is not None

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> LiveStats:
        """A snapshot of the counters."""
        with self._lock:
            return LiveStats(**self._snapshot())

    def _snapshot(self) -> dict[str, Any]:
        """The counters as :class:`LiveStats` fields, and the platform's own (lock held)."""
        return {
            "connected": self._is_connected,
            "skipped_by_reason": tuple(sorted(self._reasons.items())),
            "cursor": self._cursor,
            **self._counts,
        }

    def drain(self, limit: int, timeout: float = 0.0) -> list[Received]:
        """Up to ``limit`` queued posts, oldest first; waits up to ``timeout`` s for the first."""
        with self._lock:
            if not self._queue and timeout > 0 and not self.stopped:
                self._lock.wait(timeout)
            count = min(limit, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    # The reader thread

    def _run(self) -> None:
        first = True
        try:
            while not self._stopping.is_set():
                if not first:
                    self._count("reconnects")
                first = False
                failure = self._attempt()
                if failure is None or self._stopping.is_set():
                    break
                wait = self._backoff.next_wait(failure)
                self._report_retry(failure, wait)
                self._sleep(wait)
        except Exception as exc:  # a bug: end the source with it rather than hang
            self._fail(exc)
        finally:
            self._set_connected(value=False)
            with self._lock:
                self._lock.notify_all()

    def _attempt(self) -> Failure | None:
        """One connection, read until it ends; the failure, or ``None`` when done for good."""
        try:
            self._connect_and_read()
        except Exception as exc:
            if self._stopping.is_set():
                return None
            return self._failure(exc)
        finally:
            self._hold(None)
            self._set_connected(value=False)
        return None if self._stopping.is_set() else Failure.NETWORK

    def _lost(self, error: BaseException) -> None:
        """Note why a connection failed or was lost (a network error), for the retry log."""
        self._retrying(str(error) or type(error).__name__)

    def _retrying(self, reason: str) -> None:
        """Note why the latest attempt failed (a network error, an HTTP status), in words."""
        self._reason = " ".join(reason.split())

    def _report_retry(self, failure: Failure, wait: float) -> None:
        """Log a failed attempt: a warning for the first of a run and then every
        :attr:`warn_every` seconds, each with the reason and the next wait; else debug."""
        now = self._clock()
        self._failures += 1
        reason = self._reason or f"{failure.value} failure"
        self._reason = None
        where = f"{self.name} ({self._endpoint()})" if self._endpoint() else self.name
        details = {
            "source": self.name,
            "endpoint": self._endpoint(),
            "reason": reason,
            "failure": failure.value,
            "attempts": self._failures,
            "retry_in": round(wait, 3),
        }
        if self._failures == 1:
            self._failing_since = self._warned_at = now
            self._logger.warning(
                "%s connection failed: %s; retrying in %.2f s",
                where,
                reason,
                wait,
                extra=details,
            )
        elif now - self._warned_at >= self.warn_every:
            self._warned_at = now
            self._logger.warning(
                "%s still cannot connect after %d attempts over %.0f s: %s; retrying in %.2f s",
                where,
                self._failures,
                now - self._failing_since,
                reason,
                wait,
                extra=details,
            )
        else:
            self._logger.debug(
                "%s connection failed: %s; retrying in %.2f s",
                where,
                reason,
                wait,
                extra=details,
            )

    def _recovered(self) -> None:
        """A connection is up: log the end of a run of failures, and start counting over."""
        if self._failures:
            self._logger.info(
                "%s connected after %d failed attempts over %.0f s",
                self.name,
                self._failures,
                self._clock() - self._failing_since,
                extra={"source": self.name, "attempts": self._failures},
            )
        self._failures = 0

    def _latest(self) -> int | None:
        """The latest position seen, or where the stream started."""
        with self._lock:
            return self._start_cursor if self._cursor is None else self._cursor

    def _connected(self) -> None:
        """The connection works: backoff waits start over."""
        self._backoff.reset()
        self._set_connected(value=True)

    def _hold(self, closer: Callable[[], object] | None) -> bool:
        """Remember how to close the open connection; ``False`` (closed) if stopping already."""
        with self._lock:
            self._closer = closer
            if closer is not None:
                self._counts["connections"] += 1
        if closer is not None and self._stopping.is_set():
            closer()
            return False
        return True

    # What the reader hands over

    def _event(self, position: int | None) -> None:
        """Count one message received at ``position`` (the cursor only moves forward)."""
        with self._lock:
            self._counts["events"] += 1
            if position is not None and (self._cursor is None or self._cursor < position):
                self._cursor = position

    def _skip(self, reason: str) -> None:
        """Count an event that is not a new post."""
        with self._lock:
            self._counts["skipped"] += 1
            self._reasons[reason] = self._reasons.get(reason, 0) + 1

    def _deliver(self, key: str | None, position: int | None, line: Line) -> bool:
        """Queue a post unless ``key`` was queued already (``None``: no key, no check)."""
        with self._lock:
            if key is not None and self._delivered(key, position):
                return False
            self._enqueue(Received(line, position))
            self._counts["posts"] += 1
            return True

    def _reject(
        self, key: str, position: int | None, raw: str, code: RejectCode, reason: str
    ) -> bool:
        """Pass a malformed event on as a rejected line, once; whether it was queued."""
        with self._lock:
            if self._delivered(key, position):
                return False
            line = Line(raw, origin=key, rejected=(code, reason))
            self._enqueue(Received(line, position))
            self._counts["rejected"] += 1
            return True

    def _delivered(self, key: str, position: int | None) -> bool:
        """Whether ``key`` was queued already (lock held); remembers it."""
        if key in self._seen or (
            self._floor is not None and position is not None and position <= self._floor
        ):
            self._seen[key] = None
            self._seen.move_to_end(key)
            self._counts["duplicates"] += 1
            return True
        self._seen[key] = None
        if len(self._seen) > self._dedup_size:
            self._seen.popitem(last=False)
        return False

    def _enqueue(self, item: Received) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._counts["dropped"] += 1
        self._queue.append(item)
        self._lock.notify_all()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _set_connected(self, *, value: bool) -> None:
        if value:
            self._recovered()
        with self._lock:
            self._is_connected = value

    def _fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (the first one wins); :class:`LiveSource` raises it."""
        with self._lock:
            if self.error is None:
                self.error = error
            self._lock.notify_all()
        # Whoever runs the source reports the error (one line); the details go here.
        self._logger.debug("%s source failed: %s", self.name, error, exc_info=error)


class PositionedStream(LiveStream[SettingsT]):
    """A live stream whose posts have positions: :meth:`take` hands them out with them."""

    def take(self, limit: int, timeout: float = 0.0) -> list[Received]:
        """Up to ``limit`` queued posts, oldest first; waits up to ``timeout`` s for the first."""
        return self.drain(limit, timeout)


# The bytewax source


class LivePartition(PollingPartition[Line, int | None]):
    """The one partition of a :class:`LiveSource`."""

    def __init__(
        self,
        stream: LiveStream[Any],
        *,
        key: str,
        batch: int,
        poll: timedelta,
        resume: int | None,
        positions: Positions | None,
    ) -> None:
        self._stream = stream
        self._batch = batch
        self.poll = poll
        self._last = resume
        self._positions = positions
        self._key = key

    @override
    def fetch(self) -> list[Line]:
        items = self._stream.drain(self._batch)
        if not items:
            if self._stream.error is not None:
                raise self._stream.error
            if self._stream.stopped:
                raise StopIteration
        for item in items:
            if item.position is not None:
                self._last = item.position if self._last is None else max(self._last, item.position)
        if items and self._positions is not None and self._last is not None:
            self._positions.advance(self._key, self._last)
        return [item.line for item in items]

    @override
    def snapshot(self) -> int | None:
        if self._positions is not None:
            self._positions.mark(self._key)
        return self._last

    @override
    def close(self) -> None:
        self._stream.stop()


StreamT = TypeVar("StreamT", bound=LiveStream[Any])


class LiveSource(FixedPartitionedSource[Line, int | None], Generic[StreamT]):
    """The posts of a :class:`LiveStream` as a bytewax input (one partition).

    Building the partition starts the stream, from the resume state if there
    is one (the position of the last post emitted), else from
    ``resume_after`` (the position the store kept, :mod:`flows.runtime.cursors`);
    closing it stops the stream. The partition ends when the stream is
    stopped and its queue is empty, and raises the stream's error if it
    failed. It reports its position to ``positions`` under :attr:`cursor_key`.
    """

    part: str = "live"
    """The partition's name."""

    def __init__(
        self,
        stream: StreamT,
        *,
        batch_size: int = 1000,
        poll: timedelta = POLL_INTERVAL,
        positions: Positions | None = None,
        resume_after: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.stream = stream
        self.batch_size = batch_size
        self.poll = poll
        self.positions = positions
        self.resume_after = resume_after

    @property
    def cursor_key(self) -> str:
        """Where the store keeps this source's cursor."""
        raise NotImplementedError

    def _start(self, resume: int | None) -> None:
        """Start the stream after ``resume`` (``None``: where the settings say)."""
        self.stream.start(resume_after=resume)

    @override
    def list_parts(self) -> list[str]:
        return [self.part]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> LivePartition:
        resume = resume_state if resume_state is not None else self.resume_after
        self._start(resume)
        return LivePartition(
            self.stream,
            key=self.cursor_key,
            batch=self.batch_size,
            poll=self.poll,
            resume=resume,
            positions=self.positions,
        )


# senti capture


def capture(
    stream: LiveStream[Any],
    out: Path,
    *,
    count: int | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Write up to ``count`` posts, for up to ``seconds``, or until ``stop``; posts written.

    The file holds the posts' line texts, one per line (for the X and
    Bluesky sources, the envelopes :class:`~flows.sources.replay.ReplaySource`
    reads).
    Always stops ``stream``; raises its error if it failed, :class:`OSError`
    from the file.
    """
    stop = stop or threading.Event()
    deadline = None if seconds is None else clock() + seconds
    written = 0
    try:
        stream.start()
        with out.open("w", encoding="utf-8", errors="surrogateescape", newline="\n") as file:
            while not stop.is_set() and (count is None or written < count):
                if deadline is not None and clock() >= deadline:
                    break
                if stream.error is not None:
                    raise stream.error
                left = 1000 if count is None else count - written
                for item in stream.drain(left, timeout=0.1):
                    if item.line.rejected is None:  # malformed events are counted, not kept
                        file.write(item.line.text + "\n")
                        written += 1
                file.flush()
    finally:
        stream.stop()
    return written
