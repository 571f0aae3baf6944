"""Altair chart builders for the dashboard.

Pure: each builder takes DataFrames from :mod:`dashboard.data` or
:mod:`dashboard.summary`, never modifies them (it works on a reshaped copy)
and returns an Altair chart; no Streamlit calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import altair as alt
import pandas as pd

from dashboard.summary import CLASSES

__all__ = [
    "CLASS_COLORS",
    "class_scale",
    "hashtag_bars",
    "hashtag_trend",
    "language_bars",
    "polarity_area",
    "rate_line",
]

CLASS_COLORS: Final = ("#2ca02c", "#d62728", "#9e9e9e")
"""Colours of the positive, negative and neutral classes, in that order."""


def class_scale() -> alt.Scale:
    """The colour scale shared by every chart that shows classes."""
    return alt.Scale(domain=list(CLASSES), range=list(CLASS_COLORS))


def _long_classes(windows: pd.DataFrame) -> pd.DataFrame:
    """One row per (window, class) with its count, from a copy of ``windows``."""
    columns = ["start", *CLASSES]
    frame = windows.loc[:, columns].copy() if not windows.empty else pd.DataFrame(columns=columns)
    long = frame.melt(id_vars="start", value_vars=list(CLASSES), var_name="class", value_name="n")
    order = {name: index for index, name in enumerate(CLASSES)}
    return long.assign(order=long["class"].map(order))


def polarity_area(windows: pd.DataFrame, *, share: bool = True, height: int = 260) -> alt.Chart:
    """Stacked area of positive/negative/neutral per window.

    ``share=True`` stacks to 100 % (each class's share of the window's posts);
    otherwise it stacks the counts.
    """
    long = _long_classes(windows)
    stack: Literal["normalize"] | bool = "normalize" if share else True
    title = "share of posts" if share else "posts"
    chart: alt.Chart = (
        alt.Chart(long)
        .mark_area(interpolate="step-after")
        .encode(
            x=alt.X("start:T", title="window start (UTC)"),
            y=alt.Y(
                "n:Q",
                stack=stack,
                title=title,
                axis=alt.Axis(format="%" if share else "d"),
            ),
            color=alt.Color("class:N", scale=class_scale(), title="class"),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("start:T", title="window", format="%H:%M:%S"),
                alt.Tooltip("class:N"),
                alt.Tooltip("n:Q", title="posts"),
            ],
        )
        .properties(height=height)
    )
    return chart


def rate_line(windows: pd.DataFrame, *, height: int = 160) -> alt.Chart:
    """Posts per second in each window (original posts, retweets excluded)."""
    if windows.empty:
        frame = pd.DataFrame({"start": pd.Series(dtype="datetime64[ns, UTC]"), "rate": []})
    else:
        seconds = (windows["end"] - windows["start"]).dt.total_seconds()
        frame = pd.DataFrame({"start": windows["start"], "rate": windows["posts"] / seconds})
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", title="window start (UTC)"),
            y=alt.Y("rate:Q", title="posts/s"),
            tooltip=[
                alt.Tooltip("start:T", title="window", format="%H:%M:%S"),
                alt.Tooltip("rate:Q", title="posts/s", format=".2f"),
            ],
        )
        .properties(height=height)
    )
    return chart


def hashtag_bars(tags: pd.DataFrame, *, height: int = 240) -> alt.Chart:
    """Horizontal bars of ``tag`` by ``count`` (from :func:`dashboard.summary.top_hashtags`)."""
    frame = tags.loc[:, ["tag", "count"]].copy()
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="posts"),
            y=alt.Y("tag:N", sort="-x", title=None),
            tooltip=[alt.Tooltip("tag:N"), alt.Tooltip("count:Q", title="posts")],
        )
        .properties(height=height)
    )
    return chart


def hashtag_trend(
    series: pd.DataFrame, *, tags: Sequence[str] | None = None, height: int = 240
) -> alt.Chart:
    """Lines of each tag's count per window (from :func:`dashboard.summary.hashtag_series`).

    ``tags`` fixes the legend order (default: order of first appearance).
    """
    frame = series.loc[:, ["start", "tag", "count"]].copy()
    domain = list(tags) if tags is not None else list(dict.fromkeys(frame["tag"]))
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", title="window start (UTC)"),
            y=alt.Y("count:Q", title="posts"),
            color=alt.Color("tag:N", scale=alt.Scale(domain=domain), title="hashtag"),
            tooltip=[
                alt.Tooltip("start:T", title="window", format="%H:%M:%S"),
                alt.Tooltip("tag:N"),
                alt.Tooltip("count:Q", title="posts"),
            ],
        )
        .properties(height=height)
    )
    return chart


def language_bars(mix: pd.DataFrame, *, height: int = 240) -> alt.Chart:
    """Horizontal bars of posts by ``lang``, in the frame's order (from
    :func:`dashboard.summary.language_mix`: most frequent first, ``other`` last)."""
    frame = mix.loc[:, ["lang", "posts", "share"]].copy()
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("posts:Q", title="posts"),
            y=alt.Y("lang:N", sort=list(frame["lang"]), title="language"),
            tooltip=[
                alt.Tooltip("lang:N", title="language"),
                alt.Tooltip("posts:Q"),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(height=height)
    )
    return chart
