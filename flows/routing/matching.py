"""Tracked queries: parsing, X's classic ``track`` semantics, and a term index.

Pure: no I/O, no bytewax. The rules (also in ``docs/matching.md``):

* A query is a comma-separated list of *phrases*; a post matches the query if
  it matches **any** phrase (OR).
* A phrase is a space-separated list of *terms*; it matches if **all** its terms
  occur in the post, in any order (AND).
* Matching is case-insensitive (Unicode case folding, NFC normalised).
* A bare term matches a whole word, a ``#hashtag`` or an ``@mention`` with that
  text: ``python`` matches ``Python!``, ``#Python`` and ``@python`` but not
  ``pythonista``. A term written ``#python`` matches only the hashtag, and
  ``@python`` only the mention.
* A bare term containing punctuation is split into its words, all of which must
  occur: ``covid-19`` is the phrase ``covid 19``.

Every query has a canonical key (phrases and terms de-duplicated and sorted,
``"a b,c"``), so ``"Python, #AI  ml"`` and ``"#ai ML,python"`` are one query.

Each phrase is filed under one *anchor* term, the term least likely to occur
(a hashtag or mention, else the longest non-stopword). A post is checked only
against the phrases anchored on one of its own terms, so matching costs
``O(terms in the post)`` whatever the number of tracked queries. In the
dataflow each lane's state is a :class:`TermIndex` of every tracked query (see
:class:`flows.steps.Lanes`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flows.analysis.text import mark_class, stopwords
from flows.errors import SentiError

__all__ = [
    "MAX_PHRASES",
    "MAX_QUERY_CHARS",
    "MAX_TERMS_PER_PHRASE",
    "InvalidQuery",
    "Phrase",
    "Query",
    "Subscription",
    "TermIndex",
    "matches_at",
    "parse_query",
    "post_terms",
]

# Limits
MAX_QUERY_CHARS: Final = 512
MAX_PHRASES: Final = 25
MAX_TERMS_PER_PHRASE: Final = 10

_MENTION = re.compile(r"(?<![\w@])[@\uff20](\w{1,50})")
_SIGILS = frozenset("#@")


class InvalidQuery(SentiError, ValueError):
    """Raised by :func:`parse_query` for an empty, oversized or unusable query."""


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


@functools.cache
def _word_re() -> re.Pattern[str]:
    # Words keep their combining marks (हिन्दी, a decomposed é) and inner apostrophes.
    char = rf"[\w{mark_class()}]"
    return re.compile(rf"{char}+(?:['\u2019]{char}+)*")


def _words(text: str) -> list[str]:
    # A right single quote is an apostrophe; outside words it is no word character either way.
    words: list[str] = _word_re().findall(text.replace("\u2019", "'"))
    return words


@dataclass(frozen=True, slots=True)
class Phrase:
    """Terms that must all occur in a post; sorted and unique."""

    terms: tuple[str, ...]
    anchor: str = field(init=False, compare=False)
    """The term this phrase is indexed under (see the module docstring)."""
    required: frozenset[str] = field(init=False, compare=False, repr=False)
    """:attr:`terms` as a set."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor", _choose_anchor(self.terms))
        object.__setattr__(self, "required", frozenset(self.terms))

    def matches(self, terms: frozenset[str]) -> bool:
        """Whether every term of the phrase is among a post's ``terms``."""
        return self.required <= terms

    def __str__(self) -> str:
        return " ".join(self.terms)


def _choose_anchor(terms: tuple[str, ...]) -> str:
    """The term least likely to occur: a hashtag or mention, else the longest
    non-stopword (ties to the greatest)."""
    stop = stopwords()
    best, rank = "", (False, False, 0, "")
    for term in terms:
        mine = (term[0] in _SIGILS, term not in stop, len(term), term)
        if mine > rank:
            best, rank = term, mine
    return best


@dataclass(frozen=True, slots=True)
class Query:
    """A tracked query: phrases OR-ed together. Build it with :func:`parse_query`."""

    phrases: tuple[Phrase, ...]
    key: str = field(init=False, compare=False, repr=False)
    """The canonical form: equal for every spelling of the same query."""
    spelling: str = field(default="", compare=False, repr=False)
    """The text as the user typed it (spaces collapsed), for people: not part of
    equality, so every spelling is the same query; empty when not known."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", ",".join(str(phrase) for phrase in self.phrases))

    def first_match(self, terms: frozenset[str]) -> Phrase | None:
        """The first phrase (in canonical order) that a post with ``terms`` matches."""
        for phrase in self.phrases:
            if phrase.matches(terms):
                return phrase
        return None

    def anchors(self) -> frozenset[str]:
        """The anchor terms of all phrases."""
        return frozenset(phrase.anchor for phrase in self.phrases)

    @property
    def shown(self) -> str:
        """What to show people: the spelling, or the key when it is not known (also for a
        query unpickled from a recovery snapshot taken before queries had a spelling)."""
        return getattr(self, "spelling", "") or self.key

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Subscription:
    """A change to the tracked queries: start (``active``) or stop tracking ``query``."""

    query: Query
    active: bool = True

    @property
    def key(self) -> str:
        """The canonical key of the query."""
        return self.query.key


def _parse_term(raw: str) -> list[str]:
    if raw.isalnum():  # one word: ``\w`` is exactly what isalnum accepts (and ``_``)
        return [raw]
    if raw[0] in "#@\uff03\uff20":
        sigil = "#" if raw[0] in "#\uff03" else "@"
        words = _words(raw[1:])
        if len(words) != 1 or words[0] != raw[1:] or (sigil == "#" and words[0].isdigit()):
            kind = "hashtag" if sigil == "#" else "mention"
            raise InvalidQuery(f"{raw!r} is not a valid {kind}")
        return [sigil + words[0]]
    return _words(raw)


def parse_query(text: str) -> Query:
    """Parse a ``track`` string into a :class:`Query`.

    Raises :class:`InvalidQuery` if it is not a string, is empty, is longer than
    :data:`MAX_QUERY_CHARS`, has more than :data:`MAX_PHRASES` phrases or a
    phrase with more than :data:`MAX_TERMS_PER_PHRASE` terms, or contains a
    malformed ``#hashtag`` or ``@mention``.

    A run may be given 100,000 queries, so this builds each phrase once, from
    its sorted terms, and the query from its canonical key (:func:`_query_of`).
    """
    if not isinstance(text, str):
        raise InvalidQuery("a query must be a string")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"query is longer than {MAX_QUERY_CHARS} characters")
    phrases: dict[str, tuple[str, ...]] = {}  # by its text: terms have no spaces
    for raw_phrase in _normalise(text).split(","):
        raw_terms = raw_phrase.split()
        if len(raw_terms) == 1:
            found = _parse_term(raw_terms[0])
            terms = tuple(found) if len(found) == 1 else tuple(sorted(set(found)))
        else:
            unique: set[str] = set()
            for raw_term in raw_terms:
                unique.update(_parse_term(raw_term))
            terms = tuple(sorted(unique))
        if not terms:
            continue
        if len(terms) > MAX_TERMS_PER_PHRASE:
            raise InvalidQuery(f"a phrase has more than {MAX_TERMS_PER_PHRASE} terms")
        phrases[" ".join(terms)] = terms
    if not phrases:
        raise InvalidQuery("query has no words, hashtags or mentions to track")
    if len(phrases) > MAX_PHRASES:
        raise InvalidQuery(f"query has more than {MAX_PHRASES} phrases")
    return _query_of(phrases, " ".join(text.split()))


def _query_of(phrases: dict[str, tuple[str, ...]], spelling: str) -> Query:
    """The :class:`Query` of ``phrases`` (terms by phrase text), built field by field.

    The same object as ``Query(tuple(Phrase(terms) ...), spelling=...)`` with the
    phrases sorted by their text, without recomputing their texts and the key.
    """
    ordered = sorted(phrases)
    query = _new_query(Query)
    _set(query, "phrases", tuple(_phrase_of(phrases[shown]) for shown in ordered))
    _set(query, "key", ",".join(ordered))
    _set(query, "spelling", spelling)
    return query


def _phrase_of(terms: tuple[str, ...]) -> Phrase:
    """``Phrase(terms)``, field by field (``terms`` sorted and unique)."""
    phrase = _new_phrase(Phrase)
    _set(phrase, "terms", terms)
    _set(phrase, "anchor", terms[0] if len(terms) == 1 else _choose_anchor(terms))
    _set(phrase, "required", frozenset(terms))
    return phrase


_set: Final = object.__setattr__
_new_query: Final = object.__new__
_new_phrase: Final = object.__new__


def post_terms(text: str, hashtags: Iterable[str] = ()) -> frozenset[str]:
    """The terms a post offers to queries: its words, ``#hashtags`` and ``@mentions``.

    ``hashtags`` are the post's (case-folded) hashtags as extracted by X's rules;
    each adds ``#tag``. Words inside hashtags and mentions count as words too.
    """
    folded = _normalise(text)
    terms = set(_words(folded))
    terms.update("#" + tag for tag in hashtags)
    terms.update("@" + name for name in _MENTION.findall(folded))
    return frozenset(terms)


def matches_at(term: str, queries: Mapping[str, Query], terms: frozenset[str]) -> Iterator[str]:
    """Keys of the ``queries`` filed under ``term`` that a post with ``terms`` matches.

    A query is yielded only from the anchor of its *first* matching phrase, so
    across all of a post's terms each matching query is yielded exactly once,
    even when several of its phrases match.
    """
    for key, query in queries.items():
        phrase = query.first_match(terms)
        if phrase is not None and phrase.anchor == term:
            yield key


def _anchors_of(query: Query) -> Iterator[str]:
    """The anchors of ``query``'s phrases, with repeats (:meth:`Query.anchors` without the set)."""
    return (phrase.anchor for phrase in query.phrases)


@dataclass(slots=True)
class TermIndex:
    """An inverted index from anchor term to the tracked queries filed under it."""

    _by_anchor: dict[str, dict[str, Query]] = field(default_factory=dict)
    _plans: dict[str, _Plan] = field(default_factory=dict, compare=False, repr=False)
    """Per anchor, built on first use: queries a post with the anchor surely
    matches, and the rest, to check. Dropped when the anchor's queries change."""
    _owned: set[str] | None = field(default=None, compare=False, repr=False)
    """``None`` while no copy shares this index's dictionaries; after a copy
    (:meth:`__deepcopy__`), the anchors whose dictionary this index has copied
    since (copy on write): both sides change only dictionaries of their own."""
    _shared: bool = field(default=False, compare=False, repr=False)
    """Whether the outer dictionary is still shared with a copy."""

    def add(self, query: Query, *, anchors: Iterable[str] | None = None) -> None:
        """Start tracking ``query`` (idempotent); ``anchors`` limits where it is filed."""
        plans, key = self._plans, query.key
        for anchor in _anchors_of(query) if anchors is None else anchors:
            filed = self._filed(anchor)
            if filed is None:
                self._by_anchor[anchor] = {key: query}
            else:
                filed[key] = query
                plans.pop(anchor, None)

    def remove(self, query: Query, *, anchors: Iterable[str] | None = None) -> None:
        """Stop tracking ``query`` (idempotent)."""
        for anchor in _anchors_of(query) if anchors is None else anchors:
            if anchor not in self._by_anchor:
                continue
            filed = self._filed(anchor)
            if filed is not None:
                filed.pop(query.key, None)
                self._plans.pop(anchor, None)
                if not filed:
                    del self._by_anchor[anchor]

    def _filed(self, anchor: str) -> dict[str, Query] | None:
        """The dictionary filed under ``anchor``, this index's own to change (or ``None``)."""
        owned = self._owned
        if owned is None:
            return self._by_anchor.get(anchor)
        if self._shared:
            self._by_anchor = dict(self._by_anchor)
            self._shared = False
        filed = self._by_anchor.get(anchor)
        if filed is not None and anchor not in owned:
            filed = self._by_anchor[anchor] = dict(filed)
        owned.add(anchor)
        return filed

    def apply(self, change: Subscription, *, anchors: Iterable[str] | None = None) -> None:
        """Apply a subscription change (filed under ``anchors`` if given)."""
        if change.active:
            self.add(change.query, anchors=anchors)
        else:
            self.remove(change.query, anchors=anchors)

    def filed_under(self, term: str) -> Mapping[str, Query]:
        """The queries with a phrase anchored on ``term``."""
        return self._by_anchor.get(term, {})

    def anchors(self) -> frozenset[str]:
        """Every term some phrase is anchored on."""
        return frozenset(self._by_anchor)

    def match(self, terms: frozenset[str]) -> list[str]:
        """Keys of every tracked query a post with ``terms`` matches, each once.

        The same as :func:`matches_at` over every term, faster: a query whose
        first phrase is the anchor alone (a word, a ``#tag``, an OR list led
        by one) matches whenever the post has the anchor, without a check; a
        query of one longer phrase is checked only when the post also has the
        phrase's second term (see :class:`_Plan`), so many AND phrases on one
        anchor cost a lookup per term of the post, not a check each.
        """
        found: list[str] = []
        by_anchor, plans = self._by_anchor, self._plans
        for term in terms:
            filed = by_anchor.get(term)
            if filed:
                plan = plans.get(term)
                if plan is None:
                    plan = plans[term] = _Plan.of(term, filed)
                found += plan.sure
                if plan.pairs:
                    found += plan.paired(terms)
                for key, phrases in plan.check:  # Query.first_match, inline
                    for required, anchored_here in phrases:
                        if required <= terms:
                            if anchored_here:
                                found.append(key)
                            break
        return found

    def __len__(self) -> int:
        return len({key for filed in self._by_anchor.values() for key in filed})

    def __deepcopy__(self, memo: dict[int, object]) -> TermIndex:
        """A copy that shares the dictionaries until either side changes one.

        Bytewax snapshots each lane's state by deep copy at every epoch, with
        recovery or not: sharing makes that O(1) whatever the number of
        queries, and a change after it copies the outer dictionary once and
        the dictionary of each anchor it touches (queries are immutable, so
        both sides share them anyway).
        """
        self._owned, self._shared = set(), True
        return TermIndex(self._by_anchor, _owned=set(), _shared=True)

    def __reduce__(self) -> tuple[Any, ...]:
        return TermIndex, (self._by_anchor,)  # plans are rebuilt on use


@dataclass(frozen=True, slots=True)
class _Plan:
    """How :meth:`TermIndex.match` handles the queries filed under one anchor."""

    sure: tuple[str, ...]
    """Keys of the queries whose first phrase is the anchor alone."""
    pairs: dict[str, tuple[tuple[str, frozenset[str]], ...]]
    """Queries of one phrase of several terms, filed by a *second* term of the
    phrase (not the anchor): each key with the terms it requires. Such a query
    matches exactly when the post has all of them, so only the entries under
    the post's own terms are checked."""
    check: tuple[tuple[str, tuple[tuple[frozenset[str], bool], ...]], ...]
    """The other queries: each key, with its phrases in order as the terms they
    require and whether they are anchored on this anchor. A post matches the
    query from here if the first phrase whose terms it has is anchored here."""

    @classmethod
    def of(cls, anchor: str, filed: Mapping[str, Query]) -> _Plan:
        alone = (anchor,)
        sure: list[str] = []
        pairs: dict[str, list[tuple[str, frozenset[str]]]] = {}
        check: list[tuple[str, tuple[tuple[frozenset[str], bool], ...]]] = []
        for key, query in filed.items():
            first = query.phrases[0]
            if first.terms == alone:
                sure.append(key)
            elif len(query.phrases) == 1:
                second = _choose_anchor(tuple(t for t in first.terms if t != anchor))
                pairs.setdefault(second, []).append((key, first.required))
            else:
                phrases = tuple(
                    (phrase.required, phrase.anchor == anchor) for phrase in query.phrases
                )
                check.append((key, phrases))
        return cls(tuple(sure), {t: tuple(e) for t, e in pairs.items()}, tuple(check))

    def paired(self, terms: frozenset[str]) -> list[str]:
        """Keys of the :attr:`pairs` queries a post with ``terms`` matches, each once.

        It walks the smaller of the post's terms and the second terms filed.
        """
        pairs = self.pairs
        found: list[str] = []
        if len(pairs) < len(terms):
            for second, entries in pairs.items():
                if second in terms:
                    found += [key for key, required in entries if required <= terms]
        else:
            for second in terms:
                filed = pairs.get(second)
                if filed:
                    found += [key for key, required in filed if required <= terms]
        return found
