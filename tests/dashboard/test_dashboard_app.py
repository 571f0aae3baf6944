"""Every dashboard page under AppTest over real fixture stores: what it shows, not that it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_stores import APP, SMALL_COMPOUNDS, url_of
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from dashboard.charts import PARTIAL_NOTE
from flows.analysis.sentiment import Thresholds, classify, load_thresholds
from flows.model import ALL_POSTS
from flows.store import open_store
from tests.helpers.factories import make_window

PAGES = ("views/overview.py", "views/query.py", "views/what_if.py")
CLASSES = ("positive", "negative", "neutral")


def run_page(page: str, monkeypatch: pytest.MonkeyPatch, url: str | None) -> AppTest:
    """Run ``page`` of the dashboard with the store at ``url`` (env ``SENTI_STORE``)."""
    if url is not None:
        monkeypatch.setenv("SENTI_STORE", url)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    """Metric label to displayed value."""
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest) -> str:
    """Every info, warning and caption on the page, in one string."""
    parts = [e.value for e in (*at.info, *at.warning, *at.caption)]
    return "\n".join(str(part) for part in parts)


# Missing and empty stores


@pytest.mark.parametrize("page", PAGES)
def test_missing_store_shows_info(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store file that does not exist yet gives an info message on every page, no traceback."""
    at = run_page(page, monkeypatch, url_of(tmp_path / "absent.db"))
    assert any("No store at" in str(info.value) for info in at.info)
    assert not at.metric


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_says_so(page: str, empty_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty store gives a clear message on every page instead of charts or errors."""
    at = run_page(page, monkeypatch, empty_store)
    assert at.info, texts(at)
    assert not at.get("vega_lite_chart")


def test_not_a_senti_store_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is not (yet) a senti store, as while a writer creates it, is a warning."""
    (tmp_path / "creating.db").write_bytes(b"")
    at = run_page(PAGES[0], monkeypatch, url_of(tmp_path / "creating.db"))
    assert any("cannot be read right now" in str(w.value) for w in at.warning)


def test_store_from_secrets(small_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SENTI_STORE the store URL comes from st.secrets["store"]."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["store"] = small_store
    at.run()
    assert not at.exception
    assert metrics(at)["Total posts"] == "40"


# Overview


def test_overview_metrics_equal_store_figures(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Total posts, retweets, shares and rate are the sums of the store's global windows."""
    at = run_page(PAGES[0], monkeypatch, small_store)
    with open_store(small_store, readonly=True) as store:
        windows = store.windows(ALL_POSTS)
        queries = store.queries()
    posts = sum(w.posts for w in windows)
    shown = metrics(at)
    assert shown["Total posts"] == f"{posts:,}"
    assert shown["Retweets dropped"] == f"{sum(w.retweets for w in windows):,}"
    for name in CLASSES:
        share = sum(getattr(w, name) for w in windows) / posts
        assert shown[name.capitalize()] == f"{share:.1%}"
    latest = windows[-1]
    assert shown["Posts/s"] == f"{latest.posts / 60:.2f}"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Neutral"] == f"{latest.neutral / latest.posts:.1%} in newest window"
    assert shown["Tracked queries"] == f"{sum(q.active for q in queries)} active"
    table = at.dataframe[0].value
    assert list(table["query"]) == [q.key for q in queries]
    assert list(table["active"]) == [q.active for q in queries]
    assert list(table["clients"]) == ["n/a"] * len(queries)  # no metrics endpoint configured
    assert len(at.get("vega_lite_chart")) == 2


def test_overview_time_range_counts_back_from_newest_data(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 'Last 15 min' on 2024 data, "now" is the store's newest window end, not today."""
    at = run_page(PAGES[0], monkeypatch, small_store)
    at.sidebar.selectbox(key="range").set_value("Last 15 min").run()
    assert metrics(at)["Total posts"] == "40"
    assert "now = 2024-05-01 12:03:00 UTC" in texts(at)
    at.sidebar.radio(key="clock").set_value("wall clock").run()
    assert metrics(at)["Total posts"] == "0"


def test_overview_on_dataflow_output(large_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a store the real dataflow wrote, the overview shows the windows' totals."""
    at = run_page(PAGES[0], monkeypatch, large_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    with open_store(large_store, readonly=True) as store:
        windows = store.windows(ALL_POSTS)
    shown = metrics(at)
    assert shown["Total posts"] == f"{sum(w.posts for w in windows):,}"
    assert shown["Retweets dropped"] == f"{sum(w.retweets for w in windows):,}"
    assert sum(w.retweets for w in windows) > 0
    assert sum(w.posts for w in windows) > 1000


def test_overview_shows_unscored_share_and_language_mix(
    multilingual_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unscored posts have their own share (of all posts), the classes share the scored posts,
    and the language mix table adds up the windows' languages, ``other`` last."""
    at = run_page(PAGES[0], monkeypatch, multilingual_store)
    shown = metrics(at)
    assert shown["Total posts"] == "20"
    assert shown["Unscored"] == f"{8 / 20:.1%}"
    assert shown["Positive"] == f"{7 / 12:.1%}"
    assert shown["Neutral"] == f"{2 / 12:.1%}"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Unscored"] == f"{4 / 10:.1%} in newest window"
    mix = at.table[0].value
    assert list(mix.index) == ["en", "pt", "es", "ja", "other"]
    assert list(mix["posts"]) == [11, 5, 2, 1, 1]
    assert list(mix["share"]) == ["55.0%", "25.0%", "10.0%", "5.0%", "5.0%"]
    assert len(at.get("vega_lite_chart")) == 3  # polarity share, posts/s, language mix


def test_overview_language_mix_on_dataflow_output(
    large_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the real dataflow's output the language mix counts every post once, English first,
    and the non-English synthetic posts are the unscored ones."""
    at = run_page(PAGES[0], monkeypatch, large_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    with open_store(large_store, readonly=True) as store:
        windows = store.windows(ALL_POSTS)
    mix = at.table[0].value
    assert int(mix["posts"].sum()) == sum(w.posts for w in windows)
    assert mix.index[0] == "en"
    unscored = sum(w.unscored for w in windows)
    assert unscored == int(mix.loc[mix.index != "en", "posts"].sum())
    assert unscored > 0
    assert metrics(at)["Unscored"] == f"{unscored / sum(w.posts for w in windows):.1%}"


def test_overview_of_windows_without_languages_says_so(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows that counted no languages (written before senti did) show a caption, no table."""
    at = run_page(PAGES[0], monkeypatch, small_store)
    assert "No language counts in this range" in texts(at)
    assert not at.table
    assert metrics(at)["Unscored"] == "0.0%"


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite spec of every chart on the page, in page order, with its named
    datasets (sent beside the spec as Arrow) back in ``datasets`` as lists of rows."""
    specs = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        spec["datasets"] = {
            named.name: convert_arrow_bytes_to_pandas_df(named.data.data).to_dict("records")
            for named in chart.proto.datasets
        }
        specs.append(spec)
    return specs


def test_overview_draws_gaps_as_gaps_and_marks_partial_windows(
    gap_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ten minutes of downtime the share and rate charts split into one mark per run,
    the windows at the edges are banded as partial, and the page says what that means."""
    at = run_page(PAGES[0], monkeypatch, gap_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    share, rate = chart_specs(at)[:2]
    for spec in (share, rate):
        assert spec["layer"][0]["encoding"]["detail"]["field"] == "run"
        assert spec["layer"][0]["encoding"]["x"]["axis"]["format"] == "%H:%M"
    datasets = list(share["datasets"].values())
    runs = {row["run"] for rows in datasets for row in rows if "run" in row}
    assert runs == {0, 1}
    bands = [row for rows in datasets for row in rows if row.get("note") == PARTIAL_NOTE]
    assert len(bands) == 3  # both edges of the first run, the start of the second
    assert "left as gaps" in texts(at)
    assert "partial" in texts(at)


def test_overview_says_only_tracked_posts_are_stored_and_shows_spellings(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside the store's counts the page says only posts matching a tracked query are
    stored; the queries table shows the spelling first typed, with the key beside it."""
    at = run_page(PAGES[0], monkeypatch, small_store)
    assert "Only posts that match a tracked query are stored" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == ["spelling", "query"]
    assert list(table["spelling"]) == ["Climate Change", "python"]
    assert list(table["query"]) == ["change climate", "python"]


# Per query


def test_query_picker_lists_store_queries(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The picker offers exactly the store's queries as first typed, inactive ones marked,
    and its help names the chosen query's canonical key."""
    at = run_page(PAGES[1], monkeypatch, small_store)
    with open_store(small_store, readonly=True) as store:
        keys = [q.key for q in store.queries()]
    picker = at.selectbox(key="query")
    assert picker.options == ["Climate Change (inactive)", "python"]
    assert keys == ["change climate", "python"]
    assert "`change climate`" in str(picker.help)
    assert picker.value == "change climate"
    assert "No closed windows for 'Climate Change'" in texts(at)


def test_query_posts_table_matches_recent_matches(
    large_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The posts table lists recent_matches' rows (time, text, compound, class) in order."""
    at = run_page(PAGES[1], monkeypatch, large_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    at.selectbox(key="query").set_value("python").run()
    assert not at.exception
    with open_store(large_store, readonly=True) as store:
        expected = store.recent_matches("python", limit=100)
    table = at.dataframe[0].value
    assert len(expected) == 100
    assert list(table["text"]) == [row.text for row in expected]
    assert list(table["compound"]) == [row.compound for row in expected]
    assert list(table["class"]) == [CLASSES[row.polarity] for row in expected]
    assert [t.to_pydatetime() for t in table["time"]] == [row.time for row in expected]
    assert len(at.get("vega_lite_chart")) == 3  # polarity, hashtags, hashtag trend


def test_query_search_filters_posts(small_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Searching keeps only posts whose text contains the words."""
    at = run_page(PAGES[1], monkeypatch, small_store)
    at.selectbox(key="query").set_value("python").run()
    assert len(at.dataframe[0].value) == len(SMALL_COMPOUNDS)
    at.text_input(key="search").set_value("GREAT").run()
    table = at.dataframe[0].value
    assert len(table) == sum(c > 0 for c in SMALL_COMPOUNDS)
    assert all("great" in text for text in table["text"])
    at.text_input(key="search").set_value("100%").run()
    assert at.dataframe[0].value.empty


def test_query_hashtag_trend_is_a_minute_heatmap_without_fake_zeros(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashtag trend is a heatmap per minute with no cell of 0 (unknown is blank), and
    the page says a blank cell is unknown."""
    at = run_page(PAGES[1], monkeypatch, small_store)
    at.selectbox(key="query").set_value("python").run()
    heat = chart_specs(at)[-1]
    assert heat["mark"] == {"type": "rect"}
    assert heat["encoding"]["x"]["axis"]["format"] == "%H:%M"
    (rows,) = heat["datasets"].values()
    assert rows
    assert all(row["count"] > 0 for row in rows)
    assert "A blank cell is unknown" in texts(at)


def test_query_metrics_and_hashtags(small_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The query's metrics are its windows' sums; the newest window's hashtags are charted."""
    at = run_page(PAGES[1], monkeypatch, small_store)
    at.selectbox(key="query").set_value("python").run()
    shown = metrics(at)
    assert shown["Posts"] == "8"
    assert shown["Positive"] == f"{3 / 8:.1%}"
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3


def test_query_page_marks_unscored_posts_and_lists_languages(
    multilingual_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unscored post is listed with class ``unscored``, no compound and its language; the
    query's language table and unscored share come from its windows."""
    at = run_page(PAGES[1], monkeypatch, multilingual_store)
    at.selectbox(key="query").set_value("python").run()
    table = at.dataframe[0].value
    assert list(table["class"]) == ["unscored", "negative", "positive"]
    assert table["compound"].isna().tolist() == [True, False, False]
    assert list(table["lang"]) == ["pt-BR", "en", "en"]
    shown = metrics(at)
    assert shown["Unscored"] == f"{1 / 3:.1%}"
    assert shown["Positive"] == f"{1 / 2:.1%}"
    languages = at.table[0].value
    assert list(languages.index) == ["en", "pt"]
    assert list(languages["posts"]) == [2, 1]


def test_what_if_leaves_unscored_posts_out(
    multilingual_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only scored posts are re-classified: an unscored post has no compound."""
    at = run_page(PAGES[2], monkeypatch, multilingual_store)
    assert sum(int(value) for value in metrics(at).values()) == 2


# Alerts


def alerts_table(at: AppTest) -> Any:
    """The page's alert list (the dataframe with a ``shift`` column)."""
    (table,) = [frame.value for frame in at.dataframe if "shift" in frame.value.columns]
    return table


def alert_rows(at: AppTest) -> list[dict[str, Any]]:
    """The rows of the alert marks of the page's first chart (its polarity chart)."""
    datasets = chart_specs(at)[0]["datasets"].values()
    return [row for rows in datasets for row in rows if "alert" in row]


def test_overview_lists_recent_alerts_of_every_query_as_the_store_has_them(
    alert_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the real flow's alerts on the synthetic events, the overview counts them, lists
    them newest first with the query as typed (key beside it) and the store's figures, and
    marks each on the share chart; no stray text (a docstring written by magic) appears."""
    at = run_page(PAGES[0], monkeypatch, alert_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    with open_store(alert_store, readonly=True) as store:
        expected = list(reversed(store.alerts()))
        spellings = {q.key: q.shown for q in store.queries()}
    assert {a.direction for a in expected} == {"negative", "positive"}
    assert all(a.label is None for a in expected)  # the spelling comes from the queries
    assert metrics(at)["Alerts"] == str(len(expected))
    table = alerts_table(at)
    assert list(table["key"]) == [a.query for a in expected]
    assert list(table["query"]) == [spellings[a.query] for a in expected]
    assert all(shown != key for shown, key in zip(table["query"], table["key"], strict=True))
    assert list(table["direction"]) == [a.direction for a in expected]
    assert list(table["shift"]) == [f"{a.baseline:.1%} → {a.share:.1%}" for a in expected]
    assert list(table["z"]) == [a.z for a in expected]
    assert list(table["count"]) == [a.count for a in expected]
    assert list(table["scored"]) == [a.scored for a in expected]
    assert [t.to_pydatetime() for t in table["start"]] == [a.start for a in expected]
    marks = alert_rows(at)
    assert [row["key"] for row in marks] == [a.query for a in expected]
    assert [row["alert"] for row in marks] == [f"{a.direction} shift" for a in expected]
    assert [row["when"] for row in marks] == [
        a.start.strftime("%Y-%m-%d %H:%M:%S UTC") for a in expected
    ]
    assert "newest of" in texts(at)
    assert not at.markdown


def test_overview_without_alerts_says_what_they_are(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store without alerts shows 0, no alert marks, and a line on what an alert is."""
    at = run_page(PAGES[0], monkeypatch, small_store)
    assert metrics(at)["Alerts"] == "0"
    assert "No sentiment-shift alerts in this range" in texts(at)
    assert "SENTI_ALERT_" in texts(at)
    assert not alert_rows(at)
    assert all("shift" not in frame.value.columns for frame in at.dataframe)


def test_alerts_follow_the_time_range(gap_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts are those whose window starts in the selected range: both over the store's
    newest quarter hour, none counting back from the wall clock."""
    at = run_page(PAGES[0], monkeypatch, gap_store)
    at.sidebar.selectbox(key="range").set_value("Last 15 min").run()
    assert metrics(at)["Alerts"] == "2"
    assert list(alerts_table(at)["query"]) == ["Climate Change", "Climate Change"]
    assert list(alerts_table(at)["direction"]) == ["positive", "negative"]
    at.sidebar.radio(key="clock").set_value("wall clock").run()
    assert metrics(at)["Alerts"] == "0"


def test_query_page_marks_and_lists_the_query_s_alerts(
    alert_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query's page lists its own alerts as Store.alerts has them, newest first, and marks
    them on its polarity chart, the tooltip naming the query as typed, whether the chart
    shows posts or shares."""
    with open_store(alert_store, readonly=True) as store:
        everything = store.alerts()
        key = everything[0].query
        expected = list(reversed(store.alerts(key)))
        spelling = next(q.shown for q in store.queries() if q.key == key)
    at = run_page(PAGES[1], monkeypatch, alert_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    at.selectbox(key="query").set_value(key).run()
    table = alerts_table(at)
    assert list(table.columns) == ["start", "direction", "shift", "z", "count", "scored"]
    assert [t.to_pydatetime() for t in table["start"]] == [a.start for a in expected]
    assert list(table["shift"]) == [f"{a.baseline:.1%} → {a.share:.1%}" for a in expected]
    assert list(table["count"]) == [a.count for a in expected]
    marks = alert_rows(at)
    assert [row["query"] for row in marks] == [spelling] * len(expected)
    assert [row["z"] for row in marks] == [a.z for a in expected]
    assert len(expected) < len(everything)  # the other queries' alerts are not listed
    assert "marked on the chart above" in texts(at)
    assert not at.markdown
    assert chart_specs(at)[0]["layer"][0]["encoding"]["y"]["title"] == "posts"
    at.radio(key="polarity_scale").set_value("share of posts").run()
    assert chart_specs(at)[0]["layer"][0]["encoding"]["y"]["title"] == "share of posts"
    assert [row["key"] for row in alert_rows(at)] == [a.query for a in expected]


def test_query_page_without_alerts_explains_them(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query without alerts in range says so, what an alert is, and where the rule and
    its settings are documented."""
    at = run_page(PAGES[1], monkeypatch, small_store)
    at.selectbox(key="query").set_value("python").run()
    message = texts(at)
    assert "No alerts for 'python' in this range" in message
    assert "An alert marks a closed window" in message
    assert "SENTI_ALERT_" in message
    assert "docs/alerts.md" in message
    assert not alert_rows(at)


# What-if


def test_what_if_defaults_to_config_and_moves_counts(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the configured thresholds nothing changes; widening them moves posts to neutral."""
    at = run_page(PAGES[2], monkeypatch, small_store)
    config = load_thresholds()
    assert at.slider(key="whatif_negative").value == pytest.approx(config.negative)
    assert at.slider(key="whatif_positive").value == pytest.approx(config.positive)

    def counts(thresholds: Thresholds) -> dict[str, int]:
        found = [CLASSES[classify(c, thresholds)] for c in SMALL_COMPOUNDS]
        return {name: found.count(name) for name in CLASSES}

    base = counts(config)
    assert metrics(at) == {name.capitalize(): str(base[name]) for name in CLASSES}
    confusion = at.table[0].value
    assert int(confusion.to_numpy().trace()) == len(SMALL_COMPOUNDS)

    at.slider(key="whatif_negative").set_value(-0.5).run()
    at.slider(key="whatif_positive").set_value(0.5).run()
    moved = counts(Thresholds(-0.5, 0.5))
    assert moved == {"positive": 2, "negative": 1, "neutral": 5}
    assert metrics(at) == {name.capitalize(): str(moved[name]) for name in CLASSES}
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Neutral"] == f"{moved['neutral'] - base['neutral']:+,} vs config"
    expected = {(a, b): 0 for a in CLASSES for b in CLASSES}
    for compound in SMALL_COMPOUNDS:
        pair = (
            CLASSES[classify(compound, config)],
            CLASSES[classify(compound, Thresholds(-0.5, 0.5))],
        )
        expected[pair] += 1
    table = at.table[0].value
    assert {(a, b): int(table.loc[a, b]) for a in CLASSES for b in CLASSES} == expected


def test_what_if_has_no_stray_text_and_names_queries_as_typed(
    small_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page writes no stray docstring text, and its scope picker shows spellings."""
    at = run_page(PAGES[2], monkeypatch, small_store)
    markdown = "\n".join(str(element.value) for element in at.markdown)
    assert "Newest posts re-classified" not in markdown
    assert at.selectbox(key="whatif_scope").options == [
        "All stored posts",
        "Query Climate Change",
        "Query python",
    ]


def test_what_if_without_tracked_queries_explains_why_it_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With windows but no query ever tracked, the page says only tracked posts are stored
    and how to track one."""
    path = tmp_path / "untracked.db"
    with open_store(url_of(path)) as store:
        store.write([make_window(ALL_POSTS, 0, posts=10)])
    at = run_page(PAGES[2], monkeypatch, url_of(path))
    (info,) = at.info
    assert "only posts that match a tracked query" in str(info.value)
    assert "--track QUERY" in str(info.value)


def test_what_if_per_query_scope(large_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing a query re-classifies that query's posts only."""
    at = run_page(PAGES[2], monkeypatch, large_store)
    at.sidebar.selectbox(key="range").set_value("All").run()
    at.selectbox(key="whatif_scope").set_value("coffee").run()
    with open_store(large_store, readonly=True) as store:
        rows = store.recent_matches("coffee", limit=5000)
    expected = sum(row.polarity is not None for row in rows)  # unscored posts are left out
    assert sum(int(value.replace(",", "")) for value in metrics(at).values()) == expected
