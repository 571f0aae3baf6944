"""The SQLite store: WAL mode, one writer connection, read-only readers."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

if TYPE_CHECKING:
    pass
from flows.store.base import _check_meta, _prepare_schema, _SQLStore
from flows.store.records import BUSY_TIMEOUT
from flows.store.schema import _SQL, SCHEMA_VERSION
from flows.store.url import StoreError

__all__ = ["SQLiteStore"]


_WRITER_CACHE_KIB: Final = 65536


"""A SQLite writer's page cache: inserts land all over the ``matches`` B-tree
(it is in query order, the posts arrive in time order), and with SQLite's 2 MiB
default most of them missed the cache (about twice the time per match row)."""


_WRITER_CHECKPOINT_PAGES: Final = 10_000


"""WAL pages (40 MiB at 4 KiB) before a writer copies them back into the database.
SQLite's 1,000 meant a checkpoint after nearly every transaction of a busy
flow, rewriting the same hot pages of ``matches`` each time: a fifth of the
writer's time went to checkpoints at 200,000 posts and 1,000 queries."""


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
