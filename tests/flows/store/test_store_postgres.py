"""The senti store on a real PostgreSQL server, and the same behaviour on both backends.

A session fixture starts a throwaway cluster (:mod:`pg`); every test gets a new,
empty database. Without PostgreSQL's binaries or psycopg the server tests skip.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.dataflow import Dataflow

from flows.alerts import Alert
from flows.model import ALL_POSTS, Polarity
from flows.sinks.store_sink import StoreSink, check_store_url
from flows.store import (
    SCHEMA_VERSION,
    PostgresStore,
    Store,
    StoreCounts,
    StoreError,
    StoreItem,
    StoreURL,
    TrackedQuery,
    check_store,
    open_store,
    parse_store_url,
)
from tests.flows.sinks.test_store_sink import records, store_flow
from tests.flows.store.test_store import batches, sample_batch, ticking_clock
from tests.helpers import pg
from tests.helpers.factories import T0, at, make_match, make_subscription, make_window

EntryPoint = Callable[[Dataflow], None]
TABLES = ("meta", "posts", "matches", "windows", "late_posts", "rejected", "queries")
CLOCKED = {"rejected": slice(1, 4), "queries": slice(2, 4)}
"""Tables with columns of the writer's wall clock, and where they are in a row."""


@pytest.fixture(scope="session")
def cluster() -> Iterator[pg.Cluster]:
    """A PostgreSQL cluster for the whole session, stopped and deleted at the end."""
    reason = pg.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    started = pg.start_cluster()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def pg_url(cluster: pg.Cluster) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A factory of URLs of new, empty stores on each backend in turn."""
    if request.param == "sqlite":
        names = itertools.count()
        return lambda: f"sqlite:///{tmp_path / f'senti{next(names)}.db'}"
    cluster: pg.Cluster = request.getfixturevalue("cluster")
    return cluster.create_database


@pytest.fixture
def url(new_url: Callable[[], str]) -> str:
    """The URL of one new store, on each backend in turn."""
    return new_url()


def dump(url: str, *, clocked: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted; without wall-clock columns unless ``clocked``."""
    with open_store(url, readonly=True) as store:
        tables = {table: store.select(f"SELECT * FROM {table}") for table in TABLES}
    if not clocked:
        for table, clock in CLOCKED.items():
            tables[table] = [row[: clock.start] + row[clock.stop :] for row in tables[table]]
    return {table: sorted(rows) for table, rows in tables.items()}


# URLs (no server needed)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://senti:s3cret@db:5432/senti", "postgresql://senti:***@db:5432/senti"),
        ("postgres://senti:s3cret@db/senti", "postgresql://senti:***@db/senti"),
        ("PostgreSQL://db/senti?sslmode=require", "postgresql://db/senti?sslmode=require"),
        ("postgresql://u@db/senti?password=s3cret&x=1", "postgresql://u@db/senti?password=***&x=1"),
        ("postgresql://u:p%40ss@h1:1,h2:2/senti", "postgresql://u:***@h1:1,h2:2/senti"),
        ("postgresql:///senti?host=/run/postgresql", "postgresql:///senti?host=/run/postgresql"),
    ],
)
def test_parse_postgres_url(given: str, shown: str) -> None:
    """postgresql:// and postgres:// URLs parse to one scheme and print without the password."""
    location = parse_store_url(given)
    assert location.scheme == "postgresql"
    assert location.path is None
    assert location.database == "senti"
    assert str(location) == shown
    assert "s3cret" not in repr(location)
    assert parse_store_url(str(location)).database == "senti"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("postgresql://senti:s3cret@db:5432", "names no database"),
        ("postgresql://senti:s3cret@db:5432/", "names no database"),
        ("postgresql://senti:s3cret@db:port/senti", "bad port"),
        ("postgres:senti", "malformed PostgreSQL URL"),
    ],
)
def test_parse_postgres_url_rejects(given: str, message: str) -> None:
    """A PostgreSQL URL without a database or with a bad port is refused, password redacted."""
    with pytest.raises(StoreError, match=message) as caught:
        parse_store_url(given)
    assert "s3cret" not in str(caught.value)


def test_password_property() -> None:
    """StoreURL.password reads the password of the user info or of the query, decoded."""
    assert parse_store_url("postgresql://u:p%40ss@db/s").password == "p@ss"  # noqa: S105
    assert parse_store_url("postgresql://u@db/s?password=x%26y").password == "x&y"  # noqa: S105
    assert parse_store_url("postgresql://u@db/s").password is None
    assert StoreURL("sqlite", Path("a.db")).password is None


def test_connection_refused_names_the_cause() -> None:
    """Nothing listening: StoreError says 'connection refused' and never shows the password."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://senti:s3cret@127.0.0.1:{port}/senti"
    for attempt in (lambda: open_store(url), lambda: check_store(url)):
        with pytest.raises(StoreError, match="connection refused") as caught:
            attempt()
        assert "s3cret" not in str(caught.value)
        assert "postgresql://senti:***@127.0.0.1" in str(caught.value)


# Connecting to a real server


def test_wrong_password(cluster: pg.Cluster, pg_url: str) -> None:
    """A wrong password fails with 'authentication failed', without echoing it."""
    wrong = pg_url.replace(cluster.password, "not-the-password")
    with pytest.raises(StoreError, match="authentication failed") as caught:
        open_store(wrong)
    assert "not-the-password" not in str(caught.value)
    assert cluster.password not in str(caught.value)


def test_missing_database(cluster: pg.Cluster) -> None:
    """A database that does not exist is named, and not created."""
    with pytest.raises(StoreError, match="database 'nowhere' does not exist") as caught:
        open_store(cluster.url("nowhere"))
    assert cluster.password not in str(caught.value)


def test_writer_creates_schema(pg_url: str) -> None:
    """A writer creates every table, the indexes and the meta rows, with 64-bit times."""
    open_store(pg_url).close()
    with open_store(pg_url, readonly=True) as store:
        tables = {name for (name,) in store.select("SELECT tablename FROM pg_tables")}
        indexes = {name for (name,) in store.select("SELECT indexname FROM pg_indexes")}
        meta = dict(store.select("SELECT key, value FROM meta"))
        types = dict(
            store.select(
                "SELECT table_name || '.' || column_name, data_type"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
            )
        )
    assert set(TABLES) <= tables
    assert "posts_by_time" in indexes
    assert meta == {"app": "senti", "schema_version": str(SCHEMA_VERSION)}
    assert types["posts.created_at_ms"] == types["windows.start_ms"] == "bigint"
    assert types["posts.compound"] == "double precision"
    assert types["posts.hashtags"] == "text"


def test_readonly_needs_a_senti_store(pg_url: str) -> None:
    """A reader refuses an empty database and does not create the schema."""
    with pytest.raises(StoreError, match="no meta table"):
        open_store(pg_url, readonly=True)
    assert check_store(pg_url) == parse_store_url(pg_url)  # still empty: a writer may fill it
    with pytest.raises(StoreError, match="no meta table"):
        open_store(pg_url, readonly=True)


@pytest.mark.parametrize("readonly", [False, True])
def test_foreign_database_refused(pg_url: str, readonly: bool) -> None:
    """A database holding another application's tables is refused by readers and writers."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE things (id INTEGER)")
    with pytest.raises(StoreError, match="not a senti store"):
        open_store(pg_url, readonly=readonly)
    with pytest.raises(StoreError, match="not a senti store"):
        check_store_url(pg_url)


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_refused(pg_url: str, readonly: bool) -> None:
    """A store written by a newer senti is refused."""
    import psycopg

    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        open_store(pg_url, readonly=readonly)


def test_readonly_session_refuses_sql_writes(pg_url: str) -> None:
    """A reader's session is read-only: even raw SQL through select cannot change the store."""
    with open_store(pg_url) as writer:
        writer.write(sample_batch())
    with open_store(pg_url, readonly=True) as reader:
        assert isinstance(reader, PostgresStore)
        with pytest.raises(StoreError, match="read-only transaction"):
            reader.select("DELETE FROM posts")
        assert reader.counts().posts == 2
        assert "***" in repr(reader)


def test_sink_writes_to_postgres(pg_url: str, entry_point: EntryPoint) -> None:
    """A dataflow writes every record through StoreSink, and a replay duplicates nothing."""
    expected = StoreCounts(posts=40, matches=80, windows=4, late=1, rejected=1)
    StoreSink.check(pg_url)
    entry_point(store_flow(records(), pg_url))
    with open_store(pg_url, readonly=True) as store:
        assert store.counts() == expected
        assert [q.key for q in store.queries()] == ["#ai", "python"]
        assert len(store.recent_matches("#ai", limit=1000)) == 40
        assert store.windows("python")[0].posts == 99
    entry_point(store_flow(records(), pg_url))  # a replay after a resume
    with open_store(pg_url, readonly=True) as store:
        assert store.counts() == expected


def test_flow_results_equal_sqlite(tmp_path: Path, pg_url: str) -> None:
    """The same replay through StoreSink leaves the same rows in SQLite and in PostgreSQL."""
    from bytewax.testing import run_main

    sqlite_url = f"sqlite:///{tmp_path / 'senti.db'}"
    items = records() + sample_batch()
    for target in (sqlite_url, pg_url):
        run_main(store_flow(items, target))
        run_main(store_flow(items[::2], target))  # a partial replay
    assert dump(pg_url, clocked=False) == dump(sqlite_url, clocked=False)


# The same behaviour on both backends


def test_write_counts_and_reads(url: str) -> None:
    """Counts, queries, windows and recent matches read back what was written."""
    with open_store(url, clock=lambda: T0) as store:
        store.write(sample_batch())
        assert store.counts() == StoreCounts(posts=2, matches=3, windows=2, late=1, rejected=1)
        assert store.queries() == [TrackedQuery("python", True, T0, T0, "python")]
        assert [row.posts for row in store.windows("*")] == [10]
        assert [(row.id, row.polarity) for row in store.recent_matches("ai")] == [
            ("1", Polarity.POSITIVE)
        ]


def test_write_twice_is_idempotent(url: str) -> None:
    """Writing the same batch again, or in overlapping batches, leaves every table unchanged."""
    items = sample_batch()
    with open_store(url, clock=lambda: T0) as store:
        store.write(items)
        before = dump(url)
        store.write(items)
        store.write(items[:5])
        store.write(items[3:])
    assert dump(url) == before


def test_window_rewrite_replaces(url: str) -> None:
    """A window written again replaces the earlier one; the last of one batch wins."""
    with open_store(url) as store:
        store.write([make_window("python", 0, posts=3, top_hashtags=(("a", 1),))])
        store.write(
            [
                make_window("python", 0, posts=4),
                make_window("python", 0, posts=5, positive=3, top_hashtags=(("b", 4),)),
            ]
        )
        (row,) = store.windows("python")
        assert (row.posts, row.positive, row.top_hashtags) == (5, 3, (("b", 4),))


def test_post_first_write_wins(url: str) -> None:
    """A post id already stored is not overwritten by a later write."""
    with open_store(url) as store:
        store.write([make_match("python", 1, "first")])
        store.write([make_match("ai", 1, "second")])
        texts = {row.text for q in ("python", "ai") for row in store.recent_matches(q)}
    assert texts == {"first"}


def test_readonly_store_cannot_write(url: str) -> None:
    """Writing through a reader raises StoreError and changes nothing."""
    open_store(url).close()
    with open_store(url, readonly=True) as reader:
        with pytest.raises(StoreError, match="read-only"):
            reader.write(sample_batch())
        assert reader.counts() == StoreCounts(0, 0, 0, 0, 0)


def test_failed_batch_rolls_back(url: str) -> None:
    """A batch the database rejects is written entirely or not at all."""
    bad = make_match("python", 2, polarity=7)  # type: ignore[arg-type]
    with open_store(url) as store:
        with pytest.raises(StoreError, match="write failed"):
            store.write([make_match("python", 1), bad])
        assert store.counts() == StoreCounts(0, 0, 0, 0, 0)
        store.write([make_match("python", 1)])
        assert store.counts().matches == 1


def test_closed_store(url: str) -> None:
    """A closed store raises StoreError; closing twice is fine."""
    store = open_store(url)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.counts()


def test_queries_track_changes(url: str) -> None:
    """Subscriptions upsert by key; last_changed moves only when active flips."""
    with open_store(url, clock=ticking_clock()) as store:
        store.write([make_subscription("python"), make_subscription("#ai")])  # T0
        store.write([make_subscription("python")])  # T0+1: unchanged
        store.write([make_subscription("python", active=False)])  # T0+2
        assert store.queries() == [
            TrackedQuery("#ai", True, first_seen=at(0), last_changed=at(0), spelling="#ai"),
            TrackedQuery("python", False, first_seen=at(0), last_changed=at(2), spelling="python"),
        ]


def test_recent_matches_and_windows(url: str) -> None:
    """recent_matches is newest first, limited and filtered; windows by start, from since."""
    with open_store(url) as store:
        store.write(
            [make_match("python", n, f"post {n}", created_at=n * 10.0) for n in range(1, 6)]
            + [make_match("python", "10", created_at=50.0)]  # same time: id order breaks ties
            + [make_window("python", s) for s in (120, 0, 60)]
        )
        assert [r.id for r in store.recent_matches("python")] == ["5", "10", "4", "3", "2", "1"]
        assert [r.id for r in store.recent_matches("python", limit=2)] == ["5", "10"]
        assert [r.id for r in store.recent_matches("python", since=at(40))] == ["5", "10", "4"]
        assert [w.start for w in store.windows("python", since=at(60))] == [at(60), at(120)]


def test_recent_matches_filters_the_dashboard_uses(url: str) -> None:
    """Until, a text search (literal % and _), scored posts only, every post once for "*",
    and the newest event time, alike on both backends."""
    with open_store(url) as store:
        assert store.latest() is None
        store.write(
            [
                make_match("python", 1, "50% off Python", created_at=10.0),
                make_match("python", 2, "snake_case PYTHON", created_at=20.0),
                make_match("python", 3, "ola python", created_at=30.0, polarity=None, lang="pt"),
                make_match("ai", 3, "ola python", created_at=30.0, polarity=None, lang="pt"),
                make_match("ai", 4, "ai only", created_at=40.0),
            ]
        )
        python = store.recent_matches("python", until=at(30))
        assert [(r.id, r.lang) for r in python] == [("2", "en"), ("1", "en")]
        assert [r.id for r in store.recent_matches("python", search="0% OFF")] == ["1"]
        assert [r.id for r in store.recent_matches("python", search="e_c")] == ["2"]
        assert [r.id for r in store.recent_matches("python", search="e%c")] == []
        unscored = store.recent_matches("python", since=at(30))
        assert [(r.id, r.compound, r.polarity, r.lang) for r in unscored] == [
            ("3", None, None, "pt")
        ]
        assert [r.id for r in store.recent_matches("python", scored_only=True)] == ["2", "1"]
        assert [r.id for r in store.recent_matches(ALL_POSTS)] == ["4", "3", "2", "1"]
        assert [r.id for r in store.recent_matches(ALL_POSTS, scored_only=True)] == ["4", "2", "1"]
        assert store.latest() == at(40)
        store.write([make_window("python", 120)])
        assert store.latest() == make_window("python", 120).end


def test_select_translates_placeholders(url: str) -> None:
    """select takes ? placeholders on both backends."""
    with open_store(url) as store:
        store.write([make_match("python", 1, "50% off"), make_match("python", 2, "other")])
        rows = store.select(
            "SELECT id FROM posts WHERE text LIKE ? AND created_at_ms >= ?", ("%off%", 0)
        )
    assert rows == [("1",)]


def test_writer_and_reader_concurrently(url: str) -> None:
    """A reader thread sees counts only grow and every batch entirely or not at all."""
    seen: list[StoreCounts] = []
    errors: list[BaseException] = []
    done = threading.Event()
    open_store(url).close()

    def read() -> None:
        try:
            with open_store(url, readonly=True) as reader:
                while not done.is_set():
                    seen.append(reader.counts())
                seen.append(reader.counts())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        with open_store(url) as writer:
            for batch in batches(60, 5):
                writer.write(batch)
                writer.write(batch[:2])
    finally:
        done.set()
        thread.join(timeout=60)
    assert errors == []
    assert seen[-1] == StoreCounts(300, 300, 60, 0, 0)
    for earlier, later in itertools.pairwise(seen):
        assert earlier.posts <= later.posts
    assert all(c.posts == c.matches == c.windows * 5 for c in seen)


def test_writers_in_threads_overlapping(url: str) -> None:
    """Concurrent writers of overlapping batches wait for each other: no deadlock, no loss."""
    errors: list[BaseException] = []
    open_store(url).close()

    def work(first: int, step: int) -> None:
        try:
            with open_store(url) as store:
                chunks = list(batches(40, 5, first=first))
                for batch in chunks[::step]:
                    store.write(batch[::-1] if step < 0 else batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=args) for args in ((0, 1), (0, -1), (20, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with open_store(url, readonly=True) as store:
        assert store.counts() == StoreCounts(300, 300, 60, 0, 0)


def test_writers_create_the_store_at_once(new_url: Callable[[], str]) -> None:
    """Several writers opening a new store at the same moment all succeed with one schema."""
    url = new_url()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(number: int) -> None:
        try:
            barrier.wait()
            with open_store(url) as store:
                store.write([make_match("python", number)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with open_store(url, readonly=True) as store:
        assert store.counts().matches == 4


def test_replay_parity(tmp_path: Path, cluster: pg.Cluster) -> None:
    """Any replay of the same items leaves identical rows, clock columns included, on both."""
    urls = [f"sqlite:///{tmp_path / 'senti.db'}", cluster.create_database()]
    items: list[StoreItem] = [*sample_batch(), *records(12)]
    for target in urls:
        with open_store(target, clock=lambda: T0) as store:
            for size in (len(items), 5, 3, 7):
                for start in range(0, len(items), size):
                    store.write(items[start : start + size])
    assert dump(urls[1]) == dump(urls[0])


def test_dashboard_reads_postgres(pg_url: str, tmp_path: Path) -> None:
    """The dashboard's own SQL gives the same answers on PostgreSQL as on SQLite."""
    from dashboard import data

    sqlite_url = f"sqlite:///{tmp_path / 'senti.db'}"
    items: list[StoreItem] = [
        make_match("python", 1, "Hello World", created_at=10),
        make_match("python", 2, "50% off_sale", created_at=20),
        make_window("python", 0),
    ]
    for target in (sqlite_url, pg_url):
        with open_store(target) as store:
            store.write(items)

    def answers(target: str) -> list[Any]:
        return [
            data.latest_ms(target),
            data.load_matches(target, "python", search="hello")["id"].tolist(),
            data.load_matches(target, "python", search="0% off_")["id"].tolist(),
            data.load_compounds(target, "*")["id"].tolist(),
            data.store_counts(target),
        ]

    assert answers(pg_url) == answers(sqlite_url)
    assert answers(pg_url)[1:3] == [["1"], ["2"]]


# Schema 2 -> 3 -> 4


def _execute(url: str, statements: list[str]) -> None:
    """Run raw SQL on the store at ``url`` (``{real}``/``{int}`` are the backend's types)."""
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            for statement in statements:
                conn.execute(statement.format(real="REAL", int="INTEGER"))
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg_conn:
            for statement in statements:
                pg_conn.execute(statement.format(real="DOUBLE PRECISION", int="BIGINT"))  # type: ignore[arg-type]


def _downgrade_to_schema_4(url: str) -> None:
    """Take schema 5's alerts table and spelling of queries out of a fresh store; version 4."""
    _execute(
        url,
        [
            "ALTER TABLE queries DROP COLUMN spelling",
            "DROP TABLE alerts",
            "UPDATE meta SET value = '4' WHERE key = 'schema_version'",
        ],
    )


def _downgrade_to_schema_3(url: str) -> None:
    """Take schema 4's columns out of a fresh store and set its version to 3, as senti left
    it before it knew languages."""
    _downgrade_to_schema_4(url)
    _execute(
        url,
        [
            "ALTER TABLE posts DROP COLUMN scored",
            "ALTER TABLE windows DROP COLUMN unscored",
            "ALTER TABLE windows DROP COLUMN langs",
            "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
        ],
    )


def _downgrade_to_schema_2(url: str) -> None:
    """Give a fresh store schema 2's matches columns and version, as senti 2 left it."""
    _downgrade_to_schema_3(url)
    _execute(
        url,
        [
            "ALTER TABLE matches ADD COLUMN polarity INTEGER NOT NULL DEFAULT 2"
            " CHECK (polarity IN (0, 1, 2))",
            "ALTER TABLE matches ADD COLUMN compound {real} NOT NULL DEFAULT 0",
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
        ],
    )


def _version(reader: Store) -> list[tuple[Any, ...]]:
    return reader.select("SELECT value FROM meta WHERE key = 'schema_version'")


def test_the_first_spelling_of_a_query_is_kept(url: str) -> None:
    """A query keeps the first spelling written for its key; later spellings of the same
    key, and stopping it, leave it as it was."""
    with open_store(url, clock=ticking_clock()) as store:
        store.write([make_subscription("Climate  Change")])
        store.write([make_subscription("change CLIMATE"), make_subscription("python, #GPT4")])
        store.write([make_subscription("climate change", active=False)])
        shown = {query.key: (query.spelling, query.shown) for query in store.queries()}
    assert shown == {
        "change climate": ("Climate Change", "Climate Change"),
        "#gpt4,python": ("python, #GPT4", "python, #GPT4"),
    }


def test_a_writer_upgrades_a_schema_4_store_with_spellings(url: str) -> None:
    """A schema 4 store reads its queries with no spelling (shown as the key); the first
    writer adds ``queries.spelling``, fills it for a query it sees again, and keeps rows."""
    with open_store(url) as store:
        store.write([make_subscription("Python"), make_subscription("Rust Lang")])
    _downgrade_to_schema_4(url)
    with open_store(url, readonly=True) as reader:
        assert reader.schema_version == 4
        assert [(q.key, q.spelling, q.shown) for q in reader.queries()] == [
            ("lang rust", None, "lang rust"),
            ("python", None, "python"),
        ]
    with open_store(url) as writer:
        writer.write([make_subscription("PYTHON")])
    with open_store(url, readonly=True) as reader:
        assert _version(reader) == [(str(SCHEMA_VERSION),)]
        assert [(q.key, q.spelling, q.active) for q in reader.queries()] == [
            ("lang rust", None, True),
            ("python", "PYTHON", True),
        ]


def test_a_writer_upgrades_a_schema_2_store(url: str) -> None:
    """A schema 2 store stays readable; the first writer drops the copied scores from
    ``matches`` (schema 3) and adds the columns of schema 4, keeping every row, and the
    scores still come from ``posts``."""
    with open_store(url) as store:
        store.write([make_match("python", n, compound=0.5 * (n - 1)) for n in range(3)])
    _downgrade_to_schema_2(url)
    with open_store(url, readonly=True) as reader:
        before = reader.recent_matches("python")
        assert _version(reader) == [("2",)]
    assert [row.compound for row in before] == [0.5, 0.0, -0.5]
    with open_store(url) as writer:
        writer.write([make_match("python", 3)])
    with open_store(url, readonly=True) as reader:
        assert _version(reader) == [(str(SCHEMA_VERSION),)]
        assert reader.recent_matches("python")[1:] == before
        columns = reader.select("SELECT * FROM matches WHERE post_id = ?", ("3",))
        assert [len(row) for row in columns] == [3]


def test_a_writer_upgrades_a_schema_3_store_additively(url: str) -> None:
    """A schema 3 store reads as every post scored, no window unscored, no languages; the
    first writer adds schema 4's columns with those defaults, keeping every row, and new
    rows carry unscored posts and languages."""
    with open_store(url) as store:
        store.write(
            [
                make_match("python", 1, compound=0.5, polarity=Polarity.POSITIVE),
                make_window("python", 0, posts=3),
            ]
        )
    _downgrade_to_schema_3(url)
    with open_store(url, readonly=True) as reader:
        assert _version(reader) == [("3",)]
        assert reader.schema_version == 3
        (window,) = reader.windows("python")
        assert (window.posts, window.unscored, window.langs) == (3, 0, ())
        assert [row.polarity for row in reader.recent_matches("python")] == [Polarity.POSITIVE]
        with open_store(url) as writer:
            writer.write(
                [
                    make_match("python", 2, polarity=None, lang="pt"),
                    make_window("python", 60, posts=4, unscored=1, langs=(("en", 3), ("pt", 1))),
                ]
            )
        assert reader.schema_version == SCHEMA_VERSION, "the reader sees the upgrade"
        assert [w.langs for w in reader.windows("python")] == [(), (("en", 3), ("pt", 1))]
        assert [r.polarity for r in reader.recent_matches("python")] == [None, Polarity.POSITIVE]
    with open_store(url, readonly=True) as reader:
        assert _version(reader) == [(str(SCHEMA_VERSION),)]
        rows = reader.select("SELECT id, scored FROM posts ORDER BY id")
        assert rows == [("1", 1), ("2", 0)]
        assert reader.select("SELECT unscored, langs FROM windows ORDER BY start_ms") == [
            (0, "{}"),
            (1, '{"en":3,"pt":1}'),
        ]


def test_unscored_posts_and_languages_round_trip(url: str) -> None:
    """An unscored post is stored as scored = 0 and read back with no compound or class;
    a window's unscored posts and languages are read back as written, in order."""
    window = make_window(
        ALL_POSTS, 0, posts=9, unscored=4, langs=(("en", 5), ("pt", 3), ("other", 1))
    )
    with open_store(url) as store:
        store.write(
            [
                make_match("python", 1, created_at=1, polarity=None, hashtags={"py": 1}, lang="ja"),
                make_match("python", 2, created_at=2, compound=0.3, polarity=Polarity.POSITIVE),
                window,
            ]
        )
        (row,) = store.windows(ALL_POSTS)
        assert row.summary() == window
        scored, unscored = store.recent_matches("python")  # newest first
        assert (unscored.id, unscored.compound, unscored.polarity) == ("1", None, None)
        assert (scored.id, scored.compound, scored.polarity) == ("2", 0.3, Polarity.POSITIVE)
        assert store.select("SELECT lang, scored, polarity, compound FROM posts ORDER BY id") == [
            ("ja", 0, 2, 0.0),
            ("en", 1, 0, 0.3),
        ]


# Schema 5: the alerts table


def _alert(query: str, minute: int, direction: str = "negative", z: float = 5.0) -> Alert:
    start = T0 + timedelta(minutes=minute)
    return Alert(
        query=query,
        start=start,
        end=start + timedelta(seconds=10),
        direction="negative" if direction == "negative" else "positive",
        share=0.8,
        baseline=0.33,
        z=z,
        count=40,
        scored=50,
        label="Climate Change" if query == "change climate" else None,
    )


def test_alerts_round_trip_and_filter(url: str) -> None:
    """Written alerts read back equal, by start time, filtered by query and time range."""
    alerts = [_alert("change climate", 1), _alert("python", 2, "positive"), _alert("python", 5)]
    with open_store(url) as store:
        store.write(alerts)
        assert store.alerts() == alerts
        assert store.alerts("python") == alerts[1:]
        assert store.alerts(since=T0 + timedelta(minutes=2)) == alerts[1:]
        assert store.alerts(until=T0 + timedelta(minutes=2)) == alerts[:1]
        assert store.alerts("python", since=T0, until=T0 + timedelta(minutes=5)) == alerts[1:2]
        assert store.alerts("nothing") == []
    with open_store(url, readonly=True) as reader:
        assert reader.alerts()[0].label == "Climate Change"
        assert reader.alerts() == alerts


def test_an_alert_written_twice_is_stored_once(url: str) -> None:
    """Writing the same alert again (a replayed batch) replaces it: one row, the newest values."""
    with open_store(url) as store:
        store.write([_alert("python", 1, z=5.0)])
        store.write([_alert("python", 1, z=6.5), _alert("python", 1, "positive")])
        found = store.alerts("python")
        assert [(a.direction, a.z) for a in found] == [("negative", 6.5), ("positive", 5.0)]


def test_a_writer_upgrades_a_schema_4_store(url: str) -> None:
    """A schema 4 store reads no alerts; the first writer adds the table and sets version 5."""
    with open_store(url) as store:
        store.write([_alert("python", 1)])
    _downgrade_to_schema_4(url)
    with open_store(url, readonly=True) as reader:
        assert reader.schema_version == 4
        assert reader.alerts() == []
    with open_store(url) as writer:
        assert writer.schema_version == SCHEMA_VERSION == 5
        writer.write([_alert("python", 2)])
        assert [a.start for a in writer.alerts()] == [T0 + timedelta(minutes=2)]
