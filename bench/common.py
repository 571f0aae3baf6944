"""Helpers shared by the benchmark scripts: progress, results, machine facts, dataflow runs.

Every script prints its progress on stderr and its figures on stdout, and writes
``bench/results/<name>.json``; :mod:`bench.report` turns those files into
``docs/benchmarks.md``. Nothing here asserts on timings.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
CACHE = Path(os.environ.get("SENTI_BENCH_CACHE", Path(tempfile.gettempdir()) / "senti-bench"))
"""Generated stream files, reused between runs (they depend only on count and seed)."""

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """One progress line on stderr, stamped with seconds since the script started."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def figure(name: str, value: object, unit: str = "") -> None:
    """One figure on stdout: ``name: value unit``."""
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    else:
        text = str(value)
    print(f"{name}: {text}{' ' + unit if unit else ''}", flush=True)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the figure the docs report; the runs are kept too)."""
    return float(statistics.median(values))


def cache_dir() -> Path:
    """The directory of generated inputs, created on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one (inherited by subprocesses)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu": model,
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bytewax": version("bytewax"),
        "websockets": version("websockets"),
        "vaderSentiment": version("vaderSentiment"),
    }


def write_result(name: str, data: dict[str, Any], *, quick: bool) -> Path:
    """Write ``bench/results/<name>.json`` (``<name>.quick.json`` in quick mode)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'.quick' if quick else ''}.json"
    record = {
        "name": name,
        "quick": quick,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    progress(f"wrote {path.relative_to(ROOT)}")
    return path


def build_replay_flow(
    paths: Sequence[Path],
    queries: Sequence[str],
    *,
    store: Path | None = None,
    lanes: int = 1,
    wait: timedelta = timedelta(seconds=30),
) -> tuple[Any, Any]:
    """The dataflow as ``senti replay`` builds it, and the :class:`RunSummary` it fills.

    Assembled by :func:`flows.assemble.assemble_flow` like ``senti replay``: a
    :class:`ReplaySource` that ends when told, event-time windows (``live=False``, wait 30 s), a
    :class:`SummarySink` and, with ``store``, a :class:`StoreSink` on a SQLite
    file whose subscriptions are written first.
    """
    from flows.assemble import assemble_flow  # noqa: PLC0415 - slow imports
    from flows.dataflow import FlowSettings  # noqa: PLC0415
    from flows.routing.matching import Subscription, parse_query  # noqa: PLC0415
    from flows.sinks.run_summary import RunSummary, SummarySink  # noqa: PLC0415
    from flows.sources.replay import ReplaySource  # noqa: PLC0415
    from flows.store import open_store  # noqa: PLC0415

    parsed = list({query.key: query for query in map(parse_query, queries)}.values())
    settings = FlowSettings(
        queries=parsed,
        lanes=lanes,
        window=timedelta(seconds=60),
        wait=wait,
        live=False,
    )
    summary = RunSummary()
    url: str | None = None
    if store is not None:
        store.unlink(missing_ok=True)
        url = f"sqlite:///{store}"
        with open_store(url) as opened:
            opened.write([Subscription(query) for query in parsed])
    flow = assemble_flow(
        ReplaySource(list(paths), max_span=wait / 2),
        settings=settings,
        stop=threading.Event(),
        sinks=[SummarySink(summary)],
        store=url,
    )
    return flow, summary


def run_dataflow(
    paths: Sequence[Path],
    queries: Sequence[str],
    *,
    store: Path | None = None,
    workers: int = 1,
) -> dict[str, float]:
    """Run :func:`build_replay_flow` on a :class:`FlowThread` with ``workers`` threads; time it."""
    from flows.runtime.runner import FlowThread  # noqa: PLC0415 - slow imports

    # One lane per worker, as senti replay --workers sets it.
    flow, summary = build_replay_flow(paths, queries, store=store, lanes=workers)
    started = time.perf_counter()
    summary.started = started
    runner = FlowThread(flow, workers=workers)
    runner.start()
    runner.join()
    seconds = time.perf_counter() - started
    if runner.error is not None:
        raise runner.error
    originals = summary.posts - summary.retweets
    return {
        "posts": summary.posts,
        "originals": originals,
        "matches": summary.matches,
        "seconds": seconds,
        "posts_per_s": summary.posts / seconds,
        "matches_per_post": summary.matches / originals if originals else 0.0,
    }
