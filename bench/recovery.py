"""Crash recovery at scale: a 100,000-post replay killed three times and resumed.

Run from the repository root::

    .venv/bin/python -m bench.recovery [--posts 100000] [--kills 3] [--seed 1]

The same procedure as ``tests/test_recovery.py`` at a larger size: an
uninterrupted replay makes the reference store, then a replay with a recovery
directory is killed with SIGKILL at random points (after the store shows
progress) and rerun until it completes. Prints the time of each run, where each
kill landed, the work redone, and whether the final store equals the reference
(exit status 1 if not). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

# Appended, not prepended: tests/server must not shadow the server package.
from bench.common import cache_dir, figure, progress
from tests.helpers.crashes import (
    generate,
    integrity,
    read_state,
    replay_command,
    run_to_end,
    run_until,
)

TIMEOUT = 1_800.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snapshot-interval", type=float, default=1.0)
    args = parser.parse_args()

    stream = cache_dir() / f"recovery-{args.posts}.jsonl"
    if not stream.exists():
        progress(f"generating {args.posts} posts")
        generate(stream, args.posts, timeout=TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="senti-recovery-") as tmp:
        work = Path(tmp)
        progress("reference run")
        started = time.perf_counter()
        run_to_end(replay_command(stream, work / "reference.db"), timeout=TIMEOUT)
        reference_seconds = time.perf_counter() - started
        reference = read_state(work / "reference.db")
        total = len(reference.posts)

        store, recovery = work / "senti.db", work / "recovery"
        command = replay_command(
            stream, store, recovery=recovery, snapshot_interval=args.snapshot_interval
        )
        points = sorted(random.Random(args.seed).sample(range(total // 10, total * 9 // 10), 3))
        started = time.perf_counter()
        for number, point in enumerate(points[: args.kills], 1):
            stopped = run_until(command, store, point, timeout=TIMEOUT)
            progress(f"kill {number}: SIGKILL at {stopped.posts} posts, {stopped.seconds:.1f} s")
            figure(f"kill_{number}_stored_posts", stopped.posts)
            figure(f"kill_{number}_after", f"{stopped.seconds:.2f}", "s")
        progress("final run")
        final_started = time.perf_counter()
        last = run_to_end(command, timeout=TIMEOUT)
        final_seconds = time.perf_counter() - final_started
        crashed_seconds = time.perf_counter() - started
        resumed = read_state(store)
        sound = integrity(store)

    same = resumed == reference
    figure("posts_in_file", args.posts)
    figure("matched_posts", total)
    figure("reference_run", f"{reference_seconds:.2f}", "s")
    figure("final_resumed_run", f"{final_seconds:.2f}", "s")
    figure("all_runs_with_kills", f"{crashed_seconds:.2f}", "s")
    figure("overhead_of_kills", f"{crashed_seconds / reference_seconds:.2f}", "x reference")
    figure("final_run_summary", last.stderr.strip().splitlines()[-1])
    figure("store_rows_reference", reference.counts())
    figure("store_rows_resumed", resumed.counts())
    figure("identical_to_reference", same)
    figure("integrity_check", sound)
    return 0 if same and sound == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
