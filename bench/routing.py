"""Routing cost: dataflow throughput with 10, 1,000 and 10,000 tracked queries.

The output volume (matches, and the per-query windows they feed) is not routing
cost, so the query mix keeps the number of matches the same at every size:
10 *common* queries drawn from the stream's vocabulary (:func:`workload.queries_for`)
plus ``N - 10`` *rare* ones made of invented words that never occur in the
synthetic stream, in the same shapes as real queries (a word, a ``#hashtag``,
a two-word AND phrase, a three-term OR list). Only the index grows.

Store off, one worker.

Two whole-system cases, store on (a SQLite file), with 5 common queries padded
by rare ones, interleaved in every repetition:

* ``process``: ``senti replay FILE --store URL --track ...`` as a subprocess,
  its wall time from start to exit (argument parsing, the queries written to
  the store, the flow, the store's writer process closing) at each of
  :data:`PROCESS_SIZES` queries;
* ``live``: the dataflow in this process with a :class:`SubscriptionSource`,
  every query pushed as a subscription while the posts flow, so that each goes
  through every lane's index, every sink and the store, with 10 and with
  :data:`LIVE_SIZES` queries.

    .venv/bin/python -m bench.routing [--posts 20000] [--whole-posts 100000] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, cache_dir, figure, median, progress, run_dataflow, write_result
from bench.workload import queries_for, sample_texts, stream_file

TARGET = 0.8
SIZES = (10, 1_000, 10_000)
WHOLE_TARGET = 0.9
PROCESS_SIZES = (10, 10_000, 100_000)
"""``senti replay`` is given its queries as ``--track`` options: 100,000 of them
(3 MB) exceed the kernel's usual limit on a command line, a quarter of the stack
limit (``getconf ARG_MAX``), so the subprocess is started with a larger stack
limit (:data:`ARG_STACK`)."""
ARG_STACK = 64 << 20
LIVE_SIZES = (10, 100_000)


def rare_queries(count: int) -> list[str]:
    """``count`` distinct queries of invented words (none occurs in a synthetic post)."""
    shapes = (
        "zorblax{i}",
        "#quibnet{i}",
        "flimwort{i} snarvel{i}",
        "grondle{i}, #vexmar{i}, plinkett{i}",
    )
    return [shapes[i % len(shapes)].format(i=i) for i in range(count)]


def add_rare(common: list[str], total: int) -> list[str]:
    """The ``common`` queries and enough rare ones to make ``total``."""
    return common + rare_queries(max(total - len(common), 0))


def measure(posts: int, repeat: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    """Posts/s at each number of queries."""
    path = stream_file(cache_dir(), posts)
    common = queries_for(sample_texts(path, min(posts, 20_000)), 10)
    progress(f"{posts:,} posts; common queries: {common}")
    runs: list[dict[str, float]] = []
    for number in range(1, repeat + 1):
        run: dict[str, float] = {}
        for size in sizes:
            result = run_dataflow([path], add_rare(common, size))
            run[f"queries_{size}"] = result["posts_per_s"]
            run[f"matches_per_post_{size}"] = result["matches_per_post"]
            progress(
                f"run {number}/{repeat}: {size:,} queries: {result['posts_per_s']:,.0f} posts/s, "
                f"{result['matches_per_post']:.2f} matches/post"
            )
        run["ratio"] = run[f"queries_{sizes[-1]}"] / run[f"queries_{sizes[0]}"]
        runs.append(run)
    medians = {key: median([run[key] for run in runs]) for key in runs[0]}
    return {
        "posts": posts,
        "sizes": list(sizes),
        "common_queries": common,
        "repeat": repeat,
        "runs": runs,
        "median": medians,
        "targets": {
            f"{sizes[-1]:,} queries / {sizes[0]} queries": {
                "value": medians["ratio"],
                "target": f">= {TARGET}",
                "met": medians["ratio"] >= TARGET,
            }
        },
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_seconds(path: Path, queries: list[str], store: Path) -> tuple[float, float]:
    """Wall and CPU time of ``senti replay`` over ``path`` with ``queries``, store on
    (CPU: the process and its store writer, the figure other processes do not inflate)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    tracks = [arg for query in queries for arg in ("--track", query)]
    command = [sys.executable, "-m", "server.cli", "replay", str(path), "--store"]
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(
        [*command, f"sqlite:///{store}", *tracks],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_room_for_arguments,
    )
    return time.perf_counter() - started, _children_cpu() - cpu


def _room_for_arguments() -> None:
    """In the child before ``exec``: a stack limit that leaves room for 100,000 ``--track``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != resource.RLIM_INFINITY and soft < ARG_STACK:
        wanted = ARG_STACK if hard == resource.RLIM_INFINITY else min(ARG_STACK, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))


def live_seconds(path: Path, queries: list[str], store: Path) -> tuple[float, float]:
    """Wall and CPU time of the dataflow over ``path`` while ``queries`` arrive as
    subscriptions (CPU: this process and the store's writer process)."""
    from flows.dataflow import FlowSettings, build_flow  # noqa: PLC0415 - slow imports
    from flows.routing.matching import Subscription, parse_query  # noqa: PLC0415
    from flows.runtime.runner import FlowThread  # noqa: PLC0415
    from flows.sinks.run_summary import RunSummary, SummarySink  # noqa: PLC0415
    from flows.sinks.store_sink import StoreSink  # noqa: PLC0415
    from flows.sources.control import Stoppable, SubscriptionSource  # noqa: PLC0415
    from flows.sources.replay import ReplaySource  # noqa: PLC0415

    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    wait = timedelta(seconds=30)
    settings = FlowSettings(window=timedelta(seconds=60), wait=wait, live=False)
    summary = RunSummary()
    changes = SubscriptionSource()
    posts = Stoppable(ReplaySource([path], max_span=wait / 2), threading.Event())
    sinks = [SummarySink(summary), StoreSink(f"sqlite:///{store}")]
    flow = build_flow(posts, changes, sinks, settings=settings)
    cpu, started = time.process_time() + _children_cpu(), time.perf_counter()
    runner = FlowThread(flow)
    runner.start()
    for start in range(0, len(queries), 1_000):  # while the posts flow
        for query in queries[start : start + 1_000]:
            changes.push(Subscription(parse_query(query)))
        time.sleep(0.01)
    changes.stop.set()
    runner.join()
    if runner.error is not None:
        raise runner.error
    return time.perf_counter() - started, time.process_time() + _children_cpu() - cpu


def measure_whole(posts: int, repeat: int, quick: bool) -> dict[str, Any]:
    """Seconds of the whole process and of live subscriptions at each number of queries."""
    path = stream_file(cache_dir(), posts)
    common = queries_for(sample_texts(path, min(posts, 20_000)), 5)
    process_sizes = (10, 100, 1_000) if quick else PROCESS_SIZES
    live_sizes = (10, 1_000) if quick else LIVE_SIZES
    progress(f"whole system: {posts:,} posts; common queries: {common}")
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="senti-routing-") as tmp:
        store = Path(tmp) / "store.db"
        for number in range(1, repeat + 1):
            run: dict[str, float] = {}
            for size in process_sizes:
                timed = process_seconds(path, add_rare(common, size), store)
                run[f"process_{size}"], run[f"process_cpu_{size}"] = timed
                progress(
                    f"run {number}/{repeat}: senti replay, {size:,} queries: "
                    f"{run[f'process_{size}']:.2f} s, CPU {run[f'process_cpu_{size}']:.2f} s"
                )
            for size in live_sizes:
                timed = live_seconds(path, add_rare(common, size), store)
                run[f"live_{size}"], run[f"live_cpu_{size}"] = timed
                progress(
                    f"run {number}/{repeat}: live subscriptions, {size:,} queries: "
                    f"{run[f'live_{size}']:.2f} s, CPU {run[f'live_cpu_{size}']:.2f} s"
                )
            for case, sizes in (("process", process_sizes), ("live", live_sizes)):
                first = sizes[0]
                for size in sizes[1:]:
                    run[f"{case}_ratio_{size}"] = run[f"{case}_{first}"] / run[f"{case}_{size}"]
                    cpu = run[f"{case}_cpu_{first}"] / run[f"{case}_cpu_{size}"]
                    run[f"{case}_cpu_ratio_{size}"] = cpu
                run[f"{case}_ratio"] = run[f"{case}_ratio_{sizes[-1]}"]
                run[f"{case}_cpu_ratio"] = run[f"{case}_cpu_ratio_{sizes[-1]}"]
            runs.append(run)
    medians = {key: median([run[key] for run in runs]) for key in runs[0]}
    return {
        "whole_posts": posts,
        "process_sizes": list(process_sizes),
        "live_sizes": list(live_sizes),
        "whole_common_queries": common,
        "whole_runs": runs,
        "whole_median": medians,
    }


def main() -> None:
    """Measure, print the figures, write ``bench/results/routing.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--whole-posts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = parser.parse_args()
    sizes = SIZES
    if args.quick:
        args.posts, args.whole_posts, args.repeat, sizes = 1_000, 1_000, 1, (10, 100, 1_000)
    result = measure(args.posts, args.repeat, sizes)
    result.update(measure_whole(args.whole_posts, args.repeat, args.quick))
    whole = result["whole_median"]
    for case, label in (("process", "senti replay"), ("live", "live subscriptions")):
        first, *others = result[f"{case}_sizes"]
        for size in others:
            for kind, key in (("time", f"{case}_ratio"), ("CPU time", f"{case}_cpu_ratio")):
                value = whole[f"{key}_{size}"]
                result["targets"][f"{label}: {kind} at {first} queries / at {size:,}"] = {
                    "value": value,
                    "target": f">= {WHOLE_TARGET}",
                    "met": value >= WHOLE_TARGET,
                }
    med = result["median"]
    for size in sizes:
        figure(f"{size:,} queries", med[f"queries_{size}"], "posts/s")
        figure(f"{size:,} queries, matches per post", med[f"matches_per_post_{size}"])
    figure(f"{sizes[-1]:,} / {sizes[0]} queries", med["ratio"])
    for case, label in (("process", "senti replay"), ("live", "live subscriptions")):
        first, *others = result[f"{case}_sizes"]
        for size in (first, *others):
            figure(f"{label}, store on, {size:,} queries", whole[f"{case}_{size}"], "s")
            figure(f"{label}, store on, {size:,} queries, CPU", whole[f"{case}_cpu_{size}"], "s")
        for size in others:
            figure(f"{label}: time at {first} queries / at {size:,}", whole[f"{case}_ratio_{size}"])
            cpu = whole[f"{case}_cpu_ratio_{size}"]
            figure(f"{label}: CPU time at {first} queries / at {size:,}", cpu)
    write_result("routing", result, quick=args.quick)


if __name__ == "__main__":
    main()
