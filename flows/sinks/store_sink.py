"""A bytewax sink that writes the flow's output into the senti store.

Each worker's partition opens its own writer when bytewax builds it (never in
the constructor, never at import). Writes are idempotent, so the at-least-once
replay after a resume leaves no duplicates; see :mod:`flows.store`.

By default the database work runs in a **writer process** of the partition's
own: the worker turns each batch into rows (:meth:`flows.store.Rows.collect`,
so a bad item still fails the flow at once) and pipes them to the writer, which
runs the SQL on another core while the dataflow goes on. At most
``in_flight`` batches are on their way; the writer groups them into
transactions of up to 100,000 rows or half a second
(:mod:`flows.sinks.store_writer`). A database error comes back as :class:`StoreError` from
the next ``write_batch`` or from ``close``, which waits for every batch to be
written. With recovery on, pass ``background=False``: bytewax may commit a
snapshot as soon as ``write_batch`` returns, so the rows must be in the store
by then, and that partition writes on the worker's thread.

Given the flow's :class:`~flows.runtime.cursors.Positions`, each batch also carries
the sources' settled positions, written in the batch's transaction (see
:mod:`flows.runtime.cursors`)::

    check_store_url(url)  # raises StoreError
    build_flow(source, None, [StoreSink(url, positions=positions)])
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Final

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.routing.matching import Query
from flows.runtime.cursors import Positions
from flows.store import (
    Rows,
    Store,
    StoreError,
    StoreItem,
    StoreURL,
    check_store,
    open_store,
    parse_store_url,
)

__all__ = ["BackgroundStorePartition", "StoreSink", "StoreSinkPartition", "check_store_url"]

IN_FLIGHT: Final = 64
"""Batches a partition sends ahead of the writer before it waits for one to be written."""


def check_store_url(url: str) -> StoreURL:
    """Check, without changing anything, that the flow could write to ``url``.

    Returns the parsed URL. Raises :class:`~flows.store.StoreError` if the URL
    is malformed or unsupported, its directory is missing or not writable, or
    an existing file is not a senti store of a supported schema version.
    """
    return check_store(url)


def _with_positions(items: list[StoreItem], positions: Positions | None) -> list[StoreItem]:
    """``items``, then the settled source positions (committed with them, never before)."""
    if positions is None:
        return items
    cursors = positions.take_settled()
    return [*items, *cursors] if cursors else items


class StoreSinkPartition(StatelessSinkPartition[StoreItem]):
    """One worker's writer on the worker's thread: one connection, one transaction per batch."""

    def __init__(
        self, store: Store, *, positions: Positions | None = None, first: Rows | None = None
    ) -> None:
        self._store = store
        self._positions = positions
        if first is not None and len(first):
            store.write_rows(first)

    def write_batch(self, items: list[StoreItem]) -> None:
        """Write the batch in one transaction; see :meth:`flows.store.Store.write`."""
        self._store.write(_with_positions(items, self._positions))

    def close(self) -> None:
        """Close the connection (bytewax calls this only when the flow completes)."""
        self._store.close()


class BackgroundStorePartition(StatelessSinkPartition[StoreItem]):
    """One worker's writer in a process of its own (see the module docstring).

    Raises :class:`StoreError` when built if the writer cannot open the store.
    """

    def __init__(
        self,
        url: str,
        *,
        in_flight: int = IN_FLIGHT,
        positions: Positions | None = None,
        first: Rows | None = None,
    ) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        self._label = f"store writer for {parse_store_url(url)}"
        self._in_flight = in_flight
        self._positions = positions
        self._pending = 0
        mine, theirs = socket.socketpair()
        with mine, theirs:
            self._process = subprocess.Popen(  # noqa: S603 (our own module, no shell)
                [sys.executable, "-m", "flows.sinks.store_writer", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
            self._conn = Connection(os.dup(mine.fileno()))
        # Dropped without close (the flow failed): the writer sees the pipe end,
        # writes what it has and exits.
        self._finalizer = weakref.finalize(self, self._conn.close)
        self._conn.send((url, in_flight))  # not on the command line, where a password shows
        self._expect("ready")
        if first is not None and len(first):
            self._send(first)
            self._pending += 1

    @property
    def pid(self) -> int | None:
        """The writer process's id."""
        return self._process.pid

    def write_batch(self, items: list[StoreItem]) -> None:
        """Collect the batch's rows here and send them to the writer."""
        rows = Rows.collect(_with_positions(items, self._positions), datetime.now(UTC))
        while self._conn.poll():  # acknowledgements (or an error) already back
            self._receive()
        if not len(rows):
            return
        while self._pending >= self._in_flight:
            self._receive()
        self._send(rows)
        self._pending += 1

    def close(self) -> None:
        """Wait until every batch is written, then stop the writer."""
        if self._conn.closed:
            return
        try:
            self._send(None)
            self._expect("closed")
        finally:
            self._conn.close()
            self._process.wait(timeout=10)

    def _send(self, message: Rows | None) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._exited() from exc

    def _expect(self, wanted: str) -> None:
        while self._receive() != wanted:
            pass

    def _receive(self) -> str:
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._exited() from exc
        if kind == "error":
            raise StoreError(str(value))
        if kind == "written":
            self._pending -= int(value)
        return str(kind)

    def _exited(self) -> StoreError:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return StoreError(
            f"{self._label}: the writer process exited (code {code});"
            f" up to {self._pending} batches were not written"
        )


class StoreSink(DynamicSink[StoreItem]):
    """Write matches, window summaries, late posts, rejected lines and subscriptions.

    Every worker writes concurrently through its own writer. The constructor
    only parses ``url`` (raising :class:`~flows.store.StoreError` for a
    malformed or unsupported one); use :meth:`check` for a full check.
    ``background=False`` writes on the worker's thread (needed with recovery).
    ``positions`` adds the sources' settled positions to the batches.
    ``queries`` (tracked from the start, ``senti replay --track``) are written as
    tracked by worker 0's partition before any batch: in the writer process, so
    100,000 of them cost the flow the making of their rows only.
    """

    def __init__(
        self,
        url: str,
        *,
        background: bool = True,
        positions: Positions | None = None,
        queries: Sequence[Query] = (),
    ) -> None:
        self._url = url
        self._background = background
        self._positions = positions
        self._queries = queries
        parse_store_url(url)

    @property
    def url(self) -> str:
        """The store URL as given."""
        return self._url

    @property
    def background(self) -> bool:
        """Whether partitions write through a writer process."""
        return self._background

    @staticmethod
    def check(url: str) -> StoreURL:
        """Same as :func:`check_store_url`."""
        return check_store_url(url)

    @override
    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[StoreItem]:
        """Open this worker's writer (creating the store if absent); worker 0's writes
        the tracked queries first."""
        first = None
        if worker_index == 0 and self._queries:
            first = Rows.of_queries(self._queries, datetime.now(UTC))
        if self._background:
            return BackgroundStorePartition(self._url, positions=self._positions, first=first)
        return StoreSinkPartition(open_store(self._url), positions=self._positions, first=first)

    def __repr__(self) -> str:
        return f"StoreSink({self._url!r}, background={self._background})"
