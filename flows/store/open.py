"""Opening a store from its URL, and checking a URL before a run starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass
from flows.store.base import Store
from flows.store.postgres import PostgresStore
from flows.store.sqlite import SQLiteStore
from flows.store.url import StoreURL, parse_store_url

__all__ = ["check_store", "open_store"]


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
