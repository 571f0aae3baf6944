"""Where a flow resumes from its store, and where it leaves its sources' positions.

With a store, the resumable sources (Bluesky, replay) start where the store's
cursors say (:mod:`flows.runtime.cursors`), with the queries that were tracked when
the previous run stopped (:func:`stored_resume`); their final positions are
written once the flow has ended (:func:`write_positions`). Used by ``senti
replay`` and by the server alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from flows.routing.matching import InvalidQuery, Query, parse_query
from flows.runtime.cursors import Positions, SourceCursor
from flows.store import StoreError, check_store, open_store, parse_store_url

__all__ = ["StoredResume", "stored_resume", "write_positions"]

logger = logging.getLogger("senti.dataflow")


@dataclass(frozen=True, slots=True)
class StoredResume:
    """Where a restarted server's sources resume, from its store."""

    cursors: dict[str, int] = field(default_factory=dict)
    """Stored positions by cursor key (:mod:`flows.runtime.cursors`)."""
    queries: tuple[Query, ...] = ()
    """The queries tracked when the previous run stopped (only when it left a cursor)."""


def stored_resume(store: str | None, keys: Sequence[str]) -> StoredResume:
    """The store's cursors for ``keys``, and its active queries if there is one.

    Nothing for no store or a SQLite file not created yet; :class:`StoreError`
    if the store cannot be read.
    """
    if store is None or not keys:
        return StoredResume()
    location = parse_store_url(store)
    if location.path is not None and not location.path.exists():
        return StoredResume()
    try:
        opened = open_store(store, readonly=True)
    except StoreError:
        check_store(store)  # raises unless it is an empty database a writer will fill
        return StoredResume()
    with opened:
        cursors = {key: found for key in keys if (found := opened.cursor(key)) is not None}
        if not cursors:
            return StoredResume()
        queries: list[Query] = []
        for tracked in opened.queries():
            if tracked.active:
                try:
                    query = parse_query(tracked.shown)  # keeps the spelling first typed
                    if query.key != tracked.key:  # spelled for another version's rules
                        query = parse_query(tracked.key)
                    queries.append(query)
                except InvalidQuery:  # written by another version: leave it
                    logger.info("stored query skipped", extra={"query": tracked.key})
    return StoredResume(cursors, tuple(queries))


def write_positions(store: str, positions: Positions) -> None:
    """Write the sources' final positions, once the flow has ended and its sinks closed."""
    final: list[SourceCursor] = positions.final()
    if not final:
        return
    try:
        with open_store(store) as opened:
            opened.write(final)
    except StoreError as exc:  # the next run reads again from the last settled position
        logger.warning("source positions not stored", extra={"error": str(exc)})
