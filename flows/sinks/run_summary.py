"""In-process counters of a run, for the CLI's progress bar and closing summary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.model import ALL_POSTS, LatePost, PostMatches, Rejected, WindowSummary

__all__ = ["RunSummary", "SummarySink"]


@dataclass
class RunSummary:
    """Totals of one run, fed by :class:`SummarySink` from any worker thread.

    Posts are counted from the global window summaries (and late posts), so
    the figures are complete once the flow has ended and every window closed.
    """

    posts: int = 0
    """Posts read: originals and retweets."""
    retweets: int = 0
    rejected: int = 0
    matches: int = 0
    windows: int = 0
    late: int = 0
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    on_posts: Callable[[int], None] | None = None
    """Called with the number of newly counted posts (a progress bar's ``update``)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, items: list[Any]) -> None:
        """Count a batch of output items."""
        new_posts = 0
        with self._lock:
            for item in items:
                if isinstance(item, PostMatches):
                    self.matches += len(item.queries)
                elif isinstance(item, WindowSummary):
                    self.windows += 1
                    if item.query == ALL_POSTS:
                        new_posts += item.posts + item.retweets
                        self.retweets += item.retweets
                elif isinstance(item, LatePost):
                    self.late += 1
                    if item.query == ALL_POSTS:
                        new_posts += 1
                        self.retweets += item.retweet
                elif isinstance(item, Rejected):
                    self.rejected += 1
            self.posts += new_posts
        if new_posts and self.on_posts is not None:
            self.on_posts(new_posts)

    def finish(self) -> None:
        """Stop the clock."""
        self.finished = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall time from start to finish (or to now)."""
        return (self.finished or time.perf_counter()) - self.started

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        rate = self.posts / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.posts} posts read, {self.retweets} retweets dropped, "
            f"{self.rejected} malformed lines, {self.matches} matches, "
            f"{self.windows} windows, {self.late} late, "
            f"{self.seconds:.1f} s, {rate:,.0f} posts/s"
        )


class _SummaryPartition(StatelessSinkPartition[Any]):
    def __init__(self, summary: RunSummary) -> None:
        self._summary = summary

    @override
    def write_batch(self, items: list[Any]) -> None:
        self._summary.record(items)


class SummarySink(DynamicSink[Any]):
    """Counts every output item into a :class:`RunSummary` shared by the workers."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SummaryPartition:
        return _SummaryPartition(self.summary)
