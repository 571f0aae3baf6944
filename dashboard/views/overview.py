"""Overview: throughput, polarity shares now and over time with every query's alerts, recent
alerts, language mix, tracked queries."""

from __future__ import annotations

import os

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
from dashboard.figures import CLASSES, UNSCORED, alert_table, language_mix, totals
from flows.model import ALL_POSTS

RECENT_ALERTS = 20  # the newest alerts the overview lists (the Per query page lists all)

view = current_view()
st.title("Overview")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _queries_table(queries: pd.DataFrame) -> pd.DataFrame:
    """Tracked queries with their client counts (``None`` until the server exports them)."""
    clients = data.client_counts(os.environ.get("SENTI_METRICS_URL"))
    shown = ["n/a" if clients is None else str(clients.get(key, 0)) for key in queries["query"]]
    table = queries.assign(clients=pd.Series(shown, index=queries.index, dtype=object))
    return table.loc[:, ["spelling", "query", "active", "first_seen", "last_changed", "clients"]]


def _language_panel(windows: pd.DataFrame) -> None:
    """The language mix of the range: bars, and the same figures as a table."""
    st.subheader("Language mix")
    mix = language_mix(windows)
    if mix.empty:
        st.caption("No language counts in this range (windows written before senti counted them).")
        return
    left, right = st.columns([2, 1])
    left.altair_chart(charts.language_bars(mix), width="stretch")
    right.table(mix.assign(share=[f"{share:.1%}" for share in mix["share"]]).set_index("lang"))


def _recent_alerts(alerts: pd.DataFrame, *, charted: bool) -> None:
    """The newest alerts of every query, or a line saying there is none in range;
    ``charted`` when the share chart above marks them."""
    st.subheader("Recent alerts")
    if alerts.empty:
        st.caption(
            "No sentiment-shift alerts in this range. An alert marks a window whose negative "
            "or positive share rose above its query's recent baseline by more than chance "
            "(`docs/alerts.md`, settings `SENTI_ALERT_*`)."
        )
        return
    columns = ["start", "query", "direction", "shift", "z", "count", "scored", "key"]
    alert_frame(alerts.head(RECENT_ALERTS), columns, key="recent_alerts")
    shown = min(len(alerts), RECENT_ALERTS)
    marked = ", marked on the share chart above" if charted else ""
    st.caption(
        f"The {shown:,} newest of {len(alerts):,} alerts in this range{marked}; the Per query "
        "page lists all of a query's alerts. The rule: `docs/alerts.md`."
    )


def overview() -> None:
    with store_errors():
        span = time_range(view)
        counts = data.store_counts(view.url)
        windows = data.load_windows(view.url, ALL_POSTS, span.since_ms, span.until_ms)
        queries = data.load_queries(view.url)
        spellings = dict(
            zip(queries["query"].astype(str), queries["spelling"].astype(str), strict=True)
        )
        alerts = alert_table(
            data.load_alerts(view.url, None, span.since_ms, span.until_ms), spellings
        )
        st.caption(range_caption(view, span))
        if counts.posts == 0 and counts.windows == 0:
            st.info(
                "The store is empty: no posts or windows yet. Panels fill in as the "
                "dataflow writes.",
                icon=":material/hourglass_empty:",
            )
            return
        figures = totals(windows)
        rate = figures.latest_posts_per_second
        active = int(queries["active"].sum()) if not queries.empty else 0
        first = st.columns(5)
        first[0].metric(
            "Total posts",
            f"{figures.posts:,}",
            help="Original posts the dataflow saw in the range (all of them, tracked or not).",
        )
        first[1].metric(
            "Retweets dropped", f"{figures.retweets:,}", help="Retweets seen and not scored."
        )
        first[2].metric(
            "Posts/s", "n/a" if rate is None else f"{rate:.2f}", help="In the newest window."
        )
        first[3].metric(
            "Tracked queries",
            f"{active} active",
            f"{len(queries)} seen",
            delta_color="off",
            delta_arrow="off",
        )
        first[4].metric(
            "Alerts",
            f"{len(alerts):,}",
            help="Sentiment-shift alerts of every query in the range (see Recent alerts).",
        )
        second = st.columns(4)
        for column, name in zip(second, (*CLASSES, UNSCORED), strict=True):
            share = figures.share(name)
            now = None if figures.latest_shares is None else figures.latest_shares.get(name)
            delta = None if share is None or now is None else f"{now:.1%} in newest window"
            of = "all posts" if name == UNSCORED else "the scored posts"
            column.metric(
                name.capitalize(),
                _percent(share),
                delta,
                delta_color="off",
                delta_arrow="off",
                help=f"Share of {name} posts among {of} in the range; below: in the newest "
                "window. Unscored posts are in languages senti does not score.",
            )
        if windows.empty:
            st.info("No closed windows in this range yet.", icon=":material/hourglass_empty:")
        else:
            st.subheader("Polarity share per window")
            st.altair_chart(
                charts.polarity_area(windows, share=True, alerts=alerts), width="stretch"
            )
            st.subheader("Posts per second")
            st.altair_chart(charts.rate_line(windows), width="stretch")
            st.caption(
                "Missing windows (the dataflow was down or wrote nothing) are left as gaps. "
                "Windows at a start or stop are marked as partial: they may cover only part "
                "of their span."
            )
        _recent_alerts(alerts, charted=not windows.empty)
        if not windows.empty:
            _language_panel(windows)
        st.subheader("Tracked queries")
        st.dataframe(
            _queries_table(queries),
            hide_index=True,
            width="stretch",
            column_config={
                "spelling": st.column_config.TextColumn(
                    "query", help="As first typed by whoever tracked it."
                ),
                "query": st.column_config.TextColumn(
                    "key",
                    help="The canonical key: every spelling of the same query has this key.",
                ),
                "clients": st.column_config.TextColumn(
                    "clients", help="Connected clients; n/a until the server exports them."
                ),
            },
        )
        st.caption(
            f"Store: {counts.posts:,} posts, {counts.matches:,} matches, "
            f"{counts.windows:,} windows, {counts.late:,} late, "
            f"{counts.rejected:,} rejected lines. Only posts that match a tracked query "
            "are stored, so the store holds fewer posts than the totals above, which count "
            "every post seen."
        )
        export = windows.assign(
            top_hashtags=[";".join(f"{t}:{n}" for t, n in pairs) for pairs in windows.top_hashtags]
        )
        st.download_button(
            "Download windows (CSV)",
            export.to_csv(index=False),
            file_name="senti-windows.csv",
            mime="text/csv",
            on_click="ignore",
            key="download_overview",
        )


live(view, overview)
