"""StoreSink: a bytewax sink writing into a real SQLite store, on one worker and on two,
through its writer process (the default) and on the worker's thread."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.testing import TestingSource, run_main

from flows.model import PostMatches
from flows.routing.matching import Subscription, parse_query
from flows.sinks.store_sink import (
    BackgroundStorePartition,
    StoreSink,
    StoreSinkPartition,
    check_store_url,
)
from flows.store import StoreCounts, StoreError, StoreItem, StoreURL, open_store
from tests.helpers.factories import (
    make_late,
    make_match,
    make_rejected,
    make_subscription,
    make_window,
)

EntryPoint = Callable[[Dataflow], None]


def records(count: int = 40) -> list[StoreItem]:
    """``count`` posts matched by two queries each, with windows and the other record types."""
    items: list[StoreItem] = []
    for n in range(count):
        items.append(make_match("python", n, f"post {n}", created_at=n))
        items.append(make_match("#ai", n, f"post {n}", created_at=n))
    items.extend(make_window("python", minute * 60.0) for minute in range(1, count // 10))
    # Three identical writes of one window: whichever worker writes last, the row is the same.
    items.extend(make_window("python", 0, posts=99) for _ in range(3))
    items.append(make_late("python", 1000, 0))
    items.append(make_rejected("test:x"))
    items.extend([make_subscription("python"), make_subscription("#ai")])
    return items


@pytest.fixture(params=[True, False], ids=["writer-process", "worker-thread"])
def background(request: pytest.FixtureRequest) -> bool:
    """Whether the sink writes through its writer process."""
    return bool(request.param)


def store_flow(items: list[StoreItem], url: str, *, background: bool = True) -> Dataflow:
    """A flow that spreads ``items`` over all workers and writes them to the store at ``url``."""
    flow = Dataflow("store_sink_test")
    source: TestingSource[StoreItem] = TestingSource(items, batch_size=7)
    stream = op.input("read_records", flow, source)  # StoreItem
    spread = op.redistribute("spread_over_workers", stream)  # StoreItem
    op.output("write_store", spread, StoreSink(url, background=background))
    return flow


def integrity(path: Path) -> list[Any]:
    """The result of SQLite's integrity check."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def test_flow_writes_every_record(
    tmp_path: Path, entry_point: EntryPoint, background: bool
) -> None:
    """A dataflow writes every record to the store, and running it again duplicates nothing."""
    db = tmp_path / "senti.db"
    url = f"sqlite:///{db}"
    expected = StoreCounts(posts=40, matches=80, windows=4, late=1, rejected=1)
    entry_point(store_flow(records(), url, background=background))
    with open_store(url, readonly=True) as store:
        assert store.counts() == expected
        assert [q.key for q in store.queries()] == ["#ai", "python"]
        assert len(store.recent_matches("#ai", limit=1000)) == 40
        assert store.windows("python")[0].posts == 99
    entry_point(store_flow(records(), url, background=background))  # a replay after a resume
    with open_store(url, readonly=True) as store:
        assert store.counts() == expected
    assert integrity(db) == [("ok",)]


def test_partitions_are_separate_writers(tmp_path: Path, background: bool) -> None:
    """Each worker's partition has its own connection, and both write into one store."""
    db = tmp_path / "senti.db"
    sink = StoreSink(str(db), background=background)
    first = sink.build("write_store", 0, 2)
    second = sink.build("write_store", 1, 2)
    kind = BackgroundStorePartition if background else StoreSinkPartition
    assert isinstance(first, kind)
    first.write_batch([make_match("python", 1), make_window("python", 0)])
    second.write_batch([make_match("python", 2), make_match("python", 1)])
    first.write_batch([make_late("python", 3, 0)])
    first.close()
    second.close()
    with open_store(str(db), readonly=True) as store:
        assert store.counts() == StoreCounts(posts=2, matches=2, windows=1, late=1, rejected=0)


def test_worker_zero_writes_the_tracked_queries_first(tmp_path: Path, background: bool) -> None:
    """A sink given the run's queries stores them as tracked, with their spelling, from
    worker 0's partition only and before its batches, so a later change of one wins."""
    db = tmp_path / "senti.db"
    queries = [parse_query("Python"), parse_query("#AI,  ml")]
    sink = StoreSink(str(db), background=background, queries=queries)
    first = sink.build("write_store", 0, 2)
    second = sink.build("write_store", 1, 2)
    first.write_batch([Subscription(queries[0], active=False)])
    first.close()
    second.close()
    with open_store(str(db), readonly=True) as store:
        stored = {query.key: (query.active, query.shown) for query in store.queries()}
    assert stored == {"python": (False, "Python"), "#ai,ml": (True, "#AI, ml")}


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """Building a StoreSink touches no file: the store opens only when a worker builds it."""
    db = tmp_path / "missing" / "senti.db"
    sink = StoreSink(f"sqlite:///{db}")
    assert sink.url == f"sqlite:///{db}"
    assert not db.parent.exists()
    with pytest.raises(StoreError, match="does not exist"):
        sink.build("write_store", 0, 1)


def test_constructor_rejects_unsupported_url() -> None:
    """A StoreSink for an unsupported scheme fails when it is built, before any flow runs."""
    with pytest.raises(StoreError, match="unsupported store URL scheme 'mysql'"):
        StoreSink("mysql://localhost/senti")


def test_check_store_url(tmp_path: Path) -> None:
    """check_store_url and StoreSink.check accept a usable URL without creating the store."""
    db = tmp_path / "senti.db"
    assert check_store_url(str(db)) == StoreURL("sqlite", db)
    assert StoreSink.check(f"sqlite:///{db}") == StoreURL("sqlite", db)
    assert not db.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty store URL"),
        ("mysql://localhost/senti", "unsupported store URL scheme"),
        ("{tmp}/missing/senti.db", "does not exist"),
        ("{tmp}/junk.db", "not a senti store"),
    ],
)
def test_check_store_url_fails_fast(tmp_path: Path, url: str, message: str) -> None:
    """check_store_url raises StoreError for an unusable URL, so the CLI can stop at once."""
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=message):
        check_store_url(url.format(tmp=tmp_path))


def test_unknown_item_fails_the_flow(tmp_path: Path, background: bool) -> None:
    """An item the store cannot hold stops the flow with a TypeError instead of being dropped."""
    db = tmp_path / "senti.db"
    flow = Dataflow("bad_item")
    source: TestingSource[Any] = TestingSource([make_match("python", 1), "oops"])
    stream = op.input("read_records", flow, source)  # Match | str
    op.output("write_store", stream, StoreSink(str(db), background=background))
    with pytest.raises(BytewaxRuntimeError) as caught:
        run_main(flow)
    assert isinstance(caught.value.__cause__, TypeError)
    assert "cannot store a str" in str(caught.value.__cause__)


# The writer process


def write_and_close(partition: BackgroundStorePartition, batches: list[list[StoreItem]]) -> None:
    """Write every batch, then close."""
    for batch in batches:
        partition.write_batch(batch)
    partition.close()


def test_post_matches_are_stored_per_query(tmp_path: Path) -> None:
    """A post with three matched queries is one post row and three match rows."""
    db = tmp_path / "senti.db"
    scored = make_match("a", 1).scored
    partition = StoreSink(str(db)).build("write_store", 0, 1)
    partition.write_batch([PostMatches(scored, ("a", "b", "c"))])
    partition.close()
    with open_store(str(db), readonly=True) as store:
        assert store.counts() == StoreCounts(posts=1, matches=3, windows=0, late=0, rejected=0)
        assert [row.id for row in store.recent_matches("c")] == ["1"]


def test_writer_ignores_interrupts_and_writes_everything(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group; the writer still writes every batch sent."""
    db = tmp_path / "senti.db"
    partition = BackgroundStorePartition(str(db), in_flight=1)
    assert partition.pid is not None
    partition.write_batch([make_match("python", n) for n in range(100)])
    os.kill(partition.pid, signal.SIGINT)
    os.kill(partition.pid, signal.SIGTERM)
    partition.write_batch([make_match("python", n) for n in range(100, 200)])
    partition.close()
    with open_store(str(db), readonly=True) as store:
        assert store.counts().matches == 200


def test_database_error_in_the_writer_fails_the_partition(tmp_path: Path) -> None:
    """A failed transaction in the writer comes back as StoreError, with SQLite's reason."""
    db = tmp_path / "senti.db"
    partition = BackgroundStorePartition(str(db), in_flight=1)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE matches")
    conn.close()
    partition.write_batch([make_match("python", 1)])  # sent; the writer fails on it
    with pytest.raises(StoreError, match="write failed: no such table: matches"):
        partition.close()  # the error comes back at the latest when everything is written


def test_writer_that_dies_fails_the_partition(tmp_path: Path) -> None:
    """A writer killed mid-run is an error naming its exit code, not a silent loss."""
    db = tmp_path / "senti.db"
    partition = BackgroundStorePartition(str(db))
    assert partition.pid is not None
    os.kill(partition.pid, signal.SIGKILL)
    with pytest.raises(StoreError, match=r"writer process exited \(code -9\)"):
        write_and_close(partition, [[make_match("python", n)] for n in range(10)])


def test_writer_that_cannot_open_the_store_fails_the_build(tmp_path: Path) -> None:
    """The writer's open error is the build's StoreError, as on the worker's thread."""
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a senti store"):
        StoreSink(str(tmp_path / "junk.db")).build("write_store", 0, 1)


def test_writer_exits_when_its_partition_is_dropped(tmp_path: Path) -> None:
    """A flow that fails never closes its sink: the writer still stops once the partition goes."""
    partition = BackgroundStorePartition(str(tmp_path / "senti.db"))
    process = partition._process
    del partition
    gc.collect()
    assert process.wait(timeout=10) == 0
