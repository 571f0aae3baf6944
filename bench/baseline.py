"""The original Tornado server's per-post work, re-implemented as a plain loop.

The original (see ``docs/benchmarks.md``, "Baseline") handled each status by:
lower-casing its text; deleting ``@handles`` and ``http(s)://`` links by finding
every match and then running one ``re.sub`` per match, using the matched text
itself as the pattern; replacing everything but ASCII letters, ``#``, ``!``,
``?`` and ``'`` with spaces for VADER (and everything but letters and ``#`` for
the hashtag list); splitting into words and dropping nltk's English stopwords;
scoring with VADER; counting ``#(\\w+)`` hashtags of the words with an
``nltk.FreqDist``; and finally testing every tracked query against the word
list (``query in words``), so the work per post grows with the number of
queries. This module does the same steps, for the benchmark to compare against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nltk import FreqDist
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from flows.analysis.text import stopwords

__all__ = ["OriginalWork", "is_retweet_line"]

_HANDLES = r"@[\w]*"
_LINKS = r"https?://[A-Za-z0-9./]*"
_NOT_FOR_VADER = r"[^a-zA-Z#!?']"
_NOT_FOR_TAGS = r"[^a-zA-Z#]"
_TAG = r"#(\w+)"


def is_retweet_line(envelope: dict[str, Any]) -> bool:
    """Whether an X API v2 envelope is a retweet (the original skipped those)."""
    references = envelope["data"].get("referenced_tweets") or ()
    return any(ref.get("type") == "retweeted" for ref in references)


def _delete_each(text: str, pattern: str) -> str:
    # As the original did: find the matches, then delete each one with a
    # re.sub whose *pattern* is the matched text.
    for found in re.findall(pattern, text):
        text = re.sub(found, "", text)
    return text


@dataclass
class OriginalWork:
    """The original per-post pipeline with a fixed list of tracked queries."""

    queries: Sequence[str]
    """Tracked queries as the original kept them: lower-cased track strings."""

    def __post_init__(self) -> None:
        self.queries = [query.lower() for query in self.queries]
        self._vader = SentimentIntensityAnalyzer()
        self._stop = set(stopwords())
        self.matches = 0
        self.posts = 0

    def handle_line(self, line: str) -> dict[str, Any] | None:
        """Parse one stream line; ``None`` for a retweet, else the message sent."""
        envelope = json.loads(line)
        if is_retweet_line(envelope):
            return None
        return self.handle_text(envelope["data"]["text"])

    def handle_text(self, text: str) -> dict[str, Any]:
        """Score one post's text and find the queries it matches."""
        text = text.lower()
        text = _delete_each(text, _HANDLES)
        text = _delete_each(text, _LINKS)
        for_vader = re.sub(_NOT_FOR_VADER, " ", text)
        words = [
            word for word in re.sub(_NOT_FOR_TAGS, " ", text).split() if word not in self._stop
        ]
        compound = self._vader.polarity_scores(for_vader)["compound"]
        index = 0 if compound > 0.05 else 1 if compound < -0.05 else 2
        per_word = [re.findall(_TAG, word) for word in words]
        hashtags = FreqDist(sum(per_word, []))  # noqa: RUF017 - as the original did
        matched = [query for query in self.queries if query in words]
        self.posts += 1
        self.matches += len(matched)
        return {"polarityIndex": index, "hashtags": dict(hashtags), "queries": matched}

    def run(self, lines: Iterable[str]) -> int:
        """Handle every line; returns the number of lines read."""
        count = 0
        for line in lines:
            self.handle_line(line)
            count += 1
        return count
