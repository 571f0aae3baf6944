"""The functions behind the dataflow's steps, free of bytewax so they test alone.

:mod:`flows.dataflow` wires these into operators, one line per step.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeGuard

from flows.matching import Query, Subscription, TermIndex
from flows.model import (
    ALL_POSTS,
    LatePost,
    Polarity,
    Post,
    PostMatches,
    Rejected,
    ScoredPost,
    WindowSummary,
)

__all__ = [
    "BucketTally",
    "PhraseMatcher",
    "QueryRouter",
    "RouteItem",
    "Tally",
    "WindowGrid",
    "is_original",
    "is_post",
    "query_bucket",
]

RouteItem = tuple[str, ScoredPost | Subscription]
"""What the query-bucket join receives: its bucket key again (state logic sees no
keys) and a post or a subscription change."""


def is_post(item: Post | Rejected) -> TypeGuard[Post]:
    """Whether a parsed line is a post (else it is a rejected line)."""
    return isinstance(item, Post)


def is_original(post: Post) -> bool:
    """Whether a post is original content rather than a retweet."""
    return not post.is_retweet


def query_bucket(key: str, buckets: int) -> str:
    """The routing key of a query: a stable hash (the same in every process) into buckets.

    The key names the bucket count too (``queries-2-of-4``): a run resumed
    with another count starts its buckets afresh instead of finding queries
    filed under the old hashing, which would deliver some posts twice.
    """
    return _bucket_key(zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets, buckets)


def _bucket_key(number: int, buckets: int) -> str:
    return f"queries-{number}-of-{buckets}"


@dataclass(frozen=True, slots=True)
class QueryRouter:
    """Hash-partitions the tracked queries into ``buckets`` routing keys.

    Each query lives in one bucket, with the whole index of its phrases; every
    post visits every bucket (``buckets`` items, whatever the number of
    queries), where an index lookup per term of the post finds its matches.
    As each query's matches all come from its one bucket, windows are counted
    per bucket: one item per post and bucket, not one per matched query.
    """

    buckets: int = 1

    def __post_init__(self) -> None:
        if self.buckets < 1:
            raise ValueError(f"buckets must be at least 1, not {self.buckets}")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every bucket's routing key."""
        return tuple(_bucket_key(n, self.buckets) for n in range(self.buckets))

    def bucket(self, key: str) -> str:
        """The routing key of the query with canonical ``key``."""
        return query_bucket(key, self.buckets)

    def posts(self, scored: ScoredPost) -> Iterator[tuple[str, RouteItem]]:
        """Send a post to every bucket."""
        for key in self.keys:
            yield key, (key, scored)

    def subscriptions(self, change: Subscription) -> Iterator[tuple[str, RouteItem]]:
        """Send a subscription change to its query's bucket."""
        key = self.bucket(change.key)
        yield key, (key, change)


@dataclass(frozen=True, slots=True)
class PhraseMatcher:
    """State logic of the bucket-keyed join of posts and subscriptions.

    A bucket's state is the :class:`~flows.matching.TermIndex` of its queries.
    Queries tracked from the start (``initial``) are in their bucket's index
    from its first item, so a replay sees them before its first post.
    """

    router: QueryRouter
    initial: Sequence[Query] = ()

    def __call__(
        self, state: TermIndex | None, item: RouteItem
    ) -> tuple[TermIndex | None, list[PostMatches]]:
        """Apply a subscription change, or emit the queries of this bucket a post matches."""
        key, value = item
        if state is None:
            state = self._initial_index(key)
        if isinstance(value, Subscription):
            state = state if state is not None else TermIndex()
            state.apply(value)
            return state, []
        if state is None:
            return None, []
        found = state.match(value.terms)
        return state, [PostMatches(value, tuple(found))] if found else []

    def _initial_index(self, key: str) -> TermIndex | None:
        index = TermIndex()
        for query in self.initial:
            if self.router.bucket(query.key) == key:
                index.add(query)
        return index if len(index) else None


@dataclass(slots=True)
class Tally:
    """Running counts of one window: posts by class, retweets, hashtag frequencies."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    retweets: int = 0
    hashtags: Counter[str] = field(default_factory=Counter)

    def add(self, item: ScoredPost | Post) -> Tally:
        """Count one scored post or (for the global window) one retweet."""
        if isinstance(item, Post):
            self.retweets += 1
            return self
        self.counts[item.polarity] += 1
        tags = self.hashtags
        for tag, count in item.hashtags.items():  # Counter.update's loop, without its checks
            tags[tag] = tags.get(tag, 0) + count
        return self

    def merge(self, other: Tally) -> Tally:
        """Combine two tallies (window merges; not used by tumbling windows)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.retweets += other.retweets
        self.hashtags.update(other.hashtags)
        return self


@dataclass(slots=True)
class BucketTally:
    """The tallies of one window for every query of a bucket that matched in it."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(self, item: PostMatches) -> BucketTally:
        """Count a post for each of its matched queries."""
        # Tally.add, inlined: this runs once per match.
        tallies, scored = self.tallies, item.scored
        polarity, hashtags = scored.polarity, scored.hashtags.items()
        for query in item.queries:
            tally = tallies.get(query)
            if tally is None:
                tally = tallies[query] = Tally()
            tally.counts[polarity] += 1
            tags = tally.hashtags
            for tag, count in hashtags:
                tags[tag] = tags.get(tag, 0) + count
        return self

    def merge(self, other: BucketTally) -> BucketTally:
        """Combine two bucket tallies (window merges; not used by tumbling windows)."""
        for query, tally in other.tallies.items():
            mine = self.tallies.get(query)
            self.tallies[query] = tally if mine is None else mine.merge(tally)
        return self


@dataclass(frozen=True, slots=True)
class WindowGrid:
    """Tumbling windows of ``length`` aligned to ``align_to``; builds summaries."""

    length: timedelta
    align_to: datetime
    top_n: int = 10

    def start_of(self, window_id: int) -> datetime:
        """Start time of the window with bytewax's ``window_id``."""
        return self.align_to + window_id * self.length

    def bucket_summaries(self, item: tuple[str, tuple[int, BucketTally]]) -> list[WindowSummary]:
        """The summaries of a closed window of a bucket: one per query that matched."""
        _bucket, (window_id, bucket) = item
        return [
            self.summary((query, (window_id, tally))) for query, tally in bucket.tallies.items()
        ]

    def summary(self, item: tuple[str, tuple[int, Tally]]) -> WindowSummary:
        """The summary of a closed window of one query (or of all posts)."""
        query, (window_id, tally) = item
        start = self.start_of(window_id)
        top = heapq.nsmallest(self.top_n, tally.hashtags.items(), key=lambda kv: (-kv[1], kv[0]))
        return WindowSummary(
            query=query,
            start=start,
            end=start + self.length,
            posts=sum(tally.counts),
            positive=tally.counts[Polarity.POSITIVE],
            negative=tally.counts[Polarity.NEGATIVE],
            neutral=tally.counts[Polarity.NEUTRAL],
            top_hashtags=tuple(top),
            retweets=tally.retweets if query == ALL_POSTS else 0,
        )

    def late(self, item: tuple[str, tuple[int, PostMatches | ScoredPost | Post]]) -> list[LatePost]:
        """Record a post that reached its window after the window closed (per query)."""
        scope, (window_id, late) = item
        start = self.start_of(window_id)
        if isinstance(late, PostMatches):
            post = late.scored.post
            return [LatePost(query, start, post.id, post.is_retweet) for query in late.queries]
        post = late.post if isinstance(late, ScoredPost) else late
        return [LatePost(scope, start, post.id, post.is_retweet)]


def event_time(item: PostMatches | ScoredPost | Post) -> datetime:
    """Event time of a windowed item: the post's ``created_at``."""
    if isinstance(item, PostMatches):
        return item.scored.post.created_at
    if isinstance(item, ScoredPost):
        return item.post.created_at
    return item.created_at
