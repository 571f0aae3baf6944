"""The live X source: the API v2 filtered stream through tweepy, with live rule sync.

:class:`XStream` extends :class:`~flows.sources.live.LiveStream` (the queue,
duplicates, counters, reconnects and failures every live source shares); what
is X's own is here, and what X's answers mean is in :mod:`flows.platforms.x_wire`:

* **The connection.** Each connection is one call of tweepy's documented
  :meth:`tweepy.StreamingClient.filter`. Every callback that ends a connection
  (``on_closed``, ``on_request_error``, ``on_connection_error``,
  ``on_exception``) disconnects the client, so tweepy's own loop, whose waits
  are fixed, never reconnects: the live base does, with X's documented
  back-off (:class:`~flows.platforms.x_backoff.Backoff`) and an injectable ``sleep``.
  ``HTTP 400/401/403/404`` are not retried: :class:`XStreamFailed` ends the
  dataflow. Waits start over once X answers HTTP 200.
* **Rules change while connected.** :meth:`XStream.track` and
  :meth:`XStream.untrack` add and delete rules through
  ``POST /2/tweets/search/stream/rules``; the stream connection stays up and
  posts matching a new rule start to arrive on it. :meth:`XStream.reconcile`
  makes senti's ``senti:``-tagged rules equal a set of queries at start-up;
  other rules are never touched (:class:`~flows.sources.x_api.XRules` sends
  them, :mod:`flows.platforms.x_rules` writes them).
* **Keep-alives and stalls.** X sends ``\\r\\n`` every 20 s on an idle stream.
  The socket read timeout is ``stall_timeout`` (21 s): that long without a byte
  counts as a stall; the connection is dropped and made again.
* **Lines.** Each line is queued as X sent it (cut at
  :data:`~flows.sources.replay.MAX_LINE_BYTES`), named ``x:<post id>``; a post
  id among the last ``dedup_size`` is dropped (X may resend posts after a
  reconnect). Error messages without a post are counted, not queued. The
  queue holds ``queue_size`` lines and drops the oldest beyond that.

:class:`XSource` is the bytewax input (one partition, ``"x"``; not resumable:
X's stream cannot be rewound). :class:`XSettings` reads ``SENTI_X_*``. The
errors (:class:`XSourceError` and its subclasses) are in
:mod:`flows.sources.x_api` and importable from here.

The bearer token is sent only in the ``Authorization`` header. It is never
logged: a filter on tweepy's loggers (whose debug output prints request
headers), installed by the first :class:`XStream`, replaces it with
``[redacted]``, and every error message senti builds is scrubbed too.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import requests
import tweepy
import urllib3
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from typing_extensions import override

from flows.model import Line
from flows.platforms.x_backoff import BackoffPolicy, Failure
from flows.platforms.x_rules import TIERS, Rule, RuleLimits
from flows.platforms.x_wire import (
    FATAL_STATUSES,
    MAX_DETAIL,
    STREAM_PARAMS,
    messages,
    origin,
    peek,
    problem,
    status_line,
)
from flows.routing.matching import Query
from flows.sources.control import POLL_INTERVAL
from flows.sources.live import LiveSource, LiveStats, LiveStream
from flows.sources.replay import MAX_LINE_BYTES
from flows.sources.x_api import (
    RuleRejected,
    Session,
    XApiError,
    XRules,
    XSourceError,
    XStreamFailed,
    scrub,
)

__all__ = [
    "DEFAULT_API_BASE",
    "STREAM_PARAMS",
    "RuleRejected",
    "XApiError",
    "XSettings",
    "XSource",
    "XSourceError",
    "XStream",
    "XStreamFailed",
    "XStreamStats",
]

logger = logging.getLogger("senti.x")

DEFAULT_API_BASE: Final = "https://api.twitter.com"

_READ_SIZE: Final = 1 << 16
"""Bytes per read of the stream. X sends it chunked, and urllib3 hands each chunk
over as it comes, so reading more adds no wait (tweepy's 512 would); it keeps
requests' line splitting, which joins the reads of a line, fast for long lines."""


# Errors


class _Refused(Exception):
    """X answered the stream request with an HTTP error (raised to the live base)."""

    def __init__(self, status: int, reason: str | None, detail: str) -> None:
        super().__init__(status_line(status, reason))
        self.status = status
        self.reason = reason
        self.detail = detail


class _Closed(ConnectionError):
    """X ended the stream response (a network failure: reconnect)."""


# Settings


class XSettings(BaseSettings):
    """The X source's options; each field is also ``SENTI_X_<NAME>`` (or in ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="SENTI_X_", env_file=".env", extra="ignore", validate_default=True
    )

    # Credentials and endpoint
    bearer_token: SecretStr | None = None
    """The app's bearer token (``SENTI_X_BEARER_TOKEN``); required to connect."""
    api_base: str = DEFAULT_API_BASE
    """Scheme and host of the API (``SENTI_X_API_BASE``), e.g. a local fake in tests."""

    # Limits
    tier: Literal["essential", "basic", "pro"] = "essential"
    """Access level whose rule limits apply (see :data:`flows.platforms.x_rules.TIERS`)."""
    max_rules: int | None = Field(default=None, ge=1)
    """Overrides the tier's rules per stream."""
    max_rule_chars: int | None = Field(default=None, ge=1)
    """Overrides the tier's characters per rule."""
    lang: str | None = None
    """Only posts in this language (adds ``lang:xx`` to every rule)."""

    # Timeouts
    stall_timeout: float = Field(default=21.0, gt=0)
    """Seconds without data or keep-alive before the stream counts as stalled."""
    connect_timeout: float = Field(default=10.0, gt=0)

    # Buffers
    queue_size: int = Field(default=10_000, ge=1)
    """Lines held for the dataflow; the oldest is dropped beyond this."""
    dedup_size: int = Field(default=10_000, ge=1)
    """Recent post ids remembered to drop duplicates."""

    @field_validator("api_base")
    @classmethod
    def _check_base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_base must be an http(s) URL such as https://api.twitter.com")
        return value.rstrip("/")

    def limits(self) -> RuleLimits:
        """The tier's limits with any override applied."""
        tier = TIERS[self.tier]
        return RuleLimits(
            max_rules=self.max_rules or tier.max_rules,
            max_rule_chars=self.max_rule_chars or tier.max_rule_chars,
        )


@dataclass(frozen=True, slots=True)
class XStreamStats(LiveStats):
    """Counters of an :class:`XStream`, for ``/metrics``: the live ones, and X's own."""

    stalls: int = 0
    """Connections dropped after ``stall_timeout`` of silence."""
    rule_changes: int = 0
    """Rules added or deleted."""
    stream_errors: int = 0
    """Error messages X sent on the stream (e.g. an operational disconnect)."""

    @property
    def received(self) -> int:
        """Lines queued for the dataflow (``posts``: the dataflow parses and rejects)."""
        return self.posts


# Plumbing


def _is_timeout(exc: BaseException) -> bool:
    """Whether a requests/urllib3 error is a read or connect timeout (a stall)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.Timeout | urllib3.exceptions.TimeoutError | socket.timeout):
            return True
        inner = current.args[0] if current.args else None
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return False


def _body(response: requests.Response | None) -> object:
    """An error response's JSON body, or ``None``."""
    try:
        return None if response is None else response.json()
    except ValueError:
        return None


# The stream connection


class _Connection(tweepy.StreamingClient):  # type: ignore[misc]  # tweepy is untyped
    """One stream connection: a ``filter()`` call that returns when the connection ends.

    Each callback that ends it records why in :attr:`ended` and disconnects,
    which ends tweepy's loop before it sleeps or reconnects.
    """

    def __init__(self, owner: XStream, session: Session) -> None:
        super().__init__(owner._token, chunk_size=_READ_SIZE, daemon=True, max_retries=0)
        self.session = session
        self.ended: Exception | None = None
        """Why the connection ended (``None``: disconnected by :meth:`close`)."""
        self._owner = owner

    def close(self) -> None:
        """End the connection from any thread, at once."""
        self.disconnect()
        self.session.abort()

    def _end(self, error: Exception) -> None:
        if self.ended is None:
            self.ended = error
        self.disconnect()

    def on_connect(self) -> None:
        if self._owner._hold(self.close):
            self._owner._connected()
            logger.info("X stream connected")

    def on_data(self, raw_data: bytes) -> None:
        """Queue the raw line; no parsing into tweepy objects (the dataflow parses)."""
        errors = self._owner._on_line(raw_data)
        if errors is not None:
            self.on_errors(errors)

    def on_keep_alive(self) -> None:
        pass  # the read timeout measures silence; a keep-alive only resets it

    def on_errors(self, errors: Any) -> None:
        self._owner._count("stream_errors")
        detail = scrub("; ".join(messages(errors)))  # then cut: no token part
        logger.warning("X stream error: %s", detail[:MAX_DETAIL])

    def on_closed(self, response: requests.Response) -> None:
        self._end(_Closed("X closed the stream connection"))

    def on_request_error(self, status_code: int) -> None:
        response = self.session.response
        reason = None if response is None else response.reason
        detail = scrub(problem(_body(response), reason or ""))
        self._end(_Refused(status_code, reason, detail))

    def on_connection_error(self) -> None:
        error = sys.exception()  # tweepy calls this while handling the error
        self._end(error if isinstance(error, Exception) else ConnectionError())

    def on_exception(self, exception: Exception) -> None:
        self._end(exception)

    def on_disconnect(self) -> None:
        pass  # the live base keeps the connected gauge


# The stream and its rules


class XStream(LiveStream["XSettings"]):
    """The X filtered stream: one connection on its own thread, and live rule sync.

    Lifecycle: :meth:`start` connects (idempotent), :meth:`stop` disconnects
    and joins the thread. Rule methods (:meth:`track`, :meth:`untrack`,
    :meth:`reconcile`, :meth:`rules`) block on HTTP, are thread-safe and
    serialised, and may be called before :meth:`start`; from asyncio call them
    through :func:`asyncio.to_thread`.

    ``sleep(seconds)`` waits before a reconnect (default: a wait that
    :meth:`stop` interrupts); ``backoff`` overrides X's documented waits.
    Raises :class:`XSourceError` if ``settings`` has no bearer token.
    """

    name = "x"
    counters = ("stalls", "rule_changes", "stream_errors")

    def __init__(
        self,
        settings: XSettings,
        *,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if settings.bearer_token is None or not settings.bearer_token.get_secret_value():
            raise XSourceError("no X bearer token: set SENTI_X_BEARER_TOKEN")
        super().__init__(settings, backoff=backoff, sleep=sleep)
        self.limits = settings.limits()
        self._token = settings.bearer_token.get_secret_value()
        self._unnamed = 0
        self._rules = XRules(
            self._token,
            settings.api_base,
            lang=settings.lang,
            limits=self.limits,
            changed=lambda count: self._count("rule_changes", count),
        )

    @override
    def stats(self) -> XStreamStats:
        with self._lock:
            return XStreamStats(**self._snapshot())

    def take(self, limit: int, timeout: float = 0.0) -> list[Line]:
        """Up to ``limit`` queued lines, oldest first; waits up to ``timeout`` s for the first."""
        return [item.line for item in self.drain(limit, timeout)]

    # The connection (on the stream thread)

    @override
    def _connect_and_read(self) -> None:
        settings = self.settings
        timeout = (settings.connect_timeout, settings.stall_timeout)
        connection = _Connection(self, Session(settings.api_base, timeout=timeout))
        connection.filter(**STREAM_PARAMS)
        if connection.ended is not None:
            raise connection.ended

    @override
    def _failure(self, error: Exception) -> Failure | None:
        if isinstance(error, _Refused):
            if error.status in FATAL_STATUSES:
                reason = status_line(error.status, error.reason)
                self._fail(XStreamFailed(f"X refused the stream ({reason}): {error.detail}"))
                return None
            logger.warning("X stream refused with HTTP %d: %s", error.status, error.detail)
            return Failure.RATE_LIMIT if error.status == 429 else Failure.HTTP
        if isinstance(error, _Closed):
            logger.warning("X closed the stream connection")
        elif _is_timeout(error):
            self._count("stalls")
            stall = self.settings.stall_timeout
            logger.warning("X stream stalled: nothing for %.1f s, reconnecting", stall)
        elif isinstance(error, requests.RequestException | urllib3.exceptions.HTTPError | OSError):
            logger.warning("X stream connection error: %s", scrub(type(error).__name__))
        else:
            raise error
        return Failure.NETWORK

    def _on_line(self, raw: bytes) -> list[Any] | None:
        """Queue a line as X sent it; X's errors instead when it is an error message."""
        text = raw[:MAX_LINE_BYTES].decode("utf-8", errors="surrogateescape")
        post_id, errors = peek(text)
        self._event(None)
        if post_id is None and errors is not None:
            return errors
        name = origin(post_id)
        if name is None:  # no id, or one no post has (X's are digits): the line's number
            self._unnamed += 1
            name = f"x:line-{self._unnamed}"
        self._deliver(post_id, None, Line(text, origin=name))
        return None

    # Rules (see XRules)

    def rules(self) -> list[Rule]:
        """Every rule on the stream (senti's and others'), as X lists them."""
        return self._rules.rules()

    def reconcile(self, queries: Iterable[Query]) -> None:
        """Make senti's rules exactly one per query (see :meth:`XRules.reconcile`)."""
        self._rules.reconcile(queries)

    def track(self, query: Query) -> None:
        """Add the rule for ``query``; the stream stays connected (see :meth:`XRules.track`)."""
        self._rules.track(query)

    def untrack(self, key: str) -> None:
        """Delete senti's rule for the query ``key`` (see :meth:`XRules.untrack`)."""
        self._rules.untrack(key)


# The bytewax source


class XSource(LiveSource[XStream]):
    """The lines of an :class:`XStream` as a bytewax input (one partition, ``"x"``).

    Building the partition starts the stream; closing it (end of the flow)
    stops it. The partition ends when the stream is stopped and its queue is
    empty, and raises the stream's error if X refused it for good. Not
    resumable: X's stream cannot be rewound (backfill needs Enterprise), so
    its resume state is always ``None`` and nothing is kept in the store.
    """

    part = "x"
    stream: XStream

    def __init__(
        self, stream: XStream, *, batch_size: int = 1000, poll: timedelta = POLL_INTERVAL
    ) -> None:
        super().__init__(stream, batch_size=batch_size, poll=poll)

    @property
    @override
    def cursor_key(self) -> str:
        """``x``: a name only, the X stream has no positions to keep."""
        return "x"
