"""Sidebar controls and the error display shared by every page (Streamlit layout)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType
from typing import Final

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from dashboard import data
from dashboard.figures import RANGES, TimeRange, resolve_range

__all__ = [
    "REFRESH_CHOICES",
    "View",
    "alert_frame",
    "current_view",
    "live",
    "range_caption",
    "sidebar",
    "store_errors",
    "time_range",
]

REFRESH_CHOICES: Final = (0, 2, 5, 10, 30)
"""Auto-refresh intervals offered, in seconds; 0 is off."""

_VIEW_KEY: Final = "senti_view"


@dataclass(frozen=True, slots=True)
class View:
    """What the sidebar selected: a time range and how often live panels refresh."""

    url: str
    preset: timedelta | None
    preset_label: str
    custom: tuple[datetime, datetime] | None
    use_data_time: bool
    refresh_seconds: int


def _default_refresh() -> int:
    try:
        value = int(os.environ.get("SENTI_REFRESH_SECONDS", "5"))
    except ValueError:
        return 5
    return value if value in REFRESH_CHOICES else 5


def sidebar() -> View:
    """Draw the time range and refresh controls; remember and return the selection."""
    url = data.store_url()
    with st.sidebar:
        st.header("View")
        labels = [*RANGES, "Custom"]
        label = st.selectbox("Time range", labels, index=1, key="range")
        custom = _custom_range(url) if label == "Custom" else None
        clock = st.radio(
            "Now is",
            ["latest data in store", "wall clock"],
            key="clock",
            help="Presets count back from the newest post or window in the store, "
            "so replayed or old data still shows. Choose the wall clock for live data only.",
        )
        refresh = st.selectbox(
            "Auto-refresh",
            REFRESH_CHOICES,
            index=REFRESH_CHOICES.index(_default_refresh()),
            format_func=lambda s: "off" if s == 0 else f"every {s} s",
            key="refresh",
        )
        st.caption(f"Store: `{url}`")
    view = View(
        url=url,
        preset=RANGES.get(label),
        preset_label=label,
        custom=custom,
        use_data_time=clock == "latest data in store",
        refresh_seconds=int(refresh),
    )
    st.session_state[_VIEW_KEY] = view
    return view


def _custom_range(url: str) -> tuple[datetime, datetime]:
    try:
        latest_ms = data.latest_ms(url)
    except data.StoreUnavailable:
        latest_ms = None
    end = (
        datetime.now(UTC)
        if latest_ms is None
        else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=latest_ms)
    )
    start = end - timedelta(hours=1)
    st.caption("Custom range, in UTC")
    first_day = st.date_input("From", start.date(), key="from_day")
    first_time = st.time_input("at", start.time().replace(microsecond=0), key="from_time")
    last_day = st.date_input("To", end.date(), key="to_day")
    last_time = st.time_input("at ", _ceil_minute(end.time()), key="to_time")
    since = datetime.combine(_day(first_day, start), first_time, tzinfo=UTC)
    until = datetime.combine(_day(last_day, end), last_time, tzinfo=UTC)
    if until <= since:
        st.warning("The end of the range is before its start; showing the hour before the end.")
        since = until - timedelta(hours=1)
    return since, until


def _ceil_minute(moment: time) -> time:
    if moment.second or moment.microsecond:
        minute = (moment.hour * 60 + moment.minute + 1) % (24 * 60)
        return time(minute // 60, minute % 60)
    return moment


def _day(value: object, fallback: datetime) -> date:
    """A ``date_input`` value as a date (it returns a tuple while a range is edited)."""
    return value if isinstance(value, date) else fallback.date()


def current_view() -> View:
    """The view the sidebar selected in this run (drawing the sidebar if it was not)."""
    view = st.session_state.get(_VIEW_KEY)
    return view if isinstance(view, View) else sidebar()


def time_range(view: View) -> TimeRange:
    """Resolve the view's range against the store's newest data (read now, cached briefly)."""
    latest_ms = data.latest_ms(view.url)
    latest = (
        None
        if latest_ms is None
        else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=latest_ms)
    )
    return resolve_range(
        view.preset,
        latest=latest,
        wall_clock=datetime.now(UTC),
        use_data_time=view.use_data_time,
        custom=view.custom,
    )


def range_caption(view: View, span: TimeRange) -> str:
    """One line saying which range is shown and what "now" is."""
    fmt = "%Y-%m-%d %H:%M:%S UTC"
    if span.now is None:
        since = span.since.strftime(fmt) if span.since else "the start"
        until = span.until.strftime(fmt) if span.until else "now"
        return f"Custom range: {since} to {until}."
    source = "newest data in the store" if view.use_data_time else "wall clock"
    refresh = f"every {view.refresh_seconds} s" if view.refresh_seconds else "off"
    return (
        f"{view.preset_label}; now = {span.now.strftime(fmt)} ({source}). Auto-refresh {refresh}."
    )


class store_errors:
    """Show a store that cannot be read as a message instead of a traceback.

    A missing store is information (the dataflow has not created it yet);
    anything else (not a senti store yet, a read that failed while the
    dataflow writes) is a warning. Live panels retry on their next refresh.
    The exception is swallowed: the rest of the ``with`` body is skipped.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, data.StoreUnavailable):
            return False
        if exc.missing:
            st.info(
                f"{exc} Start the dataflow with `senti serve --store URL` or "
                "`senti replay FILE --track QUERY --store URL`; this page picks it up "
                "on its next refresh.",
                icon=":material/info:",
            )
        else:
            st.warning(f"{exc} The page retries on its next refresh.", icon=":material/sync:")
        return True


def live(view: View, body: Callable[[], None]) -> None:
    """Run ``body`` as a fragment that reruns alone every ``view.refresh_seconds``."""
    every = view.refresh_seconds or None
    st.fragment(run_every=every)(body)()


def _alert_columns() -> dict[str, ColumnConfig]:
    """How every alert table names and explains its columns (rows of ``figures.alert_table``)."""
    return {
        "start": st.column_config.DatetimeColumn(
            "window (UTC)", format="YYYY-MM-DD HH:mm:ss", help="Start of the alerted window."
        ),
        "query": st.column_config.TextColumn("query", help="As first typed."),
        "direction": st.column_config.TextColumn(
            "direction", help="Which share rose: negative (a crisis) or positive (a launch)."
        ),
        "shift": st.column_config.TextColumn(
            "share", help="The share of that polarity: the query's baseline → the window's."
        ),
        "z": st.column_config.NumberColumn("z", format="%.2f", help="Two-proportion z-score."),
        "count": st.column_config.NumberColumn(
            "posts", help="Posts of that polarity in the window."
        ),
        "scored": st.column_config.NumberColumn("scored", help="Posts VADER scored in the window."),
        "key": st.column_config.TextColumn(
            "key", help="The canonical key: every spelling of the same query has this key."
        ),
    }


def alert_frame(alerts: pd.DataFrame, columns: list[str], *, key: str) -> None:
    """Show ``columns`` of an alert table, each named and explained as on every page."""
    config = _alert_columns()
    st.dataframe(
        alerts.loc[:, columns],
        hide_index=True,
        width="stretch",
        key=key,
        column_config={name: config[name] for name in columns},
    )
