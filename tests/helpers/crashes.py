"""Crash a ``senti replay`` subprocess on purpose and compare stores: for the recovery tests.

Shared by ``tests/test_recovery.py`` and ``bench/recovery.py``. The store is
watched read-only (``mode=ro``) while the flow writes it, so the test waits for
real progress instead of sleeping; the comparison reads every table but the
columns that hold wall-clock times.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL = 0.01
"""Seconds between two reads of the store while waiting for progress."""

TRACKED = ["the", "python", "climate", "#sad", "new week"]
"""Queries matching about half of a synthetic stream, so the store grows steadily."""


def senti_command(*args: str | Path) -> list[str]:
    """``python -m server.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "server.cli", *map(str, args)]


def replay_command(
    posts: Path,
    store: Path,
    *,
    recovery: Path | None = None,
    snapshot_interval: float = 0.5,
    window: float = 10.0,
    speed: float | None = None,
    workers: int = 1,
) -> list[str]:
    """The replay every run of a recovery test makes (same files, same queries).

    ``speed`` paces it (``senti replay --speed``): a run to be killed at a given
    point must not be able to finish the file between two looks at the store.
    """
    args: list[str | Path] = [
        "replay", posts, "--store", f"sqlite:///{store}", "--window", str(window),
    ]  # fmt: skip
    if speed is not None:
        args += ["--speed", str(speed)]
    if workers != 1:
        args += ["--workers", str(workers)]
    for query in TRACKED:
        args += ["--track", query]
    if recovery is not None:
        args += ["--recovery-dir", recovery, "--snapshot-interval", str(snapshot_interval)]
    return senti_command(*args)


def environment() -> dict[str, str]:
    """The subprocess environment: UTF-8 I/O, no Rust backtraces cluttering stderr."""
    return os.environ | {"PYTHONUTF8": "1", "RUST_BACKTRACE": "0"}


def generate(out: Path, count: int, *, seed: int = 7, timeout: float = 120) -> None:
    """Write ``count`` synthetic posts to ``out`` with ``senti generate``."""
    subprocess.run(
        senti_command(
            *("generate", "--count", str(count), "--seed", str(seed), "--out", out),
            *("--start", "2024-05-01T00:00:00Z"),
        ),
        check=True,
        capture_output=True,
        timeout=timeout,
        env=environment(),
    )


def run_to_end(command: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end; fail with its stderr if it does not succeed."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=environment()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def stored_posts(store: Path) -> int:
    """Posts in the store, read without writing or locking it; 0 before it exists."""
    if not store.exists():
        return 0
    try:
        with _readonly(store) as conn:
            (count,) = conn.execute("SELECT count(*) FROM posts").fetchone()
    except sqlite3.OperationalError:  # tables not created yet, or busy for a moment
        return 0
    return int(count)


@dataclass(frozen=True)
class Interruption:
    """Where one run was stopped."""

    posts: int
    """Posts in the store when the signal was sent."""
    seconds: float
    """From start to signal."""
    returncode: int
    stderr: str


def run_until(
    command: list[str],
    store: Path,
    posts: int,
    *,
    sig: signal.Signals = signal.SIGKILL,
    timeout: float,
) -> Interruption:
    """Start ``command``, send ``sig`` once the store holds ``posts`` posts, wait for the exit.

    Fails if the process ends on its own or the store does not get there in ``timeout`` s.
    """
    started = time.perf_counter()
    deadline = started + timeout
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    ) as process:
        try:
            while (seen := stored_posts(store)) < posts:
                if process.poll() is not None:
                    raise AssertionError(
                        f"the run ended (exit {process.returncode}) at {seen} posts, "
                        f"before {posts}: {process.stderr.read()[-2000:] if process.stderr else ''}"
                    )
                if time.perf_counter() > deadline:
                    raise AssertionError(f"only {seen} of {posts} posts after {timeout} s")
                time.sleep(POLL)  # polling the store, not waiting blindly
            process.send_signal(sig)
            seconds = time.perf_counter() - started
            _, stderr = process.communicate(timeout=max(deadline - time.perf_counter(), 10))
        finally:
            if process.poll() is None:
                process.kill()
    return Interruption(seen, seconds, process.returncode, stderr)


@dataclass(frozen=True)
class StoreState:
    """Everything a replay writes to the store, wall-clock columns left out."""

    posts: frozenset[tuple[Any, ...]]
    matches: frozenset[tuple[Any, ...]]
    windows: frozenset[tuple[Any, ...]]
    late: frozenset[tuple[Any, ...]]
    rejected: frozenset[tuple[Any, ...]]
    queries: frozenset[tuple[Any, ...]]

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(getattr(self, name)) for name in self.__dataclass_fields__}


def read_state(store: Path) -> StoreState:
    """Read ``store`` whole (read-only)."""
    with _readonly(store) as conn:

        def rows(sql: str) -> frozenset[tuple[Any, ...]]:
            return frozenset(conn.execute(sql).fetchall())

        return StoreState(
            posts=rows("SELECT * FROM posts"),
            matches=rows("SELECT * FROM matches"),
            windows=rows("SELECT * FROM windows"),
            late=rows("SELECT * FROM late_posts"),
            rejected=rows("SELECT origin, reason, raw FROM rejected"),
            queries=rows("SELECT key, active FROM queries"),
        )


def integrity(store: Path) -> str:
    """The result of ``PRAGMA integrity_check`` (``"ok"`` when sound)."""
    with _readonly(store) as conn:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def _readonly(store: Path) -> closing[sqlite3.Connection]:
    """A read-only connection to ``store``, closed at the end of the ``with`` block."""
    return closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5))
