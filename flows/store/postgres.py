"""The PostgreSQL store (psycopg): the same schema and queries as SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import psycopg
from flows.store.base import _check_meta, _prepare_schema, _SQLStore
from flows.store.records import BUSY_TIMEOUT
from flows.store.schema import SCHEMA_VERSION, _PostgresSQL
from flows.store.url import _REDACTED, StoreError, StoreURL

__all__ = ["PostgresStore"]


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
