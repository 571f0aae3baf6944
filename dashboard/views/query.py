"""Per query: polarity over time with its alerts, languages, top hashtags and their trend,
recent posts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.controls import (
    alert_frame,
    current_view,
    live,
    range_caption,
    store_errors,
    time_range,
)
from dashboard.figures import (
    CLASSES,
    UNSCORED,
    alert_table,
    hashtag_minutes,
    language_mix,
    top_hashtags,
    totals,
)
from flows.alerts import AlertSettings

ROW_CHOICES = (25, 100, 500)
SCALES = ("posts", "share of posts")

view = current_view()
st.title("Per query")


def _pick_query() -> str | None:
    queries: pd.DataFrame | None = None
    with store_errors():
        queries = data.load_queries(view.url)
    if queries is None:
        return None
    if queries.empty:
        st.info(
            "No tracked queries in the store yet. Track one with "
            "`senti replay FILE --track QUERY` or from a websocket client.",
            icon=":material/hourglass_empty:",
        )
        return None
    spellings = dict(
        zip(queries["query"].astype(str), queries["spelling"].astype(str), strict=True)
    )
    labels = {
        key: spellings[key] if active else f"{spellings[key]} (inactive)"
        for key, active in zip(spellings, queries["active"], strict=True)
    }
    current = st.session_state.get("query")
    shown_key = current if current in labels else next(iter(labels))
    picked: str = st.selectbox(
        "Query",
        list(labels),
        format_func=labels.__getitem__,
        key="query",
        help=f"As first typed. Canonical key: `{shown_key}` (every spelling of the same "
        "query has this key).",
    )
    return picked


def _spelling_of(key: str) -> str:
    """The spelling of ``key`` shown to people (the key itself if the store has none)."""
    with store_errors():
        queries = data.load_queries(view.url)
        found = queries.loc[queries["query"] == key, "spelling"]
        if not found.empty:
            return str(found.iloc[0])
    return key


def _alert_help() -> str:
    """What an alert is, with the default thresholds, and where the rule is documented."""
    rules = AlertSettings()
    return (
        "An alert marks a closed window whose negative or positive share rose above the "
        "query's own recent baseline by more than chance: by default a z-score of at least "
        f"{rules.z:g}, a rise of at least {rules.min_shift * 100:.0f} points and {rules.min_posts} "
        f"scored posts in the window, once the query has {rules.warmup} windows behind it. "
        "The rule and its `SENTI_ALERT_*` settings are in `docs/alerts.md`."
    )


def _alerts_panel(alerts: pd.DataFrame, label: str) -> None:
    """The query's alerts in range, newest first, or what an alert is when there is none."""
    st.subheader("Alerts")
    if alerts.empty:
        st.info(
            f"No alerts for {label!r} in this range. {_alert_help()}",
            icon=":material/notifications_off:",
        )
        return
    columns = ["start", "direction", "shift", "z", "count", "scored"]
    alert_frame(alerts, columns, key="query_alerts")
    many = "alert" if len(alerts) == 1 else "alerts"
    st.caption(
        f"{len(alerts):,} {many} in this range, newest first, marked on the chart above. "
        "The rule and its `SENTI_ALERT_*` settings are in `docs/alerts.md`."
    )


def query_panel(query: str, label: str) -> None:
    with store_errors():
        span = time_range(view)
        windows = data.load_windows(view.url, query, span.since_ms, span.until_ms)
        alerts = alert_table(
            data.load_alerts(view.url, query, span.since_ms, span.until_ms), {query: label}
        )
        st.caption(range_caption(view, span))
        figures = totals(windows)
        columns = st.columns(5)
        columns[0].metric("Posts", f"{figures.posts:,}", help="Posts matching the query in range.")
        for column, name in zip(columns[1:], (*CLASSES, UNSCORED), strict=True):
            share = figures.share(name)
            column.metric(
                name.capitalize(),
                "n/a" if share is None else f"{share:.1%}",
                help="Share of all posts: their language is not scored."
                if name == UNSCORED
                else "Share of the scored posts.",
            )
        if windows.empty:
            st.info(
                f"No closed windows for {label!r} in this range yet.",
                icon=":material/hourglass_empty:",
            )
        else:
            st.subheader("Polarity over time")
            scale = st.radio(
                "Show",
                SCALES,
                horizontal=True,
                key="polarity_scale",
                help="Posts per class, or each class's share of the window's scored posts "
                "(what an alert compares with its baseline).",
            )
            st.altair_chart(
                charts.polarity_area(windows, share=scale == SCALES[1], alerts=alerts),
                width="stretch",
            )
            _alerts_panel(alerts, label)
            mix = language_mix(windows)
            if not mix.empty:
                st.subheader("Languages")
                shown = mix.assign(share=[f"{share:.1%}" for share in mix["share"]])
                st.table(shown.set_index("lang"))
            tags = top_hashtags(windows)
            left, right = st.columns(2)
            with left:
                st.subheader("Top hashtags, newest window")
                if tags.empty:
                    st.caption("No hashtags in the newest window.")
                else:
                    st.altair_chart(charts.hashtag_bars(tags), width="stretch")
            with right:
                st.subheader("Their trend, per minute")
                if not tags.empty:
                    names = list(tags["tag"])
                    buckets = hashtag_minutes(windows, names)
                    st.altair_chart(charts.hashtag_heatmap(buckets, tags=names), width="stretch")
                    st.caption(
                        "Posts counted in the windows whose top list names the tag (a lower "
                        "bound). A blank cell is unknown: the tag was below every window's "
                        "top list that minute, not absent."
                    )
        st.subheader("Recent posts")
        search_column, rows_column = st.columns([3, 1])
        search = search_column.text_input(
            "Search posts", key="search", placeholder="text contains…"
        )
        limit = rows_column.selectbox("Rows", ROW_CHOICES, index=1, key="rows")
        posts = data.load_matches(
            view.url,
            query,
            since_ms=span.since_ms,
            until_ms=span.until_ms,
            search=search.strip(),
            limit=int(limit),
        )
        if posts.empty:
            st.info("No matching posts in this range.", icon=":material/search_off:")
        st.dataframe(
            posts.loc[:, ["time", "text", "compound", "class", "lang"]],
            hide_index=True,
            width="stretch",
            column_config={
                "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "compound": st.column_config.NumberColumn("compound", format="%.3f"),
            },
        )
        st.download_button(
            "Download posts (CSV)",
            posts.to_csv(index=False),
            file_name=f"senti-{query}-posts.csv",
            mime="text/csv",
            on_click="ignore",
            key="download_query",
        )


picked = _pick_query()
if picked is not None:
    chosen: str = picked
    spelling = _spelling_of(chosen)
    live(view, lambda: query_panel(chosen, spelling))
