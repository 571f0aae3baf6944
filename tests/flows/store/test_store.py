"""The senti store on real SQLite files: URLs, schema, idempotent writes, reads, concurrency."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import Polarity, PostMatches
from flows.runtime.cursors import SourceCursor
from flows.store import (
    SCHEMA_VERSION,
    MatchRow,
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
from tests.helpers.factories import (
    T0,
    at,
    make_late,
    make_match,
    make_rejected,
    make_scored,
    make_subscription,
    make_window,
)

REPO = Path(__file__).resolve().parents[3]
TABLES = ("meta", "posts", "matches", "windows", "late_posts", "rejected", "queries")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A path for a store that does not exist yet."""
    return tmp_path / "senti.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    """A writer store on a fresh file."""
    with open_store(str(db)) as opened:
        yield opened


def ticking_clock(start: datetime = T0) -> Callable[[], datetime]:
    """A clock that advances one second per call, starting at ``start``."""
    ticks = iter(range(1_000_000))
    return lambda: start + timedelta(seconds=next(ticks))


def sample_batch() -> list[StoreItem]:
    """One of each item type, with a post matched by two queries."""
    return [
        make_match(
            "python",
            1,
            "I love #python",
            hashtags={"python": 1},
            compound=0.6,
            polarity=Polarity.POSITIVE,
        ),
        make_match(
            "ai",
            1,
            "I love #python",
            hashtags={"python": 1},
            compound=0.6,
            polarity=Polarity.POSITIVE,
        ),
        make_match("python", 2, "meh", created_at=30),
        make_window("python", 0),
        make_window("*", 0, posts=10, retweets=4),
        make_late("python", 3, 0),
        make_rejected("test:9"),
        make_subscription("python"),
    ]


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES
        }
    finally:
        conn.close()


# URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///senti.db", StoreURL("sqlite", Path("senti.db"))),
        ("sqlite:///data/senti.db", StoreURL("sqlite", Path("data/senti.db"))),
        ("sqlite:////var/lib/senti.db", StoreURL("sqlite", Path("/var/lib/senti.db"))),
        ("SQLite:///senti.db", StoreURL("sqlite", Path("senti.db"))),
        ("senti.db", StoreURL("sqlite", Path("senti.db"))),
        ("data/senti.db", StoreURL("sqlite", Path("data/senti.db"))),
        ("/var/lib/senti.db", StoreURL("sqlite", Path("/var/lib/senti.db"))),
        ("./odd:name.db", StoreURL("sqlite", Path("odd:name.db"))),
    ],
)
def test_parse_store_url_accepts(url: str, expected: StoreURL) -> None:
    """SQLAlchemy-style sqlite URLs and plain paths parse to a SQLite file path."""
    assert parse_store_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty store URL"),
        ("   ", "empty store URL"),
        ("mssql://user@host/senti", "unsupported store URL scheme 'mssql'"),
        ("redis://host/senti", "unsupported store URL scheme 'redis'"),
        ("mysql://host/senti", "unsupported store URL scheme 'mysql'"),
        ("http://example.com/senti.db", "unsupported store URL scheme 'http'"),
        ("sqlite://", "malformed SQLite URL"),
        ("sqlite:senti.db", "malformed SQLite URL"),
        ("sqlite://host/senti.db", "malformed SQLite URL"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///:memory:", "names no database file"),
        ("sqlite:///senti.db?mode=ro", "names no database file"),
    ],
)
def test_parse_store_url_rejects(url: str, message: str) -> None:
    """Empty, unsupported and path-less URLs raise StoreError naming the supported forms."""
    with pytest.raises(StoreError, match=message) as caught:
        parse_store_url(url)
    assert "sqlite:///relative/path.db" in str(caught.value)


def test_store_url_str_round_trips() -> None:
    """A parsed URL prints as a sqlite URL that parses back to itself."""
    for url in ("sqlite:///rel/senti.db", "sqlite:////abs/senti.db"):
        assert str(parse_store_url(url)) == url
        assert parse_store_url(str(parse_store_url(url))) == parse_store_url(url)


# Opening and schema


def conn_sql(db: Path, query: str) -> str:
    """The first column of the first row of ``query`` on ``db``."""
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute(query).fetchone()[0])
    finally:
        conn.close()


def test_writer_creates_schema(db: Path) -> None:
    """A writer creates the file, every table, the indexes, WAL mode and the meta rows."""
    open_store(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert set(TABLES) <= names
    assert "posts_by_time" in names
    assert meta == {"app": "senti", "schema_version": str(SCHEMA_VERSION)}
    assert mode == "wal"
    without_rowid = conn_sql(db, "SELECT sql FROM sqlite_master WHERE name = 'matches'")
    assert "WITHOUT ROWID" in without_rowid


def test_writer_reopens_existing_store(db: Path) -> None:
    """Opening an existing store again keeps its rows."""
    with open_store(str(db)) as store:
        store.write(sample_batch())
    with open_store(str(db)) as store:
        assert store.counts() == StoreCounts(posts=2, matches=3, windows=2, late=1, rejected=1)


def test_writer_initialises_an_empty_file(db: Path) -> None:
    """A zero-byte file is an empty database that a writer turns into a store."""
    db.touch()
    with open_store(str(db)) as store:
        assert store.counts() == StoreCounts(0, 0, 0, 0, 0)


def test_writer_needs_the_directory(tmp_path: Path) -> None:
    """A writer does not create a missing parent directory."""
    with pytest.raises(StoreError, match=r"directory .* does not exist"):
        open_store(str(tmp_path / "missing" / "senti.db"))
    assert not (tmp_path / "missing").exists()


def test_writer_refuses_a_directory(tmp_path: Path) -> None:
    """A path naming a directory is not a store."""
    with pytest.raises(StoreError, match="is a directory"):
        open_store(str(tmp_path))


def test_readonly_missing_file(db: Path) -> None:
    """A reader does not create a missing store."""
    with pytest.raises(StoreError, match="no such file"):
        open_store(str(db), readonly=True)
    assert not db.exists()


@pytest.mark.parametrize("content", [b"", b"hello, not a database\n" * 100], ids=["empty", "text"])
def test_readonly_non_database(db: Path, content: bytes) -> None:
    """A reader refuses an empty file and a file that is not SQLite at all."""
    db.write_bytes(content)
    with pytest.raises(StoreError, match="not a senti store"):
        open_store(str(db), readonly=True)


def test_writer_refuses_non_database(db: Path) -> None:
    """A writer refuses to overwrite a file that is not SQLite."""
    db.write_bytes(b"hello, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a senti store"):
        open_store(str(db))


@pytest.mark.parametrize("readonly", [False, True])
def test_foreign_sqlite_database(db: Path, readonly: bool) -> None:
    """A SQLite database of another application is refused by readers and writers."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE things (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a senti store"):
        open_store(str(db), readonly=readonly)


@pytest.mark.parametrize("readonly", [False, True])
def test_foreign_meta_table(db: Path, readonly: bool) -> None:
    """A database with a meta table that does not say senti is refused."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('app', 'other')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"meta\.app is 'other'"):
        open_store(str(db), readonly=readonly)


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_refused(db: Path, readonly: bool) -> None:
    """A store written by a newer senti (higher schema version) is refused."""
    open_store(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        open_store(str(db), readonly=readonly)


def test_readonly_store_cannot_write(store: Store, db: Path) -> None:
    """Writing through a reader raises StoreError and changes nothing."""
    with open_store(str(db), readonly=True) as reader, pytest.raises(StoreError, match="read-only"):
        reader.write(sample_batch())
    assert store.counts() == StoreCounts(0, 0, 0, 0, 0)


def test_closed_store(db: Path) -> None:
    """A closed store raises StoreError; closing twice is fine."""
    store = open_store(str(db))
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.counts()


def test_check_store(tmp_path: Path, db: Path) -> None:
    """check_store accepts a new or valid store and refuses what a writer would refuse."""
    assert check_store(str(db)) == StoreURL("sqlite", db)
    assert not db.exists()
    open_store(str(db)).close()
    assert check_store(f"sqlite:///{db}").path == db
    with pytest.raises(StoreError, match="does not exist"):
        check_store(str(tmp_path / "missing" / "senti.db"))
    with pytest.raises(StoreError, match="unsupported"):
        check_store("mysql://host/senti")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="not a senti store"):
        check_store(str(junk))


# Writing


def test_write_counts(store: Store) -> None:
    """A post matched by two queries is one post and two matches."""
    store.write(sample_batch())
    assert store.counts() == StoreCounts(posts=2, matches=3, windows=2, late=1, rejected=1)


def test_write_twice_is_idempotent(store: Store, db: Path) -> None:
    """Writing the same batch again leaves every table unchanged."""
    store.write(sample_batch())
    before = dump(db)
    store.write(sample_batch())
    assert dump(db) == before


def test_overlapping_batches_are_idempotent(tmp_path: Path) -> None:
    """Writing items in overlapping batches gives the same rows as writing them once."""
    items = sample_batch()
    once, overlapping = tmp_path / "once.db", tmp_path / "overlap.db"
    with open_store(str(once), clock=lambda: T0) as store:
        store.write(items)
    with open_store(str(overlapping), clock=lambda: T0) as store:
        store.write(items[:5])
        store.write(items[3:])
        store.write(items[1:7])
    assert dump(overlapping) == dump(once)


def test_empty_write(store: Store) -> None:
    """Writing no items is a no-op."""
    store.write([])
    store.write(iter(()))
    assert store.counts() == StoreCounts(0, 0, 0, 0, 0)


def test_unknown_item_type(store: Store) -> None:
    """An item of another type raises TypeError and nothing of the batch is written."""
    batch: list[Any] = [make_match("python", 1), object()]
    with pytest.raises(TypeError, match="cannot store a object"):
        store.write(batch)
    assert store.counts() == StoreCounts(0, 0, 0, 0, 0)


def test_failed_batch_rolls_back(store: Store) -> None:
    """A batch the database rejects is written entirely or not at all."""
    bad = make_match("python", 2, polarity=7)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="write failed"):
        store.write([make_match("python", 1), bad])
    assert store.counts() == StoreCounts(0, 0, 0, 0, 0)
    store.write([make_match("python", 1)])
    assert store.counts().matches == 1


def test_post_first_write_wins(store: Store) -> None:
    """A post id already stored is not overwritten by a later write."""
    store.write([make_match("python", 1, "first")])
    store.write([make_match("ai", 1, "second")])
    texts = {row.text for q in ("python", "ai") for row in store.recent_matches(q)}
    assert texts == {"first"}


def test_window_rewrite_replaces(store: Store) -> None:
    """A window written again for the same query and start replaces the earlier one."""
    store.write([make_window("python", 0, posts=3, top_hashtags=(("a", 1),))])
    store.write([make_window("python", 0, posts=5, positive=3, top_hashtags=(("b", 4),))])
    rows = store.windows("python")
    assert len(rows) == 1
    assert (rows[0].posts, rows[0].positive, rows[0].top_hashtags) == (5, 3, (("b", 4),))
    assert store.counts().windows == 1


def test_windows_round_trip(store: Store) -> None:
    """Stored windows read back as the summaries written, by start, per query."""
    summaries = [
        make_window("python", 120, top_hashtags=(("Ünïcode", 2), ("x", 1))),
        make_window("python", 0, top_hashtags=()),
        make_window("python", 60),
        make_window("*", 0, retweets=7),
    ]
    store.write(summaries)
    rows = store.windows("python")
    assert [row.summary() for row in rows] == sorted(summaries[:3], key=lambda w: w.start)
    assert all(row.start.tzinfo is UTC and row.end.tzinfo is UTC for row in rows)
    assert [row.summary() for row in store.windows("*")] == [summaries[3]]
    assert [row.start for row in store.windows("python", since=at(60))] == [at(60), at(120)]
    assert store.windows("nothing") == []


def test_recent_matches(store: Store) -> None:
    """recent_matches lists a query's posts newest first, limited and filtered by time."""
    store.write(
        [
            make_match(
                "python",
                n,
                f"post {n}",
                created_at=n * 10.0,
                compound=n / 10,
                polarity=Polarity.POSITIVE,
            )
            for n in range(1, 6)
        ]
        + [make_match("ai", 9, "other", created_at=1000)]
    )
    rows = store.recent_matches("python")
    assert [row.id for row in rows] == ["5", "4", "3", "2", "1"]
    assert rows[0] == MatchRow(
        time=at(50), id="5", text="post 5", compound=0.5, polarity=Polarity.POSITIVE, lang="en"
    )
    assert rows[0].time.tzinfo is UTC
    assert [row.id for row in store.recent_matches("python", limit=2)] == ["5", "4"]
    assert [row.id for row in store.recent_matches("python", since=at(30))] == ["5", "4", "3"]
    with pytest.raises(ValueError, match="limit"):
        store.recent_matches("python", limit=0)
    with pytest.raises(ValueError, match="naive"):
        store.recent_matches("python", since=datetime(2024, 5, 1))  # noqa: DTZ001


def test_every_query_of_a_post_is_stored_whatever_its_characters(store: Store) -> None:
    """A post's match rows keep each query key exactly (quotes, backslashes, any script)."""
    queries = ('say "hi"', "back\\slash", "café", "日本語", "😀 emoji", "#tag", "@name", "a,b")
    scored = make_scored(7, "the text", created_at=12.5)
    store.write([PostMatches(scored, queries)])
    store.write([PostMatches(scored, queries[:2])])  # again: nothing new
    for query in queries:
        assert [row.id for row in store.recent_matches(query)] == ["7"]
    assert store.counts().matches == len(queries)


def test_millisecond_times(store: Store) -> None:
    """Post times keep their milliseconds, whatever offset they were written with."""
    moment = datetime.fromisoformat("2024-05-01T14:00:00.123+02:00")
    store.write([make_match("python", 1, created_at=moment)])
    (row,) = store.recent_matches("python")
    assert row.time == moment
    assert row.time.tzinfo is UTC


def test_late_posts_and_rejected_idempotent(db: Path) -> None:
    """Late posts keep one row per (query, post); rejected lines keep their first seen_at."""
    with open_store(str(db), clock=ticking_clock()) as store:
        store.write([make_late("python", 1, 0), make_rejected("f:1", "bad", "{")])
        store.write([make_late("python", 1, 0), make_rejected("f:1", "worse", "{{")])
        assert store.counts().late == 1
    assert dump(db)["rejected"] == [("f:1", "worse", "{{", "2024-05-01T12:00:00.000Z")]


def test_queries_track_changes(db: Path) -> None:
    """Subscriptions upsert by key; last_changed moves only when active flips."""
    with open_store(str(db), clock=ticking_clock()) as store:
        store.write([make_subscription("Python, #AI  ml")])  # clock: T0
        store.write([make_subscription("#ai ML,python")])  # same key, still active: T0+1
        store.write([make_subscription("python", active=False)])  # T0+2
        assert store.queries() == [
            TrackedQuery("#ai ml,python", True, at(0), at(0), spelling="Python, #AI ml"),
            TrackedQuery(
                "python", active=False, first_seen=at(2), last_changed=at(2), spelling="python"
            ),
        ]
        store.write([make_subscription("#ai ml, python", active=False)])  # T0+3
        store.write([make_subscription("#ai ml, python", active=False)])  # T0+4
        (changed, _) = store.queries()
        assert (changed.active, changed.first_seen, changed.last_changed) == (False, at(0), at(3))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=30),
    st.lists(st.integers(1, 5), min_size=1, max_size=10),
)
def test_any_replay_gives_the_same_rows(order: list[int], sizes: list[int]) -> None:
    """Writing all items, then any replay of them in any batching, leaves the rows of one write."""
    items = sample_batch()
    with tempfile.TemporaryDirectory() as directory:
        once, replayed = Path(directory, "once.db"), Path(directory, "replayed.db")
        with open_store(str(once), clock=lambda: T0) as store:
            store.write(items)
        with open_store(str(replayed), clock=lambda: T0) as store:
            store.write(items)
            stream = [items[i] for i in order]
            start = 0
            for size in sizes * len(stream):
                if start >= len(stream):
                    break
                store.write(stream[start : start + size])
                start += size
        assert dump(replayed) == dump(once)


# Concurrency


def integrity_ok(path: Path) -> bool:
    """Whether SQLite's integrity check passes on the file."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def batches(count: int, size: int, *, first: int = 0) -> Iterator[list[StoreItem]]:
    """``count`` batches of ``size`` matches each, plus a window per batch."""
    for number in range(first, first + count):
        items: list[StoreItem] = [
            make_match("python", number * size + n, f"post {n}", created_at=number + n / 100)
            for n in range(size)
        ]
        items.append(make_window("python", number * 60.0, posts=size))
        yield items


READER = """
import json, sys, time, traceback
from pathlib import Path
from flows.store import open_store

db, ready, done, out = sys.argv[1:]
seen = []

def read(store):
    c = store.counts()
    seen.append([c.posts, c.matches, c.windows, c.late, c.rejected])

try:
    store = open_store(db, readonly=True)
    read(store)
    Path(ready).touch()
    reads = 0
    while not Path(done).exists():
        read(store)
        store.windows("python")
        store.recent_matches("python", limit=10)
        reads += 1
        if reads % 20 == 0:  # also open fresh connections while the writer writes
            store.close()
            store = open_store(db, readonly=True)
    read(store)
    store.close()
except Exception:
    traceback.print_exc()
    sys.exit(1)
Path(out).write_text(json.dumps(seen))
"""


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until ``path`` exists, failing early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"reader exited early ({process.returncode}): {err}")
        if time.monotonic() > deadline:
            pytest.fail("reader did not start")
        time.sleep(0.01)


@pytest.mark.slow
def test_reader_in_another_process_while_writing(tmp_path: Path, db: Path) -> None:
    """A reader process never hits a lock and sees counts only grow, ending at the exact totals."""
    ready, done, out = tmp_path / "ready", tmp_path / "done", tmp_path / "seen.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = open_store(str(db))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), str(ready), str(done), str(out)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(ready, reader)
        for batch in batches(300, 10):
            writer.write(batch)
            writer.write(batch[:3])  # replayed items change nothing
        done.touch()
        _, err = reader.communicate(timeout=60)
    finally:
        writer.close()
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    assert "locked" not in err
    seen = [tuple(row) for row in json.loads(out.read_text())]
    assert seen[0] == (0, 0, 0, 0, 0)
    assert seen[-1] == (3000, 3000, 300, 0, 0)
    for earlier, later in itertools.pairwise(seen):
        assert all(a <= b for a, b in zip(earlier, later, strict=True)), (earlier, later)
    for posts, matches, windows, _, _ in seen:
        assert posts == matches == windows * 10  # a batch is visible entirely or not at all
    assert integrity_ok(db)


def test_two_writers_interleaved(db: Path) -> None:
    """Two writer connections writing interleaved, overlapping batches lose nothing."""
    with open_store(str(db)) as first, open_store(str(db)) as second:
        for one, two in zip(batches(50, 4), batches(50, 4, first=25), strict=True):
            first.write(one)
            second.write(two)
            first.write(two[:2])
        assert first.counts() == second.counts() == StoreCounts(300, 300, 75, 0, 0)
    assert integrity_ok(db)


@pytest.mark.slow
def test_two_writers_in_threads(db: Path) -> None:
    """Two writer connections in concurrent threads wait for each other instead of failing."""
    errors: list[BaseException] = []
    open_store(str(db)).close()

    def work(first: int) -> None:
        try:
            with open_store(str(db)) as store:
                for batch in batches(100, 5, first=first):
                    store.write(batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(first,)) for first in (0, 50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with open_store(str(db), readonly=True) as store:
        assert store.counts() == StoreCounts(750, 750, 150, 0, 0)
    assert integrity_ok(db)


def test_writers_create_the_store_at_once(tmp_path: Path) -> None:
    """Several writers opening a new store at the same moment all succeed with one schema."""
    db = tmp_path / "race.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(number: int) -> None:
        try:
            barrier.wait()
            with open_store(str(db)) as store:
                store.write([make_match("python", number)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with open_store(str(db), readonly=True) as store:
        assert store.counts().matches == 4


def test_older_schema_than_2_refused(db: Path) -> None:
    """A schema 1 store cannot be migrated: the message says to replay into a new store."""
    open_store(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"schema version 1 is older than 2.*replay into a new"):
        open_store(str(db))


def test_a_source_cursor_is_kept_replaced_and_forgotten(store: Store, db: Path) -> None:
    """A cursor written with a batch reads back, a newer one replaces it, None deletes it."""
    store.write([SourceCursor("bluesky:ws://j/subscribe", 1_700_000_000_000_001)])
    store.write([SourceCursor("bluesky:ws://j/subscribe", 1_700_000_000_000_002)])
    with open_store(str(db), readonly=True) as reader:
        assert reader.cursor("bluesky:ws://j/subscribe") == 1_700_000_000_000_002
        assert reader.cursor("replay:a.jsonl") is None
    store.write([SourceCursor("bluesky:ws://j/subscribe", None)])
    assert store.cursor("bluesky:ws://j/subscribe") is None


def test_the_last_cursor_of_a_batch_wins(store: Store) -> None:
    """Of two positions of one source in a batch, the later one is stored."""
    store.write([SourceCursor("replay:a", 10), SourceCursor("replay:a", 20)])
    assert store.cursor("replay:a") == 20


def test_a_store_without_the_cursor_table_reads_no_cursor_and_a_writer_adds_it(
    store: Store, db: Path
) -> None:
    """A schema 3 store from before source_cursors: readers see none, the next writer creates it."""
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE source_cursors")
    with open_store(str(db), readonly=True) as reader:
        assert reader.cursor("replay:a") is None
    with open_store(str(db)) as writer:
        writer.write([SourceCursor("replay:a", 3)])
        assert writer.cursor("replay:a") == 3
