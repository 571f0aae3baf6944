"""Routing cost: dataflow throughput with 10, 1,000 and 10,000 tracked queries.

The output volume (matches, and the per-query windows they feed) is not routing
cost, so the query mix keeps the number of matches the same at every size:
10 *common* queries drawn from the stream's vocabulary (:func:`workload.queries_for`)
plus ``N - 10`` *rare* ones made of invented words that never occur in the
synthetic stream, in the same shapes as real queries (a word, a ``#hashtag``,
a two-word AND phrase, a three-term OR list). Only the index grows.

Store off, one worker.

    .venv/bin/python bench/routing.py [--posts 20000] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

from common import cache_dir, figure, median, progress, run_dataflow, write_result
from workload import queries_for, sample_texts, stream_file

TARGET = 0.8
SIZES = (10, 1_000, 10_000)


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


def main() -> None:
    """Measure, print the figures, write ``bench/results/routing.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = parser.parse_args()
    sizes = SIZES
    if args.quick:
        args.posts, args.repeat, sizes = 1_000, 1, (10, 100, 1_000)
    result = measure(args.posts, args.repeat, sizes)
    med = result["median"]
    for size in sizes:
        figure(f"{size:,} queries", med[f"queries_{size}"], "posts/s")
        figure(f"{size:,} queries, matches per post", med[f"matches_per_post_{size}"])
    figure(f"{sizes[-1]:,} / {sizes[0]} queries", med["ratio"])
    write_result("routing", result, quick=args.quick)


if __name__ == "__main__":
    main()
