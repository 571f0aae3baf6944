"""The live Bluesky source: Jetstream over a websocket, resumable by its time cursor.

Three parts, as for the X source:

* :class:`JetstreamStream` owns one websocket connection to a Jetstream
  instance (``websockets``' sync client on its own thread). Each message is
  mapped by :func:`flows.platforms.bluesky.map_message`; new posts go into a bounded
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
* **Reconnect back-off.** The waits of :class:`~flows.platforms.x_backoff.Backoff`
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
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import override
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from flows.model import Line, RejectCode
from flows.platforms.bluesky import POST_COLLECTION, Skipped, map_message
from flows.platforms.x_backoff import Failure
from flows.runtime.cursors import jetstream_key
from flows.runtime.runner import stop_on_signals
from flows.sources.control import SourceError
from flows.sources.live import (
    LiveSource,
    LiveStats,
    PositionedStream,
    Received,
    capture,
    read_settings,
)

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
    """Seconds a post's ``createdAt`` may lie after ``time_us`` (:mod:`flows.platforms.bluesky`)."""

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


JetstreamStats = LiveStats
"""Counters of a :class:`JetstreamStream` (``cursor`` is the latest ``time_us`` seen)."""


# The connection


class JetstreamStream(PositionedStream[JetstreamSettings]):
    """One Jetstream subscription on its own thread, feeding a bounded queue.

    Lifecycle: :meth:`start` connects (once), :meth:`stop` closes the
    websocket and joins the thread. ``sleep(seconds)`` waits before a
    reconnect (default: a wait :meth:`stop` interrupts); ``backoff``
    overrides the waits. Nothing connects before :meth:`start`.
    """

    name = "jetstream"

    @property
    def _margin_us(self) -> int:
        return round(self.settings.cursor_margin * 1_000_000)

    @override
    def start(self, *, resume_after: int | None = None, configured: int | None = None) -> None:
        """Connect on a new thread, if not already started.

        ``resume_after`` is the ``time_us`` of the last post delivered before a
        restart: the stream rewinds the margin before it and drops what it had
        already delivered. Without it, it starts at ``settings.cursor`` (live
        when unset).
        """
        super().start(
            resume_after=resume_after,
            configured=self.settings.cursor if configured is None else configured,
        )

    @override
    def _start_position(self, resume_after: int | None, configured: int | None) -> int | None:
        if resume_after is not None:
            return max(resume_after - self._margin_us, 0)
        return configured

    def _resume_cursor(self) -> int | None:
        with self._lock:
            if self._cursor is None:
                return self._start_cursor
            return max(self._cursor - self._margin_us, 0)

    @override
    def _endpoint(self) -> str:
        return self.settings.url

    @override
    def _failure(self, error: Exception) -> Failure | None:
        if isinstance(error, InvalidStatus):
            return self._refused(error.response.status_code)
        if isinstance(error, InvalidURI):
            self._fail(JetstreamRefused(f"invalid Jetstream URL: {error}"))
            return None
        if isinstance(error, (OSError, WebSocketException)):  # ConnectionClosed, TimeoutError
            self._lost(error)
            return Failure.NETWORK
        raise error

    @override
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
            if self._hold(ws.close):
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

    def _refused(self, status: int) -> Failure | None:
        if status in _FATAL_STATUSES:
            self._fail(JetstreamRefused(f"Jetstream refused the connection ({_http(status)})"))
            return None
        self._retrying(f"Jetstream refused the connection ({_http(status)})")
        return Failure.RATE_LIMIT if status == 429 else Failure.HTTP

    def _on_message(self, message: str | bytes) -> None:
        result = map_message(
            message, langs=self.settings.langs, max_ahead=timedelta(seconds=self.settings.max_ahead)
        )
        if isinstance(result, Skipped) and result.code is RejectCode.INTERNAL:
            logger.warning("Jetstream event not mapped: %s", result.reason)
        self._event(result.time_us)
        if isinstance(result, Skipped) and result.code is None:
            self._skip(result.reason)
            return
        if isinstance(result, Skipped):
            self._queue_rejected(message, result)
            return
        origin = f"bluesky:{result.time_us}"
        self._deliver(result.post_id, result.time_us, Line(result.line(), origin=origin))

    def _queue_rejected(self, message: str | bytes, result: Skipped) -> None:
        """Pass a malformed event on as a rejected line, once."""
        assert result.code is not None  # noqa: S101 - only called for malformed events
        raw = message if isinstance(message, str) else message.decode("utf-8", "surrogateescape")
        if result.time_us is not None:
            origin = f"bluesky:{result.time_us}"
        else:  # no usable time: named by its content, so a replay of it is recognised
            digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=8)
            origin = f"bluesky:no-time:{digest.hexdigest()}"
        self._reject(origin, result.time_us, raw, result.code, result.reason)


def _http(status: int) -> str:
    """``HTTP 404 Not Found``: a status and, when it is a known one, its phrase."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


# The bytewax source


class JetstreamSource(LiveSource[JetstreamStream]):
    """The posts of a :class:`JetstreamStream` as a bytewax input (one partition, ``"bluesky"``).

    Building the partition starts the stream, from the resume state if there
    is one (the ``time_us`` of the last post emitted); closing it stops the
    stream. The partition ends when the stream is stopped and its queue is
    empty, and raises :class:`JetstreamRefused` if Jetstream refused it for good.

    Without a resume state (no recovery snapshot) it resumes after
    ``resume_after``, the ``time_us`` the store kept (:mod:`flows.runtime.cursors`),
    if given. It reports its position to ``positions`` under
    :attr:`cursor_key`.
    """

    part = "bluesky"

    @property
    @override
    def cursor_key(self) -> str:
        """Where the store keeps this source's cursor: ``bluesky:<Jetstream URL>``."""
        return jetstream_key(self.stream.settings.url)


# senti capture --source bluesky


def settings_from_env(**overrides: Any) -> JetstreamSettings:
    """:class:`JetstreamSettings` from ``SENTI_JETSTREAM_*`` (and ``overrides``).

    Raises :class:`JetstreamError` naming the variable when one is invalid.
    """
    return read_settings(JetstreamSettings, JetstreamError, **overrides)


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
