"""Text handling for posts: cleaning for VADER, hashtags, stopwords and tokens.

Pure: no I/O except reading the stopword list shipped in ``flows/analysis/nltk_data``,
and no bytewax.

Cleaning keeps what VADER scores. VADER reads case (``GREAT`` is emphasis),
``!`` and ``?``, emoticons such as ``:)``, ``:-(`` and ``<3``, and emoji, so
:func:`clean_for_polarity` only removes what carries no sentiment and could
mislead the lexicon (``@handles`` and URLs), decodes the HTML entities X puts
in post text (``&amp;``, ``&lt;``, ``&gt;``), straightens curly apostrophes
(U+2019 in ``don\u2019t`` becomes ``'``, so VADER sees the negation) and collapses whitespace.

Hashtags are left as written. VADER already strips a leading ``#`` from a
word, so dropping the ``#`` changes nothing; on the TweetEval validation split
(macro-averaged recall, VADER at ±0.05) raw text scores 0.5977, this cleaning
0.5977, splitting ``#CamelCase`` tags into words 0.5985 (two tweets of 2,000,
noise) and dropping hashtags 0.5968, so the simplest rule stays.

Hashtags follow X's rules (twitter-text): :func:`extract_hashtags`.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Final, NamedTuple, Protocol

__all__ = [
    "NLTK_DATA",
    "HashtagSpan",
    "clean_for_polarity",
    "extract_hashtags",
    "extract_hashtags_with_indices",
    "hashtag_counts",
    "is_valid_hashtag",
    "mark_class",
    "stopwords",
    "tokenize",
]

NLTK_DATA: Final = Path(__file__).with_name("nltk_data")
"""The nltk data directory shipped with senti (``corpora/stopwords/english``)."""

# Every pattern below starts with one character set (``h``, ``w``, ``@``, ``#``)
# and checks the rest with lookarounds: re then skips ahead to candidate
# characters instead of trying each alternative at every position.
#
# A URL (``http://``, ``https://`` or bare ``www.``, any case) runs to the next
# whitespace but leaves trailing punctuation to the text, so ``great http://t.co/x!``
# keeps its ``!`` for VADER.
_URL_BRANCHES: Final = (
    r"(?<=[hH])[tT][tT][pP][sS]?://\S*[^\s.,;:!?'\"]"
    r"|(?<=[wW])[wW][wW]\.\S*[^\s.,;:!?'\"]"
)
# X usernames are ASCII letters, digits and ``_``. A handle is not preceded by
# a word character (``me@example.com`` is an address, not a handle).
_HANDLE_BRANCH: Final = r"(?<=[@\uff20])(?<![\w@\uff20][@\uff20])[A-Za-z0-9_]+"

# Handles and URLs go in one pass; matched text is never used as a pattern.
_NOISE_RE: Final = re.compile(rf"[hHwW@\uff20](?:{_URL_BRANCHES}|{_HANDLE_BRANCH})")

# Phones type curly apostrophes; VADER's negations and idioms spell "don't".
_QUOTES: Final = str.maketrans({"\u2018": "'", "\u2019": "'"})

# Characters twitter-text allows in a hashtag besides letters, marks and digits.
_HASHTAG_SPECIALS: Final = (
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e"
    "\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\u00b7"
)

# Marks that end an emoji: the text and emoji variation selectors (U+FE0E,
# U+FE0F, as in ``❤\ufe0f``) and the keycap mark (U+20E3, as in ``1\ufe0f\u20e3``).
# Inside a tag they are marks like any other; right before a ``#`` they close an
# emoji, so a tag may start there (``I ❤\ufe0f#love it`` has ``love``).
_EMOJI_END_MARKS: Final = frozenset((0xFE0E, 0xFE0F, 0x20E3))


def clean_for_polarity(text: str) -> str:
    """Text as VADER should see it: no handles or URLs, entities decoded, spaces collapsed.

    Curly apostrophes become ``'`` so VADER sees negations such as ``don't``.
    Case, ``!``, ``?``, emoticons, emoji and hashtags are kept, because VADER
    scores them. Handles and URLs are removed literally (one regex pass), so
    regex metacharacters in them cannot remove other text.
    """
    text = _NOISE_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if "\u2019" in text or "\u2018" in text:
        text = text.translate(_QUOTES)
    return " ".join(text.split())


@functools.cache
def mark_class() -> str:
    """A character-class body of every Unicode mark (``Mn``, ``Mc``, ``Me``).

    Python's ``\\w`` has letters and digits but no combining marks; add this to
    a class (``[\\w{mark_class()}]``) to keep ``हिन्दी`` or a decomposed ``é`` whole.
    """
    return _class_body(_mark_codes())


@functools.cache
def _mark_codes() -> tuple[int, ...]:
    """Every Unicode mark (``Mn``, ``Mc``, ``Me``), in code-point order.

    Python's ``\\w`` has letters and digits but no combining marks, which
    twitter-text allows in hashtags (``#हिन्दी``). Marks live only in planes 0,
    1 and 14, so only those are scanned.
    """
    return tuple(
        code
        for code in (*range(0x20000), *range(0xE0000, 0xE1000))
        if unicodedata.category(chr(code)).startswith("M")
    )


def _class_body(codes: Iterable[int]) -> str:
    """A character-class body of ``codes`` (ascending), runs written as ranges."""
    parts: list[str] = []
    start = end = -1
    for code in codes:
        if code == end + 1:
            end = code
            continue
        if start >= 0:
            parts.append(f"{re.escape(chr(start))}-{re.escape(chr(end))}")
        start = end = code
    if start >= 0:
        parts.append(f"{re.escape(chr(start))}-{re.escape(chr(end))}")
    return "".join(parts)


@functools.cache
def _hashtag_re() -> re.Pattern[str]:
    """The compiled hashtag pattern, built on first use (the mark scan takes ~20 ms)."""
    marks = mark_class()
    specials = re.escape(_HASHTAG_SPECIALS)
    tag_char = rf"[\w{marks}{specials}]"
    letter = rf"(?:[^\W\d_]|[{marks}])"
    # What may not stand right before the sign: ``&`` (``&#39;``) and any tag
    # character but the marks that end an emoji.
    glued = _class_body(code for code in _mark_codes() if code not in _EMOJI_END_MARKS)
    # URLs are matched first and skipped, so ``http://x.co/#a`` has no hashtag.
    # The tag run is possessive: a run followed by ``#`` or ``://`` is not a
    # hashtag at all, rather than a shorter one. A sign followed by U+FE0F or
    # U+20E3 is the ``#\ufe0f\u20e3`` keycap emoji, not a hashtag.
    return re.compile(
        rf"[hHwW#\uff03](?:{_URL_BRANCHES}"
        rf"|(?<=[#\uff03])(?<![&\w{glued}{specials}][#\uff03])(?![\ufe0f\u20e3])"
        rf"({tag_char}*?{letter}{tag_char}*+)(?![#\uff03]|://))"
    )


class HashtagSpan(NamedTuple):
    """A hashtag of a text, as written, and where it is.

    ``start`` is the code-point index of the ``#`` (or ``\uff03``) and ``end``
    the index just past the tag, as twitter-text's ``indices``: ``text[start:end]``
    is ``"#" + tag``.
    """

    tag: str
    start: int
    end: int


def extract_hashtags(text: str) -> list[str]:
    """Hashtags of ``text`` by X's rules, case-folded, in order, with repeats.

    A hashtag is ``#`` or a full-width ``\uff03`` followed by letters, marks, digits and ``_``,
    with at least one letter or mark (``#2024`` is not a hashtag, ``#covid19``
    is ``covid19``). It is not preceded by a letter, digit, mark, ``_`` or ``&``
    (``a#b`` and ``&#39;`` are not hashtags) except the marks that end an emoji
    (``❤\ufe0f#love`` is ``love``), not followed by ``#`` or ``://``, and
    not inside a URL. There is no length limit.
    """
    if "#" not in text and "\uff03" not in text:
        return []
    return [_fold(match) for match in _hashtag_re().findall(text) if match]


def extract_hashtags_with_indices(text: str) -> list[HashtagSpan]:
    """The hashtags :func:`extract_hashtags` finds, as written, with their code-point indices."""
    if "#" not in text and "\uff03" not in text:
        return []
    return [
        HashtagSpan(match[1], match.start(), match.end())
        for match in _hashtag_re().finditer(text)
        if match[1]
    ]


def is_valid_hashtag(text: str) -> bool:
    """Whether ``text`` is one hashtag, sign included (``#hashtag``; not ``#2024`` or ``#a b``)."""
    spans = extract_hashtags_with_indices(text)
    return len(spans) == 1 and spans[0].start == 0 and spans[0].end == len(text)


def hashtag_counts(tags: Iterable[str]) -> dict[str, int]:
    """Case-folded frequencies of ``tags`` (given without ``#``), in first-seen order."""
    counts: dict[str, int] = {}
    for tag in tags:
        folded = _fold(tag)
        counts[folded] = counts.get(folded, 0) + 1
    return counts


def _fold(tag: str) -> str:
    """NFC-normalised and case-folded, so every spelling of a tag counts as one."""
    if not tag.isascii():
        tag = unicodedata.normalize("NFC", tag)
    return tag.casefold()


@functools.cache
def _nltk_data_dir() -> str:
    """Put senti's nltk data first on ``nltk.data.path`` (once) and return it."""
    import nltk.data  # noqa: PLC0415 - nltk loads slowly; import on first use

    path = str(NLTK_DATA)
    if path not in nltk.data.path:
        nltk.data.path.insert(0, path)
    return path


@functools.cache
def stopwords() -> frozenset[str]:
    """nltk's English stopwords, read from the corpus shipped with senti (never downloaded)."""
    from nltk.corpus.reader import WordListCorpusReader  # noqa: PLC0415 - nltk loads slowly; import on first use

    root = Path(_nltk_data_dir()) / "corpora" / "stopwords"
    reader = WordListCorpusReader(str(root), ["english"])
    return frozenset(reader.words("english"))


@functools.cache
def _tweet_tokenizer() -> _Tokenizer:
    """One shared nltk ``TweetTokenizer``; it keeps no state between calls."""
    from nltk.tokenize import TweetTokenizer  # noqa: PLC0415 - nltk loads slowly; import on first use

    tokenizer: _Tokenizer = TweetTokenizer(preserve_case=True, reduce_len=False)
    return tokenizer


class _Tokenizer(Protocol):
    """The part of nltk's ``TweetTokenizer`` senti uses (nltk ships no types)."""

    def tokenize(self, text: str, /) -> list[str]:
        """Split ``text`` into tokens."""


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` by nltk's ``TweetTokenizer``, case preserved.

    Handles, hashtags, URLs, emoticons and emoji stay single tokens
    (``["@ada", "#python", ":-)"]``); callers case-fold as they need.
    """
    return _tweet_tokenizer().tokenize(text)
