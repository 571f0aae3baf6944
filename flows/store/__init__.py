"""The senti store: where the flow's output lands and the dashboard reads it.

The flow writes through :meth:`Store.write` (one writer connection per bytewax
worker, see :mod:`flows.sinks.store_sink`) while other processes read through the
query methods. :func:`open_store` picks the backend from a URL:

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (the
  SQLAlchemy spelling: three slashes, then the path);
* a plain file path such as ``data/senti.db``;
* ``postgresql://user:password@host:port/database`` (or ``postgres://``), any
  libpq connection URI that names a database; query parameters such as
  ``?sslmode=require`` pass through to libpq. This backend needs the
  ``psycopg`` package.

Anything that starts with a scheme (``name:``, two letters or more) is read as
a URL, so a file whose first path component holds a colon is spelled
``./odd:name.db``. A password in a PostgreSQL URL never appears in
``str(StoreURL)``, ``repr`` or :class:`StoreError` messages: it is shown as ``***``.

Both backends share the item-to-row code and the statements; each has one SQL
dialect table (:class:`_SQL` for SQLite, :class:`_PostgresSQL`) that differs
only in column types, the catalogue query and placeholders (``?`` / ``%s``).

Concurrency
-----------
A SQLite store runs in WAL mode with ``synchronous=NORMAL`` and a 10 s busy
timeout: readers never block the writers or each other, and writers queue for
the single write lock instead of failing with "database is locked". Every
:meth:`Store.write` call is one ``BEGIN IMMEDIATE`` transaction, so a reader sees
a batch entirely or not at all.

A PostgreSQL store runs every :meth:`Store.write` in one transaction (READ
COMMITTED) and every read in one statement, so a reader also sees a batch
entirely or not at all. Rows are written in primary-key order, table by table,
so concurrent writers of overlapping batches wait for each other instead of
deadlocking. A reader's session is ``default_transaction_read_only``, so even
raw SQL through :meth:`Store.select` cannot change the store.

Idempotency
-----------
Bytewax delivers at least once: after a resume some items are written again.
Each table has a natural key and a write never duplicates a row:

========== ======================== ===========================================
table      key                      on a second write
========== ======================== ===========================================
posts      id                       kept (first write wins)
matches    (query, time, post_id)   kept (a post has one time: one row per query)
windows    (query, start_ms)        replaced (a recount is the newer truth)
late_posts (query, post_id)         kept
rejected   origin                   reason and raw updated, ``seen_at`` kept
queries    key                      ``active`` updated; ``last_changed`` only
                                    when ``active`` actually changes;
                                    ``spelling`` kept (the first one seen)
source_    source                   ``position`` replaced (the newer is where
cursors                             the next run resumes); deleted when forgotten
========== ======================== ===========================================

Schema (version 5)
------------------
The same tables on both backends. SQLite's ``INTEGER`` and ``REAL`` are
PostgreSQL's ``BIGINT`` and ``DOUBLE PRECISION`` (``INTEGER`` for the 0/1/2
flags); JSON is kept as ``TEXT`` on both, byte for byte the same.

Times are stored twice where they are queried: ISO 8601 text in UTC
(``2024-05-01T12:00:00.000Z``) to read, and integer milliseconds since the Unix
epoch (``*_ms``) to compare and index. JSON columns hold compact UTF-8 JSON.

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``app = 'senti'`` marks a senti store; ``schema_version`` is an integer.
``posts(id, created_at, created_at_ms, text, lang, author, compound, polarity, hashtags, scored)``
    One row per analysed post that matched at least one query. ``lang`` is the
    language the post declares, as the source gave it (``NULL`` when none).
    ``scored`` is 1 for a scored post and 0 for an *unscored* one, whose
    language senti does not score (:mod:`flows.analysis.languages`): ``compound`` and
    ``polarity`` mean something only where ``scored = 1`` (they are ``NOT
    NULL`` from older schemas, and an unscored post has 0 and 2 there). ``polarity`` is
    :class:`~flows.model.Polarity` (0 positive, 1 negative, 2 neutral);
    ``hashtags`` is a JSON object of case-folded tag to count.
    Index ``posts_by_time(created_at_ms)``.
``matches(query, post_id, created_at_ms)``
    Which query a post was delivered to; primary key
    ``(query, created_at_ms, post_id)``, which is also the per-query time order
    the dashboard reads (SQLite stores it ``WITHOUT ROWID``: the row is its key,
    one B-tree per match row instead of three). ``created_at_ms`` is copied from
    the post for that order; scores are read from ``posts``. A match row is the
    store's most frequent write (one per query a post matches), so it holds
    nothing else (docs/benchmarks.md has the writer's figures).
``windows(query, start_ms, end_ms, posts, positive, negative, neutral, retweets, ...)``
    Then ``top_hashtags``, ``unscored`` and ``langs``. One tumbling window per
    query (``'*'`` for all posts); primary key ``(query, start_ms)``, which is
    also the dashboard's lookup order.
    ``posts = positive + negative + neutral + unscored``. ``top_hashtags`` is a
    JSON list of ``[tag, count]`` pairs; ``langs`` a JSON object of language
    key to posts, most frequent first, ``other`` last (``{}`` in windows
    written before schema 4, which did not count languages).
``late_posts(query, post_id, window_start_ms)``
    Posts that arrived after their window closed; primary key ``(query, post_id)``.
``rejected(origin, reason, raw, seen_at)``
    Input lines that were not usable posts; primary key ``origin``.
    ``seen_at`` is the writer's clock (ISO text) at the first write.
``queries(key, active, first_seen, last_changed, spelling)``
    Tracked queries by canonical key; ``active`` is 0 or 1; times are the
    writer's clock (ISO text); ``spelling`` is the first text seen for the key
    (what the user typed, schema 5; ``NULL`` on older rows).
``source_cursors(source, position, updated_at)``
    Where each resumable source partition resumes (:mod:`flows.runtime.cursors`):
    ``bluesky:<Jetstream URL>`` with the ``time_us`` of the last post read,
    ``replay:<path>`` with the byte offset of the next line. Written in the
    same transaction as the posts it covers, or after them. An addition to
    schema 3 that older versions of senti ignore: every writer creates it if
    it is missing, and a reader of a store without it sees no cursors.

Schema 4 added ``posts.scored``, ``windows.unscored`` and ``windows.langs``
(with defaults that describe older rows: scored, none unscored, languages not
counted); a writer adds them to a version 2 or 3 store when it opens it.

``alerts(query, start_ms, end_ms, direction, share, baseline, z, count, scored, label)``
    Sentiment-shift alerts (:mod:`flows.alerts`, docs/alerts.md): the window
    of ``query`` whose ``direction`` share (``negative`` or ``positive``) rose
    to ``share`` over its ``baseline``, with its ``z``, the posts of that
    polarity (``count``) and the scored posts of the window; ``label`` is what
    the user typed, when known (``NULL`` otherwise). Primary key ``(query,
    start_ms, direction)``: an alert written again replaces itself. Schema 5
    added it; a writer creates it in an older store, a reader of one sees no
    alerts.

``posts.id`` is referenced by ``matches.post_id`` and ``late_posts.post_id``,
but the reference is not enforced: several workers write concurrently and a
late-post record can land before the match that carries its post.
"""

from __future__ import annotations

from flows.store.base import Store
from flows.store.open import check_store, open_store
from flows.store.postgres import PostgresStore
from flows.store.records import (
    BUSY_TIMEOUT,
    MatchRow,
    StoreCounts,
    StoreItem,
    TrackedQuery,
    WindowRow,
)
from flows.store.rows import Rows
from flows.store.schema import READABLE_VERSIONS, SCHEMA_VERSION
from flows.store.sqlite import SQLiteStore
from flows.store.url import SUPPORTED_URLS, StoreError, StoreURL, parse_store_url

__all__ = [
    "BUSY_TIMEOUT",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "SUPPORTED_URLS",
    "MatchRow",
    "PostgresStore",
    "Rows",
    "SQLiteStore",
    "Store",
    "StoreCounts",
    "StoreError",
    "StoreItem",
    "StoreURL",
    "TrackedQuery",
    "WindowRow",
    "check_store",
    "open_store",
    "parse_store_url",
]
