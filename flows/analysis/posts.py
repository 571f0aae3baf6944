"""Analysis of one post: clean text, VADER polarity, hashtags and match terms.

Pure: composes :mod:`flows.analysis.text`, :mod:`flows.analysis.sentiment`,
:mod:`flows.analysis.languages` and :mod:`flows.routing.matching`; the dataflow and ``senti
analyze`` both call :meth:`PostAnalyzer.score_text`, so there is one code path
from text to polarity. A post whose language is not scored skips VADER: it
gets its hashtags and match terms and no polarity (it is *unscored*).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.analysis.languages import ScoredLanguages, language_key
from flows.analysis.sentiment import Analyzer, Thresholds
from flows.analysis.text import clean_for_polarity, extract_hashtags, hashtag_counts
from flows.model import Polarity, Post, ScoredPost
from flows.routing.matching import post_terms

__all__ = ["PostAnalyzer", "TextScore"]


@dataclass(frozen=True, slots=True)
class TextScore:
    """The analysis of a bare text, as ``senti analyze`` prints it."""

    compound: float
    polarity: Polarity
    hashtags: dict[str, int]

    def message(self) -> dict[str, object]:
        """``{"polarityIndex", "compound", "hashtags"}``, the ``senti analyze`` line."""
        return {
            "polarityIndex": int(self.polarity),
            "compound": self.compound,
            "hashtags": self.hashtags,
        }


@dataclass(frozen=True, slots=True)
class PostAnalyzer:
    """Scores posts with fixed thresholds; cheap to build, VADER is shared per process.

    Only posts in one of ``languages`` are scored (:mod:`flows.analysis.languages`).
    """

    thresholds: Thresholds = field(default_factory=Thresholds)
    languages: ScoredLanguages = field(default_factory=ScoredLanguages)
    _analyzer: Analyzer = field(init=False, repr=False, compare=False)
    _every: bool = field(init=False, repr=False, compare=False)
    _scored: frozenset[str] = field(init=False, repr=False, compare=False)
    """``languages`` as two attributes: :meth:`analyse` checks them for every post, and a
    set lookup in line costs half of a method call."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_analyzer", Analyzer(self.thresholds))
        object.__setattr__(self, "_every", self.languages.every)
        object.__setattr__(self, "_scored", self.languages.keys)

    def score_text(
        self, text: str, hashtags: list[str] | tuple[str, ...] | None = None
    ) -> TextScore:
        """Polarity of ``text`` after cleaning, and its hashtag frequencies.

        ``hashtags`` are the post's hashtags as X sent them in
        ``entities.hashtags``; when ``None`` they are extracted from the text.
        """
        tags = extract_hashtags(text) if hashtags is None else hashtags
        compound, polarity = self._analyzer.score(clean_for_polarity(text))
        return TextScore(compound, polarity, hashtag_counts(tags))

    def analyse(self, post: Post) -> ScoredPost:
        """Score a post (if its language is scored) and collect the terms queries can match."""
        if self._every or language_key(post.lang) in self._scored:
            score = self.score_text(post.text, post.hashtags)
            return ScoredPost(
                post=post,
                compound=score.compound,
                polarity=score.polarity,
                hashtags=score.hashtags,
                terms=post_terms(post.text, score.hashtags),
            )
        tags = extract_hashtags(post.text) if post.hashtags is None else post.hashtags
        hashtags = hashtag_counts(tags)
        return ScoredPost(
            post=post,
            compound=None,
            polarity=None,
            hashtags=hashtags,
            terms=post_terms(post.text, hashtags),
        )
