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
  texts of the original posts, the ceiling of any pipeline that runs VADER.

Every rate is in *input posts per second* (stream lines, retweets included), so
``dataflow / vader`` is the time VADER alone needs for the file over the time
the dataflow needs for it.

    .venv/bin/python bench/throughput.py [--posts 200000] [--queries 1000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from baseline import OriginalWork
from common import cache_dir, figure, median, progress, run_dataflow, write_result
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
from workload import queries_for, sample_texts, stream_file

TARGET_VS_BASELINE = 1.0
TARGET_VS_VADER = 0.6


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
            for mode in ("store_on", "store_off"):
                run[f"vs_baseline_{mode}"] = run[f"dataflow_{mode}"] / run["baseline"]
                run[f"vs_vader_{mode}"] = run[f"dataflow_{mode}"] / run["vader"]
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
    figure("matches per original post (dataflow)", med["matches_per_post"])
    figure("matches per original post (baseline)", med["baseline_matches_per_post"])
    write_result("throughput", result, quick=args.quick)


if __name__ == "__main__":
    main()
