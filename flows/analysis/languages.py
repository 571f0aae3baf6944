"""Post languages: the key a post's declared language counts under, and which are scored.

Pure: no I/O, no bytewax.

VADER's lexicon is English. A post in another language mostly holds words it
does not know, so it scores 0.0 and would be counted as neutral: "Que dia
horrível" is not neutral. senti scores only the languages of a
:class:`ScoredLanguages` setting (default: English, and posts that declare no
language) and marks every other post *unscored*: it is still matched,
delivered and stored, and windows count it apart (``unscored``) and by
language.

Language keys
-------------
X declares a post's language in ``data.lang`` (BCP 47: ``en``, ``pt``, ``und``
when X cannot tell, ``qme`` for media only); Bluesky lets the author declare
several, and senti keeps the first (:mod:`flows.platforms.bluesky`). Both are free text
in a hostile stream, so a post's language is counted under its
:func:`language_key`:

* no declared language (absent or empty): :data:`UNDECLARED`, ``"und"``, as X
  writes it;
* otherwise its primary subtag, lower-cased: ``en-US``, ``EN`` and ``en_gb``
  are ``en``;
* a primary subtag that is not 2 or 3 ASCII letters (the ISO 639 codes every
  assigned language has) is :data:`OTHER`, ``"other"``, which no language
  code can be: the keys a window counts are bounded.

A window summary keeps its :data:`TOP_LANGUAGES` most frequent keys and adds
the rest up under :data:`OTHER` (:func:`top_languages`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALL_LANGUAGES",
    "DEFAULT_SCORED_LANGUAGES",
    "OTHER",
    "TOP_LANGUAGES",
    "UNDECLARED",
    "ScoredLanguages",
    "language_key",
    "parse_scored_languages",
    "top_languages",
]

UNDECLARED: Final = "und"
"""The key of a post that declares no language (BCP 47's "undetermined", X's spelling)."""

OTHER: Final = "other"
"""The key of a malformed language, and of the languages beyond a summary's top."""

ALL_LANGUAGES: Final = "*"
"""The :class:`ScoredLanguages` spelling that scores every post, whatever its language."""

DEFAULT_SCORED_LANGUAGES: Final = "en,und"
"""Scored by default: English, and posts that declare no language."""

TOP_LANGUAGES: Final = 10
"""Languages a window summary lists by name; the rest count under :data:`OTHER`."""

_MAX_CACHED: Final = 4096
"""Distinct declared languages whose key is remembered (a hostile stream may send any)."""

_keys: dict[str, str] = {}
"""Declared language -> key, for the first :data:`_MAX_CACHED` spellings seen."""


def _primary(lang: str) -> str:
    primary = lang.replace("_", "-", 1).partition("-")[0].strip().lower()
    if 2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha():
        return primary
    return OTHER


def language_key(lang: str | None) -> str:
    """The key ``lang`` counts under: its primary subtag, :data:`UNDECLARED` or :data:`OTHER`.

    Called for every post, so the key of each spelling is computed once and
    then looked up (for the first :data:`_MAX_CACHED` spellings; later ones
    are computed each time, so hostile input cannot grow the table).
    """
    if not lang:
        return UNDECLARED
    key = _keys.get(lang)
    if key is None:
        key = _primary(lang)
        if len(_keys) < _MAX_CACHED:
            _keys[lang] = key
    return key


@dataclass(frozen=True, slots=True)
class ScoredLanguages:
    """The languages VADER scores, as :func:`language_key` keys; every language if ``every``.

    Build it with :func:`parse_scored_languages`. :meth:`scores` is a set
    lookup, done once per post.
    """

    keys: frozenset[str] = frozenset({"en", UNDECLARED})
    every: bool = False

    def scores(self, key: str) -> bool:
        """Whether a post whose language has ``key`` is scored."""
        return self.every or key in self.keys

    def __str__(self) -> str:
        """The setting's spelling: ``en,und``, or ``*``."""
        return ALL_LANGUAGES if self.every else ",".join(sorted(self.keys))


def parse_scored_languages(text: str | Iterable[str]) -> ScoredLanguages:
    """The :class:`ScoredLanguages` of a setting: ``en,und``, ``en-US, pt`` or ``*``.

    Each comma-separated entry is a language tag (only its primary subtag
    counts, case-insensitively) or ``und`` for posts that declare none; ``*``
    alone scores every post, as senti did before it knew languages. Raises
    :class:`ValueError`, naming the entry, for an empty setting or an entry
    whose primary subtag is not 2 or 3 ASCII letters.
    """
    entries = text.split(",") if isinstance(text, str) else list(text)
    names = [entry.strip() for entry in entries if entry.strip()]
    if not names:
        raise ValueError(
            "no languages to score; give language codes such as 'en,und', or '*' for every post"
        )
    if ALL_LANGUAGES in names:
        if len(names) > 1:
            raise ValueError("'*' scores every language: give it alone")
        return ScoredLanguages(frozenset(), every=True)
    keys = set()
    for name in names:
        key = _primary(name)
        if key == OTHER:
            raise ValueError(
                f"{name!r} is not a language code: expected 2 or 3 letters such as 'en' or 'pt' "
                "(optionally with a region, 'pt-BR'), 'und' for posts that declare none, or '*'"
            )
        keys.add(key)
    return ScoredLanguages(frozenset(keys))


def top_languages(
    counts: Mapping[str, int], top: int = TOP_LANGUAGES
) -> tuple[tuple[str, int], ...]:
    """The ``top`` most frequent keys of ``counts``, then :data:`OTHER` with the rest.

    Most frequent first, ties by key; :data:`OTHER` (malformed languages, plus
    every key beyond the top) comes last when it counts any post. Keys counting
    no post are left out.
    """
    named = [(key, count) for key, count in counts.items() if key != OTHER and count > 0]
    kept = heapq.nsmallest(top, named, key=lambda pair: (-pair[1], pair[0]))
    rest = sum(count for _key, count in named) - sum(count for _key, count in kept)
    rest += max(counts.get(OTHER, 0), 0)
    return (*kept, (OTHER, rest)) if rest else tuple(kept)
