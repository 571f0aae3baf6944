"""The :class:`Store` interface, and the SQL store SQLite and PostgreSQL share: writes and reads."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from flows.alerts import Alert
from flows.model import (
    ALL_POSTS,
    Polarity,
)

if TYPE_CHECKING:
    pass
from flows.store.records import (
    MatchRow,
    StoreCounts,
    StoreItem,
    TrackedQuery,
    WindowRow,
    _from_ms,
    _like,
    _parse_iso,
    _since_ms,
    _until_ms,
    _utc_now,
)
from flows.store.rows import Rows
from flows.store.schema import _APP, _SQL, READABLE_VERSIONS, SCHEMA_VERSION, _alert_of
from flows.store.url import StoreError

__all__ = ["Store"]


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
        dataflow and writes in a separate process (:mod:`flows.sinks.store_sink`).
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
        """Where the source partition ``source`` resumes if kept (:mod:`flows.runtime.cursors`)"""

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
