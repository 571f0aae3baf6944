"""Scaling: the dataflow on 2 Bytewax processes vs 1, on this 2-core machine.

The replay source has one partition per file, so the stream is split into two
files (alternate lines, so both span the same event time). Three layouts run
the same flow (:func:`common.build_replay_flow`, 1,000 queries, store off),
each as fresh subprocesses calling ``bytewax.run.cli_main``:

* ``1 process``: one worker reads both files;
* ``2 processes``: a cluster, ``cli_main(flow, workers_per_process=1,
  process_id=i, addresses=[...])`` in each, one file each;
* ``1 process, 2 threads``: ``workers_per_process=2`` (one GIL).

Elapsed time is from the earliest process start of ``cli_main`` to the latest
end, so cluster start-up is included; process 1 starts it once process 0
listens, as a deployment that starts worker 0 first would (started together,
timely's first refused connection costs a second of retry). Windows wait the
replay's default 30 s: the processes read their files at their own pace, and
each lane keeps its own event-time clock (flows/windows.py), so the one ahead
does not make the other's posts late. Each layout's matches, late posts and
CPU seconds are recorded to show that every layout does the same work.

    .venv/bin/python -m bench.workers [--posts 20000] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cache_dir, figure, median, progress, write_result
from bench.serving import free_port
from bench.workload import queries_for, sample_texts, stream_file

TARGET = 1.7
LAYOUTS = ("1 process", "2 processes", "1 process, 2 threads")


def split(path: Path, directory: Path) -> list[Path]:
    """Two files of alternate lines of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    halves = [directory / f"{path.stem}-{part}.jsonl" for part in (0, 1)]
    for part, half in enumerate(halves):
        half.write_text("".join(lines[part::2]), encoding="utf-8")
    return halves


def _child(args: argparse.Namespace) -> None:
    """One process of a layout: run the flow, print its timing as JSON."""
    from bytewax.run import cli_main  # noqa: PLC0415

    from bench.common import build_replay_flow  # noqa: PLC0415
    from flows.dataflow import window_wait  # noqa: PLC0415
    from flows.runtime.runner import settled_heap  # noqa: PLC0415
    from server.cluster import wait_for_listener  # noqa: PLC0415

    queries = json.loads(Path(args.queries_file).read_text())
    addresses = args.addresses.split(",") if args.addresses else None
    workers = (len(addresses) if addresses else 1) * args.threads
    # One lane per worker, as senti replay --workers and senti dataflow set it.
    flow, summary = build_replay_flow(
        [Path(p) for p in args.files], queries, lanes=workers, wait=window_wait(None, live=False)
    )
    # As senti dataflow -p does: started together, timely's first refused
    # connection would cost a second of retry in every run.
    if addresses and args.process_id and not wait_for_listener(addresses[0], timeout=60):
        raise RuntimeError(f"process 0 never listened on {addresses[0]}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.time()
    with settled_heap():  # as senti replay and senti dataflow run their flows
        cli_main(
            flow,
            workers_per_process=args.threads,
            process_id=args.process_id,
            addresses=addresses,
        )
    ended = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(
        json.dumps(
            {
                "start": started,
                "end": ended,
                "posts": summary.posts,
                "cpu": cpu,
                "late": summary.late,
                "matches": summary.matches,
            }
        )
    )


def _run_layout(layout: str, files: list[Path], queries_file: Path) -> dict[str, Any]:
    base = [sys.executable, "-m", __spec__.name, "--child", "--queries-file", str(queries_file)]
    if layout == "2 processes":
        addresses = ",".join(f"127.0.0.1:{free_port()}" for _ in range(2))
        commands = [
            [*base, "--process-id", str(i), "--addresses", addresses, "--files", *map(str, files)]
            for i in range(2)
        ]
    else:
        threads = "2" if layout.endswith("threads") else "1"
        commands = [[*base, "--threads", threads, "--files", *map(str, files)]]
    children = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    records = []
    for child in children:
        out, _ = child.communicate(timeout=900)
        if child.returncode != 0:
            raise RuntimeError(f"{layout}: a process exited with {child.returncode}")
        records.append(json.loads(out.strip().splitlines()[-1]))
    seconds = max(r["end"] for r in records) - min(r["start"] for r in records)
    posts = sum(r["posts"] for r in records)
    return {
        "seconds": seconds,
        "posts": posts,
        "posts_per_s": posts / seconds,
        "matches": sum(r["matches"] for r in records),
        "late": sum(r["late"] for r in records),
        "cpu_seconds": [round(r["cpu"], 2) for r in records],
    }


def measure(posts: int, queries: int, repeat: int) -> dict[str, Any]:
    """Every layout ``repeat`` times, interleaved."""
    source = stream_file(cache_dir(), posts)
    tracked = queries_for(sample_texts(source, min(posts, 20_000)), queries)
    runs: list[dict[str, float]] = []
    work: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="senti-bench-") as tmp:
        files = split(source, Path(tmp))
        queries_file = Path(tmp) / "queries.json"
        queries_file.write_text(json.dumps(tracked))
        for number in range(1, repeat + 1):
            run: dict[str, float] = {}
            for layout in LAYOUTS:
                result = _run_layout(layout, files, queries_file)
                run[layout] = result["posts_per_s"]
                work.setdefault(layout, {"matches": set(), "late": set(), "cpu_seconds": []})
                work[layout]["matches"].add(result["matches"])
                work[layout]["late"].add(result["late"])
                work[layout]["cpu_seconds"].append(result["cpu_seconds"])
                progress(
                    f"run {number}/{repeat}: {layout}: {result['posts_per_s']:,.0f} posts/s "
                    f"({result['posts']:,} posts in {result['seconds']:.1f} s, "
                    f"CPU s by process {result['cpu_seconds']}, {result['matches']:,} matches, "
                    f"{result['late']} late)"
                )
            run["speedup 2 processes"] = run["2 processes"] / run["1 process"]
            run["speedup 2 threads"] = run["1 process, 2 threads"] / run["1 process"]
            runs.append(run)
    medians = {key: median([run[key] for run in runs]) for key in runs[0]}
    value = medians["speedup 2 processes"]
    return {
        "posts": posts,
        "queries": len(tracked),
        "repeat": repeat,
        "runs": runs,
        "median": medians,
        "work": {
            layout: {
                "matches": sorted(done["matches"]),
                "late": sorted(done["late"]),
                "cpu_seconds": done["cpu_seconds"],
            }
            for layout, done in work.items()
        },
        "targets": {
            "2 processes / 1 process": {
                "value": value,
                "target": f">= {TARGET}",
                "met": value >= TARGET,
            }
        },
    }


def main() -> None:
    """Measure, print the figures, write ``bench/results/workers.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--addresses", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.quick:
        args.posts, args.queries, args.repeat = 1_000, 50, 1
    result = measure(args.posts, args.queries, args.repeat)
    for layout in LAYOUTS:
        figure(layout, result["median"][layout], "posts/s")
    figure("speedup, 2 processes", result["median"]["speedup 2 processes"])
    figure("speedup, 2 threads in 1 process", result["median"]["speedup 2 threads"])
    write_result("workers", result, quick=args.quick)


if __name__ == "__main__":
    main()
