"""The live Bluesky source: Jetstream over a websocket, resumable by its time cursor.

Three parts, as for the X source:

* :class:`JetstreamStream` owns one websocket connection to a Jetstream
  instance (``websockets``' sync client on its own thread). Each message is
  mapped by :func:`flows.bluesky.map_message`; new posts go into a bounded
  queue as X API v2 envelope lines, malformed events go into it as lines
  already rejected (:attr:`flows.model.Line.rejected`: the dataflow counts and
  stores them like any rejected line), everything else is counted and skipped.
* :class:`JetstreamSource` is the bytewax source reading that queue: one
  partition, ``next_batch`` never blocks, an idle partition polls through
  ``next_awake``. Its resume state is the ``time_us`` of the last post it
  emitted.
* :class:`JetstreamSettings` reads ``SENTI_JETSTREAM_*`` variables (and ``.env``).

Jetstream's contract, and how it is kept:

* **Subscription.** The connection asks for ``wantedCollections=app.bsky.feed.post``
  (optionally ``wantedDids``) and ``maxMessageSizeBytes``, the largest message
  the client accepts, so the server filters out an oversized event instead of
  the client closing on it again and again. Identity and account events come
  whatever the filter; they are skipped.
* **Cursor.** Every event carries ``time_us``, Jetstream's time in
  microseconds, which is also its cursor. A reconnect asks for
  ``cursor = last time_us seen - cursor_margin`` (Jetstream's advice for
  gapless playback), so nothing sent while disconnected is missed.
* **Duplicates.** What the margin replays is dropped: a post whose AT URI is
  among the last ``dedup_size`` posts is counted as a duplicate. After a
  restart from a bytewax snapshot, posts at or before the snapshot's
  ``time_us`` are dropped the same way.
* **Reconnect back-off.** The waits of :class:`~flows.xbackoff.Backoff`
  (linear for network failures, exponential for HTTP errors and 429), slept
  with an injectable ``sleep``; they start over once a connection delivers its
  first message. A handshake refused with HTTP 400, 401, 403 or 404 is not
  retried: :class:`JetstreamRefused` ends the dataflow.
* **Liveness.** ``websockets`` pings every ``ping_interval`` seconds and drops
  a connection whose pong takes longer than ``ping_timeout``; that counts as a
  network failure and reconnects.
* **Backpressure.** The queue holds ``queue_size`` posts; when the dataflow
  falls that far behind, the *oldest* is dropped and counted, keeping the
  stream live. (A later cursor does not bring dropped posts back.)
* **Compression.** ``compress=true`` makes Jetstream send zstd frames made with
  a custom dictionary; senti ships neither the ``zstandard`` package nor that
  dictionary, so the setting is refused with an explanation.
"""

from __future__ import annotations

import hashlib
import http
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bytewax.inputs import FixedPartitionedSource
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import override
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from flows.bluesky import POST_COLLECTION, Skipped, map_message
from flows.cursors import Positions, jetstream_key
from flows.model import Line, RejectCode
from flows.runner import stop_on_signals
from flows.sources.control import POLL_INTERVAL, PollingPartition, SourceError
from flows.xbackoff import Backoff, BackoffPolicy, Failure

__all__ = [
    "DEFAULT_URL",
    "JetstreamError",
    "JetstreamRefused",
    "JetstreamSettings",
    "JetstreamSource",
    "JetstreamStats",
    "JetstreamStream",
    "Received",
    "capture",
    "run_capture",
    "settings_from_env",
]

logger = logging.getLogger("senti.bluesky")

DEFAULT_URL: Final = "wss://jetstream2.us-east.bsky.network/subscribe"
"""One of the public Jetstream instances Bluesky runs (no account needed)."""

MAX_WANTED_DIDS: Final = 10_000
"""Jetstream's limit on ``wantedDids`` per connection."""

_FATAL_STATUSES: Final = frozenset({400, 401, 403, 404})
"""Handshake statuses no reconnect fixes (bad request or URL, access refused)."""

_CONTROLLED: Final = frozenset(
    {"wantedCollections", "wantedDids", "cursor", "compress", "maxMessageSizeBytes"}
)
"""Query parameters senti sets itself; any in the configured URL are replaced."""


# Errors


class JetstreamError(SourceError):
    """Root of the errors of the Bluesky source; messages are meant for the user."""


class JetstreamRefused(JetstreamError):
    """Jetstream refused the connection in a way no reconnect fixes (HTTP 400, 404...)."""


# Settings


def _split(value: object) -> object:
    """A comma-separated string as a list (lists pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class JetstreamSettings(BaseSettings):
    """The Bluesky source's options; each field is also ``SENTI_JETSTREAM_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SENTI_JETSTREAM_", env_file=".env", extra="ignore", validate_default=True
    )

    # Endpoint and subscription
    url: str = DEFAULT_URL
    """The instance's ``/subscribe`` websocket URL (``SENTI_JETSTREAM_URL``)."""
    wanted_dids: Annotated[tuple[str, ...], NoDecode] = ()
    """Only posts by these accounts (comma-separated DIDs); all accounts when empty."""
    langs: Annotated[tuple[str, ...], NoDecode] = ()
    """Only posts declaring one of these languages (comma-separated, ``en,pt``)."""
    cursor: int | None = Field(default=None, ge=0)
    """Where a fresh start begins (a ``time_us``); live when unset. A resume ignores it."""
    compress: bool = False
    """Jetstream's zstd compression; not supported (see the module docs)."""

    # Resumption and mapping
    cursor_margin: float = Field(default=5.0, ge=0)
    """Seconds a reconnect rewinds before the last event seen."""
    max_ahead: float = Field(default=300.0, ge=0)
    """Seconds a post's ``createdAt`` may lie after ``time_us`` (see :mod:`flows.bluesky`)."""

    # Timeouts
    open_timeout: float = Field(default=10.0, gt=0)
    ping_interval: float = Field(default=20.0, gt=0)
    ping_timeout: float = Field(default=20.0, gt=0)
    close_timeout: float = Field(default=2.0, gt=0)

    # Limits and buffers
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    """Largest message accepted; also sent as ``maxMessageSizeBytes``."""
    queue_size: int = Field(default=10_000, ge=1)
    """Posts held for the dataflow; the oldest is dropped beyond this."""
    dedup_size: int = Field(default=10_000, ge=1)
    """Recent post URIs remembered to drop what a reconnect replays."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(
                "must be a ws:// or wss:// URL such as wss://jetstream2.us-east.bsky.network/subscribe"
            )
        return value

    @field_validator("wanted_dids", "langs", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("wanted_dids")
    @classmethod
    def _check_dids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_WANTED_DIDS:
            raise ValueError(f"Jetstream accepts at most {MAX_WANTED_DIDS} DIDs, not {len(value)}")
        bad = [did for did in value if not did.startswith("did:")]
        if bad:
            raise ValueError(f"not a DID: {bad[0]!r}")
        return value

    @field_validator("compress")
    @classmethod
    def _no_compression(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "Jetstream compression is not supported: it needs the zstandard package and "
                "Jetstream's custom zstd dictionary, which senti does not ship; unset it"
            )
        return value

    def subscribe_url(self, cursor: int | None = None) -> str:
        """The URL to connect to, starting from ``cursor`` (live when ``None``)."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _CONTROLLED]
        query.append(("wantedCollections", POST_COLLECTION))
        query += [("wantedDids", did) for did in self.wanted_dids]
        query.append(("maxMessageSizeBytes", str(self.max_message_bytes)))
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True, slots=True)
class JetstreamStats:
    """Counters of a :class:`JetstreamStream`; totals except ``connected`` and ``cursor``."""

    connected: bool = False
    """Whether the connection is up now (a gauge)."""
    connections: int = 0
    """Websocket handshakes that succeeded."""
    reconnects: int = 0
    """Connection attempts after the first."""
    events: int = 0
    """Messages received."""
    posts: int = 0
    """Posts queued for the dataflow."""
    skipped: int = 0
    """Events that are not new posts (identity, account, update, delete, language...)."""
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    """``skipped`` by reason, sorted."""
    rejected: int = 0
    """Malformed events, passed on to the dataflow as rejected lines."""
    dropped: int = 0
    """Posts dropped because the queue was full (the oldest go first)."""
    duplicates: int = 0
    """Posts dropped because a reconnect or resume replayed them."""
    cursor: int | None = None
    """The latest ``time_us`` seen, where the next reconnect resumes (minus the margin)."""


@dataclass(frozen=True, slots=True)
class Received:
    """A queued post (or rejected event): its line and Jetstream's ``time_us``."""

    line: Line
    time_us: int | None
    """``None`` for a rejected event without a usable ``time_us``."""


# The connection


class JetstreamStream:
    """One Jetstream subscription on its own thread, feeding a bounded queue.

    Lifecycle: :meth:`start` connects (once), :meth:`stop` closes the
    websocket and joins the thread. ``sleep(seconds)`` waits before a
    reconnect (default: a wait :meth:`stop` interrupts); ``backoff``
    overrides the waits. Nothing connects before :meth:`start`.
    """

    def __init__(
        self,
        settings: JetstreamSettings,
        *,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.settings = settings
        self._backoff = Backoff(backoff)
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._margin_us = round(settings.cursor_margin * 1_000_000)
        self._max_ahead = timedelta(seconds=settings.max_ahead)

        # Reader thread -> dataflow
        self._lock = threading.Condition()
        self._queue: deque[Received] = deque(maxlen=settings.queue_size)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._floor: int | None = None
        """Posts at or before this ``time_us`` were delivered before a restart."""
        self._start_cursor: int | None = None
        self._cursor: int | None = None
        self._counts = dict.fromkeys(
            (
                "connections",
                "reconnects",
                "events",
                "posts",
                "skipped",
                "rejected",
                "dropped",
                "duplicates",
            ),
            0,
        )
        self._reasons: dict[str, int] = {}
        self._is_connected = False
        self._thread: threading.Thread | None = None
        self._ws: ClientConnection | None = None
        self.error: BaseException | None = None
        """What ended the stream, if it failed; :class:`JetstreamSource` raises it."""

    # Lifecycle

    def start(self, *, resume_after: int | None = None) -> None:
        """Connect on a new thread, if not already started.

        ``resume_after`` is the ``time_us`` of the last post delivered before a
        restart: the stream rewinds the margin before it and drops what it had
        already delivered. Without it, it starts at ``settings.cursor`` (live
        when unset).
        """
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            if resume_after is not None:
                self._floor = resume_after
                self._start_cursor = max(resume_after - self._margin_us, 0)
            else:
                self._start_cursor = self.settings.cursor
            self._thread = threading.Thread(target=self._run, name="senti-jetstream", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the websocket and wait (up to ``timeout`` s) for the thread; idempotent."""
        self._stopping.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.close()
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

    def stats(self) -> JetstreamStats:
        """A snapshot of the counters."""
        with self._lock:
            return JetstreamStats(
                connected=self._is_connected,
                skipped_by_reason=tuple(sorted(self._reasons.items())),
                cursor=self._cursor,
                **self._counts,
            )

    def take(self, limit: int, timeout: float = 0.0) -> list[Received]:
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
                logger.info(
                    "Jetstream reconnecting in %.2f s after a %s failure", wait, failure.value
                )
                self._sleep(wait)
        except Exception as exc:  # a bug: end the source with it rather than hang
            self._fail(exc)
        finally:
            self._set_connected(value=False)
            with self._lock:
                self._lock.notify_all()

    def _resume_cursor(self) -> int | None:
        with self._lock:
            if self._cursor is None:
                return self._start_cursor
            return max(self._cursor - self._margin_us, 0)

    def _attempt(self) -> Failure | None:
        """One connection, read until it ends; the failure, or ``None`` when done for good."""
        try:
            self._connect_and_read()
        except InvalidStatus as exc:
            return self._refused(exc.response.status_code)
        except InvalidURI as exc:
            self._fail(JetstreamRefused(f"invalid Jetstream URL: {exc}"))
            return None
        except (OSError, WebSocketException) as exc:  # ConnectionClosed, TimeoutError too
            if not self._stopping.is_set():
                logger.warning("Jetstream connection lost: %s", str(exc) or type(exc).__name__)
        finally:
            self._hold(None)
            self._set_connected(value=False)
        return None if self._stopping.is_set() else Failure.NETWORK

    def _connect_and_read(self) -> None:
        settings = self.settings
        url = settings.subscribe_url(self._resume_cursor())
        with connect(
            url,
            open_timeout=settings.open_timeout,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            close_timeout=settings.close_timeout,
            max_size=settings.max_message_bytes,
        ) as ws:
            if self._hold(ws):
                self._set_connected(value=True)
                self._read(ws)

    def _read(self, ws: ClientConnection) -> None:
        """Handle messages until the connection closes (``recv`` raises)."""
        first = True
        while True:
            message = ws.recv()
            if first:  # the connection works: waits start over
                self._backoff.reset()
                first = False
            self._on_message(message)

    def _hold(self, ws: ClientConnection | None) -> bool:
        """Remember the open connection for :meth:`stop`; ``False`` if stopping already."""
        with self._lock:
            self._ws = ws
            if ws is not None:
                self._counts["connections"] += 1
        if ws is not None and self._stopping.is_set():
            ws.close()
            return False
        return True

    def _refused(self, status: int) -> Failure | None:
        if status in _FATAL_STATUSES:
            self._fail(JetstreamRefused(f"Jetstream refused the connection ({_http(status)})"))
            return None
        logger.warning("Jetstream refused the connection with HTTP %d", status)
        return Failure.RATE_LIMIT if status == 429 else Failure.HTTP

    def _on_message(self, message: str | bytes) -> None:
        result = map_message(message, langs=self.settings.langs, max_ahead=self._max_ahead)
        if isinstance(result, Skipped) and result.code is RejectCode.INTERNAL:
            logger.warning("Jetstream event not mapped: %s", result.reason)
        with self._lock:
            self._counts["events"] += 1
            if result.time_us is not None and (self._cursor or 0) < result.time_us:
                self._cursor = result.time_us
            if isinstance(result, Skipped) and result.code is None:
                self._counts["skipped"] += 1
                self._reasons[result.reason] = self._reasons.get(result.reason, 0) + 1
                return
            if isinstance(result, Skipped):
                self._queue_rejected(message, result)
                return
            if self._delivered(result.post_id, result.time_us):
                return
            origin = f"bluesky:{result.time_us}"
            self._enqueue(Received(Line(result.line(), origin=origin), result.time_us))
            self._counts["posts"] += 1

    def _queue_rejected(self, message: str | bytes, result: Skipped) -> None:
        """Pass a malformed event on as a rejected line, once (lock held)."""
        assert result.code is not None  # noqa: S101 - only called for malformed events
        raw = message if isinstance(message, str) else message.decode("utf-8", "surrogateescape")
        if result.time_us is not None:
            origin = f"bluesky:{result.time_us}"
        else:  # no usable time: named by its content, so a replay of it is recognised
            digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=8)
            origin = f"bluesky:no-time:{digest.hexdigest()}"
        if self._delivered(origin, result.time_us):
            return
        line = Line(raw, origin=origin, rejected=(result.code, result.reason))
        self._enqueue(Received(line, result.time_us))
        self._counts["rejected"] += 1

    def _delivered(self, key: str, time_us: int | None) -> bool:
        """Whether the post (or rejected event) ``key`` was queued already; remembers it."""
        if key in self._seen or (
            self._floor is not None and time_us is not None and time_us <= self._floor
        ):
            self._seen[key] = None
            self._seen.move_to_end(key)
            self._counts["duplicates"] += 1
            return True
        self._seen[key] = None
        if len(self._seen) > self.settings.dedup_size:
            self._seen.popitem(last=False)
        return False

    def _enqueue(self, item: Received) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._counts["dropped"] += 1
        self._queue.append(item)
        self._lock.notify_all()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _set_connected(self, *, value: bool) -> None:
        with self._lock:
            self._is_connected = value

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            self._lock.notify_all()
        # Whoever runs the source reports the error (one line); the details go here.
        logger.debug("Jetstream source failed: %s", error, exc_info=error)


def _http(status: int) -> str:
    """``HTTP 404 Not Found``: a status and, when it is a known one, its phrase."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


# The bytewax source


class _JetstreamPartition(PollingPartition[Line, int | None]):
    def __init__(
        self,
        stream: JetstreamStream,
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
        self._key = jetstream_key(stream.settings.url)

    @override
    def fetch(self) -> list[Line]:
        items = self._stream.take(self._batch)
        if not items:
            if self._stream.error is not None:
                raise self._stream.error
            if self._stream.stopped:
                raise StopIteration
        for item in items:
            if item.time_us is not None:
                self._last = item.time_us if self._last is None else max(self._last, item.time_us)
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


class JetstreamSource(FixedPartitionedSource[Line, int | None]):
    """The posts of a :class:`JetstreamStream` as a bytewax input (one partition, ``"bluesky"``).

    Building the partition starts the stream, from the resume state if there
    is one (the ``time_us`` of the last post emitted); closing it stops the
    stream. The partition ends when the stream is stopped and its queue is
    empty, and raises :class:`JetstreamRefused` if Jetstream refused it for good.

    Without a resume state (no recovery snapshot) it resumes after
    ``resume_after``, the ``time_us`` the store kept (:mod:`flows.cursors`),
    if given. It reports its position to ``positions`` under
    :attr:`cursor_key`.
    """

    def __init__(
        self,
        stream: JetstreamStream,
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
        """Where the store keeps this source's cursor: ``bluesky:<Jetstream URL>``."""
        return jetstream_key(self.stream.settings.url)

    @override
    def list_parts(self) -> list[str]:
        return ["bluesky"]

    @override
    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _JetstreamPartition:
        resume = resume_state if resume_state is not None else self.resume_after
        self.stream.start(resume_after=resume)
        return _JetstreamPartition(self.stream, self.batch_size, self.poll, resume, self.positions)


# senti capture --source bluesky


def capture(
    stream: JetstreamStream,
    out: Path,
    *,
    count: int | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Write up to ``count`` posts, for up to ``seconds``, or until ``stop``; posts written.

    The file holds the mapped envelopes, one per line (the format
    :class:`~flows.sources.replay.ReplaySource` reads). Always stops
    ``stream``; raises its error if Jetstream refused it, :class:`OSError`
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
                for item in stream.take(left, timeout=0.1):
                    if item.line.rejected is None:  # malformed events are counted, not kept
                        file.write(item.line.text + "\n")
                        written += 1
                file.flush()
    finally:
        stream.stop()
    return written


def settings_from_env(**overrides: Any) -> JetstreamSettings:
    """:class:`JetstreamSettings` from ``SENTI_JETSTREAM_*`` (and ``overrides``).

    Raises :class:`JetstreamError` naming the variable when one is invalid.
    """
    try:
        return JetstreamSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"SENTI_JETSTREAM_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise JetstreamError(problems) from None


def run_capture(out: Path, *, count: int | None = None, seconds: float | None = None) -> int:
    """:func:`capture` with settings from ``SENTI_JETSTREAM_*``; Ctrl-C/SIGTERM end it cleanly.

    Raises :class:`JetstreamError` for every problem the user can fix, in one line
    (``bluesky source: ...`` when Jetstream or its settings are the problem).
    """
    try:
        stream = JetstreamStream(settings_from_env())
    except JetstreamError as exc:
        raise JetstreamError(f"bluesky source: {exc}") from None
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            return capture(stream, out, count=count, seconds=seconds, stop=stop)
    except OSError as exc:
        raise JetstreamError(f"cannot write {out}: {exc.strerror or exc}") from None
    except JetstreamError as exc:
        raise JetstreamError(f"bluesky source: {exc}") from None
