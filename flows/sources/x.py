"""The live X source: the API v2 filtered stream through tweepy, with live rule sync.

Three parts:

* :class:`XStream` owns a tweepy :class:`~tweepy.StreamingClient` subclass
  running the stream connection on its own thread, and a second client for the
  rules endpoints. Its stream callback only puts raw lines in a bounded queue.
* :class:`XSource` is the bytewax source reading that queue: one partition,
  ``next_batch`` never blocks, an idle partition polls through ``next_awake``.
  It emits ``Line(text, origin="x:<post id>")``, the envelope as X sent it.
* :class:`XSettings` reads ``SENTI_X_*`` variables (and ``.env``).

X's stream contract, and how it is kept:

* **Rules change while connected.** :meth:`XStream.track` and
  :meth:`XStream.untrack` add and delete rules through
  ``POST /2/tweets/search/stream/rules``; the stream connection stays up and
  posts matching a new rule start to arrive on it. :meth:`XStream.reconcile`
  makes senti's ``senti:``-tagged rules equal a set of queries at start-up;
  other rules are never touched (see :mod:`flows.xrules`).
* **Keep-alives and stalls.** X sends ``\\r\\n`` every 20 s on an idle stream.
  The socket read timeout is ``stall_timeout`` (21 s): that long without a byte
  counts as a stall; the connection is dropped and made again.
* **Reconnect back-off.** tweepy's own reconnect loop (``BaseStream._connect``)
  sleeps with hard-coded waits; it is replaced by one that asks
  :class:`~flows.xbackoff.Backoff` (X's documented waits) and sleeps with an
  injectable ``sleep``. ``HTTP 400/401/403/404`` are not retried: the error is
  kept and :class:`XSource` raises it, ending the dataflow.
* **Duplicates.** A post id seen among the last ``dedup_size`` posts is dropped
  (X may resend posts after a reconnect).
* **Backpressure.** The queue holds ``queue_size`` lines; when the dataflow
  falls that far behind, the *oldest* line is dropped and counted. Blocking the
  stream thread instead would make X disconnect a slow reader, losing more.

The bearer token is sent only in the ``Authorization`` header. It is never
logged: a filter on tweepy's loggers (whose debug output prints request
headers), installed by the first :class:`XStream`, replaces it with
``[redacted]``, and every error message senti builds is scrubbed too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import requests
import tweepy
import urllib3
from bytewax.inputs import FixedPartitionedSource
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from typing_extensions import override

from flows.matching import Query
from flows.model import Line
from flows.sources.control import POLL_INTERVAL, PollingPartition, SourceError
from flows.sources.replay import MAX_LINE_BYTES
from flows.xbackoff import Backoff, BackoffPolicy, Failure
from flows.xrules import TIERS, Rule, RuleLimits, check_room, reconcile, rule_for

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
_TWEEPY_HOST: Final = "https://api.twitter.com"
"""The host tweepy 4 writes into every URL; :class:`_BaseUrlSession` swaps it."""

STREAM_PARAMS: Final[dict[str, list[str]]] = {
    "tweet_fields": ["created_at", "lang", "entities", "referenced_tweets", "author_id"],
    "expansions": ["author_id"],
    "user_fields": ["username"],
}
"""What the stream asks X for: every field :func:`flows.model.parse_line` reads."""

_FATAL_STATUSES: Final = frozenset({400, 401, 403, 404})
"""Stream statuses that no reconnect can fix (bad request, credentials, access)."""

_REDACTED: Final = "[redacted]"
_ID: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
"""What a post id used in an origin may look like (X's are digits)."""
_MAX_DETAIL: Final = 500


# Errors


class XSourceError(SourceError):
    """Root of the errors of the X source. Messages never contain the bearer token."""


class RuleRejected(XSourceError):
    """X refused a rule (invalid syntax, an operator the access level lacks...).

    Raised by :meth:`XStream.track` and :meth:`XStream.reconcile`;
    :attr:`message` is X's own explanation, :attr:`errors` its error objects.
    """

    def __init__(self, message: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


class XApiError(XSourceError):
    """A rules request failed: X unreachable, an HTTP error, or the rate limit."""


class XStreamFailed(XSourceError):
    """X refused the stream connection in a way no reconnect fixes (HTTP 401, 403...)."""


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
    """Access level whose rule limits apply (see :data:`flows.xrules.TIERS`)."""
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
class XStreamStats:
    """Counters of an :class:`XStream`, for ``/metrics``. All are totals except ``connected``."""

    connected: bool = False
    """Whether the stream connection is up now (a gauge)."""
    connections: int = 0
    """Stream connections established (HTTP 200)."""
    reconnects: int = 0
    """Connection attempts after the first."""
    stalls: int = 0
    """Connections dropped after ``stall_timeout`` of silence."""
    rule_changes: int = 0
    """Rules added or deleted."""
    received: int = 0
    """Lines queued for the dataflow."""
    dropped: int = 0
    """Lines dropped because the queue was full (the oldest go first)."""
    duplicates: int = 0
    """Posts dropped because their id was seen recently."""
    stream_errors: int = 0
    """Error messages X sent on the stream (e.g. an operational disconnect)."""


# Plumbing


class _Redact(logging.Filter):
    """Replaces registered secrets in the records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._installed = False

    def add(self, secret: str) -> None:
        """Redact ``secret`` from now on (the filter is installed on first use)."""
        with self._lock:
            self._secrets.add(secret)
            if not self._installed:
                for name in _TWEEPY_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        found = [secret for secret in self._secrets if secret in message]
        if found:
            for secret in found:
                message = message.replace(secret, _REDACTED)
            record.msg, record.args = message, None
        return True


_TWEEPY_LOGGERS: Final = ("tweepy.client", "tweepy.streaming")
"""tweepy's loggers; ``tweepy.client`` logs request headers at DEBUG."""
_REDACTOR: Final = _Redact()


class _BaseUrlSession(requests.Session):
    """A session sending tweepy's requests to ``base`` instead of api.twitter.com.

    tweepy 4 builds each URL from a hard-coded host (``BaseClient.request``);
    rewriting the prepared request is the one override that keeps tweepy's own
    request, error and response handling.
    """

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    @override
    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        url = prepared.url or ""
        if self.base != _TWEEPY_HOST and url.startswith(_TWEEPY_HOST + "/"):
            prepared.url = self.base + url[len(_TWEEPY_HOST) :]
        return prepared


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


class _LineSplitter:
    """Splits a byte stream on ``\\n``, dropping one ``\\r`` before it; bounds line length."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._buffer += chunk
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:  # the tail of an overlong line
                self._skipping = False
                continue
            yield line.removesuffix(b"\r")
        if len(self._buffer) > MAX_LINE_BYTES:
            # Pass the head on (the parser rejects it) and skip the rest.
            yield bytes(self._buffer[:MAX_LINE_BYTES])
            self._buffer.clear()
            self._skipping = True


def _problem(response: requests.Response) -> str:
    """X's explanation of an HTTP error (title and detail), bounded."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(body, dict):
        return response.reason or ""
    parts = [str(body[name]) for name in ("title", "detail") if body.get(name)]
    parts += _messages(body.get("errors") or [])
    return "; ".join(dict.fromkeys(parts))[:_MAX_DETAIL] or (response.reason or "")


def _status_line(status: int, reason: str | None) -> str:
    """``HTTP 401 Unauthorized``."""
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def _rules_failure(exc: tweepy.HTTPException) -> str:
    """One line for a failed rules request: the status, then X's messages if they add any."""
    response = exc.response
    reason = getattr(response, "reason", None)
    status = _status_line(getattr(response, "status_code", 0), reason)
    extra = [m for m in dict.fromkeys(map(str, exc.api_messages)) if m and m != reason]
    detail = f": {'; '.join(extra)}" if extra else ""
    return " ".join(f"X refused the rules request ({status}){detail}".split())[:_MAX_DETAIL]


def _messages(errors: Iterable[Any]) -> list[str]:
    """Readable messages of X error objects (``details``, ``detail``, ``message``, ``title``)."""
    found: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            found.append(str(error))
            continue
        details = error.get("details")
        if isinstance(details, list) and details:
            found.extend(str(detail) for detail in details)
        elif error.get("detail") or error.get("message"):
            found.append(str(error.get("detail") or error.get("message")))
        elif error.get("title"):
            found.append(str(error["title"]))
    return found


def _peek(text: str) -> tuple[str | None, list[Any] | None]:
    """A stream line's post id, and its errors if it is an error message without a post."""
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    data = envelope.get("data")
    if isinstance(data, dict):
        post_id = data.get("id")
        return (post_id if isinstance(post_id, str) and post_id else None), None
    errors = envelope.get("errors")
    return None, (errors if isinstance(errors, list) else None)


# The stream connection


class _StreamClient(tweepy.StreamingClient):  # type: ignore[misc]  # tweepy is untyped
    """tweepy's streaming client with senti's connection loop and callbacks.

    ``filter(threaded=True)`` processes the parameters and starts the thread as
    usual; :meth:`_connect` replaces ``BaseStream._connect`` so that reconnects
    use X's documented back-off with an injectable sleep, a silent connection
    times out after ``stall_timeout``, and a connection can be aborted at once.
    """

    def __init__(self, owner: XStream, bearer_token: str, session: requests.Session) -> None:
        super().__init__(bearer_token, daemon=True)
        self.session = session
        self._owner = owner
        self._response: requests.Response | None = None
        self._response_lock = threading.Lock()

    # Connection loop (replaces tweepy's BaseStream._connect)

    def _connect(
        self, method: str, endpoint: str, params: dict[str, Any] | None = None, **_: Any
    ) -> None:
        owner = self._owner
        url = f"{owner.settings.api_base}/2/tweets/{endpoint}/stream"
        headers = {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}
        self.running = True
        try:
            first = True
            while self.running:
                if not first:
                    owner._count("reconnects")
                first = False
                failure = self._attempt(method, url, params, headers)
                if failure is None or not self.running:
                    break
                owner._backoff_wait(failure)
        except Exception as exc:
            self.on_exception(exc)
        finally:
            self.session.close()
            self.running = False
            self.on_disconnect()

    def _attempt(
        self, method: str, url: str, params: dict[str, Any] | None, headers: dict[str, str]
    ) -> Failure | None:
        """One connection, read until it ends; the failure, or ``None`` when stopping."""
        settings = self._owner.settings
        try:
            with self.session.request(
                method,
                url,
                params=params,
                headers=headers,
                timeout=(settings.connect_timeout, settings.stall_timeout),
                stream=True,
            ) as response:
                self._hold(response)
                if self._stopping():
                    return None
                if response.status_code != 200:
                    return self._refused(response)
                self.on_connect()
                return self._read(response)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
            ssl.SSLError,
            OSError,
        ) as exc:
            if self._stopping():
                return None
            if _is_timeout(exc):
                self._owner._stalled()
            else:
                self.on_connection_error()
                logger.warning(
                    "X stream connection error: %s", self._owner._scrub(type(exc).__name__)
                )
            return Failure.NETWORK
        finally:
            self._hold(None)

    def _read(self, response: requests.Response) -> Failure | None:
        """Pass on the lines of an open stream until X closes it (a network failure)."""
        lines = _LineSplitter()
        for chunk in response.iter_content(chunk_size=self.chunk_size):
            for line in lines.feed(chunk):
                if line:
                    self.on_data(line)
                else:
                    self.on_keep_alive()
            if self._stopping():
                return None
        if self._stopping():
            return None
        self.on_closed(response)
        return Failure.NETWORK

    def _stopping(self) -> bool:
        """Whether :meth:`disconnect` was called (from any thread)."""
        return not self.running

    def _refused(self, response: requests.Response) -> Failure | None:
        status = response.status_code
        self.on_request_error(status)
        detail = self._owner._scrub(_problem(response))
        if status in _FATAL_STATUSES:
            reason = _status_line(status, response.reason)
            self._owner._fail(XStreamFailed(f"X refused the stream ({reason}): {detail}"))
            self.running = False
            return None
        logger.warning("X stream refused with HTTP %d: %s", status, detail)
        return Failure.RATE_LIMIT if status == 429 else Failure.HTTP

    def _hold(self, response: requests.Response | None) -> None:
        with self._response_lock:
            self._response = response
        if response is not None and not self.running:
            self.abort()

    def abort(self) -> None:
        """Shut down the current connection's socket, waking a blocked read (any thread)."""
        with self._response_lock:
            response = self._response
        if response is None:
            return
        connection = getattr(response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    # tweepy's callbacks

    def on_connect(self) -> None:
        self._owner._connected()

    def on_data(self, raw_data: bytes) -> None:
        """Queue the raw line; no parsing into tweepy objects (the dataflow parses)."""
        self._owner._on_line(raw_data)

    def on_keep_alive(self) -> None:
        pass  # the read timeout measures silence; a keep-alive only resets it

    def on_request_error(self, status_code: int) -> None:
        self._owner._disconnected()

    def on_connection_error(self) -> None:
        self._owner._disconnected()

    def on_closed(self, response: requests.Response) -> None:
        self._owner._disconnected()
        logger.warning("X closed the stream connection")

    def on_errors(self, errors: Any) -> None:
        self._owner._count("stream_errors")
        detail = self._owner._scrub("; ".join(_messages(errors)))  # then cut: no token part
        logger.warning("X stream error: %s", detail[:_MAX_DETAIL])

    def on_exception(self, exception: Exception) -> None:
        self._owner._fail(exception)
        logger.error("X stream failed: %s", self._owner._scrub(repr(exception)))

    def on_disconnect(self) -> None:
        self._owner._disconnected()
        logger.info("X stream disconnected")


# The stream and its rules


class XStream:
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

    def __init__(
        self,
        settings: XSettings,
        *,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if settings.bearer_token is None or not settings.bearer_token.get_secret_value():
            raise XSourceError("no X bearer token: set SENTI_X_BEARER_TOKEN")
        self.settings = settings
        self.limits = settings.limits()
        self._token = settings.bearer_token.get_secret_value()
        self._backoff = Backoff(backoff)
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        _REDACTOR.add(self._token)

        # Stream thread -> dataflow
        self._lock = threading.Condition()
        self._lines: deque[Line] = deque(maxlen=settings.queue_size)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._unnamed = 0
        self._counts = dict.fromkeys(
            (
                "connections",
                "reconnects",
                "stalls",
                "rule_changes",
                "received",
                "dropped",
                "duplicates",
                "stream_errors",
            ),
            0,
        )
        self._is_connected = False
        self.error: BaseException | None = None
        """What ended the stream, if it failed; :class:`XSource` raises it."""

        # Clients: one for the stream connection (its own thread), one for rules.
        self._client: _StreamClient | None = None
        self._rules_lock = threading.Lock()
        self._rules_client = tweepy.StreamingClient(self._token, return_type=tweepy.Response)
        self._rules_client.session = _BaseUrlSession(settings.api_base)
        self._ours: dict[str, Rule] = {}
        """senti's rules by query key; ``id=None`` when another rule has the same value."""
        self._rule_count: int | None = None
        """Rules on the stream (everyone's), once loaded."""

    # Lifecycle

    def start(self) -> None:
        """Connect the stream on its own thread, if not already started."""
        with self._lock:
            if self._client is not None or self._stopping.is_set():
                return
            self._client = _StreamClient(self, self._token, _BaseUrlSession(self.settings.api_base))
        self._client.filter(threaded=True, **STREAM_PARAMS)

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect and wait (up to ``timeout`` seconds) for the stream thread; idempotent."""
        self._stopping.set()
        client = self._client
        if client is not None:
            client.disconnect()
            client.abort()
            if client.thread is not None:
                client.thread.join(timeout)
        with self._lock:
            self._lock.notify_all()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called or the stream failed."""
        return self._stopping.is_set() or self.error is not None

    @property
    def running(self) -> bool:
        """Whether the stream thread is alive."""
        client = self._client
        return client is not None and client.thread is not None and client.thread.is_alive()

    def stats(self) -> XStreamStats:
        """A snapshot of the counters."""
        with self._lock:
            return XStreamStats(connected=self._is_connected, **self._counts)

    # Lines, for XSource and capture

    def take(self, limit: int, timeout: float = 0.0) -> list[Line]:
        """Up to ``limit`` queued lines, oldest first; waits up to ``timeout`` s for the first."""
        with self._lock:
            if not self._lines and timeout > 0 and not self.stopped:
                self._lock.wait(timeout)
            count = min(limit, len(self._lines))
            return [self._lines.popleft() for _ in range(count)]

    # Rules

    def rules(self) -> list[Rule]:
        """Every rule on the stream (senti's and others'), as X lists them."""
        with self._rules_lock:
            return self._get_rules()

    def reconcile(self, queries: Iterable[Query]) -> None:
        """Make senti's rules exactly one per query: delete stale ``senti:`` rules, add missing.

        Rules without a ``senti:`` tag are left alone. Raises
        :class:`~flows.xrules.RuleError` if the queries do not fit X's limits,
        :class:`RuleRejected` if X refuses a rule (checked with a dry run
        before any is added), :class:`XApiError` if a request fails.
        """
        wanted = list(queries)
        with self._rules_lock:
            self._rule_count = None  # unknown until this succeeds
            existing = self._get_rules()
            sync = reconcile(existing, wanted, lang=self.settings.lang, limits=self.limits)
            if sync.to_delete:  # stale whatever happens next
                self._delete(sync.to_delete)
            added: dict[str, Rule] = {}
            if sync.to_add:
                self._add(sync.to_add, dry_run=True)
                added = self._add(sync.to_add)
            gone = set(sync.to_delete)
            kept = [rule for rule in existing if rule.id not in gone]
            self._ours = {rule.key: rule for rule in kept if rule.key is not None}
            self._ours.update(added)
            self._rule_count = len(kept) + sum(1 for rule in added.values() if rule.id)
        logger.info(
            "X rules reconciled",
            extra={"deleted": len(sync.to_delete), "added": len(sync.to_add)},
        )

    def track(self, query: Query) -> None:
        """Add the rule for ``query`` unless senti has it already; the stream stays connected.

        The rule is checked with a dry run first. Raises
        :class:`~flows.xrules.RuleError` when X's limits leave no room or the
        rule is too long, :class:`RuleRejected` (with X's message) when X
        refuses it, :class:`XApiError` when a request fails.
        """
        rule = rule_for(query, lang=self.settings.lang, limits=self.limits)
        with self._rules_lock:
            if query.key in self._ours:
                return
            if self._rule_count is None:
                self._load()
                if query.key in self._ours:
                    return
            check_room(self._rule_count or 0, limits=self.limits)
            self._add([rule], dry_run=True)
            added = self._add([rule])
            self._ours.update(added)
            self._rule_count = (self._rule_count or 0) + sum(1 for r in added.values() if r.id)
        logger.info("X rule added", extra={"query": query.key})

    def untrack(self, key: str) -> None:
        """Delete the rule for the query with canonical key ``key``, if senti added one.

        Raises :class:`XApiError` when the request fails (the rule is kept).
        """
        with self._rules_lock:
            rule = self._ours.get(key)
            if rule is None:
                return
            if rule.id is not None:
                self._delete([rule.id])
                self._rule_count = max((self._rule_count or 1) - 1, 0)
            del self._ours[key]
        logger.info("X rule deleted", extra={"query": key})

    def _load(self) -> None:
        existing = self._get_rules()
        self._ours = {rule.key: rule for rule in existing if rule.key is not None}
        self._rule_count = len(existing)

    def _get_rules(self) -> list[Rule]:
        rules: list[Rule] = []
        params: dict[str, Any] = {}
        while True:
            response = self._call(self._rules_client.get_rules, **params)
            rules += [
                Rule(value=rule.value, tag=rule.tag, id=str(rule.id))
                for rule in response.data or ()
            ]
            token = (response.meta or {}).get("next_token")
            if not token:
                return rules
            params = {"pagination_token": token}

    def _add(self, rules: Sequence[Rule], *, dry_run: bool = False) -> dict[str, Rule]:
        """Add ``rules``; the added ones by query key (``id=None`` for a duplicate of another's)."""
        stream_rules = [tweepy.StreamRule(value=rule.value, tag=rule.tag) for rule in rules]
        extra = {"dry_run": "true"} if dry_run else {}
        response = self._call(self._rules_client.add_rules, stream_rules, **extra)
        duplicates: dict[str, str] = {}
        problems = []
        for error in response.errors or ():
            if isinstance(error, dict) and error.get("title") == "DuplicateRule":
                duplicates[str(error.get("value"))] = str(error.get("id") or "")
            else:
                problems.append(error)
        if problems:
            raise RuleRejected(self._scrub(self._rejection(problems)), problems)
        if dry_run:
            return {}
        added: dict[str, Rule] = {}
        for rule in response.data or ():
            stored = Rule(value=rule.value, tag=rule.tag, id=str(rule.id))
            if stored.key is not None:
                added[stored.key] = stored
                self._count("rule_changes")
        for rule in rules:
            if rule.key is not None and rule.key not in added and rule.value in duplicates:
                # Another rule has this exact value: its posts arrive anyway.
                added[rule.key] = Rule(value=rule.value, tag=rule.tag, id=None)
        return added

    def _delete(self, ids: Sequence[str]) -> None:
        response = self._call(self._rules_client.delete_rules, list(ids))
        missing = [error for error in response.errors or () if isinstance(error, dict)]
        if missing:  # already gone is fine: that is what was wanted
            logger.info("X rules already deleted: %s", self._scrub("; ".join(_messages(missing))))
        summary = (response.meta or {}).get("summary") or {}
        self._count("rule_changes", int(summary.get("deleted", len(ids) - len(missing))))

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A tweepy rules request, its failures turned into senti's errors (token scrubbed)."""
        try:
            return method(*args, **kwargs)
        except tweepy.BadRequest as exc:
            messages = exc.api_messages or _messages(exc.api_errors) or [str(exc)]
            raise RuleRejected(self._scrub("; ".join(messages)), exc.api_errors) from None
        except tweepy.HTTPException as exc:
            raise XApiError(self._scrub(_rules_failure(exc))) from None
        except requests.RequestException as exc:
            raise XApiError(
                self._scrub(f"cannot reach X at {self.settings.api_base}: {type(exc).__name__}")
            ) from None

    @staticmethod
    def _rejection(errors: Sequence[Any]) -> str:
        values = [str(e["value"]) for e in errors if isinstance(e, dict) and e.get("value")]
        about = f" {values[0]!r}" if len(values) == 1 else ""
        return f"X rejected the rule{about}: " + "; ".join(_messages(errors))

    # Called from the stream thread

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _connected(self) -> None:
        self._backoff.reset()
        with self._lock:
            self._is_connected = True
            self._counts["connections"] += 1
        logger.info("X stream connected")

    def _disconnected(self) -> None:
        with self._lock:
            self._is_connected = False

    def _stalled(self) -> None:
        self._disconnected()
        self._count("stalls")
        logger.warning(
            "X stream stalled: nothing for %.1f s, reconnecting", self.settings.stall_timeout
        )

    def _backoff_wait(self, failure: Failure) -> None:
        wait = self._backoff.next_wait(failure)
        logger.info("X stream reconnecting in %.2f s after a %s failure", wait, failure.value)
        self._sleep(wait)

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            self._lock.notify_all()

    def _on_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="surrogateescape")
        post_id, errors = _peek(text)
        if post_id is None and errors is not None:
            self._client_errors(errors)
            return
        with self._lock:
            if post_id is not None:
                if post_id in self._seen:
                    self._seen.move_to_end(post_id)
                    self._counts["duplicates"] += 1
                    return
                self._seen[post_id] = None
                if len(self._seen) > self.settings.dedup_size:
                    self._seen.popitem(last=False)
            if post_id is not None and _ID.fullmatch(post_id):
                origin = f"x:{post_id}"
            else:  # no id, or one no post has (X's are digits): the line's number names it
                self._unnamed += 1
                origin = f"x:line-{self._unnamed}"
            if len(self._lines) == self._lines.maxlen:
                self._counts["dropped"] += 1
            self._lines.append(Line(text, origin=origin))
            self._counts["received"] += 1
            self._lock.notify_all()

    def _client_errors(self, errors: list[Any]) -> None:
        client = self._client
        if client is not None:
            client.on_errors(errors)


# The bytewax source


class _XPartition(PollingPartition[Line, None]):
    def __init__(self, stream: XStream, batch: int, poll: timedelta) -> None:
        self._stream = stream
        self._batch = batch
        self.poll = poll

    @override
    def fetch(self) -> list[Line]:
        batch = self._stream.take(self._batch)
        if not batch:
            if self._stream.error is not None:
                raise self._stream.error
            if self._stream.stopped:
                raise StopIteration
        return batch

    @override
    def snapshot(self) -> None:
        # Not resumable: X's stream cannot be rewound (backfill needs Enterprise).
        return None

    @override
    def close(self) -> None:
        self._stream.stop()


class XSource(FixedPartitionedSource[Line, None]):
    """The lines of an :class:`XStream` as a bytewax input (one partition, ``"x"``).

    Building the partition starts the stream; closing it (end of the flow)
    stops it. The partition ends when the stream is stopped and its queue is
    empty, and raises the stream's error if X refused it for good.
    """

    def __init__(
        self, stream: XStream, *, batch_size: int = 1000, poll: timedelta = POLL_INTERVAL
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.stream = stream
        self.batch_size = batch_size
        self.poll = poll

    @override
    def list_parts(self) -> list[str]:
        return ["x"]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _XPartition:
        self.stream.start()
        return _XPartition(self.stream, self.batch_size, self.poll)
