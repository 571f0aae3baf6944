"""Small builders of senti records for tests, with fixed, aware times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.alerts import Alert, Direction
from flows.model import LatePost, Match, Polarity, Post, Rejected, ScoredPost, WindowSummary
from flows.routing.matching import Subscription, parse_query

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, aware, window-aligned start time for tests (never the wall clock)."""


def at(seconds: float) -> datetime:
    """The moment ``seconds`` after :data:`T0`."""
    return T0 + timedelta(seconds=seconds)


def make_post(
    post_id: str | int,
    text: str = "a post",
    *,
    created_at: datetime | float = 0.0,
    lang: str | None = "en",
    author: str | None = "ada",
    hashtags: tuple[str, ...] | None = None,
) -> Post:
    """A :class:`Post`; ``created_at`` may be seconds after :data:`T0`."""
    moment = created_at if isinstance(created_at, datetime) else at(created_at)
    return Post(
        id=str(post_id),
        text=text,
        created_at=moment,
        lang=lang,
        author=author,
        hashtags=hashtags,
    )


def make_scored(
    post_id: str | int = 1,
    text: str = "a post",
    *,
    created_at: datetime | float = 0.0,
    compound: float | None = 0.0,
    polarity: Polarity | None = Polarity.NEUTRAL,
    hashtags: dict[str, int] | None = None,
    lang: str | None = "en",
) -> ScoredPost:
    """A :class:`ScoredPost` around :func:`make_post`; ``polarity=None`` is unscored
    (and has no compound)."""
    tags = dict(hashtags or {})
    post = make_post(post_id, text, created_at=created_at, hashtags=tuple(tags) or None, lang=lang)
    if polarity is None:
        compound = None
    return ScoredPost(post=post, compound=compound, polarity=polarity, hashtags=tags)


def make_match(
    query: str = "python",
    post_id: str | int = 1,
    text: str = "a post",
    *,
    created_at: datetime | float = 0.0,
    compound: float | None = 0.0,
    polarity: Polarity | None = Polarity.NEUTRAL,
    hashtags: dict[str, int] | None = None,
    lang: str | None = "en",
) -> Match:
    """A :class:`Match` of a :func:`make_scored` post to ``query`` (a canonical key)."""
    scored = make_scored(
        post_id,
        text,
        created_at=created_at,
        compound=compound,
        polarity=polarity,
        hashtags=hashtags,
        lang=lang,
    )
    return Match(query=query, scored=scored)


def make_window(
    query: str = "python",
    start: datetime | float = 0.0,
    *,
    length: timedelta = timedelta(minutes=1),
    posts: int = 3,
    positive: int = 1,
    negative: int = 1,
    neutral: int = 1,
    retweets: int = 0,
    top_hashtags: tuple[tuple[str, int], ...] = (("python", 2),),
    unscored: int = 0,
    langs: tuple[tuple[str, int], ...] = (),
) -> WindowSummary:
    """A :class:`WindowSummary`; ``start`` may be seconds after :data:`T0`.

    ``posts`` is given as is: add ``unscored`` to it when both matter.
    """
    begin = start if isinstance(start, datetime) else at(start)
    return WindowSummary(
        query=query,
        start=begin,
        end=begin + length,
        posts=posts,
        positive=positive,
        negative=negative,
        neutral=neutral,
        top_hashtags=top_hashtags,
        retweets=retweets,
        unscored=unscored,
        langs=langs,
    )


def make_late(query: str = "python", post_id: str | int = 1, window_start: float = 0.0) -> LatePost:
    """A :class:`LatePost` for the window starting ``window_start`` seconds after :data:`T0`."""
    return LatePost(query=query, window_start=at(window_start), post_id=str(post_id))


def make_rejected(origin: str = "test:1", reason: str = "invalid JSON", raw: str = "{") -> Rejected:
    """A :class:`Rejected` line."""
    return Rejected(origin=origin, reason=reason, raw=raw)


def make_subscription(text: str = "python", *, active: bool = True) -> Subscription:
    """A :class:`Subscription` to the query spelled ``text``."""
    return Subscription(parse_query(text), active=active)


def make_alert(
    query: str = "python",
    start: datetime | float = 0.0,
    *,
    length: timedelta = timedelta(seconds=10),
    direction: Direction = "negative",
    count: int = 48,
    scored: int = 62,
    baseline: float = 0.32,
    z: float = 5.12,
    label: str | None = None,
) -> Alert:
    """An :class:`~flows.alerts.Alert` of the window at ``start`` (seconds after :data:`T0`)."""
    begin = start if isinstance(start, datetime) else at(start)
    return Alert(
        query, begin, begin + length, direction, count / scored, baseline, z, count, scored, label
    )
