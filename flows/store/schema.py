"""The store's tables, their SQL for SQLite and PostgreSQL, and migrations between versions."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

from flows.alerts import Alert

if TYPE_CHECKING:
    pass
from flows.store.records import _from_ms, _to_ms

__all__ = ["READABLE_VERSIONS", "SCHEMA_VERSION"]


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


_APP: Final = "senti"


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


_MATCH_KEY: Final = operator.itemgetter(0, 2, 1)


_encode_json: Final = msgspec.json.Encoder().encode


"""UTF-8 JSON, like ``json.dumps(..., ensure_ascii=False)``, a fifth of its cost."""
