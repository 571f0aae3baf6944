"""The functions behind the dataflow's steps, free of bytewax so they test alone.

:mod:`flows.dataflow` wires these into operators, one line per step.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeGuard

from flows.matching import Query, Subscription, matches_at
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
    "WindowGrid",
    "anchor_subscription",
    "fan_out_terms",
    "is_original",
    "is_post",
]

TermItem = tuple[str, ScoredPost | Subscription]
"""A value keyed by term: the term again (the mapper does not see keys) and the item."""


def is_post(item: Post | Rejected) -> TypeGuard[Post]:
    """Whether a parsed line is a post (else it is a rejected line)."""
    return isinstance(item, Post)


def is_original(post: Post) -> bool:
    """Whether a post is original content rather than a retweet."""
    return not post.is_retweet


def fan_out_terms(scored: ScoredPost) -> Iterator[tuple[str, TermItem]]:
    """Send a post to each of its distinct terms, where phrases are anchored."""
    for term in scored.terms:
        yield term, (term, scored)


def anchor_subscription(change: Subscription) -> Iterator[tuple[str, TermItem]]:
    """Send a subscription change to the anchor term of each of its phrases."""
    for anchor in change.query.anchors():
        yield anchor, (anchor, change)


@dataclass(frozen=True, slots=True)
class PhraseMatcher:
    """State logic of the term-keyed join of posts and subscriptions.

    The state of a term is the queries with a phrase anchored on it. Queries
    tracked from the start (``initial``) are in every term's state from its
    first item, so a replay sees them before its first post.
    """

    initial: Mapping[str, Mapping[str, Query]] = field(default_factory=dict)

    def __call__(
        self, state: dict[str, Query] | None, item: TermItem
    ) -> tuple[dict[str, Query] | None, list[Match]]:
        """Apply a subscription change, or emit a post's matches at this term."""
        term, value = item
        if state is None:
            filed = self.initial.get(term)
            state = dict(filed) if filed else None
        if isinstance(value, Subscription):
            state = {} if state is None else state
            if value.active:
                state[value.key] = value.query
            else:
                state.pop(value.key, None)
            return state, []
        if not state:
            return state, []
        return state, [Match(key, value) for key in matches_at(term, state, value.terms)]


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
