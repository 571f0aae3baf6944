"""What-if: re-classify recent posts under other thresholds and compare with the config."""

from __future__ import annotations

import os

import streamlit as st

from dashboard import data
from dashboard.controls import current_view, range_caption, store_errors, time_range
from dashboard.figures import CLASSES, confusion, reclassify
from flows.analysis.sentiment import Thresholds, ThresholdsError, load_thresholds
from flows.model import ALL_POSTS

SAMPLE = 5000  # newest posts re-classified

NOTEBOOK_URL = "http://localhost:8888/lab/tree/notebooks/threshold_tuning.ipynb"

view = current_view()
st.title("What-if thresholds")
notebook = os.environ.get("SENTI_NOTEBOOK_URL", NOTEBOOK_URL)
st.markdown(
    "Move the cut-offs and see how the newest posts (their stored VADER compound) would be "
    "classified (posts in languages senti does not score have no compound and are left "
    "out). Tune them on labelled data in "
    f"[notebooks/threshold_tuning.ipynb]({notebook}), then set `[thresholds]` in the "
    "thresholds TOML (`senti ... --thresholds FILE`)."
)

try:
    current = load_thresholds()
except ThresholdsError as exc:
    st.warning(f"Cannot read the configured thresholds ({exc}); comparing with VADER's ±0.05.")
    current = Thresholds()


def what_if() -> None:
    with store_errors():
        queries = data.load_queries(view.url)
        spellings = dict(
            zip(queries["query"].astype(str), queries["spelling"].astype(str), strict=True)
        )
        scopes = [ALL_POSTS, *spellings]
        scope = st.selectbox(
            "Posts",
            scopes,
            format_func=lambda key: (
                "All stored posts" if key == ALL_POSTS else f"Query {spellings[key]}"
            ),
            key="whatif_scope",
            help="Queries as first typed; only posts that match a tracked query are stored.",
        )
        left, right = st.columns(2)
        negative = left.slider(
            "Negative if compound ≤",
            -1.0,
            0.0,
            min(0.0, current.negative),
            0.01,
            key="whatif_negative",
        )
        positive = right.slider(
            "Positive if compound ≥",
            0.0,
            1.0,
            max(0.0, current.positive),
            0.01,
            key="whatif_positive",
        )
        st.caption(
            f"Current config: negative ≤ {current.negative:+.2f}, "
            f"positive ≥ {current.positive:+.2f}."
        )
        span = time_range(view)
        st.caption(range_caption(view, span))
        posts = data.load_compounds(
            view.url, scope, since_ms=span.since_ms, until_ms=span.until_ms, limit=SAMPLE
        )
        if posts.empty:
            if queries.empty:
                st.info(
                    "Nothing to re-classify: senti stores only posts that match a tracked "
                    "query, and no query has been tracked yet. Track one (`senti replay FILE "
                    "--track QUERY`, `senti up --track QUERY`, or a websocket client sending "
                    '`{"track": "QUERY"}`) and its posts appear here.',
                    icon=":material/hourglass_empty:",
                )
            else:
                st.info(
                    "No posts in this range to re-classify (only posts that match a tracked "
                    "query are stored).",
                    icon=":material/hourglass_empty:",
                )
            return
        result = reclassify(posts, current, Thresholds(negative=negative, positive=positive))
        now = result["current"].value_counts()
        then = result["what_if"].value_counts()
        changed = int((result["current"] != result["what_if"]).sum())
        st.caption(f"{len(result):,} newest posts; {changed:,} change class.")
        columns = st.columns(3)
        for column, name in zip(columns, CLASSES, strict=True):
            before, after = int(now.get(name, 0)), int(then.get(name, 0))
            column.metric(
                name.capitalize(), f"{after:,}", f"{after - before:+,} vs config", delta_arrow="off"
            )
        st.subheader("Confusion: config (rows) vs what-if (columns)")
        st.table(confusion(result))
        st.download_button(
            "Download re-classified posts (CSV)",
            result.to_csv(index=False),
            file_name="senti-what-if.csv",
            mime="text/csv",
            on_click="ignore",
            key="download_what_if",
        )


what_if()
