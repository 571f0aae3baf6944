"""Polarity of text: VADER compound score and the thresholds that classify it.

Pure: no I/O except reading a thresholds TOML file, and no bytewax.

VADER (``vaderSentiment``) is loaded once per process, on first use, and shared:
its lexicons are read-only after loading, so threads may share it.

Bounded cost on hostile input
-----------------------------
VADER's cost grows with the square of the number of words it sees (for each
sentiment word it lower-cases the whole word list several times), and it
replaces every emoji by the words of its description (``😹`` is "cat face
with tears of joy"). 1,000 such emoji take about 2 s (vaderSentiment issue
#110), 25,000 characters of ordinary prose about 0.9 s.

Rule: VADER scores at most :data:`MAX_SCORED_CHARS` characters, counting each
emoji as the length of its description (:func:`scored_length`). A longer text
is cut to its longest start within that budget, at the last whitespace before
the cut when there is one, so no word is split (:func:`bounded_text`);
:class:`Analyzer` always scores the bounded text.

The budget was chosen by measurement (``bench/hostile_text.py``). The worst
text found, ``x joy x joy ...`` (every other word a sentiment word after a
plain word), takes about 6 ms at 800 characters and 10 ms at 1,000, so 25,000
characters of words or of emoji are scored in under 10 ms. Every ordinary post
(280 characters, even with 40 emoji) is within the budget and scores exactly
as unbounded VADER scores it. Long posts (up to 4,000 characters) are scored
on their first 800 characters: scoring them whole costs up to ~170 ms.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    SentiText,
    normalize,
)

from flows.errors import SentiError
from flows.model import Polarity

__all__ = [
    "MAX_SCORED_CHARS",
    "VADER_VERSION",
    "Analyzer",
    "Thresholds",
    "ThresholdsError",
    "bounded_text",
    "classify",
    "load_thresholds",
    "scored_length",
]

# Limits
MAX_SCORED_CHARS: Final = 800
"""Characters VADER scores, counting each emoji as its description (module docstring)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """VADER compound cut-offs: positive if ``>= positive``, negative if ``<= negative``.

    Raises :class:`ValueError` unless ``-1 <= negative <= positive <= 1``.
    """

    negative: float = -0.05
    positive: float = 0.05

    def __post_init__(self) -> None:
        for name in ("negative", "positive"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"threshold {name} must be a number, not {value!r}")
            if math.isnan(value):
                raise ValueError(f"threshold {name} is NaN")
        if not -1.0 <= self.negative <= self.positive <= 1.0:
            raise ValueError(
                "thresholds must satisfy -1 <= negative <= positive <= 1, "
                f"got negative={self.negative}, positive={self.positive}"
            )


class ThresholdsError(SentiError, ValueError):
    """A thresholds file is missing, not TOML, or lacks valid ``[thresholds]`` values."""


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Read ``[thresholds] negative = ..., positive = ...`` from a TOML file.

    ``None`` reads senti's default, ``flows/defaults/thresholds.toml``. Other
    tables (such as ``[provenance]``, written by tuning tools) are ignored.
    Raises :class:`ThresholdsError`, naming the file, if it is missing or
    unreadable, is not TOML, lacks a key, or holds a value that is not a
    number or breaks ``-1 <= negative <= positive <= 1``.
    """
    if path is None:
        source = resources.files("flows").joinpath("defaults", "thresholds.toml")
        name = "flows/defaults/thresholds.toml"
    else:
        source = Path(path)
        name = str(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThresholdsError(f"{name}: thresholds file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ThresholdsError(f"{name}: cannot read thresholds file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{name}: not valid TOML: {exc}") from None
    return _thresholds_from(data, name)


def _thresholds_from(data: dict[str, Any], name: str) -> Thresholds:
    """Validate the ``[thresholds]`` table of a decoded TOML document."""
    table = data.get("thresholds")
    if not isinstance(table, dict):
        raise ThresholdsError(f"{name}: missing [thresholds] table")
    values: dict[str, float] = {}
    for key in ("negative", "positive"):
        if key not in table:
            raise ThresholdsError(f"{name}: missing thresholds.{key}")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ThresholdsError(
                f"{name}: thresholds.{key} must be a number, not {type(value).__name__}"
            )
        values[key] = float(value)
    try:
        return Thresholds(negative=values["negative"], positive=values["positive"])
    except ValueError as exc:
        raise ThresholdsError(f"{name}: {exc}") from None


def classify(compound: float, thresholds: Thresholds) -> Polarity:
    """Polarity of a VADER compound score; both boundaries are inclusive.

    Positive if ``compound >= thresholds.positive``, negative if
    ``compound <= thresholds.negative``, neutral otherwise, as VADER's README
    recommends (with ±0.05). The original server used strict ``>`` and ``<``,
    so it called a compound of exactly 0.05 neutral; senti calls it positive.
    """
    if compound >= thresholds.positive:
        return Polarity.POSITIVE
    if compound <= thresholds.negative:
        return Polarity.NEGATIVE
    return Polarity.NEUTRAL


_NEGATE: Final = frozenset(NEGATE)
_SO_THIS: Final = ("so", "this")
_IDIOM_WORDS: Final = frozenset(
    word
    for phrase in (*SPECIAL_CASES, *BOOSTER_DICT)
    if " " in phrase
    for word in phrase.split(" ")
)
"""Every word of a phrase of two or more words that VADER's idiom check looks up."""


VADER_VERSION: Final = "3.3.2"
"""The vaderSentiment release whose steps :class:`FastVader` calls and reimplements.

It is pinned exactly in pyproject.toml; importing this module with another
release installed raises :class:`ImportError`, since the scores could differ."""

_INSTALLED_VADER: Final = importlib.metadata.version("vaderSentiment")
if _INSTALLED_VADER != VADER_VERSION:
    raise ImportError(
        f"senti needs vaderSentiment=={VADER_VERSION}, found {_INSTALLED_VADER}: "
        "FastVader reimplements that release's steps"
    )


def _negates(lower: str) -> bool:
    """vaderSentiment's ``negated([lower])``: one of its negations, or a word with "n't"."""
    return lower in _NEGATE or "n't" in lower


class FastVader(SentimentIntensityAnalyzer):  # type: ignore[misc]  # untyped library
    """VADER with the library's scores, without its character-by-character emoji loop.

    ``SentimentIntensityAnalyzer.polarity_scores`` first rebuilds the text one
    character at a time, replacing each emoji by its description; on this
    project's posts that loop was a third of VADER's time. Here
    ``str.translate`` does the replacement in C, and ASCII texts, which hold no
    emoji, skip it. The loop puts a space before a description unless the
    text starts there or a space precedes it; the translation always puts one.
    That changes nothing VADER computes from the text: it splits it on
    whitespace into words and counts its ``!`` and ``?``. The rest is the
    library's own steps, called in the library's order. tests/test_sentiment.py
    checks that the scores are equal to the library's on TweetEval, on the
    synthetic stream and on generated texts full of emoji (the library's
    version is pinned and checked at import: :data:`VADER_VERSION`).

    :meth:`_negation_check` and :meth:`_special_idioms_check` are the library's,
    without lower-casing the whole post each time they look around a sentiment
    word, and without scanning the list of negations for each look; a word not
    in the lexicon gets its valence, 0, without a call. :meth:`compound` computes
    only the compound score, which is all :class:`Analyzer` uses.
    """

    def __init__(self) -> None:
        super().__init__()
        self._describe = {
            ord(emoji): " " + description
            for emoji, description in self.emojis.items()
            if len(emoji) == 1
        }

    def polarity_scores(self, text: str) -> dict[str, float]:
        """The same dictionary as ``SentimentIntensityAnalyzer.polarity_scores(text)``."""
        text, sentiments = self._sentiments(text)
        scores: dict[str, float] = self.score_valence(sentiments, text)
        return scores

    def compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]``, without the other three scores.

        The library's own arithmetic, in its order: the sum of the word
        valences, plus the emphasis of ``!`` and ``?`` in the sign of the sum,
        normalised, rounded to 4 places.
        """
        text, sentiments = self._sentiments(text)
        if not sentiments:
            return 0.0
        total = float(sum(sentiments))
        emphasis = self._punctuation_emphasis(text)
        if total > 0:
            total += emphasis
        elif total < 0:
            total -= emphasis
        compound: float = round(normalize(total), 4)
        return compound

    def _sentiments(self, text: str) -> tuple[str, list[float]]:
        """The text VADER scores and the valence of each of its words, "but" applied."""
        if not text.isascii():
            text = text.translate(self._describe)
        text = text.strip()
        sentitext = SentiText(text)
        words = sentitext.words_and_emoticons
        sentiments: list[float] = []
        lexicon, has_but = self.lexicon, False
        for i, item in enumerate(words):
            lower = item.lower()
            if lower == "but":
                has_but = True
            if lower in BOOSTER_DICT or (
                lower == "kind" and i < len(words) - 1 and words[i + 1].lower() == "of"
            ):
                sentiments.append(0)  # a modifier, or "kind of": no valence of its own
            elif lower not in lexicon:
                sentiments.append(0)  # what sentiment_valence appends for a word it does not know
            else:
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        if has_but:  # _but_check changes nothing without one
            sentiments = self._but_check(words, sentiments)
        return text, sentiments

    @staticmethod
    def _negation_check(valence: float, words: list[str], start_i: int, i: int) -> float:
        """The library's ``_negation_check``: lower-cases only the words it looks at.

        ``start_i`` words back from the sentiment word at ``i`` (the library's
        caller ensures ``i > start_i``). The conditions, and the grouping of
        ``and``/``or`` in the third, are the library's own.
        """
        back = words[i - (start_i + 1)].lower()
        if start_i == 0:
            if _negates(back):
                valence = valence * N_SCALAR
        elif start_i == 1:
            before, last = words[i - 2].lower(), words[i - 1].lower()
            if before == "never" and last in _SO_THIS:
                valence = valence * 1.25
            elif before == "without" and last == "doubt":
                pass
            elif _negates(back):
                valence = valence * N_SCALAR
        elif start_i == 2:
            third, second, last = (words[i - k].lower() for k in (3, 2, 1))
            if (third == "never" and second in _SO_THIS) or last in _SO_THIS:
                valence = valence * 1.25
            elif third == "without" and "doubt" in (second, last):
                pass
            elif _negates(back):
                valence = valence * N_SCALAR
        return valence

    @staticmethod
    def _special_idioms_check(valence: float, words: list[str], i: int) -> float:
        """The library's ``_special_idioms_check``, which builds up to seven phrases around
        word ``i`` (``i > 2``) to look up, skipped when none of their words is in one.

        A word holds no whitespace (VADER splits on it), so a phrase of such words
        equals a key only if each of its words is a word of that key.
        """
        near = [word.lower() for word in words[i - 3 : i + 3]]
        if _IDIOM_WORDS.isdisjoint(near):
            return valence
        w3, w2, w1, w0 = near[:4]
        twoone, threetwoone, threetwo = f"{w2} {w1}", f"{w3} {w2} {w1}", f"{w3} {w2}"
        for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", twoone, threetwoone, threetwo):
            if seq in SPECIAL_CASES:
                valence = SPECIAL_CASES[seq]
                break
        if len(words) - 1 > i:
            zeroone = f"{w0} {near[4]}"
            if zeroone in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroone]
        if len(words) - 1 > i + 1:
            zeroonetwo = f"{w0} {near[4]} {near[5]}"
            if zeroonetwo in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in BOOSTER_DICT:
                valence = valence + BOOSTER_DICT[n_gram]
        return valence


@functools.cache
def _vader() -> FastVader:
    """The process-wide VADER analyser, loaded on first use (reads its lexicons)."""
    return FastVader()


_NON_ASCII: Final = re.compile(r"[^\x00-\x7f]")
"""Candidates for VADER's emoji lexicon, whose entries are all non-ASCII."""


def scored_length(text: str) -> int:
    """Length of ``text`` as VADER scores it: each emoji counts as its description.

    VADER replaces every character of its emoji lexicon by a description
    (``😹`` becomes "cat face with tears of joy"); this is the length of the
    text after that replacement, give or take the spaces VADER adds.
    """
    emojis = _vader().emojis
    extra = 0
    for match in _NON_ASCII.finditer(text):
        description = emojis.get(match.group())
        if description is not None:
            extra += len(description) - 1
    return len(text) + extra


def bounded_text(text: str) -> str:
    """The start of ``text`` whose :func:`scored_length` is at most :data:`MAX_SCORED_CHARS`.

    The cut falls at the last whitespace before the limit when there is one,
    so no word is split. Texts within the limit are returned unchanged.
    """
    if len(text) <= MAX_SCORED_CHARS and text.isascii():
        return text
    emojis = _vader().emojis
    extra = 0
    limit = MAX_SCORED_CHARS
    for match in _NON_ASCII.finditer(text, 0, MAX_SCORED_CHARS):
        position = match.start()
        if position >= limit:
            break
        description = emojis.get(match.group())
        if description is None:
            continue
        if position + len(description) + extra > MAX_SCORED_CHARS:
            limit = position
            break
        extra += len(description) - 1
        limit = MAX_SCORED_CHARS - extra
    if limit >= len(text):
        return text
    cut = text[:limit]
    if not text[limit].isspace():
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if space > 0:
            cut = cut[:space]
    return cut


class Analyzer:
    """Scores text with VADER and classifies it with fixed thresholds.

    Cheap to build: every instance shares one VADER analyser per process.
    Text is scored as given (clean it with :func:`flows.analysis.text.clean_for_polarity`
    first) after :func:`bounded_text` bounds its cost.
    """

    __slots__ = ("thresholds",)

    def __init__(self, thresholds: Thresholds = Thresholds()) -> None:
        self.thresholds: Final = thresholds

    def __repr__(self) -> str:
        return f"Analyzer({self.thresholds!r})"

    def compound(self, text: str) -> float:
        """VADER's compound score of ``text``, in ``[-1, 1]``."""
        return _vader().compound(bounded_text(text))

    def score(self, text: str) -> tuple[float, Polarity]:
        """The compound score of ``text`` and its polarity under :attr:`thresholds`."""
        compound = self.compound(text)
        return compound, classify(compound, self.thresholds)
