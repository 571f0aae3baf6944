"""senti dashboard: ``streamlit run dashboard/app.py``.

Layout only: the sidebar (time range, auto-refresh) and the page list. Data
access lives in :mod:`dashboard.data`, charts in :mod:`dashboard.charts`.
Settings: env ``SENTI_STORE`` or ``st.secrets["store"]`` (default
``sqlite:///data/senti.db``), ``SENTI_REFRESH_SECONDS``, ``SENTI_METRICS_URL``
and ``SENTI_NOTEBOOK_URL``; see ``docs/dashboard.md``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.controls import sidebar

VIEWS = Path(__file__).parent / "views"
# The page icon ships with the dashboard: a ``:material/...:`` page icon makes the
# browser fetch the favicon from a font CDN, which fails offline. (No docstring here:
# Streamlit's magic would write it on the page.)
ICON = Path(__file__).parent / "assets" / "icon.png"

st.set_page_config(page_title="senti", page_icon=str(ICON), layout="wide")
navigation = st.navigation(
    [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(VIEWS / "query.py", title="Per query", icon=":material/search:"),
        st.Page(VIEWS / "what_if.py", title="What-if thresholds", icon=":material/tune:"),
    ]
)
sidebar()
navigation.run()
