"""Fuzz one running server with 100,000 hostile frames; report the count and any failures.

Run from the repository root::

    .venv/bin/python -m bench.fuzz_protocol [--cases 100000] [--heartbeat-every 500]

The strategies, the server thread and the oracle are those of
``tests/server/test_fuzz.py`` (see ``tests/protocol_fuzz.py``); this script runs
many more cases, keeps going after a failure (reconnecting), and prints every
failing frame at the end. Exit status 1 if any case failed.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, Phase, given, settings

# Appended, not prepended: tests/server must not shadow the server package.
from bench.common import figure, progress
from tests.helpers.protocol_fuzz import Frame, frames, fuzzing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--heartbeat-every", type=int, default=500)
    args = parser.parse_args()
    failures: list[tuple[Frame, str]] = []
    started = time.perf_counter()

    with fuzzing() as (server, fuzzer, watcher):

        @settings(
            max_examples=args.cases,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=frames())
        def case(frame: Frame) -> None:
            try:
                fuzzer.check(frame)
            except Exception as exc:  # recorded; the run goes on with fresh connections
                failures.append((frame, f"{type(exc).__name__}: {exc}"))
                fuzzer.close()
            if fuzzer.cases % args.heartbeat_every == 0:
                watcher.heartbeat()
                progress(f"{fuzzer.cases} cases, {len(failures)} failures")

        case()
        watcher.heartbeat()
        healthy = server.healthz() == "ok\n" and server.server.flow_running
        seconds = time.perf_counter() - started

    figure("cases", fuzzer.cases)
    figure("answered_with_an_error", fuzzer.errors)
    figure("closed_by_the_server", fuzzer.closes)
    figure("watcher_heartbeats", watcher.beats)
    figure("server_healthy_after", healthy)
    figure("seconds", f"{seconds:.1f}")
    figure("cases_per_second", f"{fuzzer.cases / seconds:.0f}")
    figure("failures", len(failures))
    for frame, problem in failures[:20]:
        print(f"  {problem[:300]}\n    frame: {frame!r:.300}")
    return 1 if failures or not healthy else 0


if __name__ == "__main__":
    raise SystemExit(main())
