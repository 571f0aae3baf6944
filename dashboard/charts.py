"""Altair chart builders for the dashboard.

Pure: each builder takes DataFrames from :mod:`dashboard.data` or
:mod:`dashboard.figures`, never modifies them (it works on a reshaped copy)
and returns an Altair chart; no Streamlit calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import altair as alt
import pandas as pd

from dashboard.figures import ALERT_DIRECTIONS, CLASSES, mark_runs

__all__ = [
    "ALERT_COLORS",
    "ALERT_LEGEND",
    "CLASS_COLORS",
    "PARTIAL_NOTE",
    "alert_marks",
    "class_scale",
    "hashtag_bars",
    "hashtag_heatmap",
    "language_bars",
    "polarity_area",
    "rate_line",
    "time_axis",
    "time_ticks",
]

CLASS_COLORS: Final = ("#2ca02c", "#d62728", "#9e9e9e")
"""Colours of the positive, negative and neutral classes, in that order."""


def class_scale() -> alt.Scale:
    """The colour scale shared by every chart that shows classes."""
    return alt.Scale(domain=list(CLASSES), range=list(CLASS_COLORS))


PARTIAL_NOTE: Final = "partial window (start/stop)"
"""The legend entry of the windows :func:`dashboard.figures.mark_runs` marks partial."""

_TIME_FORMAT: Final = "%H:%M"
_TIP_FORMAT: Final = "%Y-%m-%d %H:%M:%S UTC"
_TICK_STEPS: Final = (
    (timedelta(minutes=15), timedelta(minutes=1)),
    (timedelta(hours=1), timedelta(minutes=5)),
    (timedelta(hours=3), timedelta(minutes=15)),
    (timedelta(hours=12), timedelta(hours=1)),
    (timedelta(days=2), timedelta(hours=3)),
)
"""Up to a span (first key), ticks every (second): each label shows a whole minute."""
_MAX_TICKS: Final = 40


def time_ticks(starts: pd.Series, ends: pd.Series) -> tuple[list[datetime], str]:
    """Tick positions (UTC) and their label format for the span of ``starts`` to
    ``ends``: whole minutes (every 1, 5 or 15) or hours (every 1 or 3), as ``HH:MM``;
    beyond two days, midnights labelled with the day too."""
    if not len(starts):
        return [], _TIME_FORMAT
    low, high = pd.Timestamp(starts.min()), pd.Timestamp(ends.max())
    step, label = timedelta(days=1), "%d %b %H:%M"
    for limit, every in _TICK_STEPS:
        if high - low <= limit:
            step = every
            label = _TIME_FORMAT if limit <= timedelta(hours=12) else label
            break
    first = low.ceil(pd.Timedelta(step))
    whole = (high - first).total_seconds() // step.total_seconds()
    count = min(_MAX_TICKS, int(whole) + 1) if first <= high else 0
    ticks = [first + index * step for index in range(count)]
    return [tick.to_pydatetime() for tick in ticks], label


def time_axis(starts: pd.Series, ends: pd.Series, *, title: str = "window start (UTC)") -> alt.X:
    """The x encoding of ``start`` every chart uses: a UTC scale (labels in UTC), 24-hour
    labels on ticks that fall on whole minutes (see :func:`time_ticks`)."""
    ticks, label = time_ticks(starts, ends)
    axis = alt.Axis(format=label, labelOverlap=True)
    if ticks:
        # DateTime objects: Vega-Lite drops the labels of plain epoch numbers on a time axis.
        values = [
            alt.DateTime(
                year=tick.year,
                month=tick.month,
                date=tick.day,
                hours=tick.hour,
                minutes=tick.minute,
                utc=True,
            )
            for tick in ticks
        ]
        axis = alt.Axis(format=label, labelOverlap=True, values=values)
    return alt.X("start:T", title=title, scale=alt.Scale(type="utc"), axis=axis)


def _tip_times(times: pd.Series) -> pd.Series:
    """Times as full UTC text for tooltips (a tooltip does not follow the UTC scale)."""
    if not len(times):
        return pd.Series([], index=times.index, dtype=object)
    text = pd.to_datetime(times, utc=True).dt.strftime(_TIP_FORMAT)
    return pd.Series(list(text), index=times.index, dtype=object)


def _time_tip(field: str = "when", title: str = "window") -> alt.Tooltip:
    return alt.Tooltip(f"{field}:N", title=title)


def _note(partial: pd.Series) -> list[str]:
    return [PARTIAL_NOTE if flag else "full window" for flag in partial]


def _partial_bands(runs: pd.DataFrame) -> alt.Chart:
    """Light bands over the windows marked partial, with a legend entry."""
    frame = runs.loc[runs["partial"], ["start", "end"]].assign(note=PARTIAL_NOTE)
    frame = frame.assign(when=_tip_times(frame["start"]))
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_rect(fillOpacity=0.5, stroke="#616161", strokeDash=[4, 3])
        .encode(
            x="start:T",
            x2="end:T",
            fill=alt.Fill(
                "note:N",
                scale=alt.Scale(domain=[PARTIAL_NOTE], range=["white"]),
                legend=alt.Legend(
                    title="window",
                    labelLimit=300,
                    symbolType="square",
                    symbolStrokeColor="#616161",
                    symbolDash=[4, 3],
                ),
            ),
            tooltip=[_time_tip(), alt.Tooltip("note:N", title="")],
        )
    )
    return chart


def _long_classes(runs: pd.DataFrame, *, share: bool) -> pd.DataFrame:
    """One row per (window, class) with its count and stacked band ``low``..``high``
    (shares of the window's classified posts if ``share``, else counts), from ``runs``
    (a :func:`~dashboard.figures.mark_runs` frame); each run's last window is repeated
    at its end, so a step drawn from each start covers the whole window.

    The stack is computed here, not by Vega-Lite: its stacking fills every series in at
    every x, which would carry a run's last values across a gap.
    """
    columns = ["start", "run", *CLASSES]
    frame = runs.loc[:, [*columns, "end"]]
    closing = frame.groupby("run", sort=True).tail(1).assign(start=lambda f: f["end"])
    frame = pd.concat([frame, closing]).loc[:, columns].reset_index(drop=True)
    values = frame.loc[:, list(CLASSES)].astype("float64")
    if share:
        total = values.sum(axis=1)
        values = values.div(total.where(total > 0), axis=0).fillna(0.0)
    high = values.cumsum(axis=1)
    low = high - values
    parts = [
        pd.DataFrame(
            {
                "start": frame["start"],
                "run": frame["run"],
                "class": name,
                "order": index,
                "n": frame[name].astype("int64"),
                "low": low[name],
                "high": high[name],
            }
        )
        for index, name in enumerate(CLASSES)
    ]
    long = (
        pd.concat(parts, ignore_index=True)
        if len(frame)
        else pd.DataFrame(
            {
                "start": pd.Series(dtype="datetime64[ns, UTC]"),
                "run": pd.Series(dtype="int64"),
                "class": pd.Series(dtype=object),
                "order": pd.Series(dtype="int64"),
                "n": pd.Series(dtype="int64"),
                "low": pd.Series(dtype="float64"),
                "high": pd.Series(dtype="float64"),
            }
        )
    )
    return long.assign(when=_tip_times(long["start"]))


ALERT_COLORS: Final = ("#7f0000", "#00441b")
"""Colours of the negative and positive alert marks: darker than the classes' areas."""
ALERT_LEGEND: Final = tuple(f"{direction} shift" for direction in ALERT_DIRECTIONS)
"""The legend entries of the alert marks, negative first."""


def alert_marks(alerts: pd.DataFrame) -> alt.LayerChart:
    """A rule at the start of each alert's window, over the whole height of the chart
    it is layered on, with a triangle at the top; both coloured by direction.

    ``alerts`` is a :func:`dashboard.figures.alert_table` frame. The tooltip
    shows the query as typed, the direction, the share (baseline → window),
    z, the posts of that direction among the window's scored posts, the window
    in 24-hour UTC and the query's canonical key. The marks use the ``stroke``
    channel, so they keep their own legend beside the classes' colours.
    """
    columns = ["start", "query", "key", "direction", "shift", "z", "count", "scored"]
    frame = alerts.loc[:, columns].copy()
    frame = frame.assign(
        alert=[f"{direction} shift" for direction in frame["direction"]],
        posts=[
            f"{count:,} {direction} of {scored:,} scored"
            for count, direction, scored in zip(
                frame["count"], frame["direction"], frame["scored"], strict=True
            )
        ],
        when=_tip_times(frame["start"]),
    ).loc[:, ["start", "alert", "query", "key", "shift", "z", "posts", "when"]]
    stroke = alt.Stroke(
        "alert:N",
        scale=alt.Scale(domain=list(ALERT_LEGEND), range=list(ALERT_COLORS)),
        legend=alt.Legend(title="alert", labelLimit=300),
    )
    tooltip = [
        alt.Tooltip("query:N", title="alert on"),
        alt.Tooltip("alert:N", title="direction"),
        alt.Tooltip("shift:N", title="share (baseline → window)"),
        alt.Tooltip("z:Q", title="z", format=".2f"),
        alt.Tooltip("posts:N", title="posts in window"),
        _time_tip(),
        alt.Tooltip("key:N", title="canonical key"),
    ]
    base = alt.Chart(frame).encode(x="start:T", tooltip=tooltip)
    halo = base.mark_rule(stroke="white", strokeWidth=4, opacity=0.8)
    rule = base.mark_rule(strokeWidth=2).encode(stroke=stroke)
    top = base.mark_point(shape="triangle-down", size=140, filled=False, strokeWidth=2.5).encode(
        stroke=stroke, y=alt.value(7)
    )
    chart: alt.LayerChart = alt.LayerChart(layer=[halo, rule, top])
    return chart


def polarity_area(
    windows: pd.DataFrame,
    *,
    share: bool = True,
    alerts: pd.DataFrame | None = None,
    height: int = 260,
) -> alt.LayerChart:
    """Stacked area of positive/negative/neutral per window, one area per run.

    ``share=True`` stacks to 100 % (each class's share of the window's posts);
    otherwise it stacks the counts. Windows missing between runs (see
    :func:`dashboard.figures.mark_runs`) are left blank, and the windows marked
    partial are drawn lighter with a dashed outline and a legend entry. With
    ``alerts`` (a :func:`dashboard.figures.alert_table` frame), each alert is
    marked at its window (:func:`alert_marks`).
    """
    runs = mark_runs(windows.loc[:, ["start", "end", *CLASSES]])
    long = _long_classes(runs, share=share)
    title = "share of posts" if share else "posts"
    area: alt.Chart = (
        alt.Chart(long)
        .mark_area(interpolate="step-after")
        .encode(
            x=time_axis(runs["start"], runs["end"]),
            y=alt.Y("low:Q", title=title, axis=alt.Axis(format="%" if share else "d")),
            y2="high:Q",
            color=alt.Color("class:N", scale=class_scale(), title="class"),
            detail=alt.Detail("run:N"),
            order=alt.Order("order:Q"),
            tooltip=[_time_tip(), alt.Tooltip("class:N"), alt.Tooltip("n:Q", title="posts")],
        )
    )
    layers: list[alt.Chart | alt.LayerChart] = [area, _partial_bands(runs)]
    if alerts is not None and not alerts.empty:
        layers.append(alert_marks(alerts))
    chart: alt.LayerChart = alt.LayerChart(layer=layers, height=height)
    return chart


def rate_line(windows: pd.DataFrame, *, height: int = 160) -> alt.LayerChart:
    """Posts per second in each window (original posts, retweets excluded).

    One line per run (no line across missing windows); the points of windows
    marked partial are triangles, with a legend entry.
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
            "when": _tip_times(runs["start"]),
        }
    )
    base = alt.Chart(frame).encode(
        x=time_axis(runs["start"], runs["end"]), y=alt.Y("rate:Q", title="posts/s")
    )
    line = base.mark_line().encode(detail=alt.Detail("run:N"))
    kinds = ["full window", PARTIAL_NOTE]
    legend = alt.Legend(title="window", labelLimit=300)
    points = base.mark_point(filled=True, size=50).encode(
        shape=alt.Shape(
            "window:N", scale=alt.Scale(domain=kinds, range=["circle", "triangle"]), legend=legend
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
    """Horizontal bars of ``tag`` by ``count`` (from :func:`dashboard.figures.top_hashtags`)."""
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
    :func:`dashboard.figures.hashtag_minutes`).

    A blank cell is unknown (the tag was in no window's top list then), not
    zero; the tooltip says in how many of the minute's windows it was listed.
    ``tags`` fixes the row order (default: order of first appearance).
    """
    frame = buckets.loc[:, ["start", "end", "tag", "count", "listed", "windows"]].copy()
    frame = frame.assign(when=_tip_times(frame["start"]))
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
    :func:`dashboard.figures.language_mix`: most frequent first, ``other`` last)."""
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
