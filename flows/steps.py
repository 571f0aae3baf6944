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
    Match,
    Polarity,
    Post,
    Rejected,
    ScoredPost,
    WindowSummary,
)

__all__ = [
    "PhraseMatcher",
    "Tally",
    "TermItem",
    "TermRouter",
    "WindowGrid",
    "is_original",
    "is_post",
    "term_bucket",
]

TermItem = tuple[str, ScoredPost | Subscription]
"""What the term-bucket join receives: its bucket key again (state logic sees no
keys) and a post or a subscription change."""


def is_post(item: Post | Rejected) -> TypeGuard[Post]:
    """Whether a parsed line is a post (else it is a rejected line)."""
    return isinstance(item, Post)


def is_original(post: Post) -> bool:
    """Whether a post is original content rather than a retweet."""
    return not post.is_retweet


def term_bucket(term: str, buckets: int) -> str:
    """The routing key of a term: a stable hash (the same in every process) into buckets."""
    return f"terms-{zlib.crc32(term.encode('utf-8', 'surrogatepass')) % buckets}"


@dataclass(frozen=True, slots=True)
class TermRouter:
    """Hash-partitions the term space into ``buckets`` routing keys.

    A phrase is filed in the bucket of its anchor term; a post visits the
    buckets of its own terms (at most ``buckets`` of them, usually fewer), so
    its cost depends on its terms, never on the number of tracked queries.
    More buckets spread the matching over more workers; fewer buckets send
    each post through fewer exchanges.
    """

    buckets: int = 1

    def __post_init__(self) -> None:
        if self.buckets < 1:
            raise ValueError(f"buckets must be at least 1, not {self.buckets}")

    def bucket(self, term: str) -> str:
        """The routing key of ``term``."""
        return term_bucket(term, self.buckets) if self.buckets > 1 else "terms-0"

    def posts(self, scored: ScoredPost) -> Iterator[tuple[str, TermItem]]:
        """Send a post to each bucket holding one of its terms."""
        for key in {self.bucket(term) for term in scored.terms}:
            yield key, (key, scored)

    def subscriptions(self, change: Subscription) -> Iterator[tuple[str, TermItem]]:
        """Send a subscription change to the buckets of its phrases' anchors."""
        for key in {self.bucket(anchor) for anchor in change.query.anchors()}:
            yield key, (key, change)


@dataclass(frozen=True, slots=True)
class PhraseMatcher:
    """State logic of the bucket-keyed join of posts and subscriptions.

    A bucket's state is a :class:`~flows.matching.TermIndex` of the phrases
    anchored on its terms. Queries tracked from the start (``initial``) are in
    every bucket's index from its first item, so a replay sees them before its
    first post. Each query is found in exactly one bucket per post: the one
    holding the anchor of its first matching phrase.
    """

    router: TermRouter
    initial: Sequence[Query] = ()

    def __call__(
        self, state: TermIndex | None, item: TermItem
    ) -> tuple[TermIndex | None, list[Match]]:
        """Apply a subscription change, or emit the matches of a post in this bucket."""
        key, value = item
        if state is None:
            state = self._initial_index(key)
        if isinstance(value, Subscription):
            state = state if state is not None else TermIndex()
            state.apply(value, anchors=self._anchors_in(key, value.query))
            return state, []
        if state is None:
            return None, []
        return state, [Match(query, value) for query in state.match(value.terms)]

    def _anchors_in(self, key: str, query: Query) -> list[str]:
        return [anchor for anchor in query.anchors() if self.router.bucket(anchor) == key]

    def _initial_index(self, key: str) -> TermIndex | None:
        index = TermIndex()
        for query in self.initial:
            anchors = self._anchors_in(key, query)
            if anchors:
                index.add(query, anchors=anchors)
        return index if len(index) else None


@dataclass(slots=True)
class Tally:
    """Running counts of one window: posts by class, retweets, hashtag frequencies."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    retweets: int = 0
    hashtags: Counter[str] = field(default_factory=Counter)

    def add(self, item: Match | ScoredPost | Post) -> Tally:
        """Count one matched post, scored post or (for the global window) retweet."""
        if isinstance(item, Match):
            item = item.scored
        if isinstance(item, Post):
            self.retweets += 1
            return self
        self.counts[item.polarity] += 1
        self.hashtags.update(item.hashtags)
        return self

    def merge(self, other: Tally) -> Tally:
        """Combine two tallies (window merges; not used by tumbling windows)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.retweets += other.retweets
        self.hashtags.update(other.hashtags)
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

    def late(self, item: tuple[str, tuple[int, Match | ScoredPost | Post]]) -> LatePost:
        """Record a post that reached its window after the window closed."""
        query, (window_id, late) = item
        if isinstance(late, Match):
            late = late.scored
        post = late.post if isinstance(late, ScoredPost) else late
        return LatePost(query, self.start_of(window_id), post.id, post.is_retweet)


def event_time(item: Match | ScoredPost | Post) -> datetime:
    """Event time of a windowed item: the post's ``created_at``."""
    if isinstance(item, Match):
        return item.scored.post.created_at
    if isinstance(item, ScoredPost):
        return item.post.created_at
    return item.created_at
