"""The senti store: where the flow's output lands and the dashboard reads it.

The flow writes through :meth:`Store.write` (one writer connection per bytewax
worker, see :mod:`flows.sinks.store`) while other processes read through the
query methods. :func:`open_store` picks the backend from a URL:

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (the
  SQLAlchemy spelling: three slashes, then the path);
* a plain file path such as ``data/senti.db``;
* ``postgresql://user:password@host:port/database`` (or ``postgres://``), any
  libpq connection URI that names a database; query parameters such as
  ``?sslmode=require`` pass through to libpq. This backend needs the
  ``psycopg`` package.

Anything that starts with a scheme (``name:``, two letters or more) is read as
a URL, so a file whose first path component holds a colon is spelled
``./odd:name.db``. A password in a PostgreSQL URL never appears in
``str(StoreURL)``, ``repr`` or :class:`StoreError` messages: it is shown as ``***``.

Both backends share the item-to-row code and the statements; each has one SQL
dialect table (:class:`_SQL` for SQLite, :class:`_PostgresSQL`) that differs
only in column types, the catalogue query and placeholders (``?`` / ``%s``).

Concurrency
-----------
A SQLite store runs in WAL mode with ``synchronous=NORMAL`` and a 10 s busy
timeout: readers never block the writers or each other, and writers queue for
the single write lock instead of failing with "database is locked". Every
:meth:`Store.write` call is one ``BEGIN IMMEDIATE`` transaction, so a reader sees
a batch entirely or not at all.

A PostgreSQL store runs every :meth:`Store.write` in one transaction (READ
COMMITTED) and every read in one statement, so a reader also sees a batch
entirely or not at all. Rows are written in primary-key order, table by table,
so concurrent writers of overlapping batches wait for each other instead of
deadlocking. A reader's session is ``default_transaction_read_only``, so even
raw SQL through :meth:`Store.select` cannot change the store.

Idempotency
-----------
Bytewax delivers at least once: after a resume some items are written again.
Each table has a natural key and a write never duplicates a row:

========== ======================== ===========================================
table      key                      on a second write
========== ======================== ===========================================
posts      id                       kept (first write wins)
matches    (query, time, post_id)   kept (a post has one time: one row per query)
windows    (query, start_ms)        replaced (a recount is the newer truth)
late_posts (query, post_id)         kept
rejected   origin                   reason and raw updated, ``seen_at`` kept
queries    key                      ``active`` updated; ``last_changed`` only
                                    when ``active`` actually changes;
                                    ``spelling`` kept (the first one seen)
source_    source                   ``position`` replaced (the newer is where
cursors                             the next run resumes); deleted when forgotten
========== ======================== ===========================================

Schema (version 5)
------------------
The same tables on both backends. SQLite's ``INTEGER`` and ``REAL`` are
PostgreSQL's ``BIGINT`` and ``DOUBLE PRECISION`` (``INTEGER`` for the 0/1/2
flags); JSON is kept as ``TEXT`` on both, byte for byte the same.

Times are stored twice where they are queried: ISO 8601 text in UTC
(``2024-05-01T12:00:00.000Z``) to read, and integer milliseconds since the Unix
epoch (``*_ms``) to compare and index. JSON columns hold compact UTF-8 JSON.

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``app = 'senti'`` marks a senti store; ``schema_version`` is an integer.
``posts(id, created_at, created_at_ms, text, lang, author, compound, polarity, hashtags, scored)``
    One row per analysed post that matched at least one query. ``lang`` is the
    language the post declares, as the source gave it (``NULL`` when none).
    ``scored`` is 1 for a scored post and 0 for an *unscored* one, whose
    language senti does not score (:mod:`flows.languages`): ``compound`` and
    ``polarity`` mean something only where ``scored = 1`` (they are ``NOT
    NULL`` from older schemas, and an unscored post has 0 and 2 there). ``polarity`` is
    :class:`~flows.model.Polarity` (0 positive, 1 negative, 2 neutral);
    ``hashtags`` is a JSON object of case-folded tag to count.
    Index ``posts_by_time(created_at_ms)``.
``matches(query, post_id, created_at_ms)``
    Which query a post was delivered to; primary key
    ``(query, created_at_ms, post_id)``, which is also the per-query time order
    the dashboard reads (SQLite stores it ``WITHOUT ROWID``: the row is its key,
    one B-tree per match row instead of three). ``created_at_ms`` is copied from
    the post for that order; scores are read from ``posts``. A match row is the
    store's most frequent write (26 a post with 1,000 queries in the benchmark),
    so it holds nothing else: schema 2 also copied ``polarity`` and ``compound``,
    and writing them took a third of the writer's time.
``windows(query, start_ms, end_ms, posts, positive, negative, neutral, retweets, ...)``
    Then ``top_hashtags``, ``unscored`` and ``langs``. One tumbling window per
    query (``'*'`` for all posts); primary key ``(query, start_ms)``, which is
    also the dashboard's lookup order.
    ``posts = positive + negative + neutral + unscored``. ``top_hashtags`` is a
    JSON list of ``[tag, count]`` pairs; ``langs`` a JSON object of language
    key to posts, most frequent first, ``other`` last (``{}`` in windows
    written before schema 4, which did not count languages).
``late_posts(query, post_id, window_start_ms)``
    Posts that arrived after their window closed; primary key ``(query, post_id)``.
``rejected(origin, reason, raw, seen_at)``
    Input lines that were not usable posts; primary key ``origin``.
    ``seen_at`` is the writer's clock (ISO text) at the first write.
``queries(key, active, first_seen, last_changed, spelling)``
    Tracked queries by canonical key; ``active`` is 0 or 1; times are the
    writer's clock (ISO text); ``spelling`` is the first text seen for the key
    (what the user typed, schema 5; ``NULL`` on older rows).
``source_cursors(source, position, updated_at)``
    Where each resumable source partition resumes (:mod:`flows.cursors`):
    ``bluesky:<Jetstream URL>`` with the ``time_us`` of the last post read,
    ``replay:<path>`` with the byte offset of the next line. Written in the
    same transaction as the posts it covers, or after them. An addition to
    schema 3 that older versions of senti ignore: every writer creates it if
    it is missing, and a reader of a store without it sees no cursors.

Schema 4 added ``posts.scored``, ``windows.unscored`` and ``windows.langs``
(with defaults that describe older rows: scored, none unscored, languages not
counted); a writer adds them to a version 2 or 3 store when it opens it.

``alerts(query, start_ms, end_ms, direction, share, baseline, z, count, scored, label)``
    Sentiment-shift alerts (:mod:`flows.alerts`, docs/alerts.md): the window
    of ``query`` whose ``direction`` share (``negative`` or ``positive``) rose
    to ``share`` over its ``baseline``, with its ``z``, the posts of that
    polarity (``count``) and the scored posts of the window; ``label`` is what
    the user typed, when known (``NULL`` otherwise). Primary key ``(query,
    start_ms, direction)``: an alert written again replaces itself. Schema 5
    added it; a writer creates it in an older store, a reader of one sees no
    alerts.

``posts.id`` is referenced by ``matches.post_id`` and ``late_posts.post_id``,
but the reference is not enforced: several workers write concurrently and a
late-post record can land before the match that carries its post.
"""

from __future__ import annotations

import json
import operator
import os
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self, TypeAlias
from urllib.parse import quote, unquote, urlsplit

import msgspec

from flows.alerts import Alert
from flows.cursors import SourceCursor
from flows.errors import SentiError
from flows.matching import Subscription
from flows.model import (
    ALL_POSTS,
    LatePost,
    Match,
    Polarity,
    PostMatches,
    Rejected,
    WindowSummary,
    format_time,
)

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "BUSY_TIMEOUT",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "SUPPORTED_URLS",
    "MatchRow",
    "PostgresStore",
    "Rows",
    "SQLiteStore",
    "Store",
    "StoreCounts",
    "StoreError",
    "StoreItem",
    "StoreURL",
    "TrackedQuery",
    "WindowRow",
    "check_store",
    "open_store",
    "parse_store_url",
]

SCHEMA_VERSION: Final = 5
"""Version of the schema this module writes and reads."""

READABLE_VERSIONS: Final = frozenset({2, 3, 4, 5})
"""Schema versions this module reads; a writer upgrades an older store to
:data:`SCHEMA_VERSION` when it opens it, one version at a time: 2 to 3 drops the
``polarity`` and ``compound`` copies from ``matches``, 3 to 4 adds the columns
of unscored posts and languages (``posts.scored``, ``windows.unscored``,
``windows.langs``), 4 to 5 adds the ``alerts`` table and the spelling of queries
(``queries.spelling``, :data:`_SCHEMA_5_SPELLING`). A reader of an older store reads
those as their defaults (and no alerts)."""

BUSY_TIMEOUT: Final = timedelta(seconds=10)
"""How long a connection waits for a lock (SQLite) or for the server (PostgreSQL)."""

SUPPORTED_URLS: Final = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, a plain file path, "
    "or postgresql://user:password@host:port/database (postgres:// too)"
)
"""The store URL forms :func:`parse_store_url` accepts, for error messages."""

StoreItem: TypeAlias = (
    PostMatches | Match | WindowSummary | LatePost | Rejected | Subscription | SourceCursor | Alert
)
"""What :meth:`Store.write` accepts: every kind of item the dataflow outputs."""

_WRITER_CACHE_KIB: Final = 65536
"""A SQLite writer's page cache: inserts land all over the ``matches`` B-tree
(it is in query order, the posts arrive in time order), and with SQLite's 2 MiB
default most of them missed the cache (about twice the time per match row)."""
_WRITER_CHECKPOINT_PAGES: Final = 10_000
"""WAL pages (40 MiB at 4 KiB) before a writer copies them back into the database.
SQLite's 1,000 meant a checkpoint after nearly every transaction of a busy
flow, rewriting the same hot pages of ``matches`` each time: a fifth of the
writer's time went to checkpoints at 200,000 posts and 1,000 queries."""
_APP: Final = "senti"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})
_REDACTED: Final = "***"


class StoreError(SentiError):
    """Raised when a store URL is unusable or a store cannot be opened, read or written.

    The message names the store (password redacted) and says what is wrong;
    the underlying database error, if any, is chained as ``__cause__``.
    """


# Records


@dataclass(frozen=True, slots=True, repr=False)
class StoreURL:
    """A parsed store URL: the backend ``scheme`` and where the data lives.

    ``str()`` and ``repr()`` redact a PostgreSQL password as ``***``.
    """

    scheme: str
    """Backend name: ``"sqlite"`` or ``"postgresql"`` (``postgres://`` included)."""
    path: Path | None = None
    """The SQLite database file, as given (relative paths stay relative); ``None`` otherwise."""
    conninfo: str = ""
    """The PostgreSQL connection URI for libpq, password included; empty for SQLite.

    Pass it to the driver, never to a log: print the URL itself instead.
    """

    def __str__(self) -> str:
        if self.scheme == "sqlite":
            return f"{self.scheme}:///{self.path}"
        return _redact_url(self.conninfo)

    def __repr__(self) -> str:
        return f"StoreURL({str(self)!r})"

    @property
    def password(self) -> str | None:
        """The PostgreSQL password given in the URL (user info or ``?password=``), if any."""
        if self.scheme == "sqlite":
            return None
        split = urlsplit(self.conninfo)
        if split.password:
            return unquote(split.password)
        found = re.search(r"(?:^|&)password=([^&]*)", split.query)
        return unquote(found.group(1)) if found and found.group(1) else None

    @property
    def database(self) -> str | None:
        """The PostgreSQL database name; ``None`` for SQLite."""
        if self.scheme == "sqlite":
            return None
        split = urlsplit(self.conninfo)
        name = unquote(split.path.lstrip("/"))
        if not name:
            found = re.search(r"(?:^|&)dbname=([^&]*)", split.query)
            name = unquote(found.group(1)) if found else ""
        return name


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Row counts of the main tables, read in one snapshot."""

    posts: int
    matches: int
    windows: int
    late: int
    rejected: int


@dataclass(frozen=True, slots=True)
class TrackedQuery:
    """A query the flow has seen subscribed, and whether it is still tracked."""

    key: str
    active: bool
    first_seen: datetime
    last_changed: datetime
    spelling: str | None = None
    """The first spelling seen (what the user typed); ``None`` on a store
    written before schema 5 recorded it."""

    @property
    def shown(self) -> str:
        """What to show people: the spelling, or the key when it is not known."""
        return self.spelling or self.key


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One stored window summary; the fields of :class:`~flows.model.WindowSummary`."""

    query: str
    start: datetime
    end: datetime
    posts: int
    positive: int
    negative: int
    neutral: int
    retweets: int
    top_hashtags: tuple[tuple[str, int], ...]
    unscored: int = 0
    """Posts in a language senti does not score (0 in windows before schema 4)."""
    langs: tuple[tuple[str, int], ...] = ()
    """Posts by language key, ``other`` last (empty in windows before schema 4)."""

    def summary(self) -> WindowSummary:
        """The row as the record the flow wrote."""
        return WindowSummary(
            query=self.query,
            start=self.start,
            end=self.end,
            posts=self.posts,
            positive=self.positive,
            negative=self.negative,
            neutral=self.neutral,
            top_hashtags=self.top_hashtags,
            retweets=self.retweets,
            unscored=self.unscored,
            langs=self.langs,
        )


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A post delivered to a query, as the dashboard lists it."""

    time: datetime
    """When the post was created."""
    id: str
    text: str
    compound: float | None
    """``None`` for an unscored post."""
    polarity: Polarity | None
    """``None`` for an unscored post (its language is not scored)."""
    lang: str | None = None
    """The language the post declared, ``None`` if none."""


# Interface


class Store(ABC):
    """A senti store: the flow writes items, the dashboard and CLI read them back.

    Use it as a context manager, or call :meth:`close`. A store is used by one
    thread at a time; each bytewax worker and each reader opens its own.
    """

    @abstractmethod
    def write(self, items: Iterable[StoreItem]) -> None:
        """Write ``items`` in one transaction, idempotently (see the module docstring).

        Raises :class:`TypeError` for an item of another type and
        :class:`ValueError` for a naive datetime (both before writing anything),
        and :class:`StoreError` if the store is read-only or closed, or the
        database fails; nothing of the batch is written then.
        """

    @abstractmethod
    def write_rows(self, rows: Rows) -> None:
        """Write a batch already turned into rows (:meth:`Rows.collect`), in one transaction.

        What :meth:`write` does after collecting; the store sink collects in the
        dataflow and writes in a separate process (:mod:`flows.sinks.store`).
        """

    @property
    @abstractmethod
    def schema_version(self) -> int:
        """The schema version of the store as last read (:data:`SCHEMA_VERSION` once a
        writer has opened it): raw SQL through :meth:`select` may depend on it."""

    @abstractmethod
    def counts(self) -> StoreCounts:
        """Row counts of posts, matches, windows, late posts and rejected lines."""

    @abstractmethod
    def queries(self) -> list[TrackedQuery]:
        """Every query ever subscribed, by key."""

    @abstractmethod
    def windows(self, query: str, *, since: datetime | None = None) -> list[WindowRow]:
        """Windows of ``query`` (``"*"`` for all posts) by start time.

        With ``since`` (timezone-aware), only windows that start at or after it.
        """

    @abstractmethod
    def recent_matches(
        self,
        query: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str = "",
        scored_only: bool = False,
    ) -> list[MatchRow]:
        """The newest ``limit`` posts delivered to ``query``, newest first (by time, then id).

        ``query`` ``"*"`` lists every stored post once, however many queries it
        matched. With ``since`` and ``until`` (timezone-aware), only posts
        created at or after ``since`` and before ``until``; with ``search``, only
        those whose text contains it, ignoring case (ASCII case on SQLite, all of
        it on PostgreSQL); with ``scored_only``, only posts VADER scored.
        """

    @abstractmethod
    def latest(self) -> datetime | None:
        """The newest event time stored (a window's end or a matched post's time), if any."""

    @abstractmethod
    def cursor(self, source: str) -> int | None:
        """Where the source partition ``source`` resumes (:mod:`flows.cursors`), if stored."""

    @abstractmethod
    def alerts(
        self,
        query: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Alert]:
        """Sentiment-shift alerts by window start, oldest first (none in a store before schema 5).

        Only those of ``query`` (a canonical key) if given; with ``since`` and
        ``until`` (timezone-aware), those whose window starts at or after
        ``since`` and before ``until``.
        """

    @abstractmethod
    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only query against the documented schema and return its rows.

        ``sql`` is portable SQL with ``?`` placeholders (and no ``?`` or ``%``
        inside literals), translated to the backend's. For readers the store
        does not offer: the dashboard's text search, for instance. Raises
        :class:`StoreError` if the store is closed or the query fails.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# URLs


def parse_store_url(url: str) -> StoreURL:
    """Parse a store URL (see the module docstring for the accepted forms).

    Raises :class:`StoreError` for an empty URL, a scheme other than ``sqlite``
    and ``postgresql``/``postgres``, a ``sqlite:`` URL without a path (in-memory
    databases included: the dashboard could not see them), or a PostgreSQL URL
    that is malformed or names no database.
    """
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"empty store URL; use {SUPPORTED_URLS}")
    scheme = _SCHEME.match(url)
    if scheme is None:
        return StoreURL("sqlite", Path(url).expanduser())
    name = scheme.group(1).lower()
    if name in _POSTGRES_SCHEMES:
        return _parse_postgres_url(url, url[scheme.end() :])
    if name != "sqlite":
        raise StoreError(
            f"unsupported store URL scheme {name!r} in {_redact_url(url)!r}; "
            f"supported: {SUPPORTED_URLS}"
        )
    prefix = url[: scheme.end()] + "///"
    if not url.startswith(prefix):
        raise StoreError(f"malformed SQLite URL {url!r}; use {SUPPORTED_URLS}")
    path = url[len(prefix) :]
    if not path or path == ":memory:" or "?" in path:
        raise StoreError(
            f"SQLite URL {url!r} names no database file "
            f"(in-memory databases and query parameters are not supported); use {SUPPORTED_URLS}"
        )
    return StoreURL("sqlite", Path(path))


def _parse_postgres_url(url: str, rest: str) -> StoreURL:
    conninfo = f"postgresql:{rest}"  # libpq knows both spellings; keep one
    shown = _redact_url(conninfo)
    if not rest.startswith("//"):
        raise StoreError(f"malformed PostgreSQL URL {shown!r}; use {SUPPORTED_URLS}")
    split = urlsplit(conninfo)
    if split.fragment:
        raise StoreError(f"malformed PostgreSQL URL {shown!r}: unexpected '#' fragment")
    if "," not in split.netloc:  # libpq also takes a host list; it checks those ports itself
        try:
            split.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            raise StoreError(f"malformed PostgreSQL URL {shown!r}: bad port") from None
    location = StoreURL("postgresql", None, conninfo)
    if not location.database:
        raise StoreError(
            f"PostgreSQL URL {shown!r} names no database; use "
            "postgresql://user:password@host:port/database"
        )
    return location


def _redact_url(url: str) -> str:
    """``url`` with the password of its user info and of a ``password=`` parameter as ``***``."""
    try:
        split = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^/:@]*:)[^/@]*@", rf"\1{_REDACTED}@", url)
    userinfo, at, hosts = split.netloc.rpartition("@")
    netloc = split.netloc
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{_REDACTED}@{hosts}"
    query = re.sub(r"(^|&)(password=)[^&]*", rf"\1\2{_REDACTED}", split.query)
    redacted = url.replace(f"//{split.netloc}", f"//{netloc}", 1)
    return redacted.replace(f"?{split.query}", f"?{query}", 1) if split.query else redacted


def open_store(
    url: str,
    *,
    readonly: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> Store:
    """Open the store at ``url`` for writing (the default) or for reading only.

    A writer creates the SQLite file (not its parent directory) or the tables
    in the PostgreSQL database (not the database itself) and the schema if
    they are absent. A reader needs an existing senti store. ``clock``
    (default: the system clock in UTC) timestamps ``rejected`` and ``queries`` rows.

    Raises :class:`StoreError` if the URL is unusable, the directory or (for a
    reader) the file does not exist, the server cannot be reached or refuses
    the login, the database does not exist, it is not a senti store, or its
    schema is newer than this version of senti.
    """
    location = parse_store_url(url)
    if location.scheme == "postgresql":
        return PostgresStore(location, readonly=readonly, clock=clock)
    assert location.path is not None  # noqa: S101 (parse_store_url sets it for SQLite)
    return SQLiteStore(location.path, readonly=readonly, clock=clock)


def check_store(url: str) -> StoreURL:
    """Check, without changing anything, that a writer could open ``url``.

    Returns the parsed URL; raises :class:`StoreError` like :func:`open_store`
    would, and also if the directory is not writable (SQLite) or the user may
    not create the tables in an empty database (PostgreSQL).
    """
    location = parse_store_url(url)
    if location.scheme == "postgresql":
        PostgresStore.check(location)
    else:
        assert location.path is not None  # noqa: S101 (parse_store_url sets it for SQLite)
        SQLiteStore.check(location.path)
    return location


# SQL, in one place: one dialect table per backend. Table and column names are fixed.


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS posts (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        created_at_ms {int} NOT NULL,
        text TEXT NOT NULL,
        lang TEXT,
        author TEXT,
        compound {real} NOT NULL,
        polarity INTEGER NOT NULL CHECK (polarity = 0 OR polarity = 1 OR polarity = 2),
        hashtags TEXT NOT NULL,
        {scored}
    )""",
    "CREATE INDEX IF NOT EXISTS posts_by_time ON posts (created_at_ms)",
    """CREATE TABLE IF NOT EXISTS matches (
        query TEXT NOT NULL,
        post_id TEXT NOT NULL,
        created_at_ms {int} NOT NULL,
        PRIMARY KEY (query, created_at_ms, post_id)
    ){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS windows (
        query TEXT NOT NULL,
        start_ms {int} NOT NULL,
        end_ms {int} NOT NULL,
        posts {int} NOT NULL,
        positive {int} NOT NULL,
        negative {int} NOT NULL,
        neutral {int} NOT NULL,
        retweets {int} NOT NULL,
        top_hashtags TEXT NOT NULL,
        {unscored},
        {langs},
        PRIMARY KEY (query, start_ms)
    )""",
    """CREATE TABLE IF NOT EXISTS late_posts (
        query TEXT NOT NULL,
        post_id TEXT NOT NULL,
        window_start_ms {int} NOT NULL,
        PRIMARY KEY (query, post_id)
    )""",
    """CREATE TABLE IF NOT EXISTS rejected (
        origin TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL,
        seen_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS queries (
        key TEXT PRIMARY KEY,
        active INTEGER NOT NULL CHECK (active IN (0, 1)),
        first_seen TEXT NOT NULL,
        last_changed TEXT NOT NULL,
        {spelling}
    )""",
)
"""The schema of both backends; ``{int}``, ``{real}`` and ``{without_rowid}`` are
each dialect's wide integer, double and (SQLite only) clustered-table clause,
and the columns schema 4 added (:data:`_SCHEMA_4_COLUMNS`) are at the end of
their tables, as a writer adds them to an older store.

The polarity checks spell out ``= 0 OR = 1 OR = 2``: SQLite evaluated
``IN (0, 1, 2)`` at about 2 µs a row, as much as the rest of a match insert.
Stores created with the ``IN`` spelling hold the same rows and stay valid."""

_CURSORS: Final = """CREATE TABLE IF NOT EXISTS source_cursors (
        source TEXT PRIMARY KEY,
        position {int} NOT NULL,
        updated_at TEXT NOT NULL
    )"""
"""The one table outside the numbered schema: created by every writer if missing."""


_SCHEMA_4_COLUMNS: Final = {
    "scored": ("posts", "scored INTEGER NOT NULL DEFAULT 1 CHECK (scored = 0 OR scored = 1)"),
    "unscored": ("windows", "unscored {int} NOT NULL DEFAULT 0"),
    "langs": ("windows", "langs TEXT NOT NULL DEFAULT '{{}}'"),
}
"""The columns schema 4 added: name -> (table, definition). Their defaults
describe the rows of an older store: every post scored, no window with an
unscored post, no language counted (``{}``)."""


_SCHEMA_5_SPELLING: Final = {"spelling": ("queries", "spelling TEXT")}
"""The column schema 5 added for the spelling of queries: name -> (table,
definition). The first spelling seen of a query (what the user typed), kept
on later writes; ``NULL`` on the rows of an older store (shown as the key)."""


def _schema(*, int_type: str, real_type: str, without_rowid: str) -> tuple[str, ...]:
    columns = {
        name: definition.format(int=int_type)
        for name, (_table, definition) in (_SCHEMA_4_COLUMNS | _SCHEMA_5_SPELLING).items()
    }
    return tuple(
        ddl.format(int=int_type, real=real_type, without_rowid=without_rowid, **columns)
        for ddl in _SCHEMA
    )


def _migrate_3_to_4(*, int_type: str) -> tuple[str, ...]:
    """Schema 3 to 4: add the columns of unscored posts and languages (additive)."""
    return tuple(
        f"ALTER TABLE {table} ADD COLUMN {definition.format(int=int_type)}"
        for table, definition in _SCHEMA_4_COLUMNS.values()
    )


# Schema 5: the alerts table (flows.alerts). One block: DDL, migration, upsert, read.

_ALERTS: Final = """CREATE TABLE IF NOT EXISTS alerts (
        query TEXT NOT NULL,
        start_ms {int} NOT NULL,
        end_ms {int} NOT NULL,
        direction TEXT NOT NULL CHECK (direction = 'negative' OR direction = 'positive'),
        share {real} NOT NULL,
        baseline {real} NOT NULL,
        z {real} NOT NULL,
        count {int} NOT NULL,
        scored {int} NOT NULL,
        label TEXT,
        PRIMARY KEY (query, start_ms, direction)
    )"""
"""The table schema 5 added; ``{int}`` and ``{real}`` as in :data:`_SCHEMA`."""

_UPSERT_ALERT: Final = (
    "INSERT INTO alerts (query, start_ms, end_ms, direction, share, baseline, z, count,"
    " scored, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (query, start_ms, direction) DO UPDATE SET end_ms = excluded.end_ms,"
    " share = excluded.share, baseline = excluded.baseline, z = excluded.z,"
    " count = excluded.count, scored = excluded.scored, label = excluded.label"
)
_ALERTS_READ: Final = (
    "SELECT query, start_ms, end_ms, direction, share, baseline, z, count, scored, label"
    " FROM alerts WHERE start_ms >= ? AND start_ms < ?{where_query}"
    " ORDER BY start_ms, query, direction"
)
"""Alerts by start time; ``{where_query}`` is empty or `` AND query = ?``."""


def _alert_row(item: Alert) -> tuple[Any, ...]:
    return (
        item.query, _to_ms(item.start), _to_ms(item.end), item.direction, item.share,
        item.baseline, item.z, item.count, item.scored, item.label,
    )  # fmt: skip


def _alert_of(row: Sequence[Any]) -> Alert:
    query, start_ms, end_ms, direction, share, baseline, z, count, scored, label = row
    return Alert(
        query=query, start=_from_ms(start_ms), end=_from_ms(end_ms), direction=direction,
        share=float(share), baseline=float(baseline), z=float(z), count=int(count),
        scored=int(scored), label=label,
    )  # fmt: skip


def _migrate_4_to_5() -> tuple[str, ...]:
    """Schema 4 to 5, the spelling of queries: add ``queries.spelling`` (additive)."""
    return tuple(
        f"ALTER TABLE {table} ADD COLUMN {definition}"
        for table, definition in _SCHEMA_5_SPELLING.values()
    )


class _SQL:
    """SQLite's dialect, with ``?`` placeholders; the statements shared by both backends."""

    SCHEMA: ClassVar[tuple[str, ...]] = (
        *_schema(int_type="INTEGER", real_type="REAL", without_rowid=" WITHOUT ROWID"),
        _ALERTS.format(int="INTEGER", real="REAL"),
    )
    CURSORS: ClassVar[str] = _CURSORS.format(int="INTEGER")
    SET_META: ClassVar[str] = (
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    GET_META: ClassVar[str] = "SELECT key, value FROM meta"
    TABLES: ClassVar[str] = "SELECT name FROM sqlite_master WHERE type = 'table'"

    INSERT_POST: ClassVar[str] = (
        "INSERT INTO posts (id, created_at, created_at_ms, text, lang, author, compound,"
        " polarity, hashtags, scored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING"
    )
    INSERT_MATCH: ClassVar[str] = (
        "INSERT INTO matches (query, post_id, created_at_ms)"
        " VALUES (?, ?, ?) ON CONFLICT (query, created_at_ms, post_id) DO NOTHING"
    )
    MIGRATE_2_TO_3: ClassVar[tuple[str, ...]] = (
        "ALTER TABLE matches DROP COLUMN compound",
        "ALTER TABLE matches DROP COLUMN polarity",
    )
    MIGRATE_3_TO_4: ClassVar[tuple[str, ...]] = _migrate_3_to_4(int_type="INTEGER")
    MIGRATE_4_TO_5: ClassVar[tuple[str, ...]] = (
        _ALERTS.format(int="INTEGER", real="REAL"),
        *_migrate_4_to_5(),
    )
    UPSERT_ALERT: ClassVar[str] = _UPSERT_ALERT
    ALERTS: ClassVar[str] = _ALERTS_READ

    @classmethod
    def migrations(cls) -> dict[int, tuple[str, ...]]:
        """The statements that upgrade a store from each version to the next."""
        return {2: cls.MIGRATE_2_TO_3, 3: cls.MIGRATE_3_TO_4, 4: cls.MIGRATE_4_TO_5}

    INSERT_MATCHES_OF_POST: ClassVar[str] = (
        "INSERT OR IGNORE INTO matches (query, post_id, created_at_ms)"
        " SELECT value, ?1, ?2 FROM json_each(?3)"
    )
    """All the match rows of one post, its queries as a JSON array: SQLite makes
    the rows in C. A row already there is skipped by ``OR IGNORE``: the same
    statement with ``ON CONFLICT ... DO NOTHING`` ran three times as slowly."""

    @classmethod
    def match_statement(
        cls, matches: list[tuple[tuple[str, ...], str, int]]
    ) -> tuple[str, list[tuple[Any, ...]]]:
        """The statement writing ``(queries, post_id, created_ms)`` match rows, and its rows.

        SQLite has one writer at a time, so no order is needed; each post is one
        set of parameters with its queries as JSON, which cost about a third
        less than one parameter set per match row (each bound and inserted from
        Python) and no sort.
        """
        encode = _encode_json
        rows = [
            (post_id, created_ms, encode(queries).decode())
            for queries, post_id, created_ms in matches
        ]
        return cls.INSERT_MATCHES_OF_POST, rows

    UPSERT_WINDOW: ClassVar[str] = (
        "INSERT INTO windows (query, start_ms, end_ms, posts, positive, negative, neutral,"
        " retweets, top_hashtags, unscored, langs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (query, start_ms) DO UPDATE SET end_ms = excluded.end_ms,"
        " posts = excluded.posts, positive = excluded.positive, negative = excluded.negative,"
        " neutral = excluded.neutral, retweets = excluded.retweets,"
        " top_hashtags = excluded.top_hashtags, unscored = excluded.unscored,"
        " langs = excluded.langs"
    )
    INSERT_LATE: ClassVar[str] = (
        "INSERT INTO late_posts (query, post_id, window_start_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (query, post_id) DO NOTHING"
    )
    UPSERT_REJECTED: ClassVar[str] = (
        "INSERT INTO rejected (origin, reason, raw, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (origin) DO UPDATE SET reason = excluded.reason, raw = excluded.raw"
    )
    UPSERT_QUERY: ClassVar[str] = (
        "INSERT INTO queries (key, active, first_seen, last_changed, spelling)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET active = excluded.active,"
        " last_changed = CASE WHEN queries.active = excluded.active"
        " THEN queries.last_changed ELSE excluded.last_changed END,"
        " spelling = COALESCE(queries.spelling, excluded.spelling)"
    )
    UPSERT_CURSOR: ClassVar[str] = (
        "INSERT INTO source_cursors (source, position, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET position = excluded.position,"
        " updated_at = excluded.updated_at"
    )
    DELETE_CURSOR: ClassVar[str] = "DELETE FROM source_cursors WHERE source = ?"
    CURSOR: ClassVar[str] = "SELECT position FROM source_cursors WHERE source = ?"

    COUNTS: ClassVar[str] = (
        "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM matches),"
        " (SELECT count(*) FROM windows), (SELECT count(*) FROM late_posts),"
        " (SELECT count(*) FROM rejected)"
    )
    QUERIES: ClassVar[str] = (
        "SELECT key, active, first_seen, last_changed, {spelling} FROM queries ORDER BY key"
    )
    WINDOWS: ClassVar[str] = (
        "SELECT query, start_ms, end_ms, posts, positive, negative, neutral, retweets,"
        " top_hashtags, {unscored}, {langs}"
        " FROM windows WHERE query = ? AND start_ms >= ? ORDER BY start_ms"
    )
    """Windows of a query; format it with :func:`_columns_of` the store's version."""
    ID_ORDER: ClassVar[str] = ""
    """What follows a text id in ``ORDER BY``: byte order on both backends."""
    LATEST: ClassVar[str] = (
        "SELECT max(value) FROM (SELECT max(end_ms) AS value FROM windows"
        " UNION ALL SELECT max(created_at_ms) FROM matches) AS latest"
    )
    GET_VERSION: ClassVar[str] = "SELECT value FROM meta WHERE key = 'schema_version'"

    @staticmethod
    def translate(sql: str) -> str:
        """``sql`` written with ``?`` placeholders, in this dialect's placeholders."""
        return sql


def _to_pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresSQL(_SQL):
    """PostgreSQL's dialect: wider column types, its catalogue, ``%s`` placeholders.

    JSON stays ``TEXT`` so both backends hold the same bytes; ``0/1/2`` flags
    stay ``INTEGER`` so the upserts compare them the same way. Text orderings
    use the ``"C"`` collation, SQLite's binary order, whatever the database's.
    """

    SCHEMA: ClassVar[tuple[str, ...]] = (
        *_schema(int_type="BIGINT", real_type="DOUBLE PRECISION", without_rowid=""),
        _ALERTS.format(int="BIGINT", real="DOUBLE PRECISION"),
    )
    CURSORS: ClassVar[str] = _CURSORS.format(int="BIGINT")
    TABLES: ClassVar[str] = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    # Writers creating a new store at once take turns (transaction-scoped lock).
    LOCK_SCHEMA: ClassVar[str] = "SELECT pg_advisory_xact_lock(hashtext('senti.schema'))"
    CAN_CREATE: ClassVar[str] = (
        "SELECT current_schema() IS NOT NULL AND has_schema_privilege(current_schema(), 'CREATE')"
    )
    READ_ONLY: ClassVar[str] = "SET default_transaction_read_only = on"

    @classmethod
    def match_statement(
        cls, matches: list[tuple[tuple[str, ...], str, int]]
    ) -> tuple[str, list[tuple[Any, ...]]]:
        """One row per match, in primary-key order (query, created_at_ms, post_id).

        Every PostgreSQL writer takes its row locks in the same order, so
        concurrent writers never deadlock (see :meth:`Rows.statements`).
        """
        rows = [
            (query, post_id, created_ms)
            for queries, post_id, created_ms in matches
            for query in queries
        ]
        return cls.INSERT_MATCH, sorted(rows, key=_MATCH_KEY)

    MIGRATE_3_TO_4: ClassVar[tuple[str, ...]] = _migrate_3_to_4(int_type="BIGINT")
    MIGRATE_4_TO_5: ClassVar[tuple[str, ...]] = (
        _ALERTS.format(int="BIGINT", real="DOUBLE PRECISION"),
        *_migrate_4_to_5(),
    )
    UPSERT_ALERT: ClassVar[str] = _to_pyformat(_UPSERT_ALERT)
    ALERTS: ClassVar[str] = _to_pyformat(_ALERTS_READ)
    SET_META: ClassVar[str] = _to_pyformat(_SQL.SET_META)
    INSERT_POST: ClassVar[str] = _to_pyformat(_SQL.INSERT_POST)
    INSERT_MATCH: ClassVar[str] = _to_pyformat(_SQL.INSERT_MATCH)
    UPSERT_WINDOW: ClassVar[str] = _to_pyformat(_SQL.UPSERT_WINDOW)
    INSERT_LATE: ClassVar[str] = _to_pyformat(_SQL.INSERT_LATE)
    UPSERT_REJECTED: ClassVar[str] = _to_pyformat(_SQL.UPSERT_REJECTED)
    UPSERT_QUERY: ClassVar[str] = _to_pyformat(_SQL.UPSERT_QUERY)
    UPSERT_CURSOR: ClassVar[str] = _to_pyformat(_SQL.UPSERT_CURSOR)
    DELETE_CURSOR: ClassVar[str] = _to_pyformat(_SQL.DELETE_CURSOR)
    CURSOR: ClassVar[str] = _to_pyformat(_SQL.CURSOR)
    QUERIES: ClassVar[str] = (
        "SELECT key, active, first_seen, last_changed, {spelling} FROM queries"
        ' ORDER BY key COLLATE "C"'
    )
    WINDOWS: ClassVar[str] = _to_pyformat(_SQL.WINDOWS)
    ID_ORDER: ClassVar[str] = ' COLLATE "C"'

    @staticmethod
    def translate(sql: str) -> str:
        """``sql`` written with ``?`` placeholders, with psycopg's ``%s`` instead."""
        return _to_pyformat(sql)


# Shared by both backends


class _SQLStore(Store):
    """What both backends share: turning items into rows, and rows into records.

    A backend supplies its dialect (``_sql``), the transaction around a write
    (:meth:`_write_rows`), reads (:meth:`_fetch`) and the mapping of its
    driver's errors (:meth:`_errors`).
    """

    _sql: ClassVar[type[_SQL]] = _SQL

    def __init__(self, label: str, *, readonly: bool, clock: Callable[[], datetime] | None) -> None:
        self._label = label
        self._readonly = readonly
        self._clock = clock or _utc_now
        self._version = SCHEMA_VERSION
        """Set by the backend as it opens the store."""

    @property
    def readonly(self) -> bool:
        """Whether this store was opened for reading only."""
        return self._readonly

    @property
    def schema_version(self) -> int:
        """See :attr:`Store.schema_version`; a reader of an older store reads it again
        each time, so it sees the upgrade as soon as a writer has made it."""
        if self._version < SCHEMA_VERSION:
            rows = self._fetch(self._sql.GET_VERSION, ())
            self._version = int(rows[0][0]) if rows else self._version
        return self._version

    # Backend hooks

    @abstractmethod
    def _write_rows(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Run every statement with every one of its rows, in one transaction."""

    @abstractmethod
    def _connection(self) -> Any:
        """The open connection; raise StoreError if the store is closed."""

    @abstractmethod
    def _errors(self, what: str) -> AbstractContextManager[None]:
        """Turn the driver's errors into StoreError ``what: ...``."""

    _conn: Any = None

    def _check_open(self) -> None:
        """Raise StoreError if the store is closed."""
        self._connection()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one query in this dialect; raise StoreError if closed or failing."""
        conn = self._connection()
        with self._errors("read failed"):
            rows: list[Any] = conn.execute(sql, params).fetchall()
            return rows

    def close(self) -> None:
        """See :meth:`Store.close`."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    # Writing

    def write(self, items: Iterable[StoreItem]) -> None:
        """See :meth:`Store.write`."""
        self._check_writable()
        self.write_rows(Rows.collect(items, self._clock()))

    def write_rows(self, rows: Rows) -> None:
        """See :meth:`Store.write_rows`."""
        self._check_writable()
        statements = [(sql, params) for sql, params in rows.statements(self._sql) if params]
        if statements:
            self._write_rows(statements)

    def _check_writable(self) -> None:
        self._check_open()
        if self._readonly:
            raise StoreError(f"{self._label}: opened read-only, cannot write")

    # Reading

    def counts(self) -> StoreCounts:
        """See :meth:`Store.counts`."""
        row = self._fetch(self._sql.COUNTS, ())[0]
        return StoreCounts(*(int(value) for value in row))

    def queries(self) -> list[TrackedQuery]:
        """See :meth:`Store.queries`."""
        return [
            TrackedQuery(key, bool(active), _parse_iso(first), _parse_iso(last), spelling)
            for key, active, first, last, spelling in self._fetch(
                self._sql.QUERIES.format_map(_columns_of(self.schema_version)), ()
            )
        ]

    def windows(self, query: str, *, since: datetime | None = None) -> list[WindowRow]:
        """See :meth:`Store.windows`."""
        sql = self._sql.WINDOWS.format_map(_columns_of(self.schema_version))
        rows = self._fetch(sql, (query, _since_ms(since)))
        return [
            WindowRow(
                query=row[0],
                start=_from_ms(row[1]),
                end=_from_ms(row[2]),
                posts=row[3],
                positive=row[4],
                negative=row[5],
                neutral=row[6],
                retweets=row[7],
                top_hashtags=tuple((str(tag), int(n)) for tag, n in json.loads(row[8])),
                unscored=int(row[9]),
                langs=tuple((str(lang), int(n)) for lang, n in json.loads(row[10]).items()),
            )
            for row in rows
        ]

    def recent_matches(
        self,
        query: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str = "",
        scored_only: bool = False,
    ) -> list[MatchRow]:
        """See :meth:`Store.recent_matches`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        scored = _columns_of(self.schema_version)["scored"]
        columns = f"p.text, p.compound, p.polarity, {scored}, p.lang"
        params: list[Any] = [_since_ms(since), _until_ms(until)]
        if query == ALL_POSTS:
            at, post = "p.created_at_ms", "p.id"
            sql = f"SELECT {at}, {post}, {columns} FROM posts AS p WHERE"
        else:
            at, post = "m.created_at_ms", "m.post_id"
            sql = (
                f"SELECT {at}, {post}, {columns}"
                " FROM matches AS m JOIN posts AS p ON p.id = m.post_id WHERE m.query = ? AND"
            )
            params.insert(0, query)
        sql += f" {at} >= ? AND {at} < ?"
        if search:
            sql += " AND lower(p.text) LIKE lower(?) ESCAPE '\\'"
            params.append(_like(search))
        if scored_only:
            sql += f" AND {scored} = 1"
        sql += f" ORDER BY {at} DESC, {post}{self._sql.ID_ORDER} DESC LIMIT ?"
        rows = self._fetch(self._sql.translate(sql), (*params, limit))
        return [
            MatchRow(
                time=_from_ms(ms),
                id=post_id,
                text=text,
                compound=compound if scored else None,
                polarity=Polarity(polarity) if scored else None,
                lang=lang,
            )
            for ms, post_id, text, compound, polarity, scored, lang in rows
        ]

    def latest(self) -> datetime | None:
        """See :meth:`Store.latest`."""
        rows = self._fetch(self._sql.LATEST, ())
        return None if not rows or rows[0][0] is None else _from_ms(int(rows[0][0]))

    def cursor(self, source: str) -> int | None:
        """See :meth:`Store.cursor`."""
        try:
            rows = self._fetch(self._sql.CURSOR, (source,))
        except StoreError:
            if self._has_cursors():
                raise
            return None  # a store no writer of this version has opened yet
        return int(rows[0][0]) if rows else None

    def alerts(
        self,
        query: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Alert]:
        """See :meth:`Store.alerts`."""
        if self.schema_version < 5:
            return []
        params: list[Any] = [_since_ms(since), _until_ms(until)]
        where = ""
        if query is not None:
            where = self._sql.translate(" AND query = ?")
            params.append(query)
        return [
            _alert_of(row)
            for row in self._fetch(self._sql.ALERTS.format(where_query=where), params)
        ]

    def _has_cursors(self) -> bool:
        return "source_cursors" in {name for (name,) in self._fetch(self._sql.TABLES, ())}

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """See :meth:`Store.select`."""
        return [tuple(row) for row in self._fetch(self._sql.translate(sql), params)]


def _prepare_schema(execute: Callable[..., Any], sql: type[_SQL], version: int | None) -> None:
    """Create the schema of an empty store, or upgrade an older store version by version,
    and the ``source_cursors`` table if it is missing.

    Runs inside the writer's transaction, under its write lock (SQLite) or
    schema lock (PostgreSQL), so concurrent writers do it once.
    """
    execute(sql.CURSORS)  # outside the numbered schema: whatever the version
    if version is None:
        statements, meta = sql.SCHEMA, [("app", _APP), ("schema_version", str(SCHEMA_VERSION))]
    elif version < SCHEMA_VERSION:
        migrations = sql.migrations()
        statements = tuple(
            statement for step in range(version, SCHEMA_VERSION) for statement in migrations[step]
        )
        meta = [("schema_version", str(SCHEMA_VERSION))]
    else:
        return
    for statement in statements:
        execute(statement)
    for row in meta:
        execute(sql.SET_META, row)


def _columns_of(version: int) -> dict[str, str]:
    """What the reads select for the columns schemas 4 and 5 added: the columns themselves,
    or on an older store their defaults (every post scored, none unscored, no languages,
    no spelling)."""
    spelling = {"spelling": "spelling" if version >= 5 else "NULL"}
    if version >= 4:
        return {"scored": "p.scored", "unscored": "unscored", "langs": "langs"} | spelling
    return {"scored": "1", "unscored": "0", "langs": "'{}'"} | spelling


def _check_meta(label: str, meta: dict[str, str]) -> int:
    """The schema version in ``meta``; StoreError unless it is a senti store of this version."""
    if meta.get("app") != _APP:
        raise StoreError(f"{label}: not a senti store (meta.app is {meta.get('app')!r})")
    try:
        version = int(meta["schema_version"])
    except (KeyError, ValueError):
        raise StoreError(f"{label}: senti store without a valid schema_version") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{label}: schema version {version} is newer than this senti supports "
            f"({SCHEMA_VERSION}); upgrade senti to use this store"
        )
    if version not in READABLE_VERSIONS:
        raise StoreError(
            f"{label}: schema version {version} is older than {min(READABLE_VERSIONS)} "
            "and cannot be migrated; replay into a new store"
        )
    return version


# SQLite


class SQLiteStore(_SQLStore):
    """A :class:`Store` in one SQLite file; open it with :func:`open_store`."""

    _sql = _SQL

    def __init__(
        self,
        path: Path,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(f"store {str(path)!r}", readonly=readonly, clock=clock)
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._conn = self._connect_readonly() if readonly else self._connect_writer()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @classmethod
    def check(cls, path: Path) -> None:
        """Raise :class:`StoreError` unless a writer could open ``path``; change nothing."""
        label = f"store {str(path)!r}"
        directory = path.parent
        if not directory.is_dir():
            raise StoreError(f"{label}: directory {str(directory)!r} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StoreError(f"{label}: directory {str(directory)!r} is not writable")
        if not path.exists():
            return
        if not path.is_file():
            raise StoreError(f"{label}: not a regular file")
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"{label}: file is not readable and writable")
        conn = _open_readonly(path, label)
        try:
            _schema_version(conn, label, allow_empty=True)
        finally:
            conn.close()

    # Opening

    def _connect_writer(self) -> sqlite3.Connection:
        directory = self._path.parent
        if not directory.is_dir():
            raise StoreError(f"{self._label}: directory {str(directory)!r} does not exist")
        if self._path.is_dir():
            raise StoreError(f"{self._label}: is a directory, not a database file")
        with self._errors("cannot open"):
            conn = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT.total_seconds(),
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # one partition, possibly moved between threads
            )
        try:
            with self._errors("cannot open"):
                _configure(conn)
            _schema_version(conn, self._label, allow_empty=True)  # before changing anything
            with self._errors("cannot open"):
                # Several workers may open a new store at once: WAL mode is
                # persistent and the schema is created under the write lock.
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
                conn.execute(f"PRAGMA wal_autocheckpoint = {_WRITER_CHECKPOINT_PAGES}")
                with _transaction(conn):
                    version = _schema_version(conn, self._label, allow_empty=True)
                    _prepare_schema(conn.execute, _SQL, version)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise StoreError(f"{self._label}: no such file")
        conn = _open_readonly(self._path, self._label)
        try:
            self._version = _schema_version(conn, self._label, allow_empty=False) or SCHEMA_VERSION
        except BaseException:
            conn.close()
            raise
        return conn

    # Backend hooks

    def _write_rows(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        conn = self._connection()
        with self._errors("write failed"), _transaction(conn):
            for sql, params in statements:
                conn.executemany(sql, params)

    # Helpers

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self._label}: closed")
        return self._conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self._label}: {what}: {exc}") from exc

    def __repr__(self) -> str:
        mode = "readonly" if self._readonly else "writer"
        state = "closed" if self._conn is None else "open"
        return f"<SQLiteStore {str(self._path)!r} {mode} {state}>"


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another connection holds the lock.

    SQLite answers a journal-mode change that races another writer with
    "database is locked" at once, without its busy handler.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT.total_seconds()
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        else:
            return


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT.total_seconds() * 1000)}")


def _open_readonly(path: Path, label: str) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT.total_seconds(),
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{label}: cannot open read-only: {exc}") from exc
    try:
        _configure(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{label}: cannot open read-only: {exc}") from exc
    return conn


def _schema_version(conn: sqlite3.Connection, label: str, *, allow_empty: bool) -> int | None:
    """The store's schema version, or ``None`` for an empty database a writer may fill.

    Raises :class:`StoreError` if the file is not a senti store or its version is
    not :data:`SCHEMA_VERSION`.
    """
    try:
        # One statement, one snapshot: a writer may be creating the schema right now.
        tables = {name for (name,) in conn.execute(_SQL.TABLES)}
        if "meta" not in tables:
            if allow_empty and not tables:
                return None
            raise StoreError(f"{label}: not a senti store (no meta table)")
        meta = dict(conn.execute(_SQL.GET_META).fetchall())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{label}: not a senti store: {exc}") from exc
    return _check_meta(label, meta)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so waiting for it honours the busy
    # timeout instead of failing later when a read lock cannot be upgraded.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors
            conn.execute("ROLLBACK")
        raise


# PostgreSQL


class PostgresStore(_SQLStore):
    """A :class:`Store` in a PostgreSQL database; open it with :func:`open_store`.

    Needs the ``psycopg`` package (version 3). The connection runs in
    autocommit mode: each read is one statement, each write one transaction.
    """

    _sql = _PostgresSQL

    def __init__(
        self,
        url: StoreURL,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(f"store {str(url)!r}", readonly=readonly, clock=clock)
        self._url = url
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._conn = self._connect_readonly() if readonly else self._connect_writer()

    @property
    def url(self) -> StoreURL:
        """The store's URL (``str()`` redacts the password)."""
        return self._url

    @classmethod
    def check(cls, url: StoreURL) -> None:
        """Raise :class:`StoreError` unless a writer could open ``url``; change nothing."""
        label = f"store {str(url)!r}"
        conn = _pg_connect(url, label, readonly=True)
        try:
            with _pg_errors(url, label, "cannot open"):
                version = _pg_schema_version(conn, label, allow_empty=True)
                if version is None and not conn.execute(_PostgresSQL.CAN_CREATE).fetchone()[0]:  # type: ignore[index]
                    raise StoreError(
                        f"{label}: the user may not create tables in the database's schema"
                    )
        finally:
            conn.close()

    # Opening

    def _connect_writer(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = _pg_connect(self._url, self._label, readonly=False)
        try:
            with self._errors("cannot open"), conn.transaction():
                conn.execute(_PostgresSQL.LOCK_SCHEMA)
                version = _pg_schema_version(conn, self._label, allow_empty=True)
                _prepare_schema(conn.execute, _PostgresSQL, version)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = _pg_connect(self._url, self._label, readonly=True)
        try:
            with self._errors("cannot open"):
                version = _pg_schema_version(conn, self._label, allow_empty=False)
                self._version = version or SCHEMA_VERSION
        except BaseException:
            conn.close()
            raise
        return conn

    # Backend hooks

    def _write_rows(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        conn = self._connection()
        with self._errors("write failed"), conn.transaction(), conn.cursor() as cursor:
            for sql, params in statements:
                cursor.executemany(sql, params)

    # Helpers

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            raise StoreError(f"{self._label}: closed")
        return self._conn

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return _pg_errors(self._url, self._label, what)

    def __repr__(self) -> str:
        mode = "readonly" if self._readonly else "writer"
        state = "closed" if self._conn is None else "open"
        return f"<PostgresStore {str(self._url)!r} {mode} {state}>"


def _pg_connect(
    url: StoreURL, label: str, *, readonly: bool
) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        import psycopg  # noqa: PLC0415 (only PostgreSQL stores need the driver)
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415
    except ImportError as exc:
        raise StoreError(
            f"{label}: PostgreSQL stores need the psycopg package: pip install 'psycopg[binary]'"
        ) from exc
    options: dict[str, Any] = {"application_name": "senti"}
    with _pg_errors(url, label, "malformed URL"):
        given = conninfo_to_dict(url.conninfo)
    if "connect_timeout" not in given:
        options["connect_timeout"] = int(BUSY_TIMEOUT.total_seconds())
    try:
        conn = psycopg.connect(url.conninfo, autocommit=True, **options)
    except psycopg.Error as exc:
        raise StoreError(_connect_failure(url, label, exc)) from _safe_cause(exc, url)
    try:
        if readonly:
            with _pg_errors(url, label, "cannot open read-only"):
                conn.execute(_PostgresSQL.READ_ONLY)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_failure(url: StoreURL, label: str, exc: Exception) -> str:
    """A StoreError message saying why the connection failed, password redacted."""
    detail = " ".join(_scrub(str(exc), url).split())
    lowered = detail.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        reason = "authentication failed; check the user name and password in the URL"
    elif "no password supplied" in lowered:
        reason = "the server wants a password and the URL gives none"
    elif "database" in lowered and "does not exist" in lowered:
        reason = f"database {url.database!r} does not exist; create it first (createdb)"
    elif "connection refused" in lowered:
        reason = "connection refused; is PostgreSQL running and listening at that address?"
    elif "timeout" in lowered:
        reason = "the server did not answer in time"
    else:
        reason = "cannot connect"
    return f"{label}: {reason} ({detail})"


@contextmanager
def _pg_errors(url: StoreURL, label: str, what: str) -> Iterator[None]:
    import psycopg  # noqa: PLC0415 (only PostgreSQL stores need the driver)

    try:
        yield
    except psycopg.Error as exc:
        message = _scrub(str(exc), url)
        raise StoreError(f"{label}: {what}: {' '.join(message.split())}") from _safe_cause(exc, url)


def _scrub(text: str, url: StoreURL) -> str:
    """``text`` with the URL's password (as given and percent-decoded) as ``***``."""
    password = url.password
    if password:
        for secret in {password, quote(password, safe="")}:
            text = text.replace(secret, _REDACTED)
    return text


def _safe_cause(exc: Exception, url: StoreURL) -> Exception | None:
    """``exc`` to chain as ``__cause__``, or ``None`` if its message holds the password."""
    password = url.password
    return None if password and _scrub(str(exc), url) != str(exc) else exc


def _pg_schema_version(
    conn: psycopg.Connection[tuple[Any, ...]], label: str, *, allow_empty: bool
) -> int | None:
    """Like :func:`_schema_version`, on a PostgreSQL connection (in the current schema)."""
    tables = {name for (name,) in conn.execute(_PostgresSQL.TABLES).fetchall()}
    if "meta" not in tables:
        if allow_empty and not tables:
            return None
        raise StoreError(f"{label}: not a senti store (no meta table)")
    meta = dict(conn.execute(_PostgresSQL.GET_META).fetchall())
    return _check_meta(label, meta)


# Rows, shared by both backends


@dataclass(slots=True)
class Rows:
    """A batch of items turned into parameter rows, one list per statement.

    Plain tuples of strings and numbers: cheap to pickle to a writer process,
    and batches :meth:`extend` into one transaction.
    """

    posts: list[tuple[Any, ...]]
    """Per post, its fields as values (time as a datetime, polarity as a
    :class:`~flows.model.Polarity` or ``None`` when unscored, hashtags as a dict):
    :meth:`statements` formats them, so a writer process does that work."""
    matches: list[tuple[Any, ...]]
    """Per matched post: its queries, then the rest of each of their match rows."""
    windows: list[tuple[Any, ...]]
    late: list[tuple[Any, ...]]
    rejected: list[tuple[Any, ...]]
    queries: list[tuple[Any, ...]]
    cursors: list[tuple[Any, ...]] = field(default_factory=list)
    """Per source cursor: ``(source, position or None, stamp)``, the last one of a source wins."""
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    """Per sentiment-shift alert, its ``alerts`` row (schema 5)."""

    @classmethod
    def collect(cls, items: Iterable[StoreItem], now: datetime) -> Rows:
        """The rows of ``items``; ``now`` stamps rejected lines and query changes.

        Raises :class:`TypeError` for an item of another type and
        :class:`ValueError` for a naive datetime.
        """
        rows = cls([], [], [], [], [], [])
        stamp = format_time(now)
        seen_posts: set[str] = set()
        for item in items:
            if isinstance(item, PostMatches | Match):
                scored, post = item.scored, item.scored.post
                created_ms = _to_ms(post.created_at)
                # A post matching many queries is stored once per batch. Its
                # row is formatted by statements(), in the writer process.
                if post.id not in seen_posts:
                    seen_posts.add(post.id)
                    rows.posts.append(
                        (
                            post.id,
                            post.created_at,
                            created_ms,
                            post.text,
                            post.lang,
                            post.author,
                            scored.compound,
                            scored.polarity,
                            scored.hashtags,
                        )
                    )
                queries = item.queries if isinstance(item, PostMatches) else (item.query,)
                rows.matches.append((queries, post.id, created_ms))
            elif isinstance(item, WindowSummary):
                rows.windows.append(
                    (
                        item.query,
                        _to_ms(item.start),
                        _to_ms(item.end),
                        item.posts,
                        item.positive,
                        item.negative,
                        item.neutral,
                        item.retweets,
                        _json([[tag, count] for tag, count in item.top_hashtags]),
                        item.unscored,
                        _json(dict(item.langs)),
                    )
                )
            elif isinstance(item, LatePost):
                rows.late.append((item.query, item.post_id, _to_ms(item.window_start)))
            elif isinstance(item, Rejected):
                rows.rejected.append((item.origin, item.reason, item.raw, stamp))
            elif isinstance(item, Subscription):
                rows.queries.append((item.key, int(item.active), stamp, stamp, item.query.shown))
            elif isinstance(item, SourceCursor):
                rows.cursors.append((item.source, item.position, stamp))
            elif isinstance(item, Alert):
                rows.alerts.append(_alert_row(item))
            else:
                raise TypeError(f"cannot store a {type(item).__name__}: {item!r}")
        return rows

    def __len__(self) -> int:
        """The number of rows this batch writes."""
        return (
            len(self.posts) + sum(len(queries) for queries, *_ in self.matches)
            + len(self.windows) + len(self.late) + len(self.rejected) + len(self.queries)
            + len(self.cursors) + len(self.alerts)
        )  # fmt: skip

    def extend(self, other: Rows) -> None:
        """Append ``other``'s rows (written after this batch's, so later items still win)."""
        self.posts += other.posts
        self.matches += other.matches
        self.windows += other.windows
        self.late += other.late
        self.rejected += other.rejected
        self.queries += other.queries
        self.cursors += other.cursors
        self.alerts += other.alerts

    def statements(self, sql: type[_SQL]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Each statement of ``sql``'s dialect with its rows, in primary-key order
        (match rows as the dialect's :meth:`~_SQL.match_statement` writes them).

        Every PostgreSQL writer takes its row locks in the same order (table by
        table, key by key), so concurrent writers never deadlock. The sort is
        stable: of two items with one key, the later is still written last.
        """
        # An unscored post (no compound, no polarity) fills those NOT NULL columns with
        # 0 and 2 and is marked scored = 0.
        posts = [
            (post_id, format_time(created), ms, text, lang, author,
             0.0 if polarity is None else compound, 2 if polarity is None else int(polarity),
             _json(dict(sorted(hashtags.items()))), 0 if polarity is None else 1)
            for post_id, created, ms, text, lang, author, compound, polarity, hashtags in self.posts
        ]  # fmt: skip
        yield sql.INSERT_POST, sorted(posts, key=_first)
        yield sql.match_statement(self.matches)
        yield sql.UPSERT_WINDOW, sorted(self.windows, key=_first_two)
        yield sql.INSERT_LATE, sorted(self.late, key=_first_two)
        yield sql.UPSERT_REJECTED, sorted(self.rejected, key=_first)
        yield sql.UPSERT_QUERY, sorted(self.queries, key=_first)
        yield sql.UPSERT_ALERT, sorted(self.alerts, key=_alert_key)
        # Last: a cursor is committed with, never before, the rows it covers.
        last = {source: (position, stamp) for source, position, stamp in self.cursors}
        yield (
            sql.UPSERT_CURSOR,
            [
                (source, position, stamp)
                for source, (position, stamp) in sorted(last.items())
                if position is not None
            ],
        )
        yield (
            sql.DELETE_CURSOR,
            [(source,) for source, (position, _) in sorted(last.items()) if position is None],
        )


_MATCH_KEY: Final = operator.itemgetter(0, 2, 1)
_encode_json: Final = msgspec.json.Encoder().encode
"""UTF-8 JSON, like ``json.dumps(..., ensure_ascii=False)``, a fifth of its cost."""


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _first_two(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:2]


def _alert_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[0], row[1], row[3]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; the store needs timezone-aware times")
    return (moment - _EPOCH) // _MS


def _from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def _since_ms(since: datetime | None) -> int:
    return -(2**63) if since is None else _to_ms(since)


def _until_ms(until: datetime | None) -> int:
    return 2**63 - 1 if until is None else _to_ms(until)


def _like(search: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching texts that contain ``search``."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
