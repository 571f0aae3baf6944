"""A bytewax source that replays files of X API v2 stream lines.

Each file is one partition, keyed by its path; the resume state is the byte
offset of the next line to emit, so a resumed flow continues exactly after the
last line it emitted. Files are read a line at a time: memory stays bounded by
``batch_size`` lines of at most :data:`MAX_LINE_BYTES` each.
"""

from __future__ import annotations

import errno
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.model import EARLIEST_POST_TIME, LATEST_POST_TIME, Line, RejectCode, parse_time
from flows.runtime.cursors import Positions, replay_key

__all__ = ["MAX_BATCH_SPAN", "MAX_LAG", "MAX_LINE_BYTES", "ReplaySource"]

MAX_LINE_BYTES: Final = 1 << 20
"""Longest line passed on whole; a longer one is cut to this many bytes, rejected as
``too-large`` (:attr:`flows.model.Line.rejected`), and the rest of it is skipped."""

MAX_BATCH_SPAN: Final = timedelta(seconds=5)
"""Most event time one batch covers, unless the source is given ``max_span``.
Keyed steps downstream regroup a batch by key, which can reorder its posts;
keeping the span at most half the windows' ``wait`` keeps that reordering
inside it, so a fast replay does not make posts late. Callers that know the
wait pass ``max_span=wait / 2``."""

MAX_LAG: Final = timedelta(seconds=1)
"""How far a paced replay may fall behind its schedule before it stops catching up.

When the dataflow is slower than the requested pace, the replay emits at most
this much backlog at once and then continues at pace from where it is, instead
of bursting to make up for lost time.
"""

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""

# Only what pacing needs: the first created_at of the line, which in an X
# stream line is the post's own (``data`` comes first).
_CREATED_AT: Final = re.compile(rb'"created_at"\s*:\s*"([^"\\]{1,64})"')


_TOO_LARGE: Final = f"line longer than {MAX_LINE_BYTES} bytes (only its start is kept)"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _created_at(raw: bytes) -> datetime | None:
    """The line's ``created_at`` found without parsing the JSON, or ``None``.

    ``None`` too for a time no post may have (the parser rejects the line).
    """
    found = _CREATED_AT.search(raw)
    if found is None:
        return None
    try:
        moment = parse_time(found.group(1).decode("ascii"))
    except ValueError:  # UnicodeDecodeError is a ValueError
        return None
    return moment if EARLIEST_POST_TIME <= moment < LATEST_POST_TIME else None


def _not_found(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "replay input file not found", path)


@dataclass(frozen=True, slots=True)
class _Held:
    """A line read ahead that is not due yet."""

    line: Line
    size: int
    """Bytes it takes in the file, line end included."""
    created_at: datetime | None
    due: datetime


class _ReplayPartition(StatefulSourcePartition[Line, int]):
    """Reads one file from a byte offset, a line at a time, optionally paced."""

    def __init__(
        self,
        key: str,
        file: BinaryIO,
        offset: int,
        *,
        speed: float | None,
        batch: int,
        max_span: timedelta,
        clock: Clock,
        positions: Positions | None = None,
    ) -> None:
        self._key = key
        self._positions = positions
        self._cursor_key = replay_key(key)
        self._file = file
        self._offset = offset
        """Byte offset of the next line to emit (the held one, if any)."""
        self._speed = speed
        self._batch = batch
        self._max_span = max_span
        self._clock = clock
        self._held: _Held | None = None
        # Pacing: event time and scheduled wall time of the last emitted timed line.
        self._last_created: datetime | None = None
        self._last_due: datetime | None = None

    def _read(self) -> tuple[bytes, int, bool] | None:
        """The next raw line without its line end, its size in the file, and whether it
        was cut (longer than :data:`MAX_LINE_BYTES`); ``None`` at EOF.

        Raises :class:`OSError` naming the file when it cannot be read.
        """
        try:
            return self._read_line()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), self._key) from exc

    def _read_line(self) -> tuple[bytes, int, bool] | None:
        raw = self._file.readline(MAX_LINE_BYTES)
        if not raw:
            return None
        size = len(raw)
        cut = False
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip the rest of an overlong line
                rest = self._file.readline(MAX_LINE_BYTES)
                size += len(rest)
                cut = cut or rest not in (b"\n", b"\r\n", b"")
                if not rest or rest.endswith(b"\n"):
                    break
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        return raw, size, cut

    def _schedule(self, created_at: datetime | None, now: datetime) -> datetime:
        """When a line created at ``created_at`` is due, given the lines already emitted."""
        if self._speed is None or created_at is None:
            return now
        if self._last_created is None or self._last_due is None:
            return now
        try:
            gap = max(created_at - self._last_created, timedelta(0)) / self._speed
            return max(self._last_due + gap, now - MAX_LAG)
        except OverflowError:  # a gap of millennia at this speed: not worth waiting for
            return now

    def _emitted(self, held: _Held) -> None:
        self._offset += held.size
        if held.created_at is not None:
            self._last_created = held.created_at
            self._last_due = held.due

    def next_batch(self) -> list[Line]:
        now = self._clock()
        batch: list[Line] = []
        first: datetime | None = None
        while len(batch) < self._batch:
            held = self._held
            if held is None:
                read = self._read()
                if read is None:
                    if batch:
                        break
                    if self._positions is not None:
                        self._positions.finish(self._cursor_key)
                    raise StopIteration
                raw, size, cut = read
                if not raw.strip() and not cut:  # X keep-alive
                    self._offset += size
                    continue
                created_at = None if cut else _created_at(raw)
                line = Line(
                    raw.decode("utf-8", errors="surrogateescape"),
                    origin=f"{self._key}:{self._offset}",
                    rejected=(RejectCode.TOO_LARGE, _TOO_LARGE) if cut else None,
                )
                held = _Held(line, size, created_at, self._schedule(created_at, now))
            if held.due > now:
                self._held = held
                break
            if held.created_at is not None:
                first = first or held.created_at
                if batch and abs(held.created_at - first) > self._max_span:
                    self._held = held  # starts the next batch
                    break
            self._held = None
            batch.append(held.line)
            self._emitted(held)
        if batch and self._positions is not None:
            self._positions.advance(self._cursor_key, self._offset)
        return batch

    def next_awake(self) -> datetime | None:
        return None if self._held is None else self._held.due

    def snapshot(self) -> int:
        if self._positions is not None:
            self._positions.mark(self._cursor_key)
        return self._offset

    def close(self) -> None:
        self._file.close()


class ReplaySource(FixedPartitionedSource[Line, int]):
    """Replays files of X API v2 stream lines, one partition per file.

    Lines come out in file order with ``origin = f"{path}:{byte_offset}"``;
    blank lines (X keep-alives) are skipped. Bytes are decoded as UTF-8 with
    ``surrogateescape``, so an invalid line is passed on (and rejected by
    :func:`flows.platforms.x.parse_line`) rather than lost or fatal.

    With ``speed=None`` lines are emitted as fast as the dataflow takes them.
    With ``speed=f`` consecutive lines are ``(created_at delta) / f`` apart,
    paced with :meth:`next_awake`; a line without a readable ``created_at``, or
    older than the one before it, does not wait.

    A batch holds at most ``batch_size`` lines spanning at most ``max_span`` of
    event time (default :data:`MAX_BATCH_SPAN`; pass half the windows' wait).
    Large batches matter on a cluster, where items cross between processes in
    one message per batch.

    Raises :class:`ValueError` for no or duplicate paths, a ``speed`` that is
    not positive and finite, a ``batch_size`` below 1 or a ``max_span`` that is
    not positive, and
    :class:`FileNotFoundError` naming the path when a file is missing as the
    flow lists or builds the partitions.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        speed: float | None = None,
        batch_size: int = 2000,
        max_span: timedelta = MAX_BATCH_SPAN,
        clock: Clock | None = None,
        positions: Positions | None = None,
        resume: Mapping[str, int] | None = None,
    ) -> None:
        """Configure the source; no file is opened until the flow builds it.

        ``clock`` replaces the wall clock used for pacing, for tests.
        ``positions`` receives each file's offset under ``replay:<path>``;
        ``resume`` maps such keys to the offsets the store kept, where a file
        without a resume state (no recovery snapshot) starts.
        """
        if not paths:
            raise ValueError("ReplaySource needs at least one file")
        keys = [str(path) for path in paths]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"files given more than once: {', '.join(duplicates)}")
        if speed is not None and not (0 < speed < math.inf):
            raise ValueError(f"speed must be a positive, finite factor or None, got {speed}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_span <= timedelta(0):
            raise ValueError(f"max_span must be positive, got {max_span}")
        self.paths = tuple(paths)
        self.speed = speed
        self.batch_size = batch_size
        self.max_span = max_span
        self._clock = clock or _utc_now
        self.positions = positions
        self.resume = dict(resume or {})

    def list_parts(self) -> list[str]:
        """One partition per file, keyed by its path; every file must exist."""
        for path in self.paths:
            if not path.exists():
                raise _not_found(str(path))
        return [str(path) for path in self.paths]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> StatefulSourcePartition[Line, int]:
        """Open ``for_part`` and seek to ``resume_state`` (a byte offset), else to the
        offset kept in the store if it still falls after a line of the file, else to 0."""
        try:
            file = Path(for_part).open("rb")  # noqa: SIM115 - closed by the partition
        except FileNotFoundError:
            raise _not_found(for_part) from None
        try:
            if resume_state is not None:
                offset = resume_state
            else:
                offset = _line_start(file, self.resume.get(replay_key(for_part), 0))
            file.seek(offset)
        except BaseException:
            file.close()
            raise
        return _ReplayPartition(
            for_part,
            file,
            offset,
            speed=self.speed,
            batch=self.batch_size,
            max_span=self.max_span,
            clock=self._clock,
            positions=self.positions,
        )


def _line_start(file: BinaryIO, offset: int) -> int:
    """``offset`` if a line of ``file`` starts there (0, or just after a line end), else 0.

    A kept offset that no longer fits the file (it was rewritten or cut) starts over.
    """
    if offset <= 0:
        return 0
    file.seek(offset - 1)
    return offset if file.read(1) == b"\n" else 0
