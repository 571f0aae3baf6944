r"""The senti dataflow: posts in, per-query messages and window summaries out.

Read it top to bottom; each step is one line named after its function, with the
shape of its items in a comment. The functions live in :mod:`flows.steps`,
:mod:`flows.analysis` and :mod:`flows.model`; this module only composes them::

    lines -> parse -> drop retweets -> analyse -> to every query bucket --+
                 \-> rejected          \-> global windows                 |
    subscriptions -> to their query's bucket ------------------------------+-> match phrases
    match phrases -> posts with their matched queries; -> windows per bucket -> per-query summaries
    matched posts + window summaries + late posts + rejected -> every sink

Routing is a keyed join: the tracked queries are hashed into a few buckets,
each bucket's state is the term index of its queries, subscriptions go to
their query's bucket and every post visits every bucket. The work per post
depends on its own terms and the number of buckets, never on how many queries
are tracked, and spreads over workers by bucket. As a query's matches all come
from its bucket, windows are counted per bucket and split into per-query
summaries when they close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.outputs import Sink

from flows.analysis import PostAnalyzer
from flows.matching import Query, Subscription
from flows.model import ALL_POSTS, Line, parse_line
from flows.sentiment import Thresholds
from flows.steps import (
    BucketTally,
    PhraseMatcher,
    QueryRouter,
    Tally,
    WindowGrid,
    event_time,
    is_original,
    is_post,
)

__all__ = ["FlowSettings", "build_flow"]

_FIXED_NOW = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """Options of :func:`build_flow`."""

    # Analysis
    thresholds: Thresholds = field(default_factory=Thresholds)

    # Routing
    queries: Sequence[Query] = ()
    """Queries tracked from the first post on (``senti replay --track``)."""
    buckets: int = 1
    """Routing keys the tracked queries are hashed into (see :class:`~flows.steps.QueryRouter`):
    the number of workers, so that each can match its share. More buckets than
    workers only add work: every post visits every bucket (one worker ran 18%
    faster with 1 bucket than with 4)."""

    # Windows
    window: timedelta = timedelta(seconds=60)
    align_to: datetime = datetime(2020, 1, 1, tzinfo=UTC)
    wait: timedelta = timedelta(seconds=5)
    """How far behind the newest post a window stays open for stragglers."""
    top_n: int = 10
    live: bool = True
    """Advance windows with the wall clock too (live sources). ``False`` makes
    windows depend on event time only, so a replay gives the same summaries
    however fast it runs; every window still closes at the end of input."""

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError(f"window must be positive, not {self.window}")
        if self.wait < timedelta(0):
            raise ValueError(f"wait must not be negative, not {self.wait}")
        if self.top_n < 1:
            raise ValueError(f"top_n must be at least 1, not {self.top_n}")
        if self.align_to.tzinfo is None:
            raise ValueError("align_to must be timezone-aware")

    def clock(self) -> EventClock[Any]:
        """Event-time clock on the post's ``created_at``."""
        if self.live:
            return EventClock(event_time, wait_for_system_duration=self.wait)
        return EventClock(
            event_time,
            wait_for_system_duration=self.wait,
            now_getter=lambda: _FIXED_NOW,
            to_system_utc=lambda _: None,
        )

    def windower(self) -> TumblingWindower:
        """Tumbling windows of :attr:`window` aligned to :attr:`align_to`."""
        return TumblingWindower(length=self.window, align_to=self.align_to)


def build_flow(
    post_source: Source[Line],
    subscription_source: Source[Subscription] | None,
    sinks: Iterable[Sink[Any]],
    *,
    settings: FlowSettings | None = None,
    flow_id: str = "senti",
) -> Dataflow:
    """Build the dataflow reading ``post_source`` and writing every sink.

    ``subscription_source`` adds and removes tracked queries while the flow
    runs (``None`` for a fixed set given in ``settings.queries``). Every sink
    receives :class:`~flows.model.PostMatches` (a matched post with its
    queries of one bucket; :func:`~flows.model.per_query` spells them out as
    :class:`~flows.model.Match` records), :class:`~flows.model.WindowSummary`,
    :class:`~flows.model.LatePost`, :class:`~flows.model.Rejected` and
    :class:`~flows.matching.Subscription` items.
    """
    settings = settings or FlowSettings()
    analyzer = PostAnalyzer(settings.thresholds)
    router = QueryRouter(settings.buckets)
    matcher = PhraseMatcher(router, settings.queries)
    grid = WindowGrid(settings.window, settings.align_to, settings.top_n)
    clock, windower = settings.clock(), settings.windower()
    flow = Dataflow(flow_id)

    lines = op.input("read_lines", flow, post_source)  # Line
    parsed = op.branch("split_rejected", op.map("parse_line", lines, parse_line), is_post)
    posts, rejected = parsed.trues, parsed.falses  # Post, Rejected
    split = op.branch("drop_retweets", posts, is_original)
    originals, retweets = split.trues, split.falses  # Post, Post
    scored = op.map("analyse", originals, analyzer.analyse)  # ScoredPost

    by_bucket = op.flat_map("route_posts", scored, router.posts)  # (bucket, (bucket, ScoredPost))
    if subscription_source is not None:
        changes = op.input("read_subscriptions", flow, subscription_source)  # Subscription
        routed = op.flat_map("route_subscriptions", changes, router.subscriptions)
        by_bucket = op.merge("join_by_bucket", by_bucket, routed)  # (bucket, (bucket, item))
    matched = op.stateful_flat_map("match_phrases", by_bucket, matcher)  # (bucket, PostMatches)
    matches = op.key_rm("unkey", matched)  # PostMatches

    per_bucket = fold_window(
        "query_windows", matched, clock, windower, BucketTally, BucketTally.add,
        BucketTally.merge, ordered=False,
    )  # (bucket, (window_id, BucketTally))  # fmt: skip
    everything = op.key_on("key_all", op.merge("all_posts", scored, retweets), _all)
    overall = fold_window(
        "global_windows", everything, clock, windower, Tally, Tally.add, Tally.merge, ordered=False
    )  # ("*", (window_id, Tally))

    query_summaries = op.flat_map("summarise_queries", per_bucket.down, grid.bucket_summaries)
    all_summary = op.map("summarise_all", overall.down, grid.summary)  # WindowSummary
    lates = op.flat_map("late_posts", op.merge("late", per_bucket.late, overall.late), grid.late)

    streams: list[Any] = [matches, query_summaries, all_summary, lates, rejected]
    if subscription_source is not None:
        streams.append(changes)
    out = op.merge(
        "outputs", *streams
    )  # PostMatches | WindowSummary | LatePost | Rejected | Subscription
    for number, sink in enumerate(sinks):
        op.output(f"write_{number}", out, sink)
    return flow


def _all(_item: object) -> str:
    return ALL_POSTS
