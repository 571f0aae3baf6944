"""Output items turned into rows, ready for one transaction (formatted by a writer process)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flows.alerts import Alert
from flows.model import (
    LatePost,
    Match,
    PostMatches,
    Rejected,
    WindowSummary,
    format_time,
)
from flows.routing.matching import Query, Subscription
from flows.runtime.cursors import SourceCursor

if TYPE_CHECKING:
    pass
from flows.store.records import StoreItem, _alert_key, _first, _first_two, _to_ms
from flows.store.schema import _SQL, _alert_row

__all__ = ["Rows"]


# Rows, shared by both backends
@dataclass(slots=True)
class Rows:
    """A batch of items turned into parameter rows, one list per statement.

    Plain tuples of strings and numbers: cheap to pickle to a writer process,
    and batches :meth:`extend` into one transaction.
    """

    posts: list[tuple[Any, ...]]
    """Per post, its fields as values (time as a datetime, polarity as a
    :class:`~flows.model.Polarity` or ``None`` when unscored, hashtags as a dict):
    :meth:`statements` formats them, so a writer process does that work."""
    matches: list[tuple[Any, ...]]
    """Per matched post: its queries, then the rest of each of their match rows."""
    windows: list[tuple[Any, ...]]
    late: list[tuple[Any, ...]]
    rejected: list[tuple[Any, ...]]
    queries: list[tuple[Any, ...]]
    cursors: list[tuple[Any, ...]] = field(default_factory=list)
    """Per source cursor: ``(source, position or None, stamp)``, the last one of a source wins."""
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    """Per sentiment-shift alert, its ``alerts`` row (schema 5)."""

    @classmethod
    def collect(cls, items: Iterable[StoreItem], now: datetime) -> Rows:
        """The rows of ``items``; ``now`` stamps rejected lines and query changes.

        Raises :class:`TypeError` for an item of another type and
        :class:`ValueError` for a naive datetime.
        """
        rows = cls([], [], [], [], [], [])
        stamp = format_time(now)
        seen_posts: set[str] = set()
        for item in items:
            if isinstance(item, PostMatches | Match):
                scored, post = item.scored, item.scored.post
                created_ms = _to_ms(post.created_at)
                # A post matching many queries is stored once per batch. Its
                # row is formatted by statements(), in the writer process.
                if post.id not in seen_posts:
                    seen_posts.add(post.id)
                    rows.posts.append(
                        (
                            post.id,
                            post.created_at,
                            created_ms,
                            post.text,
                            post.lang,
                            post.author,
                            scored.compound,
                            scored.polarity,
                            scored.hashtags,
                        )
                    )
                queries = item.queries if isinstance(item, PostMatches) else (item.query,)
                rows.matches.append((queries, post.id, created_ms))
            elif isinstance(item, WindowSummary):
                rows.windows.append(
                    (
                        item.query,
                        _to_ms(item.start),
                        _to_ms(item.end),
                        item.posts,
                        item.positive,
                        item.negative,
                        item.neutral,
                        item.retweets,
                        _json([[tag, count] for tag, count in item.top_hashtags]),
                        item.unscored,
                        _json(dict(item.langs)),
                    )
                )
            elif isinstance(item, LatePost):
                rows.late.append((item.query, item.post_id, _to_ms(item.window_start)))
            elif isinstance(item, Rejected):
                rows.rejected.append((item.origin, item.reason, item.raw, stamp))
            elif isinstance(item, Subscription):
                rows.queries.append((item.key, int(item.active), stamp, stamp, item.query.shown))
            elif isinstance(item, SourceCursor):
                rows.cursors.append((item.source, item.position, stamp))
            elif isinstance(item, Alert):
                rows.alerts.append(_alert_row(item))
            else:
                raise TypeError(f"cannot store a {type(item).__name__}: {item!r}")
        return rows

    @classmethod
    def of_queries(cls, queries: Iterable[Query], now: datetime) -> Rows:
        """The rows of tracking each of ``queries`` from ``now``: the same as
        :meth:`collect` of a :class:`Subscription` of each, without the items."""
        stamp = format_time(now)
        tracked = [(query.key, 1, stamp, stamp, _shown(query)) for query in queries]
        return cls([], [], [], [], [], tracked)

    def __len__(self) -> int:
        """The number of rows this batch writes."""
        return (
            len(self.posts) + sum(len(queries) for queries, *_ in self.matches)
            + len(self.windows) + len(self.late) + len(self.rejected) + len(self.queries)
            + len(self.cursors) + len(self.alerts)
        )  # fmt: skip

    def extend(self, other: Rows) -> None:
        """Append ``other``'s rows (written after this batch's, so later items still win)."""
        self.posts += other.posts
        self.matches += other.matches
        self.windows += other.windows
        self.late += other.late
        self.rejected += other.rejected
        self.queries += other.queries
        self.cursors += other.cursors
        self.alerts += other.alerts

    def statements(self, sql: type[_SQL]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Each statement of ``sql``'s dialect with its rows, in primary-key order
        (match rows as the dialect's :meth:`~_SQL.match_statement` writes them).

        Every PostgreSQL writer takes its row locks in the same order (table by
        table, key by key), so concurrent writers never deadlock. The sort is
        stable: of two items with one key, the later is still written last.
        """
        # An unscored post (no compound, no polarity) fills those NOT NULL columns with
        # 0 and 2 and is marked scored = 0.
        posts = [
            (post_id, format_time(created), ms, text, lang, author,
             0.0 if polarity is None else compound, 2 if polarity is None else int(polarity),
             _json(dict(sorted(hashtags.items()))), 0 if polarity is None else 1)
            for post_id, created, ms, text, lang, author, compound, polarity, hashtags in self.posts
        ]  # fmt: skip
        yield sql.INSERT_POST, sorted(posts, key=_first)
        yield sql.match_statement(self.matches)
        yield sql.UPSERT_WINDOW, sorted(self.windows, key=_first_two)
        yield sql.INSERT_LATE, sorted(self.late, key=_first_two)
        yield sql.UPSERT_REJECTED, sorted(self.rejected, key=_first)
        yield sql.UPSERT_QUERY, sorted(self.queries, key=_first)
        yield sql.UPSERT_ALERT, sorted(self.alerts, key=_alert_key)
        # Last: a cursor is committed with, never before, the rows it covers.
        last = {source: (position, stamp) for source, position, stamp in self.cursors}
        yield (
            sql.UPSERT_CURSOR,
            [
                (source, position, stamp)
                for source, (position, stamp) in sorted(last.items())
                if position is not None
            ],
        )
        yield (
            sql.DELETE_CURSOR,
            [(source,) for source, (position, _) in sorted(last.items()) if position is None],
        )


def _shown(query: Query) -> str:
    """The query's spelling; its key itself when they are equal, which a pickle then
    sends once (most queries are spelled as their key)."""
    shown, key = query.shown, query.key
    return key if shown == key else shown


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
