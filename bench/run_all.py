"""Run every benchmark at sizes that fit in about ten minutes, then regenerate the report.

    .venv/bin/python -m bench.run_all [--quick]     (``make bench``)

The sizes here are smaller than each script's defaults where those would not fit
in the budget on a 2-core machine; the report states the sizes used.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import progress

PLAN: tuple[tuple[str, list[str]], ...] = (
    ("throughput", ["--posts", "200000", "--repeat", "3"]),
    ("routing", ["--posts", "20000", "--repeat", "2"]),
    ("latency", ["--warmup", "5", "--seconds", "15", "--repeat", "3"]),
    ("fanout", ["--clients", "10000", "--processes", "4", "--seconds", "15"]),
    ("workers", ["--posts", "200000", "--repeat", "5"]),
)


def main() -> None:
    """Run each script as a subprocess, then ``report.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every script in --quick mode")
    args = parser.parse_args()
    started = time.perf_counter()
    failed = []
    for name, options in PLAN:
        command = [sys.executable, "-m", f"bench.{name}"]
        command += ["--quick"] if args.quick else options
        progress(f"== {name}: {' '.join(command[1:])}")
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    if not args.quick:
        subprocess.run([sys.executable, "-m", "bench.report"], check=True)
    progress(f"all done in {time.perf_counter() - started:.0f} s; failed: {failed or 'none'}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
