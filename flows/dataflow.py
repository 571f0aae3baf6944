r"""The senti dataflow: posts in, per-query messages and window summaries out.

Read it top to bottom; each step is one line named after its function, with the
shape of its items in a comment. The functions live in :mod:`flows.steps`,
:mod:`flows.analysis.posts` and :mod:`flows.model`; this module only composes them::

    lines -> to a lane -> parse -> drop retweets -> analyse --+-> match phrases -> matched posts
                          \-> rejected   \-> retweets     |          |
    subscriptions -> to every lane ------------------------+          v
    analysed posts + retweets -> windows per lane -> merge windows -> summaries -> detect shifts
                                                \-> late posts                     (alerts)
    matched posts + summaries + alerts + late posts + rejected + subscriptions -> every sink

Work is split into lanes, one per worker (:mod:`flows.routing.lanes` names keys that
Bytewax places one on each worker). A post stays in the lane of the worker that
read it when the source has a partition per worker; a single-partition source's
lines are spread over the lanes by a hash of their text. There the steps keyed
by its lane parse, analyse, match and count it. Routing is a keyed join of
posts and subscription changes: every change goes to every lane, so each
lane's state is the term index of all tracked queries, and matching costs a
lookup per term of the post whatever the number of queries. Each lane counts
its posts in its own windows, on its own event-time clock, and a window is
summarised once every lane has closed it (:mod:`flows.windows`). What crosses
between workers is the raw line of a single-partition source, each
subscription change, and a lane's tallies once per window. Sentiment-shift
alerts (:mod:`flows.alerts`, docs/alerts.md) are decided per query from its
closed window summaries, in a step keyed by the query, so each query's baseline
lives on one worker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard, TypeVar, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, operator
from bytewax.inputs import FixedPartitionedSource, Source
from bytewax.operators import KeyedStream
from bytewax.outputs import Sink

from flows.alerts import Alert, AlertSettings, ShiftDetector
from flows.analysis.languages import ScoredLanguages
from flows.analysis.posts import PostAnalyzer
from flows.analysis.sentiment import Thresholds
from flows.model import Line, Post, PostMatches, Rejected, ScoredPost, WindowSummary
from flows.platforms.x import parse_line
from flows.routing.matching import Query, Subscription
from flows.sources.workers import WorkerProbe
from flows.steps import (
    BatchCounter,
    Lanes,
    PhraseMatcher,
    WindowGrid,
    bundle,
    is_matched,
    is_original,
    is_post,
    is_subscription,
    keep,
    window_record,
)
from flows.windows import LANE_START, Closed, LaneWindows, Late, WindowMerge, WindowSpec

__all__ = ["FlowSettings", "build_flow", "move_to_lanes", "window_wait"]

X = TypeVar("X")

_MERGE_KEY = "windows"


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """Options of :func:`build_flow`."""

    # Analysis
    thresholds: Thresholds = field(default_factory=Thresholds)
    languages: ScoredLanguages = field(default_factory=ScoredLanguages)
    """The languages VADER scores; others are unscored (:mod:`flows.analysis.languages`)."""

    # Routing
    queries: Sequence[Query] = ()
    """Queries tracked from the first post on (``senti replay --track``)."""
    lanes: int = 1
    """Lanes the posts are spread over (see :class:`~flows.steps.Lanes`): the
    number of workers, each of which then analyses and matches its share."""

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

    # Observation
    on_posts: Callable[[int], object] | None = field(default=None, compare=False)
    """Told the number of posts (retweets included) in each batch parsed, as it is
    parsed (the server's ``senti_posts_total``); called on the workers' threads."""

    # Alerts
    alerts: AlertSettings = field(default_factory=AlertSettings)
    """Thresholds of the sentiment-shift rule (:mod:`flows.alerts`, docs/alerts.md)."""

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError(f"window must be positive, not {self.window}")
        if self.wait < timedelta(0):
            raise ValueError(f"wait must not be negative, not {self.wait}")
        if self.top_n < 1:
            raise ValueError(f"top_n must be at least 1, not {self.top_n}")
        if self.align_to.tzinfo is None:
            raise ValueError("align_to must be timezone-aware")

    def windows(self) -> WindowSpec:
        """The tumbling windows: :attr:`window` long from :attr:`align_to`, on ``created_at``."""
        return WindowSpec(self.window, self.align_to, self.wait, self.live)


def window_wait(seconds: float | None, *, live: bool) -> timedelta:
    """How long windows wait for stragglers: ``seconds`` if given, else 5 s for a live
    source and 30 s for a replay (whose files may interleave their posts more)."""
    return timedelta(seconds=seconds if seconds is not None else (5 if live else 30))


def build_flow(
    post_source: Source[Line],
    subscription_source: Source[Subscription] | Source[Subscription | Rejected] | None,
    sinks: Iterable[Sink[Any]],
    *,
    settings: FlowSettings | None = None,
    flow_id: str = "senti",
) -> Dataflow:
    """Build the dataflow reading ``post_source`` and writing every sink.

    ``subscription_source`` adds and removes tracked queries while the flow
    runs (``None`` for a fixed set given in ``settings.queries``); the
    :class:`~flows.model.Rejected` records it may emit (malformed events of a
    shared bus) go to the sinks with the rejected lines. Every sink
    receives :class:`~flows.model.PostMatches` (a matched post with all its
    queries; :func:`~flows.model.per_query` spells them out as
    :class:`~flows.model.Match` records), :class:`~flows.model.WindowSummary`,
    :class:`~flows.model.LatePost`, :class:`~flows.model.Rejected`,
    :class:`~flows.alerts.Alert` and :class:`~flows.routing.matching.Subscription` items.
    """
    settings = settings or FlowSettings()
    analyzer = PostAnalyzer(settings.thresholds, settings.languages)
    lanes = Lanes(settings.lanes, local=_partitions(post_source) >= settings.lanes)
    matcher = PhraseMatcher(settings.queries)
    grid = WindowGrid(settings.window, settings.align_to, settings.top_n)
    spec = settings.windows()
    detector = ShiftDetector(settings.alerts)
    flow = Dataflow(flow_id)

    starts = op.input("find_workers", flow, WorkerProbe(lanes.keys))  # each lane's key, once
    lines = op.key_on("lane_lines", op.input("read_lines", flow, post_source), lanes.of_line)
    if lanes.count > 1 and not lanes.local:
        lines = move_to_lanes("spread_lines", lines)  # (lane, Line) on the lane's worker
    parsed = op.branch("split_rejected", op.map_value("parse_line", lines, parse_line), is_post)
    posts, rejected = parsed.trues, op.key_rm("unkey_rejected", parsed.falses)  # (lane, Post)
    if settings.on_posts is not None:
        posts = op.flat_map_batch("count_posts_read", posts, BatchCounter(settings.on_posts))
    split = op.branch("drop_retweets", posts, is_original)
    originals, retweets = split.trues, split.falses  # (lane, Post)
    scored = op.map_value("analyse", originals, analyzer.analyse)  # (lane, ScoredPost)

    joined: KeyedStream[ScoredPost | Subscription] = scored
    if subscription_source is not None:
        inputs = cast(Source[Subscription | Rejected], subscription_source)
        read = op.input("read_subscriptions", flow, inputs)  # Subscription | Rejected
        checked = op.branch("split_bad_subscriptions", read, is_subscription)
        changes, bad_changes = checked.trues, checked.falses  # Subscription, Rejected
        routed = op.flat_map("to_every_lane", changes, lanes.broadcast)  # (lane, Subscription)
        joined = op.merge("join_by_lane", scored, routed)  # (lane, ScoredPost | Subscription)
    analysed = op.stateful_flat_map("match_phrases", joined, matcher)  # (lane, PostMatches)
    matches = op.filter("keep_matched", op.key_rm("unkey", analysed), is_matched)  # PostMatches

    all_posts: KeyedStream[PostMatches | Post] = op.merge("all_posts", analysed, retweets)
    records = op.map_value("count_posts", all_posts, window_record)  # (lane, Counted)
    lane_starts = op.map("lane_starts", starts, _lane_start)  # (lane, LANE_START)
    windows = op.stateful_batch(
        "windows", op.merge("start_lanes", lane_starts, records), lambda s: LaneWindows(spec, s)
    )  # (lane, Late | Closed)
    split_windows = op.branch("split_late", windows, _is_closed)
    closed = op.map("to_merge", split_windows.trues, _to_merge)  # (MERGE, (lane, Closed))
    merged = op.stateful_batch(
        "merge_windows", closed, lambda s: WindowMerge(lanes.keys, s)
    )  # (MERGE, (window_id, LaneTally))
    summaries = op.flat_map("summarise", merged, grid.lane_summaries)  # WindowSummary
    by_query = op.key_on("key_by_query", summaries, _query_of)  # (query, WindowSummary)
    shifts = op.stateful_map("detect_shifts", by_query, detector)  # (query, Alert | None)
    alerts = op.filter_map("keep_alerts", shifts, _alert_of)  # Alert
    late = cast(KeyedStream[Late], split_windows.falses)  # (lane, (window_id, Counted))
    lates = op.flat_map("late_posts", late, grid.late)  # LatePost

    streams: list[Any] = [matches, summaries, alerts, lates, rejected]
    if subscription_source is not None:
        streams += [changes, bad_changes]
    out = op.merge(
        "outputs", *streams
    )  # PostMatches | WindowSummary | Alert | LatePost | Rejected | Subscription
    for number, sink in enumerate(sinks):
        op.output(f"write_{number}", out, sink)
    return flow


@operator
def move_to_lanes(step_id: str, up: KeyedStream[X]) -> KeyedStream[X]:
    """Move each item to the worker of its lane, as one item per batch and lane.

    In a cluster Bytewax pickles every item that crosses between processes, and
    each one costs more in calls and references than the data it carries, so a
    batch's items for a lane cross as one list.
    """
    bundles = op.flat_map_batch("bundle", up, bundle)  # (lane, [X])
    moved = op.stateful_flat_map("move", bundles, keep)  # (lane, [X]) on the lane's worker
    return op.flat_map_value("unbundle", moved, _each)  # (lane, X)


def _each(items: list[X]) -> list[X]:
    return items


def _query_of(summary: WindowSummary) -> str:
    return summary.query


def _alert_of(item: tuple[str, Alert | None]) -> Alert | None:
    return item[1]


def _lane_start(key: str) -> tuple[str, None]:
    return key, LANE_START


def _is_closed(item: tuple[str, Late | Closed]) -> TypeGuard[tuple[str, Closed]]:
    return isinstance(item[1], Closed)


def _to_merge(item: tuple[str, Closed]) -> tuple[str, tuple[str, Closed]]:
    """Send a lane's report to the one key that merges windows, naming the lane."""
    return _MERGE_KEY, item


def _partitions(source: Source[Any]) -> int:
    """How many partitions ``source`` is read in (a dynamic source: one per worker)."""
    if isinstance(source, FixedPartitionedSource):
        return len(source.list_parts())
    return sys.maxsize
