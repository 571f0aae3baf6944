"""The replay bytewax source: order, origins, odd lines, resume, pacing and missing files."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import StatefulSourcePartition
from bytewax.testing import TestingSink, TimeTestingGetter, run_main
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import Line, Post, RejectCode, Rejected
from flows.platforms.x import parse_line
from flows.runtime.cursors import Positions, SourceCursor, replay_key
from flows.sources import replay
from flows.sources.replay import ReplaySource
from flows.sources.synthetic import write_synthetic
from tests.helpers.mutations import check_parsed, encoded

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _post(post_id: int, at: float | None = 0.0, text: str = "hello") -> bytes:
    """One X v2 stream line (no line end), created ``at`` seconds after T0 if given."""
    data: dict[str, Any] = {"id": str(post_id), "text": text}
    if at is not None:
        stamp = T0 + timedelta(seconds=at)
        data["created_at"] = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"data": data, "matching_rules": []}, ensure_ascii=False).encode()


def _write(path: Path, *lines: bytes, end: bytes = b"\n") -> Path:
    path.write_bytes(end.join(lines) + end)
    return path


def _offsets(*lines: bytes, end: bytes = b"\n") -> list[int]:
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + len(end)
    return offsets


def _drain(part: StatefulSourcePartition[Line, int]) -> list[Line]:
    """Every line a partition has left, read until it ends."""
    out: list[Line] = []
    while True:
        try:
            out.extend(part.next_batch())
        except StopIteration:
            return out


def _run(source: ReplaySource, entry_point: Any = run_main) -> list[Line]:
    out: list[Line] = []
    flow = Dataflow("replay_test")
    lines = op.input("read", flow, source)  # Line
    op.output("out", lines, TestingSink(out))
    entry_point(flow)
    return out


def test_lines_come_out_in_order_with_origins(tmp_path: Path, entry_point: Any) -> None:
    """Every line of a file is emitted in file order with origin path:byte_offset."""
    lines = [_post(n, at=n, text=f"post {n} café ☕") for n in range(5)]
    path = _write(tmp_path / "a.jsonl", *lines)
    out = _run(ReplaySource([path], batch_size=2), entry_point)
    assert [line.text.encode() for line in out] == lines
    assert [line.origin for line in out] == [f"{path}:{at}" for at in _offsets(*lines)]


def test_two_files_are_two_ordered_partitions(tmp_path: Path, entry_point: Any) -> None:
    """Lines of two files are all emitted, each file's lines in their own order."""
    first = [_post(n) for n in range(30)]
    second = [_post(100 + n) for n in range(20)]
    a = _write(tmp_path / "a.jsonl", *first)
    b = _write(tmp_path / "b.jsonl", *second)
    source = ReplaySource([a, b], batch_size=7)
    assert source.list_parts() == [str(a), str(b)]
    by_file: defaultdict[str, list[bytes]] = defaultdict(list)
    for line in _run(source, entry_point):
        by_file[line.origin.rsplit(":", 1)[0]].append(line.text.encode())
    assert by_file == {str(a): first, str(b): second}


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    """Keep-alive blank lines (LF, CRLF or spaces) are skipped; CRLF line ends are removed."""
    path = tmp_path / "keepalive.jsonl"
    path.write_bytes(b"\r\n" + _post(1) + b"\r\n\n   \n" + _post(2) + b"\n\n")
    out = _run(ReplaySource([path]))
    assert [line.text.encode() for line in out] == [_post(1), _post(2)]
    second_at = 2 + len(_post(1)) + 2 + 1 + 4
    assert [line.origin for line in out] == [f"{path}:2", f"{path}:{second_at}"]


def test_last_line_without_newline_is_a_line(tmp_path: Path) -> None:
    """A final line that lacks its newline is still emitted whole."""
    path = tmp_path / "tail.jsonl"
    path.write_bytes(_post(1) + b"\n" + _post(2))
    out = _run(ReplaySource([path]))
    assert [line.text.encode() for line in out] == [_post(1), _post(2)]
    assert all(isinstance(parse_line(line), Post) for line in out)


def test_truncated_last_line_is_passed_on_and_rejected(tmp_path: Path) -> None:
    """A last line cut mid-write is emitted as is, and the parser rejects it as invalid JSON."""
    path = tmp_path / "cut.jsonl"
    path.write_bytes(_post(1) + b"\n" + _post(2)[:20])
    out = _run(ReplaySource([path]))
    assert len(out) == 2
    rejected = parse_line(out[1])
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("invalid JSON")
    assert rejected.origin == f"{path}:{len(_post(1)) + 1}"


def test_invalid_utf8_line_passes_through_and_is_rejected(tmp_path: Path) -> None:
    """An invalid UTF-8 line is emitted (nothing lost, nothing fatal) and rejected with a reason."""
    bad = _post(2, text="caf_").replace(b"caf_", b"caf\xe9")
    path = _write(tmp_path / "latin1.jsonl", _post(1), bad, _post(3))
    out = _run(ReplaySource([path]))
    assert len(out) == 3
    assert out[1].text.encode("utf-8", errors="surrogateescape") == bad
    results = [parse_line(line) for line in out]
    assert isinstance(results[0], Post)
    assert isinstance(results[2], Post)
    rejected = results[1]
    assert isinstance(rejected, Rejected)
    assert "UTF-8" in rejected.reason
    assert rejected.origin == f"{path}:{len(_post(1)) + 1}"


def test_resume_continues_after_the_last_emitted_line(tmp_path: Path) -> None:
    """A partition rebuilt from a snapshot offset emits exactly the lines not yet emitted."""
    lines = [_post(n) for n in range(7)]
    path = _write(tmp_path / "resume.jsonl", *lines)
    source = ReplaySource([path], batch_size=3)
    key = source.list_parts()[0]

    part = source.build_part("s", key, None)
    first = list(part.next_batch())
    state = part.snapshot()
    part.close()
    assert len(first) == 3
    assert state == _offsets(*lines)[3]

    resumed = source.build_part("s", key, state)
    rest = _drain(resumed)
    resumed.close()
    assert [line.text.encode() for line in [*first, *rest]] == lines
    assert rest[0].origin == f"{path}:{state}"


def test_overlong_line_is_cut_and_the_rest_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than MAX_LINE_BYTES is passed on cut short, and the next line is intact."""
    monkeypatch.setattr(replay, "MAX_LINE_BYTES", 16)
    long = b"x" * 50
    path = _write(tmp_path / "long.jsonl", long, b"short")
    out = _run(ReplaySource([path]))
    assert [line.text for line in out] == ["x" * 16, "short"]
    assert out[1].origin == f"{path}:51"
    rejected = parse_line(out[0])
    assert isinstance(rejected, Rejected)
    assert rejected.code is RejectCode.TOO_LARGE
    assert out[1].rejected is None


def test_a_line_of_exactly_the_limit_is_not_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line of exactly MAX_LINE_BYTES (its line end after the limit) is passed on whole."""
    monkeypatch.setattr(replay, "MAX_LINE_BYTES", 16)
    path = _write(tmp_path / "edge.jsonl", b"y" * 16, b"z" * 16, end=b"\r\n")
    out = _run(ReplaySource([path]))
    assert [(line.text, line.rejected) for line in out] == [("y" * 16, None), ("z" * 16, None)]


def test_a_line_dated_out_of_range_does_not_stall_a_paced_replay(tmp_path: Path) -> None:
    """Pacing ignores a created_at no post may have (year 9999): the lines after it are due."""
    late = _post(2).replace(b"2024-05-01T12:00:00.000Z", b"9999-12-31T23:59:59.000Z")
    path = _write(tmp_path / "far.jsonl", _post(1), late, _post(3, at=1.0))
    clock = TimeTestingGetter(T0)
    part = ReplaySource([path], speed=1.0, clock=clock.get).build_part("s", str(path), None)
    assert len(list(part.next_batch())) == 2  # the first line, and the far one, now
    clock.advance(timedelta(seconds=1))
    assert len(list(part.next_batch())) == 1
    part.close()


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(encoded(json.loads(_post(1, text="python #fun"))), min_size=1, max_size=8))
def test_a_file_of_mutated_lines_replays_every_line_to_a_post_or_a_rejection(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str | bytes]
) -> None:
    """Each line of a file of hostile lines, and the good one after them, comes out once:
    a usable post or a rejection with a known code; the source never raises."""
    raws = [
        (raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")).replace(
            b"\n", b" "
        )
        for raw in lines
    ]
    raws = [raw for raw in raws if raw.strip()]  # blank lines are keep-alives, skipped
    path = _write(tmp_path_factory.mktemp("fuzz") / "hostile.jsonl", *raws, _post(99))
    part = ReplaySource([path]).build_part("s", str(path), None)
    out = _drain(part)
    part.close()
    assert [line.text.encode("utf-8", "surrogateescape") for line in out] == [*raws, _post(99)]
    results = [parse_line(line) for line in out]
    for result in results:
        check_parsed(result)
    assert isinstance(results[-1], Post)


def test_missing_file_is_named_when_listed_or_built(tmp_path: Path) -> None:
    """A missing file raises FileNotFoundError naming its path when listed or built."""
    missing = tmp_path / "nope.jsonl"
    source = ReplaySource([missing])  # constructing opens nothing
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl") as listed:
        source.list_parts()
    assert listed.value.filename == str(missing)
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        source.build_part("s", str(missing), None)


def test_bad_options_are_rejected(tmp_path: Path) -> None:
    """No files, a file given twice, a non-positive speed, batch size or span raise ValueError."""
    path = tmp_path / "a.jsonl"
    with pytest.raises(ValueError, match="at least one"):
        ReplaySource([])
    with pytest.raises(ValueError, match="more than once"):
        ReplaySource([path, Path(str(path))])
    with pytest.raises(ValueError, match="speed"):
        ReplaySource([path], speed=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        ReplaySource([path], batch_size=0)
    with pytest.raises(ValueError, match="max_span"):
        ReplaySource([path], max_span=timedelta(0))


def test_speed_paces_lines_by_their_created_at(tmp_path: Path) -> None:
    """With speed=f, a line is due (created_at delta) / f after the previous one, via next_awake;
    lines without a time or going back in time do not wait."""
    lines = [_post(0, at=0), _post(1, at=1), _post(2, at=3), _post(3, at=None), _post(4, at=2)]
    path = _write(tmp_path / "paced.jsonl", *lines)
    clock = TimeTestingGetter(T0)
    source = ReplaySource([path], speed=2.0, clock=clock.get)
    part = source.build_part("s", str(path), None)
    assert part.next_awake() is None  # nothing read yet: read at once

    assert [line.text.encode() for line in part.next_batch()] == lines[:1]
    assert part.next_awake() == T0 + timedelta(seconds=0.5)
    assert part.snapshot() == _offsets(*lines)[1]  # the held line is not emitted yet

    clock.advance(timedelta(seconds=0.4))
    assert part.next_batch() == []
    clock.advance(timedelta(seconds=0.1))
    assert [line.text.encode() for line in part.next_batch()] == lines[1:2]
    assert part.next_awake() == T0 + timedelta(seconds=1.5)

    clock.advance(timedelta(seconds=1.0))
    assert [line.text.encode() for line in part.next_batch()] == lines[2:]
    with pytest.raises(StopIteration):
        part.next_batch()


def test_paced_replay_does_not_burst_after_a_stall(tmp_path: Path) -> None:
    """A paced replay that fell far behind resumes at pace instead of replaying the backlog."""
    lines = [_post(n, at=n) for n in range(10)]
    path = _write(tmp_path / "stall.jsonl", *lines)
    clock = TimeTestingGetter(T0)
    part = ReplaySource([path], speed=1.0, clock=clock.get).build_part("s", str(path), None)
    part.next_batch()
    clock.advance(timedelta(seconds=60))
    late = list(part.next_batch())
    # The line held before the stall, then only MAX_LAG (1 s) of backlog: the lines at 2 s
    # and 3 s; the line at 4 s is a second away again.
    assert [json.loads(line.text)["data"]["id"] for line in late] == ["1", "2", "3"]
    assert part.next_awake() == clock.now + timedelta(seconds=1)


def test_paced_flow_runs(tmp_path: Path) -> None:
    """A fast paced replay runs through a real dataflow and emits every line."""
    lines = [_post(n, at=n) for n in range(5)]
    path = _write(tmp_path / "fast.jsonl", *lines)
    out = _run(ReplaySource([path], speed=1000.0))
    assert [line.text.encode() for line in out] == lines


def test_replays_a_synthetic_file(tmp_path: Path) -> None:
    """A file written by write_synthetic replays to lines that all parse into posts."""
    path = tmp_path / "synthetic.jsonl"
    written = write_synthetic(path, count=300, seed=11, start=T0, rate=100.0)
    out = _run(ReplaySource([path]))
    assert len(out) == written
    assert all(isinstance(parse_line(line), Post) for line in out)


def test_a_batch_covers_a_bounded_span_of_event_time(tmp_path: Path) -> None:
    """Unpaced batches stop at MAX_BATCH_SPAN of event time, bounding downstream reordering."""
    path = _write(tmp_path / "slow.jsonl", *(_post(n, at=float(n)) for n in range(20)))
    sizes = _batch_sizes(ReplaySource([path], batch_size=500), path)
    span = int(replay.MAX_BATCH_SPAN.total_seconds())
    assert sum(sizes) == 20
    assert max(sizes) == span + 1


def test_the_batch_span_can_be_set(tmp_path: Path) -> None:
    """``max_span`` (half the windows' wait, as the commands pass it) bounds each batch."""
    path = _write(tmp_path / "slow.jsonl", *(_post(n, at=float(n)) for n in range(40)))
    sizes = _batch_sizes(ReplaySource([path], max_span=timedelta(seconds=15)), path)
    assert sum(sizes) == 40
    assert max(sizes) == 16


def _batch_sizes(source: ReplaySource, path: Path) -> list[int]:
    """The size of every batch the partition of ``path`` gives, to its end."""
    part = source.build_part("s", str(path), None)
    sizes = []
    while True:
        try:
            sizes.append(len(list(part.next_batch())))
        except StopIteration:
            return sizes


def test_a_stored_offset_resumes_at_its_line_and_reports_positions(tmp_path: Path) -> None:
    """Without a resume state the file starts at the store's offset (the next line to emit);
    positions follow, and a finished file's is forgotten."""
    lines = [_post(n) for n in range(3)]
    path = _write(tmp_path / "a.jsonl", *lines)
    offsets = _offsets(*lines)
    positions = Positions()
    key = replay_key(str(path))
    source = ReplaySource([path], positions=positions, resume={key: offsets[1]})
    part = source.build_part("read", str(path), None)
    assert [line.origin for line in _drain(part)] == [f"{path}:{at}" for at in offsets[1:]]
    assert positions.final() == [SourceCursor(key, None)]  # finished: forget it


def test_a_stored_offset_that_no_longer_fits_the_file_starts_over(tmp_path: Path) -> None:
    """An offset that is not just after a line end (the file changed) replays from the start."""
    lines = [_post(n) for n in range(2)]
    path = _write(tmp_path / "a.jsonl", *lines)
    source = ReplaySource([path], resume={replay_key(str(path)): 5})
    part = source.build_part("read", str(path), None)
    assert len(_drain(part)) == 2


def test_a_recovery_snapshot_wins_over_the_stored_offset(tmp_path: Path) -> None:
    """Bytewax's resume state, when there is one, is where the file resumes."""
    lines = [_post(n) for n in range(3)]
    path = _write(tmp_path / "a.jsonl", *lines)
    offsets = _offsets(*lines)
    source = ReplaySource([path], resume={replay_key(str(path)): offsets[2]})
    part = source.build_part("read", str(path), offsets[1])
    assert len(_drain(part)) == 2
