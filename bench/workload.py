"""Shared benchmark workload: a synthetic stream file and tracked queries drawn from it."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from flows.analysis.text import clean_for_polarity, extract_hashtags, stopwords
from flows.model import Line, Post
from flows.platforms.x import parse_line
from flows.routing.matching import parse_query, post_terms
from flows.sources.synthetic import write_synthetic

START = datetime(2024, 5, 1, 12, tzinfo=UTC)


def stream_file(directory: Path, count: int, *, seed: int = 1, rate: float = 200.0) -> Path:
    """A synthetic stream of ``count`` posts (cached by name in ``directory``)."""
    path = directory / f"stream-{count}-{seed}.jsonl"
    if not path.exists():
        write_synthetic(path, count=count, seed=seed, start=START, rate=rate)
    return path


def sample_texts(path: Path, limit: int) -> list[str]:
    """Texts of the first ``limit`` posts of a stream file."""
    texts = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= limit:
                break
            post = parse_line(Line(line))
            if isinstance(post, Post):
                texts.append(post.text)
    return texts


def queries_for(texts: list[str], count: int, *, seed: int = 0) -> list[str]:
    """``count`` distinct track queries built from the vocabulary of ``texts``.

    A realistic mix: single words, #hashtags, two-word phrases and OR lists,
    most of them matching some posts, many of them rare.
    """
    stop = stopwords()
    vocabulary: Counter[str] = Counter()
    for text in texts:
        for term in post_terms(clean_for_polarity(text), extract_hashtags(text)):
            if term not in stop and not term.isdigit() and len(term) > 2 and "'" not in term:
                vocabulary[term] += 1
    words = [term for term, _ in vocabulary.most_common() if term[0] not in "#@"]
    tags = [term for term, _ in vocabulary.most_common() if term[0] == "#"]
    rng = random.Random(seed)
    found: dict[str, str] = {}
    while len(found) < count:
        kind = rng.random()
        if kind < 0.4:
            text = rng.choice(words)
        elif kind < 0.6 and tags:
            text = rng.choice(tags)
        elif kind < 0.85:
            text = f"{rng.choice(words)} {rng.choice(words)}"
        else:
            text = ", ".join(rng.choice(words + tags) for _ in range(3))
        found.setdefault(parse_query(text).key, text)
    return list(found.values())
