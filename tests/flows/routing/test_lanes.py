"""Lane keys and their placement on Bytewax workers (flows.routing.lanes, flows.sources.workers)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink, TestingSource, cluster_main

from flows.dataflow import FlowSettings, build_flow
from flows.model import LatePost, PostMatches, WindowSummary
from flows.routing.lanes import lane_keys, local_lane, record_worker, worker_of
from flows.routing.matching import parse_query
from flows.sources.replay import ReplaySource
from tests.helpers.xlines import x_line

KEYS = [f"key-{n}" for n in range(60)] + ["*", "queries-0-of-2", "lane-0-of-2", "é€😀"]


class _Keys(StatefulSourcePartition[tuple[str, str], None]):
    def __init__(self, keys: list[str]) -> None:
        self._keys: list[str] | None = keys

    def next_batch(self) -> list[tuple[str, str]]:
        if self._keys is None:
            raise StopIteration
        batch, self._keys = [(key, key) for key in self._keys], None
        return batch

    def snapshot(self) -> None:
        return None


class _KeySource(FixedPartitionedSource[tuple[str, str], None]):
    """Every key once, from one partition."""

    def list_parts(self) -> list[str]:
        return ["keys"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Keys:
        return _Keys(KEYS)


class _Workers(StatelessSinkPartition[Any]):
    def __init__(self, index: int, seen: dict[str, int]) -> None:
        self.index, self.seen = index, seen

    def write_batch(self, items: list[Any]) -> None:
        for key, _value in items:
            self.seen[key] = self.index


class _WhereSink(DynamicSink[Any]):
    """Records, for each key, the index of the worker whose partition wrote it."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Workers:
        return _Workers(worker_index, self.seen)


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_worker_of_is_where_bytewax_sends_a_key(workers: int) -> None:
    """A stateful step runs each key on the worker :func:`worker_of` names (real Bytewax)."""
    flow = Dataflow("where")
    keyed = op.stateful_map("hold", op.input("keys", flow, _KeySource()), lambda s, v: (s, v))
    sink = _WhereSink()
    op.output("where", keyed, sink)
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    assert sink.seen == {key: worker_of(key, workers) for key in KEYS}


@pytest.mark.parametrize("lanes", range(1, 9))
def test_lane_keys_are_one_per_worker_and_name_their_count(lanes: int) -> None:
    """Key ``i`` of ``n`` lanes is placed on worker ``i`` of ``n``, and says ``-of-n``."""
    keys = lane_keys(lanes)
    assert [worker_of(key, lanes) for key in keys] == list(range(lanes))
    assert all(key.startswith(f"lane-{i}-of-{lanes}") for i, key in enumerate(keys))
    assert len(set(keys)) == lanes


def test_bad_counts_are_refused() -> None:
    """Zero lanes or workers, and a worker outside its count, are errors."""
    with pytest.raises(ValueError, match="lanes"):
        lane_keys(0)
    with pytest.raises(ValueError, match="workers"):
        worker_of("x", 0)
    with pytest.raises(ValueError, match="worker 2"):
        record_worker(2, 2)


def test_local_lane_is_per_thread_and_per_count() -> None:
    """A thread knows its lane once recorded, for the same count only; others do not."""
    found: list[str | None] = []

    def worker() -> None:
        record_worker(1, 3)
        found.extend([local_lane(3), local_lane(2)])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert found == [lane_keys(3)[1], None]
    record_worker(0, 3)
    assert local_lane(3) == lane_keys(3)[0]


class _Emitted(StatelessSinkPartition[Any]):
    def __init__(self, index: int, where: dict[str, int]) -> None:
        self.index, self.where = index, where

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, PostMatches):
                self.where[item.scored.post.id] = self.index


class _EmittedSink(DynamicSink[Any]):
    """Records, for each matched post, the worker that emitted it."""

    def __init__(self) -> None:
        self.where: dict[str, int] = {}

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Emitted:
        return _Emitted(worker_index, self.where)


class _Origin(StatelessSinkPartition[Any]):
    def __init__(self, index: int, read_by: dict[str, int]) -> None:
        self.index, self.read_by = index, read_by

    def write_batch(self, items: list[Any]) -> None:
        for origin, _line in items:
            self.read_by[Path(origin.rsplit(":", 1)[0]).stem] = self.index


class _Origins(DynamicSink[Any]):
    def __init__(self, read_by: dict[str, int]) -> None:
        self.read_by = read_by

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Origin:
        return _Origin(worker_index, self.read_by)


def test_posts_stay_on_the_worker_that_read_them(tmp_path: Path) -> None:
    """With a file per worker and a lane per worker, each post is matched where it was read."""
    files = []
    for part in range(2):
        path = tmp_path / f"part-{part}.jsonl"
        lines = [x_line(f"{part}-{n}", f"coffee number {n}") for n in range(50)]
        path.write_text("".join(line.text + "\n" for line in lines), encoding="utf-8")
        files.append(path)
    read_by: dict[str, int] = {}
    source = ReplaySource(files)
    # Which worker reads which file is Bytewax's choice; learn it from a flow of the source alone.
    probe = Dataflow("probe")
    read = op.input("read", probe, source)
    op.output("where", op.map("origin", read, lambda line: (line.origin, line)), _Origins(read_by))
    cluster_main(probe, [], 0, worker_count_per_proc=2)
    assert sorted(set(read_by.values())) == [0, 1]

    sink = _EmittedSink()
    settings = FlowSettings(queries=[parse_query("coffee")], lanes=2, live=False)
    cluster_main(
        build_flow(source, None, [sink], settings=settings), [], 0, worker_count_per_proc=2
    )
    assert len(sink.where) == 100
    for post_id, worker in sink.where.items():
        assert worker == read_by[f"part-{post_id.split('-')[0]}"]


def test_a_single_partition_source_is_spread_over_every_worker() -> None:
    """Lines read by one worker are moved to both lanes, so both workers match posts."""
    lines = [x_line(n, f"coffee number {n}") for n in range(200)]
    sink = _EmittedSink()
    settings = FlowSettings(queries=[parse_query("coffee")], lanes=2, live=False)
    flow = build_flow(TestingSource(lines), None, [sink], settings=settings)
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    assert len(sink.where) == 200
    assert set(sink.where.values()) == {0, 1}


def test_a_worker_far_ahead_makes_no_post_of_another_late(tmp_path: Path) -> None:
    """Each lane keeps its own clock: one file 1,000 s ahead of the other, wait 10 s, and
    still no post is late, and every window counts all its posts."""
    files = []
    for part, start in ((0, 1000), (1, 0)):
        path = tmp_path / f"part-{part}.jsonl"
        lines = [x_line(f"{part}-{n}", f"coffee {n}", at=start + n) for n in range(300)]
        path.write_text("".join(line.text + "\n" for line in lines), encoding="utf-8")
        files.append(path)
    out: list[Any] = []
    settings = FlowSettings(
        queries=[parse_query("coffee")], lanes=2, live=False, wait=timedelta(seconds=10)
    )
    flow = build_flow(ReplaySource(files), None, [TestingSink(out)], settings=settings)
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    assert [item for item in out if isinstance(item, LatePost)] == []
    counts = {s.start: s.posts for s in out if isinstance(s, WindowSummary) and s.query == "coffee"}
    assert sum(counts.values()) == 600
    assert len(counts) == 5 + 6  # minutes 0-4, and 16-21 (T0 + 1,000 s is in minute 16)
