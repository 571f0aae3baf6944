"""Figures the pages show, computed from the frames of :mod:`dashboard.data`.

Pure: pandas in, numbers or new frames out; no Streamlit, no I/O, inputs are
never modified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import pandas as pd

from flows.analysis.languages import top_languages
from flows.analysis.sentiment import Thresholds, classify

__all__ = [
    "ALERT_DIRECTIONS",
    "CLASSES",
    "RANGES",
    "UNSCORED",
    "TimeRange",
    "Totals",
    "alert_table",
    "confusion",
    "hashtag_minutes",
    "language_mix",
    "mark_runs",
    "reclassify",
    "resolve_range",
    "share_change",
    "top_hashtags",
    "totals",
]

CLASSES: Final = ("positive", "negative", "neutral")
"""Class names indexed by :class:`~flows.model.Polarity` (0 positive, 1 negative, 2 neutral)."""

UNSCORED: Final = "unscored"
"""The class shown for a post whose language senti does not score."""


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a run of windows, and the rate and shares of the newest one.

    ``posts`` counts every original post, scored or not; the classes share the
    *scored* posts (``posts - unscored``), so posts in languages senti does not
    score do not dilute them. :data:`UNSCORED` shares all posts.
    """

    posts: int
    retweets: int
    positive: int
    negative: int
    neutral: int
    windows: int
    latest_posts_per_second: float | None
    """Posts per second in the newest window; ``None`` without windows."""
    latest_shares: dict[str, float] | None
    """Share of each class (of the scored posts) and of unscored posts (of all posts) in
    the newest window; ``None`` if it holds no posts, a class's ``None`` if none is scored."""
    unscored: int = 0

    def share(self, name: str) -> float | None:
        """Share of class ``name`` over the scored posts of all the windows, or of
        :data:`UNSCORED` over all of them; ``None`` without such posts."""
        count: int = getattr(self, name)
        whole = self.posts if name == UNSCORED else self.posts - self.unscored
        return count / whole if whole > 0 else None


def _shares(row: pd.Series) -> dict[str, float] | None:
    posts = int(row["posts"])
    if posts == 0:
        return None
    if "unscored" not in row:  # a frame from before unscored posts
        return {name: int(row[name]) / posts for name in CLASSES}
    unscored = int(row["unscored"])
    scored = posts - unscored
    shares = {name: int(row[name]) / scored for name in CLASSES} if scored > 0 else {}
    return shares | {UNSCORED: unscored / posts}


def totals(windows: pd.DataFrame) -> Totals:
    """Totals of a :func:`dashboard.data.load_windows` frame."""
    if windows.empty:
        return Totals(0, 0, 0, 0, 0, 0, None, None)
    latest = windows.sort_values("start").iloc[-1]
    seconds = (latest["end"] - latest["start"]).total_seconds()
    latest_posts = int(latest["posts"])
    return Totals(
        posts=int(windows["posts"].sum()),
        retweets=int(windows["retweets"].sum()),
        positive=int(windows["positive"].sum()),
        negative=int(windows["negative"].sum()),
        neutral=int(windows["neutral"].sum()),
        windows=len(windows),
        latest_posts_per_second=latest_posts / seconds if seconds > 0 else None,
        latest_shares=_shares(latest),
        unscored=int(windows["unscored"].sum()) if "unscored" in windows else 0,
    )


def language_mix(windows: pd.DataFrame) -> pd.DataFrame:
    """Posts by language over ``windows``: columns ``lang``, ``posts``, ``share``.

    The windows' language counts (``langs``) added up, the ten most frequent
    languages first and ``other`` (the rest, and malformed languages) last;
    ``share`` is of the posts counted by language. Windows written before senti
    counted languages have none and add nothing.
    """
    counts: Counter[str] = Counter()
    if "langs" in windows:
        for langs in windows["langs"]:
            counts.update({str(lang): int(n) for lang, n in dict(langs).items()})
    pairs = top_languages(counts)
    total = sum(n for _lang, n in pairs)
    frame = pd.DataFrame(
        {
            "lang": pd.Series([lang for lang, _n in pairs], dtype=str),
            "posts": pd.Series([n for _lang, n in pairs], dtype="int64"),
            "share": pd.Series([n / total for _lang, n in pairs], dtype="float64"),
        }
    )
    return frame


def top_hashtags(windows: pd.DataFrame) -> pd.DataFrame:
    """The newest window's top hashtags: columns ``tag``, ``count``, most used first."""
    if windows.empty:
        return pd.DataFrame({"tag": pd.Series(dtype=str), "count": pd.Series(dtype="int64")})
    latest = windows.sort_values("start").iloc[-1]
    pairs = [(str(tag), int(count)) for tag, count in latest["top_hashtags"]]
    frame = pd.DataFrame(pairs, columns=["tag", "count"]).astype({"count": "int64"})
    return frame.sort_values(["count", "tag"], ascending=[False, True], ignore_index=True)


def hashtag_minutes(
    windows: pd.DataFrame, tags: Sequence[str], *, every: timedelta = timedelta(minutes=1)
) -> pd.DataFrame:
    """What is known of each of ``tags`` per ``every`` (one minute by default).

    Columns: ``start``, ``end`` (the bucket), ``tag``, ``count`` (posts counted in
    the windows whose top list names the tag: a lower bound of the bucket's
    true count), ``listed`` (how many of the bucket's windows name it) and
    ``windows`` (windows in the bucket). A bucket where no window names the
    tag has no row: its count is unknown (below each window's N-th), not 0.
    """
    wanted = [str(tag) for tag in tags]
    columns = ["start", "end", "tag", "count", "listed", "windows"]
    if windows.empty or not wanted:
        return pd.DataFrame(
            {
                "start": pd.Series(dtype="datetime64[ns, UTC]"),
                "end": pd.Series(dtype="datetime64[ns, UTC]"),
                "tag": pd.Series(dtype=object),
                **{name: pd.Series(dtype="int64") for name in ("count", "listed", "windows")},
            }
        )
    buckets = windows["start"].dt.floor(pd.Timedelta(every))
    per_bucket = buckets.value_counts()
    counts: dict[tuple[pd.Timestamp, str], list[int]] = {}
    for bucket, pairs in zip(buckets, windows["top_hashtags"], strict=True):
        found = {str(tag): int(count) for tag, count in pairs}
        for tag in wanted:
            if tag in found:
                tally = counts.setdefault((bucket, tag), [0, 0])
                tally[0] += found[tag]
                tally[1] += 1
    rows = [
        (bucket, bucket + pd.Timedelta(every), tag, total, listed, int(per_bucket[bucket]))
        for (bucket, tag), (total, listed) in sorted(
            counts.items(), key=lambda item: (item[0][0], wanted.index(item[0][1]))
        )
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"count": "int64", "listed": "int64", "windows": "int64"})


def mark_runs(windows: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``windows`` in start order with ``run`` and ``partial`` columns.

    ``run`` numbers the unbroken stretches of windows: a window that starts
    after the previous one ended (the dataflow was down, or wrote nothing)
    begins a new run, so charts draw the gap as a gap. ``partial`` marks the
    windows that may hold only part of their span: the first window of every
    run (the flow may have started inside it) and the last window of every
    run but the newest (the flow may have stopped inside it). The store does
    not record run boundaries, so these are the windows at an edge, not
    proven partial ones.
    """
    frame = windows.sort_values("start", kind="stable").reset_index(drop=True)
    if frame.empty:
        return frame.assign(run=pd.Series(dtype="int64"), partial=pd.Series(dtype=bool))
    breaks = frame["start"] > frame["end"].shift(1)
    run = breaks.cumsum().astype("int64")
    first = run != run.shift(1)
    last = (run != run.shift(-1)) & (run != run.iloc[-1])
    return frame.assign(run=run, partial=(first | last).astype(bool))


ALERT_DIRECTIONS: Final = ("negative", "positive")
"""The directions an alert can have (:data:`flows.alerts.Direction`)."""


def share_change(baseline: float, share: float) -> str:
    """An alert's shift as people read it: ``"31.0% → 62.0%"`` (baseline → window)."""
    return f"{baseline:.1%} → {share:.1%}"


def alert_table(alerts: pd.DataFrame, spellings: Mapping[str, str]) -> pd.DataFrame:
    """The alerts of a :func:`dashboard.data.load_alerts` frame as the pages list them,
    in the frame's order.

    Columns: ``start``, ``end``, ``query`` (what the user typed: the spelling in
    ``spellings``, a key to spelling mapping, else the alert's own label, else
    the key), ``key`` (the canonical key), ``direction``, ``baseline``,
    ``share``, ``shift`` (:func:`share_change` of the two), ``z``, ``count``
    (posts of ``direction`` in the window) and ``scored`` (scored posts in it).
    """
    keys = [str(key) for key in alerts["query"]]
    labels = list(alerts["label"]) if "label" in alerts else [None] * len(keys)
    shown = [
        spellings.get(key) or (str(label) if isinstance(label, str) and label else key)
        for key, label in zip(keys, labels, strict=True)
    ]
    baselines = alerts["baseline"].astype("float64")
    shares = alerts["share"].astype("float64")
    return pd.DataFrame(
        {
            "start": alerts["start"],
            "end": alerts["end"],
            "query": pd.Series(shown, index=alerts.index, dtype=object),
            "key": pd.Series(keys, index=alerts.index, dtype=object),
            "direction": alerts["direction"].astype(object),
            "baseline": baselines,
            "share": shares,
            "shift": pd.Series(
                [share_change(b, s) for b, s in zip(baselines, shares, strict=True)],
                index=alerts.index,
                dtype=object,
            ),
            "z": alerts["z"].astype("float64"),
            "count": alerts["count"].astype("int64"),
            "scored": alerts["scored"].astype("int64"),
        }
    ).reset_index(drop=True)


def reclassify(posts: pd.DataFrame, current: Thresholds, what_if: Thresholds) -> pd.DataFrame:
    """``posts`` (with a ``compound`` column) plus ``current`` and ``what_if`` class columns."""
    compounds = posts["compound"].astype(float)
    return posts.assign(
        current=[CLASSES[classify(value, current)] for value in compounds],
        what_if=[CLASSES[classify(value, what_if)] for value in compounds],
    )


def confusion(reclassified: pd.DataFrame) -> pd.DataFrame:
    """Posts per (current class, what-if class): rows current, columns what-if, all classes."""
    table = pd.crosstab(
        pd.Categorical(reclassified["current"], categories=CLASSES),
        pd.Categorical(reclassified["what_if"], categories=CLASSES),
        dropna=False,
    )
    table = table.reindex(index=list(CLASSES), columns=list(CLASSES), fill_value=0)
    table.index.name = "current"
    table.columns.name = "what-if"
    return table.astype("int64")


# Time ranges

RANGES: Final = {
    "Last 15 min": timedelta(minutes=15),
    "Last 1 h": timedelta(hours=1),
    "Last 24 h": timedelta(hours=24),
    "All": None,
}
"""Preset ranges, relative to "now"; ``None`` is everything in the store."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A resolved time range: posts and windows in ``[since, until)``; ``None`` is open."""

    since: datetime | None
    until: datetime | None
    now: datetime | None
    """The moment the preset was counted back from (``None`` for custom ranges)."""

    @property
    def since_ms(self) -> int | None:
        """``since`` in epoch milliseconds."""
        return None if self.since is None else _ms(self.since)

    @property
    def until_ms(self) -> int | None:
        """``until`` in epoch milliseconds."""
        return None if self.until is None else _ms(self.until)


def resolve_range(
    preset: timedelta | None,
    *,
    latest: datetime | None,
    wall_clock: datetime,
    use_data_time: bool = True,
    custom: tuple[datetime, datetime] | None = None,
) -> TimeRange:
    """The range a preset (or a ``custom`` pair) covers.

    Presets count back from "now": the store's ``latest`` event time when
    ``use_data_time`` and the store holds data (so replayed or old data still
    shows), else ``wall_clock``. A preset range has no upper bound, so posts
    newer than "now" are never hidden.
    """
    if custom is not None:
        start, end = custom
        return TimeRange(since=start, until=end, now=None)
    now = latest if use_data_time and latest is not None else wall_clock
    since = None if preset is None else now - preset
    return TimeRange(since=since, until=None, now=now)


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
