"""The functions behind the dataflow's steps, free of bytewax so they test alone.

:mod:`flows.dataflow` wires these into operators, one line per step.
"""

from __future__ import annotations

import copy
import gc
import heapq
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Final, TypeGuard, TypeVar

from flows.analysis.languages import language_key, top_languages
from flows.model import (
    ALL_POSTS,
    LatePost,
    Line,
    Polarity,
    Post,
    PostMatches,
    Rejected,
    ScoredPost,
    WindowSummary,
    micros,
)
from flows.routing.lanes import lane_keys, local_lane
from flows.routing.matching import Query, Subscription, TermIndex

__all__ = [
    "RETWEET",
    "UNSCORED",
    "BatchCounter",
    "Counted",
    "Keyed",
    "LaneTally",
    "Lanes",
    "PhraseMatcher",
    "Tally",
    "WindowGrid",
    "bundle",
    "counted",
    "is_matched",
    "is_original",
    "is_post",
    "is_subscription",
    "keep",
    "window_record",
]

X = TypeVar("X")

Keyed = tuple[str, X]
"""An item of a keyed stream: ``(key, value)``."""


Counted = tuple[str, int, int, dict[str, int], tuple[str, ...], str]
"""What a window counts of a post: ``(post_id, created_us, polarity, hashtags, queries, lang)``.

``created_us`` is ``created_at`` in microseconds since the epoch, ``polarity``
is :data:`UNSCORED` for a post in a language senti does not score and
:data:`RETWEET` for a retweet (only the global window counts those),
``queries`` are the windows it counts in: tracked query keys, and
:data:`~flows.model.ALL_POSTS` for the global window, and ``lang`` is the
:func:`~flows.analysis.languages.language_key` of its language (empty for a retweet,
whose language is not counted). A plain tuple rather than a class: one is made
for every post, and it is counted in the lane that analysed the post
(:mod:`flows.windows`).
"""

UNSCORED: Final = 3
"""The class of an unscored post in a :data:`Counted` record, after the three polarities."""
RETWEET: Final = -1


def counted(item: ScoredPost | Post, queries: tuple[str, ...] = ()) -> Counted:
    """The window record of a scored (or unscored) post, or of a retweet."""
    if isinstance(item, Post):
        return item.id, micros(item.created_at), RETWEET, {}, queries, ""
    post, polarity = item.post, item.polarity
    return (
        post.id,
        micros(post.created_at),
        UNSCORED if polarity is None else int(polarity),
        item.hashtags,
        queries,
        language_key(post.lang),
    )


def window_record(item: PostMatches | Post) -> Counted:
    """What the windows count of an analysed post (matched or not), or of a retweet."""
    if isinstance(item, Post):
        return counted(item, (ALL_POSTS,))
    return counted(item.scored, (*item.queries, ALL_POSTS))


def is_post(item: Keyed[Post | Rejected]) -> TypeGuard[Keyed[Post]]:
    """Whether a parsed line is a post (else it is a rejected line)."""
    return isinstance(item[1], Post)


def is_subscription(item: Subscription | Rejected) -> TypeGuard[Subscription]:
    """Whether an item of the subscription source is a change (else a rejected event)."""
    return isinstance(item, Subscription)


def is_original(item: Keyed[Post]) -> bool:
    """Whether a post is original content rather than a retweet."""
    return not item[1].is_retweet


def is_matched(item: PostMatches) -> bool:
    """Whether a post matched some tracked query."""
    return bool(item.queries)


def bundle(items: list[Keyed[X]]) -> list[Keyed[list[X]]]:
    """A batch of keyed items as one list per key, in their order."""
    bundles: dict[str, list[X]] = {}
    for key, value in items:
        found = bundles.get(key)
        if found is None:
            bundles[key] = [value]
        else:
            found.append(value)
    return list(bundles.items())


def keep(_state: None, item: X) -> tuple[None, tuple[X]]:
    """State logic that only moves items to the worker of their key."""
    return None, (item,)


def _stable_hash(text: str) -> int:
    """CRC-32 of ``text``: unlike ``hash``, the same in every process and run."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class Lanes:
    """Splits the work over ``count`` lanes, one per worker (see :mod:`flows.routing.lanes`).

    A line stays in the lane of the worker that read it (:attr:`local`) or is
    spread over the lanes by a hash of its text, and the later steps are keyed
    by the same lanes: each lane parses and analyses its posts
    and matches them against the index of every tracked query, as each
    subscription change goes to every lane. Each lane also counts its own
    posts in its windows (:mod:`flows.windows`), which are merged once every
    lane has closed them.
    """

    count: int = 1
    local: bool = False
    """Keep each line in the lane of the worker that read it (a source with a
    partition per worker), instead of spreading lines by hash (one partition)."""
    keys: tuple[str, ...] = field(init=False)
    """Every lane's routing key; key ``i`` is on worker ``i`` of ``count``."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"lanes must be at least 1, not {self.count}")
        object.__setattr__(self, "keys", lane_keys(self.count))

    def of_line(self, line: Line) -> str:
        """The lane of a raw line: its worker's own with :attr:`local`, else by hash."""
        if self.count == 1:
            return self.keys[0]
        if self.local:
            here = local_lane(self.count)
            if here is not None:
                return here
        return self.keys[_stable_hash(line.text) % self.count]

    def broadcast(self, change: Subscription) -> Iterator[Keyed[Subscription]]:
        """Send a subscription change to every lane."""
        for key in self.keys:
            yield key, change


SETTLE_EVERY: Final = 1_000
"""Queries started in the flow between two freezes of the heap (:meth:`PhraseMatcher._settle`)."""


@dataclass(frozen=True, slots=True)
class PhraseMatcher:
    """State logic of a lane's join of posts and subscription changes.

    A lane's state is the :class:`~flows.routing.matching.TermIndex` of every tracked
    query. Queries tracked from the start (``initial``) are in it from the
    lane's first item, so a replay sees them before its first post.
    """

    initial: Sequence[Query] = ()
    _built: list[TermIndex] = field(init=False, repr=False, compare=False)
    """The index of :attr:`initial`, built with the flow: the first lane to start
    takes it (a flow of one lane builds no index while posts wait)."""
    _added: list[int] = field(init=False, repr=False, compare=False)
    """Queries started since the heap was last frozen (all lanes, roughly)."""

    def __post_init__(self) -> None:
        built = self._build()
        object.__setattr__(self, "_built", [] if built is None else [built])
        object.__setattr__(self, "_added", [0])

    def __call__(
        self, state: TermIndex | None, item: ScoredPost | Subscription
    ) -> tuple[TermIndex | None, list[PostMatches]]:
        """Apply a subscription change, or emit a post with the queries it matches (maybe none)."""
        if state is None:
            state = self._initial_index()
        if isinstance(item, Subscription):
            state = state if state is not None else TermIndex()
            state.apply(item)
            if item.active:
                self._settle()
            return state, []
        found = state.match(item.terms) if state is not None else ()
        return state, [PostMatches(item, tuple(found))]

    def _settle(self) -> None:
        """Every :data:`SETTLE_EVERY` queries started, freeze the heap (``gc.freeze``).

        Tracked queries live as long as their subscription, and each is half a
        dozen objects the collector would walk in every young and then every
        full collection: with 100,000 subscriptions arriving while posts flow,
        a sixth of the flow's time. Frozen, they are never walked (the flow's
        :func:`~flows.runtime.runner.settled_heap` unfreezes all when it ends).
        Freezing costs nothing, but a cycle of garbage still young at that moment
        is kept until then: posts make almost none, and this freezes once per
        :data:`SETTLE_EVERY` queries started, not per post.
        """
        added = self._added
        added[0] += 1
        if added[0] >= SETTLE_EVERY:
            added[0] = 0
            gc.freeze()

    def _initial_index(self) -> TermIndex | None:
        try:
            return self._built.pop()  # atomic: worker threads may start lanes at once
        except IndexError:
            return self._build()

    def _build(self) -> TermIndex | None:
        index = TermIndex()
        for query in self.initial:
            index.add(query)
        return index if self.initial else None


@dataclass(slots=True)
class Tally:
    """Running counts of one window of one query: posts by class, retweets, hashtags, languages.

    :meth:`LaneTally.count` counts a window's records into it.
    """

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    """Scored posts by :class:`~flows.model.Polarity`."""
    retweets: int = 0
    hashtags: Counter[str] = field(default_factory=Counter)
    unscored: int = 0
    """Posts in a language senti does not score."""
    langs: Counter[str] = field(default_factory=Counter)
    """Posts (scored or not) by :func:`~flows.analysis.languages.language_key`: at most one key per
    language code, plus ``other``, so bounded whatever the stream declares."""

    def merge(self, other: Tally) -> Tally:
        """Add ``other`` into this tally (the lanes of one window, or a snapshot and later)."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.retweets += other.retweets
        self.hashtags.update(other.hashtags)
        self.unscored += other.unscored
        self.langs.update(other.langs)
        return self

    def __setstate__(self, state: tuple[None, dict[str, object]] | dict[str, object]) -> None:
        """Restore a pickled tally (a recovery snapshot); fields it predates start at zero."""
        slots = state[1] if isinstance(state, tuple) else state
        for name, value in _EMPTY_TALLY.items():
            setattr(self, name, slots.get(name, copy.copy(value)))


_EMPTY_TALLY: Final[dict[str, object]] = {name: getattr(Tally(), name) for name in Tally.__slots__}


@dataclass(slots=True)
class LaneTally:
    """The tallies of one window for every query of a lane that matched in it."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    @classmethod
    def count(cls, records: Iterable[Counted]) -> LaneTally:
        """The tallies of a window's records: per query, posts by class, retweets, hashtags
        and languages.

        A window's records are counted all at once, when it closes: the query
        lists of the records of each language and class, and of each hashtag,
        go through one ``Counter`` in C each, where counting each record in
        Python as it came cost half a microsecond per match. A count gives both
        the class and the language of its posts, so languages cost a dictionary
        lookup per record, not a second count.
        """
        by_lang, by_tag = _group(records)
        tallies: dict[str, Tally] = {}
        retweets = len(_CLASSES) - 1
        for lang, by_class in by_lang.items():
            for polarity, lists in enumerate(by_class):
                if not lists:
                    continue
                for query, count in Counter(chain.from_iterable(lists)).items():
                    tally = tallies.get(query)
                    if tally is None:
                        tally = tallies[query] = Tally()
                    if polarity == retweets:
                        tally.retweets += count
                        continue
                    if polarity == UNSCORED:
                        tally.unscored += count
                    else:
                        tally.counts[polarity] += count
                    tally.langs[lang] += count
        for tag, lists in by_tag.items():
            for query, count in Counter(chain.from_iterable(lists)).items():
                tallies[query].hashtags[tag] = count
        return cls(tallies)

    def merge(self, other: LaneTally) -> LaneTally:
        """Add ``other`` into these tallies, query by query (:mod:`flows.windows`)."""
        for query, tally in other.tallies.items():
            mine = self.tallies.get(query)
            self.tallies[query] = tally if mine is None else mine.merge(tally)
        return self


_CLASSES: Final = range(5)
"""The classes of a :data:`Counted` record by list index: the three polarities,
:data:`UNSCORED`, then :data:`RETWEET` (-1) last."""

_Lists = list[tuple[str, ...]]


def _group(records: Iterable[Counted]) -> tuple[dict[str, tuple[_Lists, ...]], dict[str, _Lists]]:
    """The query lists of a window's records by language and class, and by hashtag.

    By language, then indexed by class (:data:`_CLASSES`; retweets, whose
    language is empty, count for none). By hashtag: once per time the post has
    it (a retweet has none).
    """
    by_lang: dict[str, tuple[_Lists, ...]] = {}
    by_tag: dict[str, _Lists] = {}
    for _post_id, _created, polarity, hashtags, queries, lang in records:
        by_class = by_lang.get(lang)
        if by_class is None:
            by_class = by_lang[lang] = ([], [], [], [], [])
        by_class[polarity].append(queries)
        if hashtags and polarity != RETWEET:
            for tag, times in hashtags.items():
                found = by_tag.get(tag)
                if found is None:
                    found = by_tag[tag] = []
                found.append(queries)
                if times > 1:
                    found.extend([queries] * (times - 1))
    return by_lang, by_tag


@dataclass(frozen=True, slots=True)
class WindowGrid:
    """Tumbling windows of ``length`` aligned to ``align_to``; builds summaries."""

    length: timedelta
    align_to: datetime
    top_n: int = 10

    def start_of(self, window_id: int) -> datetime:
        """Start time of the window with bytewax's ``window_id``."""
        return self.align_to + window_id * self.length

    def lane_summaries(self, item: Keyed[tuple[int, LaneTally]]) -> list[WindowSummary]:
        """The summaries of a closed window of a lane: one per query that matched."""
        _lane, (window_id, lane) = item
        return [self.summary((query, (window_id, tally))) for query, tally in lane.tallies.items()]

    def summary(self, item: Keyed[tuple[int, Tally]]) -> WindowSummary:
        """The summary of a closed window of one query (or of all posts)."""
        query, (window_id, tally) = item
        start = self.start_of(window_id)
        top = heapq.nsmallest(self.top_n, tally.hashtags.items(), key=lambda kv: (-kv[1], kv[0]))
        return WindowSummary(
            query=query,
            start=start,
            end=start + self.length,
            posts=sum(tally.counts) + tally.unscored,
            positive=tally.counts[Polarity.POSITIVE],
            negative=tally.counts[Polarity.NEGATIVE],
            neutral=tally.counts[Polarity.NEUTRAL],
            top_hashtags=tuple(top),
            retweets=tally.retweets if query == ALL_POSTS else 0,
            unscored=tally.unscored,
            langs=top_languages(tally.langs),
        )

    def late(self, item: Keyed[tuple[int, Counted]]) -> list[LatePost]:
        """Record a post that reached its window after the window closed (per query)."""
        _lane, (window_id, (post_id, _created, polarity, _hashtags, queries, _lang)) = item
        start = self.start_of(window_id)
        retweet = polarity == RETWEET
        return [LatePost(query, start, post_id, retweet) for query in queries]


class BatchCounter:
    """Tells ``report`` the size of each batch, and passes the batch on unchanged."""

    def __init__(self, report: Callable[[int], object]) -> None:
        self._report = report

    def __call__(self, batch: list[X]) -> list[X]:
        self._report(len(batch))
        return batch
