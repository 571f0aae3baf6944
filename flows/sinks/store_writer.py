"""The store sink's writer process: ``python -m flows.sinks.store_writer FD``.

:class:`flows.sinks.store_sink.BackgroundStorePartition` starts it with one end of a
socket pair as ``FD`` and sends it ``(url, in_flight)``, then
:class:`flows.store.Rows` batches (pickled, as
:class:`multiprocessing.connection.Connection` frames; ``None`` to close).
It replies ``("ready", 0)`` once the store is open, ``("written", n)`` after
each transaction of ``n`` batches, ``("closed", 0)`` at the end, or
``("error", message)`` before it exits on a store error.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Final

from flows.store import Rows, StoreError, open_store

__all__ = ["serve"]

JOIN_ROWS: Final = 100_000
"""A transaction takes the batches that arrive until it holds this many rows ..."""

JOIN_SECONDS: Final = 0.5
"""... or until its first batch has waited this long. Every transaction rewrites the
pages it dirtied (a page per tracked query, in ``matches``), so a few large ones
write far less than one per batch; the store lags the flow by at most this much."""


class _Closed:
    """The partition closed the socket (``None``) or went away (end of file)."""

    def __init__(self, *, gone: bool) -> None:
        self.gone = gone


def _read_into(conn: Connection, inbox: queue.SimpleQueue[Rows | _Closed]) -> None:
    """Drain the socket into ``inbox`` while the writer writes (the GIL is free then)."""
    while True:
        try:
            message: Rows | None = conn.recv()
        except (EOFError, OSError):
            inbox.put(_Closed(gone=True))
            return
        if message is None:
            inbox.put(_Closed(gone=False))
            return
        inbox.put(message)


def serve(conn: Connection, url: str, in_flight: int) -> None:
    """Open the store at ``url``, write what arrives, reply after each transaction.

    A thread reads the socket, so the partition never waits for a transaction
    to end before it can send; a transaction takes at most half of the
    partition's ``in_flight`` batches, so it never waits for the writer either.
    """
    try:
        store = open_store(url)
    except StoreError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", 0))
    inbox: queue.SimpleQueue[Rows | _Closed] = queue.SimpleQueue()
    threading.Thread(target=_read_into, args=(conn, inbox), daemon=True).start()
    most = max(1, in_flight // 2)
    with store:
        end: _Closed | None = None
        while end is None:
            first = inbox.get()
            if isinstance(first, _Closed):
                end = first
                break
            rows, batches, count = first, 1, len(first)
            deadline = time.monotonic() + JOIN_SECONDS
            while count < JOIN_ROWS and batches < most:
                try:
                    queued = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if isinstance(queued, _Closed):
                    end = queued  # write what came, then stop
                    break
                rows.extend(queued)
                batches, count = batches + 1, count + len(queued)
            try:
                store.write_rows(rows)
            except StoreError as exc:
                if end is None or not end.gone:
                    conn.send(("error", str(exc)))
                return
            if end is None or not end.gone:
                conn.send(("written", batches))
        if not end.gone:
            conn.send(("closed", 0))


def main(argv: list[str]) -> int:
    """Serve the store whose URL (and the partition's in-flight limit) come first on
    the socket ``argv[0]``."""
    # Ctrl-C and SIGTERM go to the whole process group; the writer stops when
    # its partition closes the socket, after writing everything it was sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with Connection(int(argv[0])) as conn:
        try:
            url, in_flight = conn.recv()
            serve(conn, str(url), int(in_flight))
        except (EOFError, OSError):
            return 1  # the partition went away mid-reply
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
