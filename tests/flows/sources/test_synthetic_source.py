"""The synthetic bytewax source: deterministic and live modes, resume, and file writing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TimeTestingGetter, run_main

from flows.model import Line, Post
from flows.platforms.synthetic import generate_lines
from flows.platforms.x import parse_line
from flows.sources.synthetic import MAX_LAG, SyntheticSource, write_synthetic

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _run(source: SyntheticSource, entry_point: Any = run_main) -> list[Line]:
    out: list[Line] = []
    flow = Dataflow("synthetic_test")
    lines = op.input("read", flow, source)  # Line
    op.output("out", lines, TestingSink(out))
    entry_point(flow)
    return out


def _created_at(line: Line) -> datetime:
    post = parse_line(line)
    assert isinstance(post, Post), post
    return post.created_at


def test_deterministic_mode_emits_the_generated_lines(entry_point: Any) -> None:
    """With a start, the flow emits exactly count lines equal to generate_lines, in order."""
    source = SyntheticSource(count=250, seed=3, rate=50.0, start=T0, batch_size=64)
    out = _run(source, entry_point)
    assert [line.text for line in out] == list(generate_lines(250, seed=3, start=T0, rate=50.0))
    assert [line.origin for line in out] == [f"synthetic:3:{n}" for n in range(250)]


def test_deterministic_partition_resumes_at_the_next_post() -> None:
    """A partition rebuilt from a snapshot continues with the first post not yet emitted."""
    source = SyntheticSource(count=10, seed=1, start=T0, batch_size=4)
    part = source.build_part("s", "synthetic", None)
    first = list(part.next_batch())
    assert len(first) == 4
    assert part.snapshot() == 4
    resumed = source.build_part("s", "synthetic", part.snapshot())
    rest = [*resumed.next_batch(), *resumed.next_batch()]
    assert resumed.snapshot() == 10
    with pytest.raises(StopIteration):
        resumed.next_batch()
    expected = list(generate_lines(10, seed=1, start=T0, rate=50.0))
    assert [line.text for line in [*first, *rest]] == expected
    assert rest[0].origin == "synthetic:1:4"


def test_zero_count_ends_at_once() -> None:
    """count=0 emits nothing and ends."""
    part = SyntheticSource(count=0, start=T0).build_part("s", "synthetic", None)
    with pytest.raises(StopIteration):
        part.next_batch()


def test_one_partition() -> None:
    """The source has a single partition, so only one worker generates."""
    assert SyntheticSource().list_parts() == ["synthetic"]


def test_live_mode_paces_with_next_awake() -> None:
    """In live mode only due posts are emitted, stamped with their due time, and next_awake
    names the next one."""
    clock = TimeTestingGetter(T0)
    source = SyntheticSource(rate=10.0, seed=2, clock=clock.get)
    part = source.build_part("s", "synthetic", None)
    assert part.next_awake() == T0

    first = list(part.next_batch())
    assert [_created_at(line) for line in first] == [T0]
    assert part.next_awake() == T0 + timedelta(milliseconds=100)
    assert part.next_batch() == []  # called early: nothing due yet

    clock.advance(timedelta(milliseconds=250))
    second = list(part.next_batch())
    assert [_created_at(line) for line in second] == [
        T0 + timedelta(milliseconds=100),
        T0 + timedelta(milliseconds=200),
    ]
    assert [line.origin for line in second] == ["synthetic:2:1", "synthetic:2:2"]
    awake = part.next_awake()
    assert awake is not None
    assert awake > clock.now
    assert awake == T0 + timedelta(milliseconds=300)
    assert part.snapshot() == 3


def test_live_mode_text_matches_the_generator_but_for_the_time() -> None:
    """A live post is the generator's post n, stamped with the time it was due."""
    clock = TimeTestingGetter(T0)
    part = SyntheticSource(rate=4.0, seed=5, clock=clock.get).build_part("s", "synthetic", 7)
    clock.advance(timedelta(seconds=0.5))
    lines = list(part.next_batch())
    deterministic = list(generate_lines(10, seed=5, start=T0, rate=4.0, first=7))
    for live, fixed in zip(lines, deterministic, strict=False):
        live_data = json.loads(live.text)["data"]
        fixed_data = json.loads(fixed)["data"]
        live_data.pop("created_at")
        fixed_data.pop("created_at")
        assert live_data == fixed_data
    assert [line.origin for line in lines] == ["synthetic:5:7", "synthetic:5:8", "synthetic:5:9"]


def test_live_mode_drops_backlog_of_time_not_posts() -> None:
    """A live source far behind schedule emits at most MAX_LAG of backlog, stamped recently."""
    clock = TimeTestingGetter(T0)
    part = SyntheticSource(rate=10.0, batch_size=1000, clock=clock.get).build_part(
        "s", "synthetic", None
    )
    part.next_batch()
    clock.advance(timedelta(seconds=60))
    caught_up = list(part.next_batch())
    assert 1 <= len(caught_up) <= 10 * MAX_LAG.total_seconds() + 1
    assert all(_created_at(line) >= clock.now - MAX_LAG for line in caught_up)
    assert caught_up[0].origin == "synthetic:0:1"  # no post skipped


def test_live_mode_stops_after_count() -> None:
    """A live source with a count ends once it has emitted count posts."""
    clock = TimeTestingGetter(T0)
    part = SyntheticSource(count=3, rate=100.0, clock=clock.get).build_part("s", "synthetic", None)
    clock.advance(timedelta(seconds=1))
    assert len(list(part.next_batch())) == 3
    assert part.next_awake() is None
    with pytest.raises(StopIteration):
        part.next_batch()


def test_live_mode_uses_the_wall_clock_by_default() -> None:
    """Without a clock, live posts are stamped now and the next one is due in the future."""
    before = datetime.now(UTC)
    part = SyntheticSource(rate=5.0).build_part("s", "synthetic", None)
    lines = list(part.next_batch())
    after = datetime.now(UTC)
    assert len(lines) == 1
    # X timestamps carry milliseconds, so the stamp may read up to 1 ms early.
    assert before - timedelta(milliseconds=1) <= _created_at(lines[0]) <= after
    awake = part.next_awake()
    assert awake is not None
    assert awake > before + timedelta(milliseconds=150)


def test_live_flow_runs_on_the_wall_clock() -> None:
    """A short live flow at a high rate emits its count with current, increasing timestamps."""
    before = datetime.now(UTC)
    out = _run(SyntheticSource(count=20, rate=2000.0))
    stamps = [_created_at(line) for line in out]
    assert len(stamps) == 20
    assert stamps == sorted(stamps)
    assert before - timedelta(milliseconds=1) <= stamps[0] <= datetime.now(UTC)


def test_write_synthetic_writes_the_generated_lines(tmp_path: Path) -> None:
    """write_synthetic writes count lines equal to generate_lines and returns the count."""
    path = tmp_path / "posts.jsonl"
    assert write_synthetic(path, count=120, seed=4, start=T0, rate=20.0) == 120
    expected = list(generate_lines(120, seed=4, start=T0, rate=20.0))
    assert path.read_text(encoding="utf-8") == "".join(line + "\n" for line in expected)


def test_bad_options_are_rejected() -> None:
    """Non-positive rates and batch sizes, negative counts and naive starts raise ValueError."""
    with pytest.raises(ValueError, match="rate"):
        SyntheticSource(rate=0.0)
    with pytest.raises(ValueError, match="rate"):
        SyntheticSource(rate=float("inf"))
    with pytest.raises(ValueError, match="batch_size"):
        SyntheticSource(batch_size=0)
    with pytest.raises(ValueError, match="count"):
        SyntheticSource(count=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        SyntheticSource(start=datetime(2024, 5, 1))  # noqa: DTZ001
