"""Time VADER scoring of hostile and ordinary posts, with and without senti's bounds.

Run from the repository root::

    .venv/bin/python -m bench.hostile_text

Prints min and median milliseconds per call over several runs. The bounds in
``flows.analysis.sentiment`` (``MAX_SCORED_CHARS``) were chosen from these
figures; tests check the rule, not the timings.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from flows.analysis.sentiment import MAX_SCORED_CHARS, Analyzer, _vader, scored_length
from flows.analysis.text import clean_for_polarity

PROSE = (
    "The quick brown fox jumps over the lazy dog and it was a great day but not so bad after all. "
)
# The costliest pattern found: every other word a sentiment word after a plain word.
WORST_WORDS = "x joy "
# The costliest emoji found: its description ends in a sentiment word ("joy").
WORST_EMOJI = "\N{CAT FACE WITH TEARS OF JOY}"

CASES: dict[str, str] = {
    "typical tweet (101 chars)": (
        "@user I may or may not have searched it up on google &amp; it was GREAT!! "
        "http://t.co/abc #blessed 😂"
    ),
    "280 chars of prose": (PROSE * 10)[:280],
    "4,000 chars of prose": (PROSE * 100)[:4000],
    "1,000 emoji": WORST_EMOJI * 1000,
    "25,000 emoji": WORST_EMOJI * 25_000,
    "25,000 chars of prose": (PROSE * 300)[:25_000],
    "25,000 chars of worst words": (WORST_WORDS * 5000)[:25_000],
    "280 chars with 40 emoji": ((PROSE * 3)[:240] + "😂🔥" * 20),
    "worst words then worst emoji": (WORST_WORDS * 60)[:360] + WORST_EMOJI * 100,
}


def timings(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """Min and median milliseconds of ``runs`` calls."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return min(samples), statistics.median(samples)


def main() -> None:
    """Print the timing table."""
    analyzer = Analyzer()
    vader = _vader()
    analyzer.compound("warm up")
    print(f"MAX_SCORED_CHARS={MAX_SCORED_CHARS}")
    print(f"{'case':45} {'bounded min/median ms':>22} {'unbounded VADER min/median ms':>31}")
    for name, text in CASES.items():
        bounded = timings(lambda text=text: analyzer.compound(text), 7)
        if len(text) <= 1000 or "prose" in name:
            runs = 3 if len(text) > 1000 else 7
            raw = timings(lambda text=text: vader.polarity_scores(text), runs)
            raw_text = f"{raw[0]:14.3f} / {raw[1]:8.3f}"
        else:
            raw_text = f"{'(skipped: seconds)':>25}"
        print(f"{name:45} {bounded[0]:10.3f} / {bounded[1]:8.3f} {raw_text}", end="")
        print(f"  scored length {scored_length(text)}")
    tweet = CASES["typical tweet (101 chars)"]
    cleaned = clean_for_polarity(tweet)
    for label, call in (
        ("clean_for_polarity(typical tweet)", lambda: clean_for_polarity(tweet)),
        ("Analyzer.score(cleaned typical tweet)", lambda: analyzer.score(cleaned)),
    ):
        number = 20_000
        start = time.perf_counter()
        for _ in range(number):
            call()
        per_call = (time.perf_counter() - start) / number * 1e6
        print(f"{label:45} {per_call:10.2f} µs per call")


if __name__ == "__main__":
    main()
