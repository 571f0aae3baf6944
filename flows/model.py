"""Records that flow through senti, and the time helpers they share.

Pure: no I/O, no bytewax. Every record is a frozen dataclass with
timezone-aware UTC datetimes, so it pickles between workers and compares by value.

Lines from sources become :class:`Post` or :class:`Rejected` records in
:func:`flows.platforms.x.parse_line`; a rejection carries a :class:`RejectCode`,
one of a few fixed words (the label of the rejected-input counters).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any, Final

__all__ = [
    "ALL_POSTS",
    "EARLIEST_POST_TIME",
    "LATEST_POST_TIME",
    "LatePost",
    "Line",
    "Match",
    "Polarity",
    "Post",
    "PostMatches",
    "RejectCode",
    "Rejected",
    "ScoredPost",
    "WindowSummary",
    "from_micros",
    "is_utf8",
    "micros",
    "parse_time",
    "per_query",
]

ALL_POSTS: Final = "*"
"""Scope of the global (all posts) window summaries; no query can be spelled ``*``."""

MAX_REJECTED_RAW: Final = 100_000
"""Characters of a rejected line kept verbatim; longer lines are cut and marked."""

EARLIEST_POST_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_POST_TIME: Final = datetime(2200, 1, 1, tzinfo=UTC)
"""A post's ``created_at`` must lie in ``[EARLIEST_POST_TIME, LATEST_POST_TIME)``.

Outside, it is rejected as ``bad-time``: a post dated in year 9999 would make
its window's end overflow the datetime range and stop the flow, and one dated
centuries ahead would make every later post late."""


class RejectCode(StrEnum):
    """Why an input was rejected, in one of a few fixed words.

    The label of ``senti_source_rejected_total``, so its cardinality stays
    bounded whatever the input; the reason in words is kept alongside.
    """

    KEEP_ALIVE = "keep-alive"
    """A blank line (X's keep-alive); sources skip them before parsing."""
    INVALID_JSON = "invalid-json"
    """Not JSON: truncated, garbage, nested too deep, a number too long."""
    NOT_AN_OBJECT = "not-an-object"
    """JSON, but not an object, or without the object a post lives in (``data``)."""
    MISSING_FIELD = "missing-field"
    """A required field is absent, null or empty."""
    WRONG_TYPE = "wrong-type"
    """A field holds a value of the wrong type (a number for a string, a string for a list)."""
    BAD_TIME = "bad-time"
    """A time that is not ISO 8601 with an offset, or outside the supported range."""
    BAD_ENCODING = "bad-encoding"
    """Text that is not valid UTF-8 (an undecodable byte or a lone surrogate)."""
    UNKNOWN_KIND = "unknown-kind"
    """An event or operation of a kind senti does not know."""
    TOO_LARGE = "too-large"
    """Longer than the source accepts (its rest was skipped)."""
    INVALID_QUERY = "invalid-query"
    """A tracked query that does not parse (Redis subscription events)."""
    INTERNAL = "internal"
    """A bug in senti's own mapping, caught so that the stream goes on."""
    OTHER = "other"
    """Anything else (a :class:`Rejected` made without a code)."""


class Polarity(IntEnum):
    """The documented ``polarityIndex`` values of the original protocol."""

    POSITIVE = 0
    NEGATIVE = 1
    NEUTRAL = 2


@dataclass(frozen=True, slots=True)
class Line:
    """One raw input line and where it came from (``file:offset``, ``synthetic:n``)."""

    text: str
    origin: str = ""
    rejected: tuple[RejectCode, str] | None = None
    """``(code, reason)`` when the source already found the input unusable (a
    malformed Jetstream event, an overlong line): :func:`parse_line` rejects it
    with them, keeping ``text`` as the raw input."""
    post: Post | None = None
    """The post, when the source parsed it already (a Mastodon status):
    :func:`parse_line` passes it through, and ``text`` is the raw input."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Lines cross between workers pickled; a dataclass's default reduce is slower.
        if self.post is not None:
            return Line, (self.text, self.origin, self.rejected, self.post)
        if self.rejected is None:
            return Line, (self.text, self.origin)
        return Line, (self.text, self.origin, self.rejected)


@dataclass(frozen=True, slots=True)
class Post:
    """A post as read from the stream, before any analysis."""

    id: str
    text: str
    created_at: datetime
    lang: str | None = None
    author: str | None = None
    is_retweet: bool = False
    hashtags: tuple[str, ...] | None = None
    """Hashtags from ``entities.hashtags`` as sent by X, or ``None`` when absent."""
    rule_tags: tuple[str, ...] = ()
    """Tags of the X filtered-stream rules that matched, kept for checks."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Records cross between Bytewax workers pickled. An aware datetime pickles
        # slowly (its tzinfo is rebuilt each time); microseconds since the epoch don't.
        return _rebuild_post, (
            self.id,
            self.text,
            micros(self.created_at),
            self.lang,
            self.author,
            self.is_retweet,
            self.hashtags,
            self.rule_tags,
        )


@dataclass(frozen=True, slots=True)
class ScoredPost:
    """A post after analysis: VADER compound, polarity class, hashtags and match terms.

    A post in a language senti does not score (:mod:`flows.analysis.languages`) is
    *unscored*: ``compound`` and ``polarity`` are ``None``; it is still
    matched and delivered with its hashtags.
    """

    post: Post
    compound: float | None
    """VADER's compound score in [-1, 1]; ``None`` when unscored."""
    polarity: Polarity | None
    """The class of ``compound``; ``None`` when unscored."""
    hashtags: dict[str, int]
    """This post's hashtag frequencies, case-folded, as in the documented message."""
    terms: frozenset[str] = field(default_factory=frozenset)
    """Terms a tracked query can match: words, ``#tags`` and ``@mentions`` (see matching)."""

    @property
    def unscored(self) -> bool:
        """Whether the post was not scored, its language being one senti does not score."""
        return self.polarity is None

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_scored, (
            self.post,
            self.compound,
            None if self.polarity is None else int(self.polarity),
            self.hashtags,
            self.terms,
        )


@dataclass(frozen=True, slots=True)
class Match:
    """A scored post delivered to one tracked query."""

    query: str
    """Canonical key of the tracked query."""
    scored: ScoredPost

    def __reduce__(self) -> tuple[Any, ...]:
        return Match, (self.query, self.scored)

    def message(self) -> dict[str, Any]:
        """The per-post message: the documented fields plus query, id, time, compound and
        language; ``polarityIndex`` and ``compound`` are ``None`` for an unscored post."""
        scored = self.scored
        post = scored.post
        return {
            "polarityIndex": None if scored.polarity is None else int(scored.polarity),
            "hashtags": dict(scored.hashtags),
            "query": self.query,
            "id": post.id,
            "created_at": format_time(post.created_at),
            "compound": scored.compound,
            "lang": post.lang,
        }


@dataclass(frozen=True, slots=True)
class PostMatches:
    """A scored post and the tracked queries it is delivered to (one or more).

    What the dataflow emits for a matched post: one record per post rather than
    one :class:`Match` per query, so the sinks store the post once and encode
    what every query's message shares once. :meth:`matches`
    spells it out per query.
    """

    scored: ScoredPost
    queries: tuple[str, ...]
    """Canonical keys of the tracked queries."""

    def __reduce__(self) -> tuple[Any, ...]:
        return PostMatches, (self.scored, self.queries)

    def matches(self) -> list[Match]:
        """One :class:`Match` per query."""
        return [Match(query, self.scored) for query in self.queries]


def per_query(items: Iterable[Any]) -> Iterator[Any]:
    """``items`` with each :class:`PostMatches` spelled out as its :class:`Match` records."""
    for item in items:
        if isinstance(item, PostMatches):
            yield from item.matches()
        else:
            yield item


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What one tumbling event-time window saw for one query (or for all posts)."""

    query: str
    """Canonical query key, or :data:`ALL_POSTS` for the global window."""
    start: datetime
    end: datetime
    posts: int
    """Original posts: ``positive + negative + neutral + unscored``."""
    positive: int
    negative: int
    neutral: int
    top_hashtags: tuple[tuple[str, int], ...]
    retweets: int = 0
    """Retweets seen (and dropped) in the window; only counted for :data:`ALL_POSTS`."""
    unscored: int = 0
    """Posts in a language senti does not score (:mod:`flows.analysis.languages`)."""
    langs: tuple[tuple[str, int], ...] = ()
    """Posts by language key, most frequent first, at most
    :data:`~flows.analysis.languages.TOP_LANGUAGES` of them, then ``other`` with the rest
    (:func:`~flows.analysis.languages.top_languages`); the counts add up to :attr:`posts`."""

    def message(self) -> dict[str, Any]:
        """JSON-ready form, tagged ``"type": "window"``."""
        return {
            "type": "window",
            "query": self.query,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "posts": self.posts,
            "positive": self.positive,
            "negative": self.negative,
            "neutral": self.neutral,
            "unscored": self.unscored,
            "retweets": self.retweets,
            "top_hashtags": [[tag, count] for tag, count in self.top_hashtags],
            "langs": dict(self.langs),
        }


@dataclass(frozen=True, slots=True)
class LatePost:
    """A post that arrived after its window had closed.

    It was still delivered as a per-post message and stored; it is not in the
    window's summary, and is recorded here so the store can count it.
    """

    query: str
    window_start: datetime
    post_id: str
    retweet: bool = False
    """Whether it is a retweet (only the :data:`ALL_POSTS` window counts them)."""

    def message(self) -> dict[str, Any]:
        """JSON-ready form, tagged ``"type": "late"``."""
        return {
            "type": "late",
            "query": self.query,
            "window_start": format_time(self.window_start),
            "id": self.post_id,
            "retweet": self.retweet,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input line that is not a usable post, with the reason and the raw text."""

    origin: str
    reason: str
    """What was wrong, in words (``data.lang is not a string``)."""
    raw: str
    code: RejectCode = RejectCode.OTHER
    """What was wrong, as one of the fixed :class:`RejectCode` words."""

    def message(self) -> dict[str, Any]:
        """JSON-ready form, tagged ``"type": "rejected"``."""
        return {"type": "rejected", "origin": self.origin, "reason": self.reason}


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, unlike ``timestamp()``)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=value)


def _rebuild_post(  # noqa: PLR0917 - one argument per field, as pickle passes them
    post_id: str,
    text: str,
    created_us: int,
    lang: str | None,
    author: str | None,
    is_retweet: bool,
    hashtags: tuple[str, ...] | None,
    rule_tags: tuple[str, ...],
) -> Post:
    return Post(
        post_id, text, from_micros(created_us), lang, author, is_retweet, hashtags, rule_tags
    )


def _rebuild_scored(
    post: Post,
    compound: float | None,
    polarity: int | None,
    hashtags: dict[str, int],
    terms: frozenset[str],
) -> ScoredPost:
    return ScoredPost(
        post, compound, None if polarity is None else Polarity(polarity), hashtags, terms
    )


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z``, as X writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime.

    Raises :class:`ValueError` if it is not ISO 8601, carries no offset, or
    is not a time in UTC's range (year 1 at +01:00).
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range in UTC: {value!r}") from None


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates), as every stored field must."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
