"""Throughput of the dataflow against the original server's per-post work and VADER alone.

Three measurements over the same generated stream file, interleaved in every
repetition so that the ratios compare runs made seconds apart on this noisy
machine:

* ``dataflow``: :func:`flows.dataflow.build_flow` run as ``senti replay`` runs it
  (one worker, :class:`ReplaySource`, summary sink), with the SQLite store on
  (a temporary file) and off;
* ``baseline``: :class:`baseline.OriginalWork`, the original Tornado server's
  per-post work in a plain loop (JSON parsing, retweets dropped, its
  preprocessing, VADER, a per-post ``FreqDist``, its loop over every query);
* ``vader``: ``SentimentIntensityAnalyzer.polarity_scores`` alone on the raw
  texts of the original posts, the ceiling of any pipeline that runs VADER;
* ``sqlite``: the rows the store-on run wrote (its posts, matches and windows),
  inserted again into an empty store of the same schema by ``executemany`` alone
  in transactions of 100,000 rows, with the writer's settings: the ceiling of
  any pipeline that stores these rows in SQLite, whatever runs before it.

Every rate is in *input posts per second* (stream lines, retweets included), so
``dataflow / vader`` is the time VADER alone needs for the file over the time
the dataflow needs for it.

    .venv/bin/python -m bench.throughput [--posts 200000] [--queries 1000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bench.baseline import OriginalWork
from bench.common import cache_dir, figure, median, progress, run_dataflow, write_result
from bench.workload import queries_for, sample_texts, stream_file

TARGET_VS_BASELINE = 1.0
TARGET_VS_VADER = 1.0

_TABLES = ("posts", "matches", "windows")
_SCHEMA_SQL = (
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
    " AND tbl_name IN ('posts', 'matches', 'windows') ORDER BY type DESC"
)
# As flows/store.py's writer: page cache, WAL checkpoints, rows per transaction.
_WRITER_CACHE_KIB = 65536
_WRITER_CHECKPOINT_PAGES = 10_000
_JOIN_ROWS = 100_000


def _original_texts(lines: list[str]) -> list[str]:
    texts = []
    for line in lines:
        data = json.loads(line)["data"]
        if not any(ref.get("type") == "retweeted" for ref in data.get("referenced_tweets", ())):
            texts.append(data["text"])
    return texts


def _time_vader(texts: list[str], posts: int) -> float:
    vader = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    for text in texts:
        vader.polarity_scores(text)
    return posts / (time.perf_counter() - started)


def _time_sqlite(store: Path, posts: int) -> tuple[float, int]:
    """Insert the rows of ``store`` into an empty copy of its schema; posts/s and rows."""
    with sqlite3.connect(store) as source:
        schema = [sql for (sql,) in source.execute(_SCHEMA_SQL)]
        tables = {name: source.execute(f"SELECT * FROM {name}").fetchall() for name in _TABLES}
    copy = store.with_name("floor.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WRITER_CHECKPOINT_PAGES}")
        for sql in schema:
            conn.execute(sql)
        started = time.perf_counter()
        for name, rows in tables.items():
            marks = ", ".join("?" * len(rows[0])) if rows else ""
            for start in range(0, len(rows), _JOIN_ROWS):
                conn.execute("BEGIN")
                conn.executemany(
                    f"INSERT INTO {name} VALUES ({marks})", rows[start : start + _JOIN_ROWS]
                )
                conn.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return posts / seconds, sum(map(len, tables.values()))


def _time_baseline(lines: list[str], queries: list[str]) -> tuple[float, float]:
    work = OriginalWork(queries)
    started = time.perf_counter()
    work.run(lines)
    seconds = time.perf_counter() - started
    return len(lines) / seconds, work.matches / work.posts


def measure(posts: int, queries: int, repeat: int) -> dict[str, Any]:
    """Run every measurement ``repeat`` times; return the runs and their medians."""
    path = stream_file(cache_dir(), posts)
    progress(f"stream file {path} ({posts:,} posts)")
    tracked = queries_for(sample_texts(path, min(posts, 20_000)), queries)
    lines = path.read_text(encoding="utf-8").splitlines()
    texts = _original_texts(lines)
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="senti-bench-") as tmp:
        store = Path(tmp) / "store.db"
        for number in range(1, repeat + 1):
            run: dict[str, float] = {}
            run["vader"] = _time_vader(texts, len(lines))
            progress(f"run {number}/{repeat}: VADER alone {run['vader']:,.0f} posts/s")
            run["baseline"], run["baseline_matches_per_post"] = _time_baseline(lines, tracked)
            progress(f"run {number}/{repeat}: baseline {run['baseline']:,.0f} posts/s")
            off = run_dataflow([path], tracked)
            run["dataflow_store_off"] = off["posts_per_s"]
            run["matches_per_post"] = off["matches_per_post"]
            progress(
                f"run {number}/{repeat}: dataflow, store off {off['posts_per_s']:,.0f} posts/s"
            )
            on = run_dataflow([path], tracked, store=store)
            run["dataflow_store_on"] = on["posts_per_s"]
            progress(f"run {number}/{repeat}: dataflow, store on {on['posts_per_s']:,.0f} posts/s")
            run["sqlite"], run["sqlite_rows"] = _time_sqlite(store, len(lines))
            progress(
                f"run {number}/{repeat}: SQLite alone, {run['sqlite_rows']:,} rows:"
                f" {run['sqlite']:,.0f} posts/s"
            )
            for mode in ("store_on", "store_off"):
                run[f"vs_baseline_{mode}"] = run[f"dataflow_{mode}"] / run["baseline"]
                run[f"vs_vader_{mode}"] = run[f"dataflow_{mode}"] / run["vader"]
            run["sqlite_vs_vader"] = run["sqlite"] / run["vader"]
            runs.append(run)
    medians = {key: median([run[key] for run in runs]) for key in runs[0]}
    return {
        "posts": posts,
        "originals": len(texts),
        "queries": len(tracked),
        "repeat": repeat,
        "runs": runs,
        "median": medians,
        "targets": {
            "dataflow / baseline (store on)": {
                "value": medians["vs_baseline_store_on"],
                "target": f">= {TARGET_VS_BASELINE}",
                "met": medians["vs_baseline_store_on"] >= TARGET_VS_BASELINE,
            },
            "dataflow / VADER alone (store on)": {
                "value": medians["vs_vader_store_on"],
                "target": f">= {TARGET_VS_VADER:.0%}",
                "met": medians["vs_vader_store_on"] >= TARGET_VS_VADER,
            },
        },
    }


def main() -> None:
    """Measure, print the figures, write ``bench/results/throughput.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = parser.parse_args()
    if args.quick:
        args.posts, args.queries, args.repeat = 1_000, 50, 1
    result = measure(args.posts, args.queries, args.repeat)
    med = result["median"]
    figure("posts", result["posts"])
    figure("tracked queries", result["queries"])
    figure("VADER alone", med["vader"], "posts/s")
    figure("baseline (original per-post work)", med["baseline"], "posts/s")
    figure("dataflow, store on", med["dataflow_store_on"], "posts/s")
    figure("dataflow, store off", med["dataflow_store_off"], "posts/s")
    figure("dataflow/baseline, store on", med["vs_baseline_store_on"])
    figure("dataflow/baseline, store off", med["vs_baseline_store_off"])
    figure("dataflow/VADER, store on", med["vs_vader_store_on"])
    figure("dataflow/VADER, store off", med["vs_vader_store_off"])
    figure("SQLite alone, the store-on run's rows", med["sqlite"], "posts/s")
    figure("SQLite alone/VADER", med["sqlite_vs_vader"])
    figure("matches per original post (dataflow)", med["matches_per_post"])
    figure("matches per original post (baseline)", med["baseline_matches_per_post"])
    write_result("throughput", result, quick=args.quick)


if __name__ == "__main__":
    main()
