"""Per query: polarity over time, languages, top hashtags and their trend, recent posts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.controls import current_view, live, range_caption, store_errors, time_range
from dashboard.figures import (
    CLASSES,
    UNSCORED,
    hashtag_minutes,
    language_mix,
    top_hashtags,
    totals,
)

ROW_CHOICES = (25, 100, 500)

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


def query_panel(query: str, label: str) -> None:
    with store_errors():
        span = time_range(view)
        windows = data.load_windows(view.url, query, span.since_ms, span.until_ms)
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
            st.altair_chart(charts.polarity_area(windows, share=False), width="stretch")
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
