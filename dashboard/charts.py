"""Altair chart builders for the dashboard.

Pure: each builder takes DataFrames from :mod:`dashboard.data` or
:mod:`dashboard.summary`, never modifies them (it works on a reshaped copy)
and returns an Altair chart; no Streamlit calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Final, Literal, TypeAlias

import altair as alt
import pandas as pd

from dashboard.summary import CLASSES, mark_runs

__all__ = [
    "CLASS_COLORS",
    "PARTIAL_NOTE",
    "class_scale",
    "hashtag_bars",
    "hashtag_heatmap",
    "language_bars",
    "polarity_area",
    "rate_line",
    "time_axis",
]

CLASS_COLORS: Final = ("#2ca02c", "#d62728", "#9e9e9e")
"""Colours of the positive, negative and neutral classes, in that order."""


def class_scale() -> alt.Scale:
    """The colour scale shared by every chart that shows classes."""
    return alt.Scale(domain=list(CLASSES), range=list(CLASS_COLORS))


PARTIAL_NOTE: Final = "partial window (at a start or stop, may hold part of its span)"
"""The legend entry of the windows :func:`dashboard.summary.mark_runs` marks partial."""

_TIME_FORMAT: Final = "%H:%M"
_TIP_FORMAT: Final = "%Y-%m-%d %H:%M:%S UTC"
_Interval: TypeAlias = Literal["minute", "hour", "day"]
_TICK_STEPS: Final[tuple[tuple[timedelta, _Interval, int], ...]] = (
    (timedelta(minutes=15), "minute", 1),
    (timedelta(hours=1), "minute", 5),
    (timedelta(hours=3), "minute", 15),
    (timedelta(hours=12), "hour", 1),
    (timedelta(days=2), "hour", 3),
)


def time_axis(starts: pd.Series, ends: pd.Series, *, title: str = "window start (UTC)") -> alt.X:
    """The x encoding of ``start`` every chart uses: a UTC scale, 24-hour labels.

    Ticks fall on whole minutes (every 1, 5 or 15) or hours (every 1 or 3),
    chosen from the span of ``starts`` to ``ends`` so a few labels show, each
    with its minute; beyond two days ticks are daily and name the day too.
    """
    span = (ends.max() - starts.min()) if len(starts) else timedelta(0)
    step: alt.TimeIntervalStep | None = None
    label = "%d %b %H:%M"
    for limit, interval, count in _TICK_STEPS:
        if span <= limit:
            step = alt.TimeIntervalStep(interval=interval, step=count)
            label = _TIME_FORMAT if span <= timedelta(hours=12) else label
            break
    if step is None:
        step = alt.TimeIntervalStep(interval="day", step=1)
    return alt.X(
        "start:T",
        title=title,
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format=label, formatType="utc", tickCount=step, labelOverlap=True),
    )


def _time_tip(field: str = "start", title: str = "window") -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", title=title, format=_TIP_FORMAT, formatType="utc")


def _note(partial: pd.Series) -> list[str]:
    return [PARTIAL_NOTE if flag else "full window" for flag in partial]


def _partial_bands(runs: pd.DataFrame) -> alt.Chart:
    """Light bands over the windows marked partial, with a legend entry."""
    frame = runs.loc[runs["partial"], ["start", "end"]].assign(note=PARTIAL_NOTE)
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_rect(color="white", stroke="#616161", strokeDash=[4, 3])
        .encode(
            x="start:T",
            x2="end:T",
            opacity=alt.Opacity(
                "note:N",
                scale=alt.Scale(domain=[PARTIAL_NOTE], range=[0.55]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[_time_tip(), alt.Tooltip("note:N", title="")],
        )
    )
    return chart


def _long_classes(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (window, class) with its count and run, from ``runs`` (a
    :func:`~dashboard.summary.mark_runs` frame); each run's last window is
    repeated at its end, so a step drawn from each start covers the whole window."""
    columns = ["start", "run", *CLASSES]
    frame = runs.loc[:, [*columns, "end"]]
    closing = frame.groupby("run", sort=True).tail(1).assign(start=lambda f: f["end"])
    frame = pd.concat([frame, closing]).loc[:, columns]
    long = frame.melt(
        id_vars=["start", "run"], value_vars=list(CLASSES), var_name="class", value_name="n"
    )
    order = {name: index for index, name in enumerate(CLASSES)}
    return long.assign(order=long["class"].map(order))


def polarity_area(
    windows: pd.DataFrame, *, share: bool = True, height: int = 260
) -> alt.LayerChart:
    """Stacked area of positive/negative/neutral per window, one area per run.

    ``share=True`` stacks to 100 % (each class's share of the window's posts);
    otherwise it stacks the counts. Windows missing between runs (see
    :func:`dashboard.summary.mark_runs`) are left blank, and the windows marked
    partial are drawn lighter with a dashed outline and a legend entry.
    """
    runs = mark_runs(windows.loc[:, ["start", "end", *CLASSES]])
    long = _long_classes(runs)
    stack: Literal["normalize"] | bool = "normalize" if share else True
    title = "share of posts" if share else "posts"
    area: alt.Chart = (
        alt.Chart(long)
        .mark_area(interpolate="step-after")
        .encode(
            x=time_axis(runs["start"], runs["end"]),
            y=alt.Y(
                "n:Q",
                stack=stack,
                title=title,
                axis=alt.Axis(format="%" if share else "d"),
            ),
            color=alt.Color("class:N", scale=class_scale(), title="class"),
            detail=alt.Detail("run:N"),
            order=alt.Order("order:Q"),
            tooltip=[_time_tip(), alt.Tooltip("class:N"), alt.Tooltip("n:Q", title="posts")],
        )
    )
    chart: alt.LayerChart = alt.LayerChart(layer=[area, _partial_bands(runs)], height=height)
    return chart


def rate_line(windows: pd.DataFrame, *, height: int = 160) -> alt.LayerChart:
    """Posts per second in each window (original posts, retweets excluded).

    One line per run (no line across missing windows); the points of windows
    marked partial are hollow, with a legend entry.
    """
    runs = mark_runs(windows.loc[:, ["start", "end", "posts"]])
    seconds = (
        (runs["end"] - runs["start"]).dt.total_seconds()
        if not runs.empty
        else pd.Series(dtype="float64")
    )
    frame = pd.DataFrame(
        {
            "start": runs["start"],
            "rate": (runs["posts"] / seconds).astype("float64"),
            "run": runs["run"],
            "window": pd.Series(_note(runs["partial"]), index=runs.index, dtype=object),
        }
    )
    base = alt.Chart(frame).encode(
        x=time_axis(runs["start"], runs["end"]), y=alt.Y("rate:Q", title="posts/s")
    )
    line = base.mark_line().encode(detail=alt.Detail("run:N"))
    points = base.mark_point(filled=True, size=40).encode(
        fillOpacity=alt.FillOpacity(
            "window:N",
            scale=alt.Scale(domain=["full window", PARTIAL_NOTE], range=[1.0, 0.0]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        tooltip=[
            _time_tip(),
            alt.Tooltip("rate:Q", title="posts/s", format=".2f"),
            alt.Tooltip("window:N", title=""),
        ],
    )
    chart: alt.LayerChart = alt.LayerChart(layer=[line, points], height=height)
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


def hashtag_heatmap(
    buckets: pd.DataFrame, *, tags: Sequence[str] | None = None, height: int = 240
) -> alt.Chart:
    """A cell per (tag, minute) shaded by the posts counted (from
    :func:`dashboard.summary.hashtag_minutes`).

    A blank cell is unknown (the tag was in no window's top list then), not
    zero; the tooltip says in how many of the minute's windows it was listed.
    ``tags`` fixes the row order (default: order of first appearance).
    """
    frame = buckets.loc[:, ["start", "end", "tag", "count", "listed", "windows"]].copy()
    order = list(tags) if tags is not None else list(dict.fromkeys(frame["tag"]))
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=time_axis(frame["start"], frame["end"], title="minute (UTC)"),
            x2="end:T",
            y=alt.Y("tag:N", sort=order, title=None),
            color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), title="posts (at least)"),
            tooltip=[
                _time_tip(title="minute"),
                alt.Tooltip("tag:N"),
                alt.Tooltip("count:Q", title="posts (at least)"),
                alt.Tooltip("listed:Q", title="windows listing it"),
                alt.Tooltip("windows:Q", title="windows in the minute"),
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
