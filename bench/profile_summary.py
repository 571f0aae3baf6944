"""Summarise a ``py-spy record -f raw`` profile: where the dataflow thread spends its time.

Usage::

    py-spy record -r 200 -f raw -o prof.txt -- .venv/bin/python -m bench.throughput --profile-run
    .venv/bin/python -m bench.profile_summary prof.txt [--under FlowThread.run] [--top 25]

Prints, for the samples whose stack contains ``--under`` (default: the
dataflow thread), the share of samples in which each function appears
(inclusive) and in which it is the innermost frame (self).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["summarise"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    found = _FRAME.match(frame)
    if found is None:
        return frame
    short = "/".join(found["file"].split("/")[-2:])
    return f"{found['func']} ({short})"


def summarise(path: Path, *, under: str) -> tuple[int, Counter[str], Counter[str]]:
    """Samples under ``under``, and inclusive and self sample counts per function."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if under not in stack:
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main() -> None:
    """Print the summary of one raw profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--under", default="FlowThread.run")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, inclusive, own = summarise(args.profile, under=args.under)
    print(f"{total} samples under {args.under}")
    print("\ninclusive:")
    for name, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("\nself:")
    for name, count in own.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
