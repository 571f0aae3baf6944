"""The store sink's writer process: ``python -m flows.sinks.store_writer FD``.

:class:`flows.sinks.store.BackgroundStorePartition` starts it with one end of a
socket pair as ``FD`` and sends it :class:`flows.store.Rows` batches (pickled,
as :class:`multiprocessing.connection.Connection` frames; ``None`` to close).
It replies ``("ready", 0)`` once the store is open, ``("written", n)`` after
each transaction of ``n`` batches, ``("closed", 0)`` at the end, or
``("error", message)`` before it exits on a store error.
"""

from __future__ import annotations

import signal
import sys
from multiprocessing.connection import Connection
from typing import Any, Final

from flows.store import StoreError, open_store

__all__ = ["serve"]

JOIN_ROWS: Final = 200_000
"""Batches that queue up are joined into one transaction up to this many rows
(a matched post counts once, whatever its number of queries)."""


def serve(conn: Connection, url: str) -> None:
    """Open the store at ``url``, write what arrives, reply after each transaction."""
    try:
        store = open_store(url)
    except StoreError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", 0))
    with store:
        closing = False
        while not closing:
            try:
                message: Any = conn.recv()
            except EOFError:
                return  # the partition is gone; everything sent was written
            if message is None:
                break
            rows, batches = message, 1
            while len(rows) < JOIN_ROWS and conn.poll():
                queued = conn.recv()
                if queued is None:
                    closing = True
                    break
                rows.extend(queued)
                batches += 1
            try:
                store.write_rows(rows)
            except StoreError as exc:
                conn.send(("error", str(exc)))
                return
            conn.send(("written", batches))
    conn.send(("closed", 0))


def main(argv: list[str]) -> int:
    """Serve the store at the URL received first on the socket ``argv[0]``."""
    # Ctrl-C and SIGTERM go to the whole process group; the writer stops when
    # its partition closes the socket, after writing everything it was sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with Connection(int(argv[0])) as conn:
        try:
            serve(conn, str(conn.recv()))
        except (EOFError, OSError):
            return 1  # the partition went away mid-reply
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
