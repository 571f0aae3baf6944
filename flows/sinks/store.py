"""A bytewax sink that writes the flow's output into the senti store.

Each worker's partition opens its own writer connection when bytewax builds it
(never in the constructor, never at import), writes every batch in one
transaction and closes the connection when the flow ends. Writes are
idempotent, so the at-least-once replay after a resume leaves no duplicates;
see :mod:`flows.store`.

Check the URL before starting the flow, so a typo fails at once rather than on
every worker after the flow has started::

    check_store_url(url)  # raises StoreError
    build_flow(source, [StoreSink(url)])
"""

from __future__ import annotations

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.store import Store, StoreItem, StoreURL, check_store, open_store, parse_store_url

__all__ = ["StoreSink", "StoreSinkPartition", "check_store_url"]


def check_store_url(url: str) -> StoreURL:
    """Check, without changing anything, that the flow could write to ``url``.

    Returns the parsed URL. Raises :class:`~flows.store.StoreError` if the URL
    is malformed or unsupported, its directory is missing or not writable, or
    an existing file is not a senti store of a supported schema version.
    """
    return check_store(url)


class StoreSinkPartition(StatelessSinkPartition[StoreItem]):
    """One worker's writer: one store connection, one transaction per batch."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def write_batch(self, items: list[StoreItem]) -> None:
        """Write the batch in one transaction; see :meth:`flows.store.Store.write`."""
        self._store.write(items)

    def close(self) -> None:
        """Close the connection (bytewax calls this only when the flow completes)."""
        self._store.close()


class StoreSink(DynamicSink[StoreItem]):
    """Write matches, window summaries, late posts, rejected lines and subscriptions.

    Every worker writes concurrently through its own connection. The
    constructor only parses ``url`` (raising :class:`~flows.store.StoreError`
    for a malformed or unsupported one); use :meth:`check` for a full check.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        parse_store_url(url)

    @property
    def url(self) -> str:
        """The store URL as given."""
        return self._url

    @staticmethod
    def check(url: str) -> StoreURL:
        """Same as :func:`check_store_url`."""
        return check_store_url(url)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> StoreSinkPartition:
        """Open this worker's writer connection (creating the store if absent)."""
        return StoreSinkPartition(open_store(self._url))

    def __repr__(self) -> str:
        return f"StoreSink({self._url!r})"
