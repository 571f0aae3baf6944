"""Crash recovery for senti's dataflows, on top of bytewax's recovery store.

With a recovery directory, bytewax snapshots the flow's state (the replay
source's byte offsets, the matcher's tracked queries, the open windows) at the
end of every epoch, and a rerun of the same flow resumes from the last complete
snapshot instead of starting over. Output written after that snapshot is
written again: the store is idempotent (posts by id, windows by query and
start), so an at-least-once resume leaves it exactly as an uninterrupted run.

Two rules follow from how bytewax resumes:

* Rerun with the same inputs: the same replay files, given by the same paths,
  and the same ``--track`` queries. The snapshot is keyed by file path and
  holds the queries of the first run.
* Stopping must not look like end of input, since end of input closes every
  window and a resumed run would then start those windows again from empty.
  :func:`stoppable` then stops by raising :class:`Interrupted` instead, which
  aborts the flow exactly as a crash would (the last snapshot stays the resume
  point); :func:`is_interruption` tells that abort from a real failure.

Snapshots are Python pickles: load them only from a directory no one else can
write. :func:`prepare_recovery_dir` creates it with mode ``0700`` and refuses a
directory others may write to.
"""

from __future__ import annotations

import stat
import threading
from datetime import timedelta
from pathlib import Path
from typing import Final, TypeVar

from bytewax.inputs import FixedPartitionedSource
from bytewax.recovery import RecoveryConfig, init_db_dir

from flows.errors import SentiError
from flows.sources.control import Interrupted, Stoppable

__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "Interrupted",
    "Recovery",
    "RecoveryError",
    "is_interruption",
    "prepare_recovery_dir",
    "stoppable",
]

DEFAULT_SNAPSHOT_INTERVAL: Final = timedelta(seconds=5)
"""Epoch length, hence how often state is snapshotted (and at most how much is redone)."""

PARTITIONS: Final = 1
"""Recovery partitions created in a new directory; bytewax spreads any number of
workers over them, one is enough for a single process."""

_PARTITION_GLOB: Final = "part-*.sqlite3"


class RecoveryError(SentiError):
    """The recovery directory cannot be used: not a directory, not ours, or unsafe."""


class Recovery:
    """Where and how often a flow snapshots (for :class:`~flows.runtime.runner.FlowThread`)."""

    def __init__(
        self, directory: Path, *, snapshot_interval: timedelta = DEFAULT_SNAPSHOT_INTERVAL
    ) -> None:
        if snapshot_interval <= timedelta(0):
            raise ValueError(f"snapshot interval must be positive, not {snapshot_interval}")
        self.directory = directory
        self.snapshot_interval = snapshot_interval

    def config(self) -> RecoveryConfig:
        """bytewax's configuration for :attr:`directory`."""
        return RecoveryConfig(self.directory)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"Recovery({str(self.directory)!r}, snapshot_interval={self.snapshot_interval})"


def prepare_recovery_dir(directory: Path, *, partitions: int = PARTITIONS) -> bool:
    """Make ``directory`` ready for bytewax recovery; return whether it was new.

    A missing or empty directory is created with mode ``0700`` and initialised
    with ``partitions`` empty recovery databases, as ``python -m
    bytewax.recovery DIR N`` does. A directory that already holds partitions is
    left as it is, so the next run resumes from it.

    Raises :class:`RecoveryError` if ``directory`` is not a directory, or if
    other users may write to it (its snapshots are pickles, loading them runs
    code).
    """
    if directory.exists() and not directory.is_dir():
        raise RecoveryError(f"recovery path is not a directory: {directory}")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RecoveryError(f"cannot create {directory}: {exc.strerror or exc}") from None
    mode = directory.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RecoveryError(
            f"recovery directory {directory} is writable by other users "
            f"(mode {stat.S_IMODE(mode):o}): its snapshots are pickles, use chmod 700"
        )
    if any(directory.glob(_PARTITION_GLOB)):
        return False
    try:
        init_db_dir(directory, partitions)  # type: ignore[no-untyped-call]
    except Exception as exc:  # bytewax raises its own errors for unusable directories
        raise RecoveryError(f"cannot initialise {directory}: {exc}") from None
    for part in directory.glob(_PARTITION_GLOB):
        part.chmod(0o600)
    return True


def is_interruption(error: BaseException | None) -> bool:
    """Whether ``error`` (as bytewax re-raised it) is an :class:`Interrupted` abort."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Interrupted):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


X = TypeVar("X")
S = TypeVar("S")


def stoppable(
    source: FixedPartitionedSource[X, S], stop: threading.Event, *, recovery: Recovery | None
) -> FixedPartitionedSource[X, S]:
    """``source`` ending when ``stop`` is set: cleanly without recovery, by abort with it."""
    return Stoppable(source, stop, abort=recovery is not None)
