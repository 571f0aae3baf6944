"""What a store holds and returns: row records, and the time helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from flows.alerts import Alert
from flows.model import (
    LatePost,
    Match,
    Polarity,
    PostMatches,
    Rejected,
    WindowSummary,
)
from flows.routing.matching import Subscription
from flows.runtime.cursors import SourceCursor

if TYPE_CHECKING:
    pass

__all__ = ["BUSY_TIMEOUT", "MatchRow", "StoreCounts", "StoreItem", "TrackedQuery", "WindowRow"]


BUSY_TIMEOUT: Final = timedelta(seconds=10)


"""How long a connection waits for a lock (SQLite) or for the server (PostgreSQL)."""


StoreItem: TypeAlias = (
    PostMatches | Match | WindowSummary | LatePost | Rejected | Subscription | SourceCursor | Alert
)


"""What :meth:`Store.write` accepts: every kind of item the dataflow outputs."""


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


_MS: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Row counts of the main tables, read in one snapshot."""

    posts: int
    matches: int
    windows: int
    late: int
    rejected: int


@dataclass(frozen=True, slots=True)
class TrackedQuery:
    """A query the flow has seen subscribed, and whether it is still tracked."""

    key: str
    active: bool
    first_seen: datetime
    last_changed: datetime
    spelling: str | None = None
    """The first spelling seen (what the user typed); ``None`` on a store
    written before schema 5 recorded it."""

    @property
    def shown(self) -> str:
        """What to show people: the spelling, or the key when it is not known."""
        return self.spelling or self.key


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One stored window summary; the fields of :class:`~flows.model.WindowSummary`."""

    query: str
    start: datetime
    end: datetime
    posts: int
    positive: int
    negative: int
    neutral: int
    retweets: int
    top_hashtags: tuple[tuple[str, int], ...]
    unscored: int = 0
    """Posts in a language senti does not score (0 in windows before schema 4)."""
    langs: tuple[tuple[str, int], ...] = ()
    """Posts by language key, ``other`` last (empty in windows before schema 4)."""

    def summary(self) -> WindowSummary:
        """The row as the record the flow wrote."""
        return WindowSummary(
            query=self.query,
            start=self.start,
            end=self.end,
            posts=self.posts,
            positive=self.positive,
            negative=self.negative,
            neutral=self.neutral,
            top_hashtags=self.top_hashtags,
            retweets=self.retweets,
            unscored=self.unscored,
            langs=self.langs,
        )


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A post delivered to a query, as the dashboard lists it."""

    time: datetime
    """When the post was created."""
    id: str
    text: str
    compound: float | None
    """``None`` for an unscored post."""
    polarity: Polarity | None
    """``None`` for an unscored post (its language is not scored)."""
    lang: str | None = None
    """The language the post declared, ``None`` if none."""


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _first_two(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:2]


def _alert_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[0], row[1], row[3]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; the store needs timezone-aware times")
    return (moment - _EPOCH) // _MS


def _from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def _since_ms(since: datetime | None) -> int:
    return -(2**63) if since is None else _to_ms(since)


def _until_ms(until: datetime | None) -> int:
    return 2**63 - 1 if until is None else _to_ms(until)


def _like(search: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching texts that contain ``search``."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
