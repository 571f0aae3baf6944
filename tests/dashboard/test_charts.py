"""Pure chart builders and figures: data, encodings, and inputs left untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from dashboard import charts
from dashboard.data import parse_client_counts
from dashboard.figures import (
    alert_table,
    confusion,
    hashtag_minutes,
    language_mix,
    mark_runs,
    reclassify,
    resolve_range,
    share_change,
    top_hashtags,
    totals,
)
from flows.analysis.sentiment import Thresholds

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def windows_frame() -> pd.DataFrame:
    """Two one-minute windows as dashboard.data.load_windows returns them."""
    return pd.DataFrame(
        {
            "start": [T0, T0 + timedelta(minutes=1)],
            "end": [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)],
            "posts": [10, 30],
            "positive": [5, 6],
            "negative": [3, 12],
            "neutral": [2, 12],
            "retweets": [4, 1],
            "top_hashtags": [[["python", 3], ["ai", 1]], [["ai", 4], ["rust", 2]]],
        }
    )


def spec(chart: object) -> dict[str, object]:
    """The chart's Vega-Lite spec as a dict."""
    return chart.to_dict()


def layer_data(chart: object, index: int = 0) -> pd.DataFrame:
    """The DataFrame of layer ``index`` of a layered chart (or the one its layers share)."""
    data = chart.layer[index].data  # type: ignore[attr-defined]
    if not isinstance(data, pd.DataFrame):
        data = chart.data  # type: ignore[attr-defined]
    assert isinstance(data, pd.DataFrame)
    return data


def gap_frame() -> pd.DataFrame:
    """Three runs of one-minute windows: 12:00-12:02, 12:05-12:07 after a gap, one at 12:09."""
    starts = [T0 + timedelta(minutes=m) for m in (0, 1, 5, 6, 9)]
    return pd.DataFrame(
        {
            "start": starts,
            "end": [start + timedelta(minutes=1) for start in starts],
            "posts": [6, 60, 60, 6, 30],
            "positive": [2, 20, 20, 2, 10],
            "negative": [2, 20, 20, 2, 10],
            "neutral": [2, 20, 20, 2, 10],
            "retweets": [0] * 5,
            "top_hashtags": [[["ai", 3]], [["ai", 4], ["py", 2]], [["py", 5]], [], [["ai", 1]]],
        }
    )


def test_polarity_area_share_stacks_to_one_by_class() -> None:
    """The share chart stacks normalised counts per class with the class colour scale."""
    frame = windows_frame()
    before = frame.copy(deep=True)
    chart = charts.polarity_area(frame, share=True)
    pd.testing.assert_frame_equal(frame, before)
    encoding = spec(chart)["layer"][0]["encoding"]
    assert (encoding["y"]["field"], encoding["y2"]["field"]) == ("low", "high")
    assert encoding["x"]["field"] == "start"
    assert encoding["color"]["scale"]["domain"] == ["positive", "negative", "neutral"]
    data = layer_data(chart)
    # Two windows and the closing step at the end of the last one, three classes each.
    assert len(data) == 9
    assert data[data["start"] < T0 + timedelta(minutes=2)].groupby("class")[
        "n"
    ].sum().to_dict() == {
        "positive": 11,
        "negative": 15,
        "neutral": 14,
    }
    # Bands stack positive, negative, neutral from 0 up to 1 in every window.
    top = data[data["class"] == "neutral"]
    assert list(top["high"]) == pytest.approx([1.0, 1.0, 1.0])
    first = data[data["start"] == T0].set_index("class")
    assert first.loc["negative", "low"] == pytest.approx(0.5)
    assert first.loc["negative", "high"] == pytest.approx(0.8)


def test_polarity_area_counts_and_empty() -> None:
    """Without share the counts stack as they are; an empty frame gives an empty chart."""
    counts = layer_data(charts.polarity_area(windows_frame(), share=False))
    assert list(counts[counts["class"] == "neutral"]["high"]) == [10.0, 30.0, 30.0]
    empty = charts.polarity_area(windows_frame().iloc[0:0])
    assert layer_data(empty).empty


def test_rate_line_is_posts_per_second() -> None:
    """Each point is the window's posts divided by its length in seconds."""
    frame = windows_frame()
    before = frame.copy(deep=True)
    chart = charts.rate_line(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(layer_data(chart)["rate"]) == pytest.approx([10 / 60, 30 / 60])
    assert spec(chart)["layer"][0]["mark"] == {"type": "line"}
    assert layer_data(charts.rate_line(frame.iloc[0:0])).empty


def test_time_axes_are_24_hour_utc_with_minute_ticks() -> None:
    """Every chart's time axis is a UTC scale labelled HH:MM on whole-minute ticks, and
    tooltips show the full UTC time."""
    frame = windows_frame()
    tags = hashtag_minutes(frame, ["ai", "rust"])
    minutes = [
        {"year": 2024, "month": 5, "date": 1, "hours": 12, "minutes": m, "utc": True}
        for m in range(3)
    ]
    layers = [
        spec(charts.polarity_area(frame))["layer"][0],
        spec(charts.rate_line(frame))["layer"][0],
        spec(charts.hashtag_heatmap(tags)),
    ]
    for layer in layers:
        x = layer["encoding"]["x"]
        assert x["scale"] == {"type": "utc"}
        assert x["axis"]["format"] == "%H:%M"
        assert x["axis"]["values"] == minutes
        assert "(UTC)" in x["title"]
    tip = spec(charts.rate_line(frame))["layer"][1]["encoding"]["tooltip"][0]
    assert tip["field"] == "when"
    points = layer_data(charts.rate_line(frame), 1)
    assert list(points["when"]) == ["2024-05-01 12:00:00 UTC", "2024-05-01 12:01:00 UTC"]


def test_time_ticks_fall_on_whole_minutes_or_hours() -> None:
    """Ticks start at the first whole step inside the span: 1 min up to 15 min, 5 min up
    to an hour, hours up to 12 h (still HH:MM), days beyond two days (with the date)."""
    start = T0 + timedelta(seconds=25)

    def ticks(span: timedelta) -> tuple[list[datetime], str]:
        return charts.time_ticks(pd.Series([start]), pd.Series([start + span]))

    short, label = ticks(timedelta(minutes=3))
    assert (short, label) == ([T0 + timedelta(minutes=m) for m in (1, 2, 3)], "%H:%M")
    hour, _ = ticks(timedelta(minutes=50))
    assert hour[:2] == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    half_day, label = ticks(timedelta(hours=5))
    assert (half_day[0], half_day[1] - half_day[0], label) == (
        T0 + timedelta(hours=1),
        timedelta(hours=1),
        "%H:%M",
    )
    week, label = ticks(timedelta(days=7))
    assert (week[1] - week[0], label) == (timedelta(days=1), "%d %b %H:%M")
    assert charts.time_ticks(pd.Series([], dtype=object), pd.Series([], dtype=object))[0] == []


def test_mark_runs_splits_at_gaps_and_marks_edges_partial() -> None:
    """A window starting after the previous one ended begins a run; the edges of runs are
    partial except the newest window, which may still be live."""
    runs = mark_runs(gap_frame())
    assert list(runs["run"]) == [0, 0, 1, 1, 2]
    assert list(runs["partial"]) == [True, True, True, True, True]
    live = mark_runs(gap_frame().iloc[:4])
    assert list(live["partial"]) == [True, True, True, False]
    assert mark_runs(gap_frame().iloc[0:0]).empty


def test_gaps_break_lines_and_partial_windows_are_marked() -> None:
    """No line or area spans a gap (one per run), partial windows get bands and hollow
    points with a legend entry."""
    frame = gap_frame()
    area = charts.polarity_area(frame)
    area_spec = spec(area)
    assert area_spec["layer"][0]["encoding"]["detail"]["field"] == "run"
    long = layer_data(area)
    # Each run ends with a closing step at its last window's end, not at the next run.
    closing = long.groupby("run")["start"].max().tolist()
    assert closing == [T0 + timedelta(minutes=m) for m in (2, 7, 10)]
    bands = layer_data(area, 1)
    assert len(bands) == 5
    legend = area_spec["layer"][1]["encoding"]["fill"]["scale"]["domain"]
    assert legend == [charts.PARTIAL_NOTE]
    line = charts.rate_line(frame.iloc[:4])
    assert spec(line)["layer"][0]["encoding"]["detail"]["field"] == "run"
    points = layer_data(line, 1)
    assert list(points["run"]) == [0, 0, 1, 1]
    assert list(points["window"]) == [charts.PARTIAL_NOTE] * 3 + ["full window"]


def test_hashtag_charts() -> None:
    """Bars are the newest window's tags sorted by count; the trend is a heatmap per minute."""
    frame = windows_frame()
    before = frame.copy(deep=True)
    tags = top_hashtags(frame)
    assert list(zip(tags["tag"], tags["count"], strict=True)) == [("ai", 4), ("rust", 2)]
    bars = charts.hashtag_bars(tags)
    assert spec(bars)["encoding"]["y"] == {
        "field": "tag",
        "sort": "-x",
        "title": None,
        "type": "nominal",
    }
    buckets = hashtag_minutes(frame, ["ai", "rust"])
    heat = charts.hashtag_heatmap(buckets, tags=["ai", "rust"])
    assert spec(heat)["mark"] == {"type": "rect"}
    assert spec(heat)["encoding"]["y"]["sort"] == ["ai", "rust"]
    pd.testing.assert_frame_equal(frame, before)


def test_hashtag_minutes_leave_unknown_out_instead_of_zero() -> None:
    """Per minute a tag sums its counts in the windows that list it; a minute where no
    window lists it has no row (unknown), never a 0."""
    starts = [T0 + timedelta(seconds=10 * n) for n in range(9)]
    frame = pd.DataFrame(
        {
            "start": starts,
            "end": [start + timedelta(seconds=10) for start in starts],
            "top_hashtags": [[["ai", 2]], [], [["ai", 3], ["py", 1]], [], [], [], [], [], []],
        }
    )
    buckets = hashtag_minutes(frame, ["ai", "py", "rust"])
    rows = list(
        zip(buckets["start"], buckets["tag"], buckets["count"], buckets["listed"], strict=True)
    )
    assert rows == [(T0, "ai", 5, 2), (T0, "py", 1, 1)]
    assert list(buckets["windows"]) == [6, 6]
    assert (buckets["count"] > 0).all()
    assert hashtag_minutes(frame.iloc[0:0], ["ai"]).empty


def test_totals_of_windows() -> None:
    """Totals sum the windows; the rate and shares come from the newest one."""
    figures = totals(windows_frame())
    assert (figures.posts, figures.retweets, figures.windows) == (40, 5, 2)
    assert figures.share("negative") == pytest.approx(15 / 40)
    assert figures.latest_posts_per_second == pytest.approx(0.5)
    assert figures.latest_shares == {"positive": 0.2, "negative": 0.4, "neutral": 0.4}
    assert totals(windows_frame().iloc[0:0]).share("positive") is None


def test_reclassify_and_confusion() -> None:
    """Moving the cut-offs out sends border posts to neutral; the table counts each move."""
    posts = pd.DataFrame({"compound": [0.9, 0.3, 0.0, -0.3, -0.9]})
    before = posts.copy(deep=True)
    result = reclassify(posts, Thresholds(-0.05, 0.05), Thresholds(-0.5, 0.5))
    pd.testing.assert_frame_equal(posts, before)
    assert list(result["what_if"]) == ["positive", "neutral", "neutral", "neutral", "negative"]
    table = confusion(result)
    assert table.loc["positive", "neutral"] == 1
    assert table.loc["negative", "neutral"] == 1
    assert int(table.to_numpy().sum()) == 5
    assert list(table.index) == list(table.columns) == ["positive", "negative", "neutral"]


def test_resolve_range_counts_back_from_data_or_clock() -> None:
    """Presets end at the newest data unless the wall clock is chosen; custom is as given."""
    wall = T0 + timedelta(days=100)
    span = resolve_range(timedelta(minutes=15), latest=T0, wall_clock=wall)
    assert (span.since, span.until, span.now) == (T0 - timedelta(minutes=15), None, T0)
    clock = resolve_range(timedelta(hours=1), latest=T0, wall_clock=wall, use_data_time=False)
    assert clock.since == wall - timedelta(hours=1)
    empty = resolve_range(timedelta(hours=1), latest=None, wall_clock=wall)
    assert empty.now == wall
    custom = resolve_range(None, latest=T0, wall_clock=wall, custom=(T0, wall))
    assert (custom.since_ms, custom.until_ms) == (
        int(T0.timestamp() * 1000),
        int(wall.timestamp() * 1000),
    )


def test_parse_client_counts_hook() -> None:
    """The client-count hook reads senti_query_clients gauges and ignores other lines."""
    text = (
        "# TYPE senti_query_clients gauge\n"
        'senti_query_clients{query="python"} 3\n'
        'senti_query_clients{query="say \\"hi\\""} 1\n'
        "senti_connections 4\n"
    )
    assert parse_client_counts(text) == {"python": 3, 'say "hi"': 1}


def multilingual_frame() -> pd.DataFrame:
    """Two windows with unscored posts and language counts, as load_windows returns them."""
    frame = windows_frame()
    return frame.assign(
        posts=[14, 40],
        unscored=[4, 10],
        langs=[
            {"en": 10, "pt": 3, "other": 1},
            {"en": 25, "ja": 8, "pt": 5, "other": 2},
        ],
    )


def test_totals_share_classes_of_scored_posts_and_unscored_of_all() -> None:
    """Posts in unscored languages do not dilute the classes; their own share is of all posts."""
    figures = totals(multilingual_frame())
    assert (figures.posts, figures.unscored) == (54, 14)
    assert figures.share("positive") == pytest.approx(11 / 40)
    assert figures.share("unscored") == pytest.approx(14 / 54)
    assert figures.latest_shares == pytest.approx(
        {"positive": 0.2, "negative": 0.4, "neutral": 0.4, "unscored": 10 / 40}
    )


def test_totals_with_every_post_unscored_have_no_class_shares() -> None:
    """When no post of the range was scored the classes have no share (not 0 %)."""
    frame = multilingual_frame().assign(positive=0, negative=0, neutral=0, unscored=[14, 40])
    figures = totals(frame)
    assert figures.share("positive") is None
    assert figures.share("unscored") == 1.0
    assert figures.latest_shares == {"unscored": 1.0}


def test_language_mix_adds_windows_up_most_frequent_first_other_last() -> None:
    """The mix sums the windows' languages, most frequent first, ``other`` last, with shares."""
    frame = multilingual_frame()
    before = frame.copy(deep=True)
    mix = language_mix(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(mix["lang"]) == ["en", "ja", "pt", "other"]
    assert list(mix["posts"]) == [35, 8, 8, 3]
    assert mix["share"].sum() == pytest.approx(1.0)


def test_language_mix_is_bounded() -> None:
    """Beyond ten languages the rest are added to ``other``."""
    langs = {f"l{chr(97 + n)}": 20 - n for n in range(14)}
    mix = language_mix(windows_frame().iloc[:1].assign(langs=[langs]))
    assert len(mix) == 11
    assert mix["lang"].iloc[-1] == "other"
    assert int(mix["posts"].iloc[-1]) == sum(range(7, 11))


def test_language_mix_without_language_counts_is_empty() -> None:
    """Windows from before language counting (or none at all) give an empty mix."""
    assert language_mix(windows_frame()).empty
    assert language_mix(multilingual_frame().assign(langs=[{}, {}])).empty


def test_language_bars_keep_the_mix_order() -> None:
    """Bars are sorted as the mix lists them (``other`` last), not alphabetically."""
    mix = language_mix(multilingual_frame())
    before = mix.copy(deep=True)
    chart = charts.language_bars(mix)
    pd.testing.assert_frame_equal(mix, before)
    encoding = spec(chart)["encoding"]
    assert isinstance(encoding, dict)
    assert encoding["y"]["sort"] == ["en", "ja", "pt", "other"]
    assert encoding["x"]["field"] == "posts"


def alerts_frame() -> pd.DataFrame:
    """Two alerts as dashboard.data.load_alerts returns them (newest first): a launch on
    ``python`` with no label, a crisis on ``change climate`` labelled as typed."""
    return pd.DataFrame(
        {
            "query": ["python", "change climate"],
            "label": [None, "Climate Change"],
            "start": [T0 + timedelta(minutes=1), T0],
            "end": [T0 + timedelta(minutes=2), T0 + timedelta(minutes=1)],
            "direction": ["positive", "negative"],
            "share": [0.625, 0.5],
            "baseline": [0.3125, 0.25],
            "z": [4.567, 6.0],
            "count": [15, 1200],
            "scored": [24, 2400],
        }
    )


def test_alert_table_shows_queries_as_typed_and_shifts() -> None:
    """The table keeps the frame's order, names each query by its spelling (else the alert's
    label, else the key), keeps the key beside it and reads each shift baseline → window."""
    alerts = alerts_frame()
    before = alerts.copy()
    table = alert_table(alerts, {"python": "Python"})
    pd.testing.assert_frame_equal(alerts, before)
    assert list(table["query"]) == ["Python", "Climate Change"]
    assert list(table["key"]) == ["python", "change climate"]
    assert list(table["shift"]) == ["31.2% → 62.5%", "25.0% → 50.0%"]
    assert list(table["direction"]) == ["positive", "negative"]
    assert list(table["count"]) == [15, 1200]
    assert list(table["start"]) == list(alerts["start"])
    assert list(alert_table(alerts, {})["query"]) == ["python", "Climate Change"]
    assert share_change(0.1, 0.55) == "10.0% → 55.0%"


def test_alert_marks_are_rules_and_triangles_by_direction_with_a_tooltip() -> None:
    """Each alert is a rule at its window's start and a triangle at the top of the chart,
    stroked by direction with its own legend; the tooltip names the query as typed, the
    shift, z, the posts and the window in 24-hour UTC."""
    table = alert_table(alerts_frame(), {"python": "Python"})
    chart = charts.alert_marks(table)
    layers: list[dict[str, Any]] = chart.to_dict()["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["rule", "rule", "point"]
    stroke = layers[1]["encoding"]["stroke"]
    assert stroke["field"] == "alert"
    assert stroke["scale"]["domain"] == ["negative shift", "positive shift"]
    assert layers[2]["encoding"]["stroke"] == stroke
    assert layers[2]["encoding"]["y"] == {"value": 7}
    assert layers[2]["mark"]["shape"] == "triangle-down"
    tips = {tip["field"]: tip.get("title") for tip in layers[1]["encoding"]["tooltip"]}
    assert tips["query"] == "alert on"
    assert tips["shift"] == "share (baseline → window)"
    data = chart.data
    assert isinstance(data, pd.DataFrame)
    assert list(data["query"]) == ["Python", "Climate Change"]
    assert list(data["alert"]) == ["positive shift", "negative shift"]
    assert list(data["posts"]) == ["15 positive of 24 scored", "1,200 negative of 2,400 scored"]
    assert list(data["when"]) == ["2024-05-01 12:01:00 UTC", "2024-05-01 12:00:00 UTC"]
    assert list(data["shift"]) == ["31.2% → 62.5%", "25.0% → 50.0%"]


def test_polarity_area_layers_alert_marks_only_when_there_are_alerts() -> None:
    """With alerts the polarity chart gains the alert layer on the same time axis; with
    none (or an empty frame) it is the area and the partial bands alone."""
    windows = windows_frame()
    table = alert_table(alerts_frame(), {})
    marked: dict[str, Any] = charts.polarity_area(windows, alerts=table).to_dict()
    assert len(marked["layer"]) == 3
    assert [layer["mark"]["type"] for layer in marked["layer"][2]["layer"]] == [
        "rule",
        "rule",
        "point",
    ]
    assert marked["layer"][2]["layer"][1]["encoding"]["x"]["field"] == "start"
    for unmarked in (
        charts.polarity_area(windows),
        charts.polarity_area(windows, alerts=table[:0]),
    ):
        assert len(unmarked.to_dict()["layer"]) == 2
