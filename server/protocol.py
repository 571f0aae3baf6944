"""The senti WebSocket protocol, sans-I/O: parse client messages, keep state, build replies.

Nothing here touches a socket, an event loop, bytewax or the ``websockets``
library. ``server/app.py`` owns the connections and feeds each one's frames to
a :class:`Session`; the session answers with an :class:`Outcome` saying what to
send back to that client and which queries it started or stopped tracking.
Items from the dataflow are encoded once with :func:`encode_post` or
:func:`encode_window` and the same text is broadcast to every interested
connection.

Two dialects share the endpoint ``/track`` (see ``docs/protocol.md``):

* :attr:`Dialect.V1` (no subprotocol) is the original protocol: the client
  sends ``{"track": "query"}`` or ``{"track": null}`` and receives only
  ``{"polarityIndex": 0|1|2, "hashtags": {...}}`` messages, plus errors; posts
  senti does not score (their language) are not sent.
* :attr:`Dialect.V2` (subprotocol :data:`SUBPROTOCOL_V2`) has typed messages:
  several queries per connection, acknowledgements, per-post details and
  window summaries.

Client messages are decoded by msgspec into the Structs below, which forbid
unknown fields; a message that does not fit raises :class:`ProtocolError`
with a stable, kebab-case :class:`ErrorCode`, and the :class:`Session` turns
that into an error reply. No protocol error closes the connection: close codes
(:class:`CloseCode`) are the server's business (authentication, origin, size,
capacity, shutdown).

One module of about 800 lines on purpose, like websockets' own protocol
module: every message type, its validation and its encoding are read
together, and none of it does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeAlias, overload

import msgspec

from flows.alerts import Alert
from flows.errors import SentiError
from flows.model import Match, WindowSummary, format_time
from flows.routing.matching import InvalidQuery, Query, parse_query

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_ECHO_CHARS",
    "MAX_REQUEST_ID_CHARS",
    "MAX_SAFE_INTEGER",
    "SUBPROTOCOL_V2",
    "AlertMessage",
    "ClientMessage",
    "CloseCode",
    "Dialect",
    "ErrorCode",
    "ErrorMessage",
    "Limits",
    "Outcome",
    "PingRequest",
    "PongMessage",
    "PostMessage",
    "ProtocolError",
    "RequestId",
    "ServerMessage",
    "Session",
    "TrackRequest",
    "TrackingMessage",
    "UntrackAllRequest",
    "UntrackRequest",
    "UntrackedMessage",
    "V1PostMessage",
    "V1TrackRequest",
    "WindowMessage",
    "decode_message",
    "dialect_for",
    "encode_alert",
    "encode_error",
    "encode_post",
    "encode_window",
]

SUBPROTOCOL_V2: Final = "senti.v2"
"""The WebSocket subprotocol a client asks for to speak :attr:`Dialect.V2`."""

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer a JavaScript client can round-trip exactly (``Number.MAX_SAFE_INTEGER``)."""

MAX_REQUEST_ID_CHARS: Final = 128
"""Longest string accepted as a request ``id``."""

MAX_ECHO_CHARS: Final = 300
"""Longest error ``message``; longer ones (which may quote the input) are cut."""


class Dialect(StrEnum):
    """Which protocol a connection speaks, fixed at the handshake."""

    V1 = "v1"
    """The original protocol: one query, bare ``polarityIndex``/``hashtags`` messages."""
    V2 = "v2"
    """Typed messages, negotiated with the :data:`SUBPROTOCOL_V2` subprotocol."""


def dialect_for(subprotocol: str | None) -> Dialect:
    """The dialect of a connection that negotiated ``subprotocol`` (``None``: none).

    Raises :class:`ValueError` for a subprotocol this module does not speak;
    the server only offers :data:`SUBPROTOCOL_V2`, so that is a server bug.
    """
    if subprotocol is None:
        return Dialect.V1
    if subprotocol == SUBPROTOCOL_V2:
        return Dialect.V2
    raise ValueError(f"unsupported subprotocol: {subprotocol!r}")


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4 and the IANA registry).

    Protocol errors never close the connection; these are sent by ``server/app.py``.
    """

    NORMAL_CLOSURE = 1000
    """The client or the server ended the conversation normally."""
    GOING_AWAY = 1001
    """The server is shutting down (SIGTERM); reconnect later, possibly elsewhere."""
    POLICY_VIOLATION = 1008
    """Rejected after the handshake for a missing or wrong token or a forbidden origin."""
    MESSAGE_TOO_BIG = 1009
    """A message was longer than :attr:`Limits.max_message_bytes`."""
    INTERNAL_ERROR = 1011
    """An unexpected server error; reconnect with a backoff."""
    TRY_AGAIN_LATER = 1013
    """The server is at its connection limit; reconnect with a backoff."""


class ErrorCode(StrEnum):
    """The ``code`` of an error message: stable, kebab-case, documented in docs/protocol.md.

    Every error is an answer to one client message, which is otherwise ignored:
    the connection stays open and its queries are unchanged.
    """

    INVALID_JSON = "invalid-json"
    """The text frame is not one well-formed JSON value (or not valid UTF-8)."""
    INVALID_MESSAGE = "invalid-message"
    """Valid JSON, but not a message of this dialect: wrong types, unknown fields or types,
    missing fields, numbers out of range, nesting too deep."""
    MESSAGE_TOO_BIG = "message-too-big"
    """A text message longer than :attr:`Limits.max_message_bytes` reached the protocol."""
    BINARY_NOT_SUPPORTED = "binary-not-supported"
    """A binary frame: the protocol is JSON in text frames only."""
    INVALID_QUERY = "invalid-query"
    """The query cannot be tracked (empty, too long, too many phrases or terms, bad ``#tag``)."""
    TOO_MANY_QUERIES = "too-many-queries"
    """A v2 ``track`` beyond :attr:`Limits.max_queries_per_connection`."""
    RATE_LIMITED = "rate-limited"
    """Starting a query beyond :attr:`Limits.max_track_changes_per_minute`."""
    UNKNOWN_QUERY = "unknown-query"
    """A v2 ``untrack`` of a query this connection does not track."""
    QUERY_REJECTED = "query-rejected"
    """The source refused the query (the X API rejected its rule, or a rule limit of
    the account's tier was reached); the message says why. The query is not tracked."""


class ProtocolError(SentiError, ValueError):
    """A client message that cannot be acted on; :class:`Session` replies with an error.

    Raised by :func:`decode_message` and inside :class:`Session` with the
    :class:`ErrorCode` to send and a human-readable message (already capped at
    :data:`MAX_ECHO_CHARS`).
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = _cap(message)
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-connection limits. All must be at least 1; :class:`ValueError` otherwise."""

    # Messages
    max_message_bytes: int = 4096
    """Longest text message in UTF-8 bytes; set the WebSocket ``max_size`` to the same value."""

    # Queries
    max_queries_per_connection: int = 10
    """Queries one v2 connection may track at once (a v1 connection tracks at most one)."""
    max_track_changes_per_minute: int = 30
    """Token bucket for starting queries: a burst of this many, refilled evenly over a minute."""

    def __post_init__(self) -> None:
        for name in (
            "max_message_bytes",
            "max_queries_per_connection",
            "max_track_changes_per_minute",
        ):
            _check_positive(name, getattr(self, name))


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Limits.{name} must be an integer >= 1, got {value!r}")


DEFAULT_LIMITS: Final = Limits()
"""The limits a :class:`Session` uses unless given others."""


# Client messages

RequestId: TypeAlias = (
    Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
    | Annotated[str, msgspec.Meta(max_length=MAX_REQUEST_ID_CHARS)]
)
"""A client-chosen ``id`` echoed in the answer: a safe integer or a short string."""


class V1TrackRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """v1 ``{"track": "query"}`` (track, replacing any query) or ``{"track": null}`` (stop)."""

    track: str | None


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """A v2 client message, tagged by its ``type`` field."""


class TrackRequest(_Request, tag="track", frozen=True):
    """v2: start tracking ``query`` (idempotent), keeping the others."""

    query: str
    id: RequestId | None = None


class UntrackRequest(_Request, tag="untrack", frozen=True):
    """v2: stop tracking ``query``, however it is spelled."""

    query: str
    id: RequestId | None = None


class UntrackAllRequest(_Request, tag="untrack_all", frozen=True):
    """v2: stop tracking every query, keeping the connection."""

    id: RequestId | None = None


class PingRequest(_Request, tag="ping", frozen=True):
    """v2: ask for a ``pong`` (browsers cannot send WebSocket ping frames)."""

    id: RequestId | None = None


ClientMessage: TypeAlias = TrackRequest | UntrackRequest | UntrackAllRequest | PingRequest
"""Any v2 client message."""


# Server messages


class V1PostMessage(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    rename={"polarity_index": "polarityIndex"},
):
    """v1 per-post message: exactly the two documented fields, in this order."""

    polarity_index: int
    hashtags: dict[str, int]


class _Reply(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="type",
    rename={"polarity_index": "polarityIndex"},
):
    """A v2 server message, tagged by its ``type`` field; ``id`` is omitted when absent."""


class TrackingMessage(_Reply, tag="tracking", frozen=True):
    """v2 acknowledgement of ``track``: the canonical key and all keys now tracked.

    ``spelling`` is the query as the client sent it (spaces collapsed), for
    showing people; omitted when it is the key itself.
    """

    query: str
    queries: tuple[str, ...]
    id: RequestId | None = None
    spelling: str | None = None


class UntrackedMessage(_Reply, tag="untracked", frozen=True):
    """v2 acknowledgement of ``untrack``/``untrack_all``: keys removed and keys left."""

    removed: tuple[str, ...]
    queries: tuple[str, ...]
    id: RequestId | None = None


class PongMessage(_Reply, tag="pong", frozen=True):
    """v2 answer to ``ping``."""

    id: RequestId | None = None


class PostMessage(_Reply, tag="post", frozen=True):
    """v2 per-post message for one tracked query.

    ``compound`` and ``polarity_index`` are ``None`` (``null``) for an unscored
    post; ``lang`` is the post's declared language as the source gave it,
    ``None`` when it declares none. Neither has a default, so both are always sent.
    """

    query: str
    id: str
    created_at: str
    compound: float | None
    polarity_index: int | None
    hashtags: dict[str, int]
    lang: str | None


class WindowMessage(_Reply, tag="window", frozen=True):
    """v2 summary of one tumbling event-time window for one query.

    ``posts = positive + negative + neutral + unscored``; ``langs`` counts the
    posts by language key (:mod:`flows.analysis.languages`), ``other`` last.
    """

    query: str
    start: str
    end: str
    posts: int
    positive: int
    negative: int
    neutral: int
    unscored: int
    retweets: int
    top_hashtags: tuple[tuple[str, int], ...]
    langs: dict[str, int]


class AlertMessage(_Reply, tag="alert", frozen=True):
    """v2 sentiment-shift alert: a closed window whose negative or positive share rose
    above the query's own baseline by more than chance (docs/alerts.md).

    ``share`` is the window's share of ``direction`` among its ``scored``
    posts (``count`` of them), ``baseline`` the share it was compared with,
    ``z`` the test's score. ``label`` is what the user typed for the query,
    omitted when not known. Sent after the window's ``window`` message.
    """

    query: str
    start: str
    end: str
    direction: Literal["negative", "positive"]
    share: float
    baseline: float
    z: float
    count: int
    scored: int
    label: str | None = None


class ErrorMessage(_Reply, tag="error", frozen=True):
    """An error answer to one client message (both dialects; ``id`` only in v2)."""

    code: ErrorCode
    message: str
    id: RequestId | None = None


ServerMessage: TypeAlias = (
    TrackingMessage
    | UntrackedMessage
    | PongMessage
    | PostMessage
    | WindowMessage
    | AlertMessage
    | ErrorMessage
)
"""Any v2 server message."""


# Decoding

_V1_DECODER: Final = msgspec.json.Decoder(V1TrackRequest)
_V2_DECODER: Final[msgspec.json.Decoder[ClientMessage]] = msgspec.json.Decoder(ClientMessage)
_SYNTAX: Final = msgspec.json.Decoder(msgspec.Raw)
"""Checks JSON syntax only, to tell ``invalid-json`` from ``invalid-message``."""

_EXPECTED: Final = {
    Dialect.V1: 'expected {"track": "query"} or {"track": null}',
    Dialect.V2: (
        'expected {"type": "track" | "untrack" | "untrack_all" | "ping", ...}'
        f" (the {SUBPROTOCOL_V2} subprotocol)"
    ),
}


def decode_message(
    text: str, dialect: Dialect, *, max_bytes: int = DEFAULT_LIMITS.max_message_bytes
) -> V1TrackRequest | ClientMessage:
    """Decode one text message of ``dialect``; never raises anything but :class:`ProtocolError`.

    Raises :class:`ProtocolError` with :attr:`ErrorCode.MESSAGE_TOO_BIG` if it is
    longer than ``max_bytes`` in UTF-8, :attr:`ErrorCode.INVALID_JSON` if it is
    not well-formed JSON (or holds lone surrogates), and
    :attr:`ErrorCode.INVALID_MESSAGE` if it is JSON but not a message of the
    dialect (including nesting too deep to skip and out-of-range numbers).
    """
    if len(text) > max_bytes:  # every character takes at least one byte
        raise _too_big(max_bytes)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(
            ErrorCode.INVALID_JSON, "message is not valid UTF-8 (it holds a lone surrogate)"
        ) from None
    if len(data) > max_bytes:
        raise _too_big(max_bytes)
    decoder = _V1_DECODER if dialect is Dialect.V1 else _V2_DECODER
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _classify(data, str(exc), dialect) from None
    except msgspec.DecodeError as exc:
        raise _invalid_json(exc) from None
    except RecursionError:
        raise _too_deep() from None


def _classify(data: bytes, problem: str, dialect: Dialect) -> ProtocolError:
    """A schema error may hide a syntax error later in the text: report the syntax first."""
    try:
        _SYNTAX.decode(data)
    except msgspec.DecodeError as exc:
        return _invalid_json(exc)
    except RecursionError:
        return _too_deep()
    return ProtocolError(ErrorCode.INVALID_MESSAGE, f"{problem}; {_EXPECTED[dialect]}")


def _invalid_json(exc: msgspec.DecodeError) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_JSON, f"message is not valid JSON: {exc}")


def _too_deep() -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_MESSAGE, "message is nested too deeply")


def _too_big(max_bytes: int) -> ProtocolError:
    return ProtocolError(
        ErrorCode.MESSAGE_TOO_BIG, f"message is longer than {max_bytes} bytes (UTF-8)"
    )


def _cap(text: str) -> str:
    if len(text) <= MAX_ECHO_CHARS:
        return text
    cut = MAX_ECHO_CHARS - 20
    return f"{text[:cut]}... [{len(text) - cut} more]"


# Encoding

_ENCODER: Final = msgspec.json.Encoder()


def _encode(message: msgspec.Struct) -> str:
    return _ENCODER.encode(message).decode("utf-8")


def _scrub(text: str) -> str:
    """``text`` with lone surrogates (which UTF-8 cannot carry) replaced by ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


@overload
def encode_post(match: Match, dialect: Literal[Dialect.V2]) -> str: ...
@overload
def encode_post(match: Match, dialect: Dialect) -> str | None: ...
def encode_post(match: Match, dialect: Dialect) -> str | None:
    """The per-post message for ``match`` in ``dialect``, as compact JSON text.

    v1 is exactly ``{"polarityIndex": n, "hashtags": {...}}``; v2 adds ``type``,
    ``query``, the post ``id``, ``created_at``, the VADER ``compound`` and the
    declared ``lang``. An unscored post (its language is not scored) has no
    v1 message, ``None``: v1 clients count every message they receive as
    positive, negative or neutral. In v2 its ``compound`` and
    ``polarityIndex`` are ``null``. Encode once per match and dialect, then
    send the text to every connection.
    """
    if dialect is Dialect.V1 and match.scored.polarity is None:
        return None
    try:
        return _encode(_post_message(match, dialect, str))
    except UnicodeEncodeError:
        # Hashtags and ids come from upstream JSON, whose escapes may spell lone surrogates.
        return _encode(_post_message(match, dialect, _scrub))


def _post_message(match: Match, dialect: Dialect, clean: Callable[[str], str]) -> msgspec.Struct:
    scored = match.scored
    polarity = None if scored.polarity is None else int(scored.polarity)
    hashtags = {clean(tag): count for tag, count in scored.hashtags.items()}
    if dialect is Dialect.V1:
        assert polarity is not None  # noqa: S101 (encode_post sends unscored posts to v2 only)
        return V1PostMessage(polarity_index=polarity, hashtags=hashtags)
    lang = scored.post.lang
    return PostMessage(
        query=clean(match.query),
        id=clean(scored.post.id),
        created_at=format_time(scored.post.created_at),
        compound=scored.compound,
        polarity_index=polarity,
        hashtags=hashtags,
        lang=None if lang is None else clean(lang),
    )


def encode_window(summary: WindowSummary) -> str:
    """The v2 ``window`` message for ``summary`` (v1 clients get no summaries)."""
    return _encode(
        WindowMessage(
            query=summary.query,
            start=format_time(summary.start),
            end=format_time(summary.end),
            posts=summary.posts,
            positive=summary.positive,
            negative=summary.negative,
            neutral=summary.neutral,
            unscored=summary.unscored,
            retweets=summary.retweets,
            top_hashtags=tuple((_scrub(tag), count) for tag, count in summary.top_hashtags),
            langs=dict(summary.langs),
        )
    )


def encode_alert(alert: Alert) -> str:
    """The v2 ``alert`` message for ``alert`` (v1 clients get no alerts)."""
    return _encode(
        AlertMessage(
            query=alert.query,
            start=format_time(alert.start),
            end=format_time(alert.end),
            direction=alert.direction,
            share=round(alert.share, 4),
            baseline=round(alert.baseline, 4),
            z=round(alert.z, 2),
            count=alert.count,
            scored=alert.scored,
            label=None if alert.label is None else _scrub(alert.label),
        )
    )


def encode_error(code: ErrorCode, message: str, *, request_id: RequestId | None = None) -> str:
    """An ``error`` message; ``message`` is capped at :data:`MAX_ECHO_CHARS` characters."""
    return _encode(ErrorMessage(code=code, message=_scrub(_cap(message)), id=request_id))


# Sessions


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a :class:`Session` asks the server to do after one client message.

    Apply ``removed`` and ``added`` to the server's subscriptions (a key is never
    in both), then send ``replies`` to this client, in order.
    """

    replies: tuple[str, ...] = ()
    """JSON texts to send to this client."""
    added: tuple[Query, ...] = ()
    """Queries this connection newly tracks (subscribe if first for the key)."""
    removed: tuple[str, ...] = ()
    """Canonical keys this connection stopped tracking (unsubscribe if last)."""
    errors: tuple[ErrorCode, ...] = ()
    """Codes of the error replies, for logs and metrics."""


_NOTHING: Final = Outcome()


class Session:
    """The protocol state of one connection: its dialect, tracked queries and rate limit.

    Feed it every frame with :meth:`receive_text` / :meth:`receive_bytes` and the
    current monotonic time; it never reads a clock, never raises on client
    input, and never closes the connection. Call :meth:`close` when the
    connection ends; later frames are ignored.
    """

    def __init__(self, dialect: Dialect, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._dialect = dialect
        self._limits = limits
        self._queries: dict[str, Query] = {}
        self._tokens = float(limits.max_track_changes_per_minute)
        self._refilled_at: float | None = None
        self._closed = False

    @property
    def dialect(self) -> Dialect:
        """The dialect negotiated at the handshake."""
        return self._dialect

    @property
    def limits(self) -> Limits:
        """This connection's limits."""
        return self._limits

    @property
    def queries(self) -> Mapping[str, Query]:
        """The tracked queries, canonical key to query, in the order they were tracked."""
        return MappingProxyType(self._queries)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def receive_text(self, text: str, now: float) -> Outcome:
        """Handle one text message received at monotonic time ``now`` (seconds)."""
        if self._closed:
            return _NOTHING
        request_id: RequestId | None = None
        try:
            request = decode_message(text, self._dialect, max_bytes=self._limits.max_message_bytes)
            if isinstance(request, V1TrackRequest):
                return self._v1_track(request, now)
            request_id = request.id
            return self._v2(request, now)
        except ProtocolError as exc:
            return self._error(exc, request_id)

    def receive_bytes(self, data: bytes, now: float) -> Outcome:
        """Handle one binary message: always a ``binary-not-supported`` error."""
        del data, now
        if self._closed:
            return _NOTHING
        return self._error(
            ProtocolError(
                ErrorCode.BINARY_NOT_SUPPORTED, "binary messages are not supported; send JSON text"
            )
        )

    def close(self) -> list[str]:
        """End the session: the keys this connection tracked, to unsubscribe. Idempotent."""
        keys = list(self._queries)
        self._queries.clear()
        self._closed = True
        return keys

    def refuse(self, outcome: Outcome, refused: Mapping[str, str]) -> Outcome:
        """Undo the tracking of queries a source refused (key -> reason).

        Returns the outcome to apply instead: the refused queries are neither
        tracked nor acknowledged; each gets a ``query-rejected`` error. Queries
        the original outcome stopped tracking stay stopped.
        """
        if not refused:
            return outcome
        shown = {query.key: query.shown for query in outcome.added}
        for key in refused:
            self._queries.pop(key, None)
        errors = tuple(
            encode_error(
                ErrorCode.QUERY_REJECTED,
                f"query {shown.get(key, key)!r} was refused: {reason}",
            )
            for key, reason in refused.items()
        )
        return Outcome(
            replies=errors,
            added=tuple(query for query in outcome.added if query.key not in refused),
            removed=outcome.removed,
            errors=(ErrorCode.QUERY_REJECTED,) * len(errors),
        )

    # v1

    def _v1_track(self, request: V1TrackRequest, now: float) -> Outcome:
        current = next(iter(self._queries), None)
        if request.track is None:
            if current is None:
                return _NOTHING
            self._queries.clear()
            return Outcome(removed=(current,))
        query = _parse(request.track)
        if query.key == current:
            return _NOTHING
        self._take_token(now)
        self._queries = {query.key: query}
        return Outcome(added=(query,), removed=() if current is None else (current,))

    # v2

    def _v2(self, request: ClientMessage, now: float) -> Outcome:
        if isinstance(request, TrackRequest):
            return self._track(request, now)
        if isinstance(request, UntrackRequest):
            return self._untrack(request)
        if isinstance(request, UntrackAllRequest):
            removed = tuple(self._queries)
            self._queries.clear()
            return self._reply(
                UntrackedMessage(removed=removed, queries=(), id=request.id), removed=removed
            )
        return self._reply(PongMessage(id=request.id))

    def _track(self, request: TrackRequest, now: float) -> Outcome:
        query = _parse(request.query)
        key = query.key
        if key in self._queries:
            return self._reply(self._tracking(query, request.id))
        limit = self._limits.max_queries_per_connection
        if len(self._queries) >= limit:
            raise ProtocolError(
                ErrorCode.TOO_MANY_QUERIES,
                f"a connection may track at most {limit} queries; untrack one first",
            )
        self._take_token(now)
        self._queries[key] = query
        return self._reply(self._tracking(query, request.id), added=(query,))

    def _untrack(self, request: UntrackRequest) -> Outcome:
        query = _parse(request.query)
        key = query.key
        if key not in self._queries:
            raise ProtocolError(ErrorCode.UNKNOWN_QUERY, f"not tracking the query {query.shown!r}")
        del self._queries[key]
        return self._reply(
            UntrackedMessage(removed=(key,), queries=tuple(self._queries), id=request.id),
            removed=(key,),
        )

    def _tracking(self, query: Query, request_id: RequestId | None) -> TrackingMessage:
        spelling = query.shown if query.shown != query.key else None
        return TrackingMessage(
            query=query.key, queries=tuple(self._queries), id=request_id, spelling=spelling
        )

    # Helpers

    def _take_token(self, now: float) -> None:
        """Spend one token of the bucket or raise ``rate-limited`` (state unchanged)."""
        capacity = float(self._limits.max_track_changes_per_minute)
        rate = capacity / 60.0
        if self._refilled_at is not None:
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(capacity, self._tokens + elapsed * rate)
            now = max(now, self._refilled_at)
        self._refilled_at = now
        if self._tokens < 1.0 - 1e-9:
            wait = (1.0 - self._tokens) / rate
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"at most {self._limits.max_track_changes_per_minute} new queries per minute;"
                f" retry in {wait:.1f} s",
            )
        self._tokens = max(0.0, self._tokens - 1.0)

    def _reply(
        self,
        message: msgspec.Struct,
        *,
        added: tuple[Query, ...] = (),
        removed: tuple[str, ...] = (),
    ) -> Outcome:
        return Outcome(replies=(_encode(message),), added=added, removed=removed)

    def _error(self, exc: ProtocolError, request_id: RequestId | None = None) -> Outcome:
        if self._dialect is Dialect.V1:
            request_id = None
        text = encode_error(exc.code, exc.message, request_id=request_id)
        return Outcome(replies=(text,), errors=(exc.code,))


def _parse(text: str) -> Query:
    try:
        return parse_query(text)
    except InvalidQuery as exc:
        raise ProtocolError(ErrorCode.INVALID_QUERY, str(exc)) from None
