"""Where each source is in its input, kept in the store so a restart resumes there.

A resumable source names each of its partitions by a key (``bluesky:<Jetstream
URL>``, ``replay:<path>``) and reports its position as it emits:
Jetstream's ``time_us`` of the last post emitted, a replay file's byte offset
of the next line. :class:`Positions` is the board the source writes and the
store writes from, in two ways that never put a position in the store before
the posts it covers:

* **During the run** the store sink adds the *settled* positions to the batch
  it is writing, in the same transaction. A position settles one epoch after
  the source emitted it (the source marks it when Bytewax snapshots the
  partition, at the end of every epoch, and it settles at the next): by then
  the posts emitted before it have long passed the flow's steps, which hold
  none of them, and were handed to the sink ahead of the position.
* **When the flow has ended** (its input ended: a stop, the end of a file, a
  failed source), every sink has written and closed, so the runner writes the
  latest positions: exactly where the next run starts. A finished file's
  position is forgotten instead, so a rerun replays it from the start.

After a crash (SIGKILL, power loss) the store holds a settled position, an
epoch or two behind: the restart reads that much again, which the store
absorbs (posts by id).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Positions", "SourceCursor", "jetstream_key", "replay_key"]


@dataclass(frozen=True, slots=True)
class SourceCursor:
    """Where the source partition ``source`` resumes; ``position=None`` forgets it."""

    source: str
    position: int | None


def jetstream_key(url: str) -> str:
    """The cursor key of a Jetstream endpoint."""
    return f"bluesky:{url}"


def replay_key(path: str) -> str:
    """The cursor key of a replay file, by the path it was given as."""
    return f"replay:{path}"


@dataclass(slots=True)
class _Position:
    latest: int | None = None
    marked: int | None = None
    settled: int | None = None
    written: int | None = None
    finished: bool = False


class Positions:
    """Positions of a flow's resumable source partitions, by key (thread-safe).

    Sources call :meth:`advance`, :meth:`mark` (from ``snapshot``) and
    :meth:`finish`; the store sink calls :meth:`take_settled`, the runner
    :meth:`final` once the flow has ended.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: dict[str, _Position] = {}

    def _get(self, key: str) -> _Position:
        return self._positions.setdefault(key, _Position())

    def advance(self, key: str, position: int) -> None:
        """The partition ``key`` has emitted everything before ``position``."""
        with self._lock:
            entry = self._get(key)
            entry.latest = position
            entry.finished = False

    def finish(self, key: str) -> None:
        """The partition ``key`` reached the end of its input."""
        with self._lock:
            self._get(key).finished = True

    def mark(self, key: str) -> None:
        """An epoch ended (Bytewax snapshots the partition): the last mark settles."""
        with self._lock:
            entry = self._get(key)
            entry.settled = entry.marked
            entry.marked = entry.latest

    def take_settled(self) -> list[SourceCursor]:
        """Settled positions not handed out before, to write with the current batch."""
        with self._lock:
            taken = []
            for key, entry in self._positions.items():
                if entry.settled is not None and entry.settled != entry.written:
                    entry.written = entry.settled
                    taken.append(SourceCursor(key, entry.settled))
            return taken

    def final(self) -> list[SourceCursor]:
        """Every partition's latest position (``None`` once finished), for after the flow."""
        with self._lock:
            return [
                SourceCursor(key, None if entry.finished else entry.latest)
                for key, entry in self._positions.items()
                if entry.finished or entry.latest is not None
            ]
