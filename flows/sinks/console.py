"""A sink printing closed windows as readable lines, for a person watching ``senti run``."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.model import ALL_POSTS, WindowSummary

__all__ = ["ConsoleSink", "describe_window"]


def describe_window(summary: WindowSummary) -> str:
    """``12:01 python  posts 12  +5 -3 =2 ?2  #python3 4, #ai 2`` (``?``: unscored posts,
    shown when there are some)."""
    scope = "all posts" if summary.query == ALL_POSTS else summary.query
    tags = ", ".join(f"#{tag} {count}" for tag, count in summary.top_hashtags[:5])
    extra = f"  retweets {summary.retweets}" if summary.query == ALL_POSTS else ""
    unscored = f" ?{summary.unscored}" if summary.unscored else ""
    return (
        f"{summary.start:%H:%M:%S} {scope:<20} posts {summary.posts:>5}{extra}  "
        f"+{summary.positive} -{summary.negative} ={summary.neutral}{unscored}  {tags}"
    )


class _ConsolePartition(StatelessSinkPartition[Any]):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @override
    def write_batch(self, items: list[Any]) -> None:
        lines = [describe_window(item) for item in items if isinstance(item, WindowSummary)]
        if lines:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


class ConsoleSink(DynamicSink[Any]):
    """Prints each closed window summary; ignores the other items."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ConsolePartition:
        return _ConsolePartition(self.stream or sys.stdout)
