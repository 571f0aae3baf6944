"""Read-only data access for the dashboard: one cached connection, cached queries.

Every function returns plain values or pandas DataFrames and reads the store
(SQLite or PostgreSQL) through a read-only connection opened on first use
(never at import time) and shared by all sessions with
:func:`streamlit.cache_resource`. Query results are cached with
:func:`streamlit.cache_data` for :data:`TTL` seconds, so several browser tabs
refreshing every few seconds cost one query per TTL.

Every read goes through :mod:`flows.store`'s API (``counts``, ``queries``,
``windows``, ``recent_matches``, ``latest``, ``alerts``): the dashboard writes no
SQL, and reads older store versions as the store does.

Errors: every function raises :class:`StoreUnavailable` with a message fit for
the page when the store is missing, not (yet) a senti store, or a read fails;
the pages show it with ``st.info``/``st.warning`` and retry on the next refresh.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import pandas as pd
import streamlit as st

from dashboard.figures import CLASSES, UNSCORED
from flows.errors import SentiError
from flows.store import (
    MatchRow,
    Store,
    StoreCounts,
    StoreError,
    open_store,
    parse_store_url,
)

__all__ = [
    "ALERT_COLUMNS",
    "CLASSES",
    "DEFAULT_STORE",
    "TTL",
    "Reader",
    "StoreUnavailable",
    "client_counts",
    "latest_ms",
    "load_alerts",
    "load_compounds",
    "load_matches",
    "load_queries",
    "load_windows",
    "parse_client_counts",
    "store_counts",
    "store_url",
]

DEFAULT_STORE: Final = "sqlite:///data/senti.db"
"""Store read when neither ``SENTI_STORE`` nor ``st.secrets["store"]`` is set."""

TTL: Final = timedelta(seconds=1)
"""How long a query result is reused; below the shortest auto-refresh interval."""

_WINDOW_COLUMNS: Final = (
    "start",
    "end",
    "posts",
    "positive",
    "negative",
    "neutral",
    "retweets",
    "top_hashtags",
    "unscored",
    "langs",
)
_MATCH_COLUMNS: Final = ("time", "id", "text", "compound", "class", "lang")
ALERT_COLUMNS: Final = (
    "query",
    "label",
    "start",
    "end",
    "direction",
    "share",
    "baseline",
    "z",
    "count",
    "scored",
)
"""Columns of :func:`load_alerts`, the fields of :class:`~flows.alerts.Alert`."""
_T = TypeVar("_T")


class StoreUnavailable(SentiError):
    """The store cannot be read right now; the message says why, for the page.

    ``missing`` is true when the store file does not exist (yet), which the
    pages show as information rather than as a warning.
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


# Settings


def store_url() -> str:
    """The store to read: env ``SENTI_STORE``, else ``st.secrets["store"]``, else the default."""
    from_env = os.environ.get("SENTI_STORE", "").strip()
    if from_env:
        return from_env
    try:
        from_secrets = st.secrets["store"]
    except (KeyError, FileNotFoundError):  # no key, or no secrets file at all
        return DEFAULT_STORE
    return str(from_secrets)


# Connection


@dataclass(slots=True)
class Reader:
    """The shared read-only store of one URL, and the lock around its reads.

    Sessions run on different threads; ``lock`` makes each read exclusive so
    the connection is used by one thread at a time, as the store asks.
    """

    store: Store
    lock: threading.Lock

    def close(self) -> None:
        """Close the connection."""
        self.store.close()


def _open_reader(url: str) -> Reader:
    location = parse_store_url(url)
    if location.path is not None and not location.path.is_file():
        raise StoreUnavailable(f"No store at {str(location.path)!r} yet.", missing=True)
    store = open_store(url, readonly=True)  # checks that it is a senti store
    return Reader(store, threading.Lock())


@st.cache_resource(show_spinner=False)
def _reader(url: str) -> Reader:
    """The shared reader of ``url``; failures are not cached, so the next call retries."""
    return _open_reader(url)


def _read(url: str, read: Callable[[Reader], _T]) -> _T:
    """Run ``read`` on the shared reader of ``url``, turning failures into StoreUnavailable."""
    with _errors(url):
        reader = _reader(url)
        with reader.lock:
            try:
                return read(reader)
            except StoreError:
                # The file may have been replaced or the server restarted; reopen next time.
                _reader.clear()
                raise


@contextmanager
def _errors(url: str) -> Iterator[None]:
    try:
        yield
    except StoreUnavailable:
        raise
    except StoreError as exc:
        shown = _shown(url)
        raise StoreUnavailable(f"The store {shown!r} cannot be read right now: {exc}") from exc


# Queries


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def store_counts(url: str) -> StoreCounts:
    """Row counts of the store's tables."""
    return _read(url, lambda reader: reader.store.counts())


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def latest_ms(url: str) -> int | None:
    """Newest event time in the store (window end or post time), in epoch ms; ``None`` if empty."""

    latest = _read(url, lambda reader: reader.store.latest())
    return None if latest is None else (latest - _EPOCH) // timedelta(milliseconds=1)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def load_queries(url: str) -> pd.DataFrame:
    """Tracked queries: ``query`` (the canonical key, their identity), ``spelling``
    (what the user typed first, or the key on a store that predates spellings),
    ``active``, ``first_seen``, ``last_changed``."""
    rows = _read(url, lambda reader: reader.store.queries())
    return pd.DataFrame(
        [(q.key, q.shown, q.active, q.first_seen, q.last_changed) for q in rows],
        columns=["query", "spelling", "active", "first_seen", "last_changed"],
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def load_windows(url: str, query: str, since_ms: int | None, until_ms: int | None) -> pd.DataFrame:
    """Windows of ``query`` (``"*"`` for all posts) that start in ``[since, until)``.

    Columns: ``start``, ``end`` (UTC timestamps), ``posts``, ``positive``,
    ``negative``, ``neutral``, ``retweets``, ``top_hashtags`` (list of
    ``[tag, count]``), ``unscored`` and ``langs`` (dict of language key to posts,
    empty for windows written before senti counted languages), in start order.
    """
    since, until = _times(since_ms), _times(until_ms)
    rows = _read(url, lambda reader: reader.store.windows(query, since=since))
    return pd.DataFrame(
        [
            (
                row.start,
                row.end,
                row.posts,
                row.positive,
                row.negative,
                row.neutral,
                row.retweets,
                [list(pair) for pair in row.top_hashtags],
                row.unscored,
                dict(row.langs),
            )
            for row in rows
            if until is None or row.start < until
        ],
        columns=list(_WINDOW_COLUMNS),
    ).astype(dict.fromkeys(("posts", *CLASSES, "retweets", "unscored"), "int64"))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def load_matches(
    url: str,
    query: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    search: str = "",
    limit: int = 100,
) -> pd.DataFrame:
    """The newest ``limit`` posts of ``query`` created in ``[since, until)``, newest first.

    ``search`` keeps posts whose text contains it, ignoring case (ASCII case
    on SQLite, all of it on PostgreSQL). The order is
    :meth:`~flows.store.Store.recent_matches`' (time, then id, both descending).
    Columns: ``time``, ``id``, ``text``, ``compound`` (NaN for an unscored post),
    ``class`` (``unscored`` for one) and ``lang`` (as declared, ``None`` if not).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    since, until = _times(since_ms), _times(until_ms)
    rows = _read(
        url,
        lambda reader: reader.store.recent_matches(
            query, limit=limit, since=since, until=until, search=search
        ),
    )
    return _matches_frame(rows)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=64)
def load_compounds(
    url: str,
    query: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 5000,
) -> pd.DataFrame:
    """Compound scores of the newest ``limit`` scored posts in ``[since, until)``, newest
    first: unscored posts have none to re-classify.

    ``query`` is a tracked query's key, or ``"*"`` for every stored post (each
    once, however many queries it matched). Same columns as :func:`load_matches`.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    since, until = _times(since_ms), _times(until_ms)
    rows = _read(
        url,
        lambda reader: reader.store.recent_matches(
            query, limit=limit, since=since, until=until, scored_only=True
        ),
    )
    return _matches_frame(rows)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def load_alerts(
    url: str, query: str | None, since_ms: int | None, until_ms: int | None
) -> pd.DataFrame:
    """Sentiment-shift alerts whose window starts in ``[since, until)``, newest first.

    Only those of ``query`` (a canonical key) if given, else every query's.
    Columns: :data:`ALERT_COLUMNS`: ``query`` (the key), ``label`` (what the
    user typed, ``None`` when the flow did not know it), ``start``, ``end``
    (UTC timestamps), ``direction`` (``negative`` or ``positive``), ``share``
    (the window's share of ``direction`` among its ``scored`` posts, ``count``
    of them), ``baseline`` (the share it was compared with) and ``z``. Ties in
    time keep :meth:`~flows.store.Store.alerts`' order (query, direction) reversed.
    """
    since, until = _times(since_ms), _times(until_ms)
    rows = _read(url, lambda reader: reader.store.alerts(query, since=since, until=until))
    frame = pd.DataFrame(
        [
            (
                row.query,
                row.label,
                row.start,
                row.end,
                row.direction,
                row.share,
                row.baseline,
                row.z,
                row.count,
                row.scored,
            )
            for row in reversed(rows)
        ],
        columns=list(ALERT_COLUMNS),
    )
    return frame.astype(
        {
            "query": object,
            "label": object,
            "start": "datetime64[ns, UTC]",
            "end": "datetime64[ns, UTC]",
            "direction": object,
            "share": "float64",
            "baseline": "float64",
            "z": "float64",
            "count": "int64",
            "scored": "int64",
        }
    )


# Client counts (hook)

_CLIENTS_LINE: Final = re.compile(r'^senti_query_clients\{query="((?:[^"\\]|\\.)*)"\}\s+(\d+)\s*$')


def parse_client_counts(text: str) -> dict[str, int]:
    """Clients per query from Prometheus text: ``senti_query_clients{query="q"} n`` lines.

    The server does not export this gauge yet; this is the format the
    dashboard will read once it does (see ``docs/dashboard.md``).
    """
    counts: dict[str, int] = {}
    for line in text.splitlines():
        found = _CLIENTS_LINE.match(line.strip())
        if found:
            key = found.group(1).replace('\\"', '"').replace("\\\\", "\\")
            counts[key] = int(found.group(2))
    return counts


@st.cache_data(ttl=timedelta(seconds=5), show_spinner=False, max_entries=4)
def client_counts(metrics_url: str | None) -> dict[str, int] | None:
    """Clients per query from the server's ``/metrics`` at ``metrics_url``.

    ``None`` (shown as "n/a") when no URL is configured (env
    ``SENTI_METRICS_URL``), the server is unreachable, or it exports no
    ``senti_query_clients`` gauge.
    """
    if not metrics_url or not metrics_url.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(metrics_url, timeout=1.0) as response:  # noqa: S310 (scheme checked)
            text = response.read(1_000_000).decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    counts = parse_client_counts(text)
    return counts or None


# Helpers


def _shown(url: str) -> str:
    """``url`` fit for the page: a PostgreSQL password is redacted."""
    try:
        return str(parse_store_url(url))
    except StoreError:
        return "(unusable URL)"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _to_time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _times(ms: int | None) -> datetime | None:
    return None if ms is None else _to_time(ms)


def _matches_frame(rows: list[MatchRow]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (
                row.time,
                row.id,
                row.text,
                float("nan") if row.compound is None else float(row.compound),
                UNSCORED if row.polarity is None else CLASSES[row.polarity],
                row.lang,
            )
            for row in rows
        ],
        columns=list(_MATCH_COLUMNS),
    )
    return frame.astype({"compound": "float64"})
