"""Tracked queries as X API v2 filtered-stream rules, and rule-set reconciliation (pure).

No I/O, no tweepy: :mod:`flows.sources.x` sends what this module computes.

A :class:`~flows.routing.matching.Query` becomes one rule whose value X matches as a
superset of senti's own matching (the dataflow then applies the exact ``track``
semantics of :mod:`flows.routing.matching`):

* each phrase is its terms ANDed: ``(a b)``; a one-term phrase has no parens;
* phrases are ORed: ``(a OR (b c))``, grouped so that what follows applies to all;
* ``#tag`` and ``@user`` stay X's hashtag and mention operators;
* a bare term is a keyword; one with characters other than letters, digits and
  ``_`` (``don't``, a word with combining marks) is quoted, an exact-phrase match;
* ``-is:retweet`` is appended (senti drops retweets), then ``lang:xx`` if set.

Example: ``python, #ai ml`` → ``(python OR (#ai ml)) -is:retweet``.

The rule's tag is ``senti:`` + the query's canonical key: rules whose tag starts
with ``senti:`` are senti's own; every other rule belongs to someone else and is
never touched. :func:`reconcile` computes what to delete and add so that
senti's rules are exactly the wanted queries.

X limits the rules per stream and the length of each rule by access level
(:data:`TIERS`); exceeding one raises :class:`RuleError` naming the limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from flows.errors import SentiError
from flows.routing.matching import Phrase, Query

__all__ = [
    "DEFAULT_LIMITS",
    "TAG_PREFIX",
    "TIERS",
    "Rule",
    "RuleError",
    "RuleLimits",
    "RuleSync",
    "check_room",
    "key_of",
    "reconcile",
    "rule_for",
    "rule_value",
    "tag_for",
]

TAG_PREFIX: Final = "senti:"
"""Tags of senti's rules start with this; other rules are left alone."""

_WORD: Final = re.compile(r"\w+")
_LANG: Final = re.compile(r"[a-z]{2,3}")


class RuleError(SentiError, ValueError):
    """A query cannot become a rule within X's limits.

    Raised by :func:`rule_for`, :func:`check_room` and :func:`reconcile`;
    :attr:`limit` names the setting that was exceeded (``max_rule_chars`` or
    ``max_rules``).
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class RuleLimits:
    """What X allows on one access level. The defaults are the most restrictive tier."""

    # Limits
    max_rules: int = 5
    """Rules per stream, senti's and everyone else's together."""
    max_rule_chars: int = 512
    """Characters per rule value."""

    def __post_init__(self) -> None:
        if self.max_rules < 1:
            raise ValueError(f"max_rules must be at least 1, not {self.max_rules}")
        if self.max_rule_chars < 1:
            raise ValueError(f"max_rule_chars must be at least 1, not {self.max_rule_chars}")


TIERS: Final[dict[str, RuleLimits]] = {
    "essential": RuleLimits(max_rules=5, max_rule_chars=512),
    "basic": RuleLimits(max_rules=25, max_rule_chars=512),
    "pro": RuleLimits(max_rules=1000, max_rule_chars=1024),
}
"""Filtered-stream limits by access level, as X has documented them: Essential
(5 rules of 512 characters), Basic/Elevated (25 of 512), Pro/Academic (1000 of
1024). Check your project's current limits in X's developer portal."""

DEFAULT_LIMITS: Final = TIERS["essential"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A filtered-stream rule: its value, tag and (once X has it) id."""

    value: str
    tag: str | None = None
    id: str | None = None

    @property
    def ours(self) -> bool:
        """Whether senti made this rule (its tag starts with :data:`TAG_PREFIX`)."""
        return key_of(self.tag) is not None

    @property
    def key(self) -> str | None:
        """The canonical query key in the tag of one of senti's rules, else ``None``."""
        return key_of(self.tag)


@dataclass(frozen=True, slots=True)
class RuleSync:
    """What :func:`reconcile` found to do: delete these rule ids, then add these rules."""

    to_delete: tuple[str, ...]
    to_add: tuple[Rule, ...]


def tag_for(key: str) -> str:
    """The tag of the rule for the query with canonical key ``key``."""
    return TAG_PREFIX + key


def key_of(tag: str | None) -> str | None:
    """The query key in one of senti's tags, or ``None`` for any other tag."""
    if tag is None or not tag.startswith(TAG_PREFIX):
        return None
    return tag[len(TAG_PREFIX) :]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _operand(term: str) -> str:
    sigil, body = (term[0], term[1:]) if term[0] in "#@" else ("", term)
    if _WORD.fullmatch(body):
        return sigil + body
    # Not a plain word: an exact phrase of the text still finds every post that
    # senti would match (X's hashtags and usernames are plain words anyway).
    return _quoted(body)


def _phrase(phrase: Phrase, *, grouped: bool) -> str:
    operands = " ".join(_operand(term) for term in phrase.terms)
    return f"({operands})" if grouped and len(phrase.terms) > 1 else operands


def rule_value(query: Query, *, lang: str | None = None) -> str:
    """The rule value matching (a superset of) what ``query`` matches.

    Raises :class:`ValueError` for a ``lang`` that is not a 2-3 letter code.
    """
    if lang is not None and not _LANG.fullmatch(lang):
        raise ValueError(f"lang must be a 2 or 3 letter language code like 'en', not {lang!r}")
    if len(query.phrases) == 1:
        body = _phrase(query.phrases[0], grouped=False)
    else:
        body = "(" + " OR ".join(_phrase(p, grouped=True) for p in query.phrases) + ")"
    value = f"{body} -is:retweet"
    return value if lang is None else f"{value} lang:{lang}"


def rule_for(query: Query, *, lang: str | None = None, limits: RuleLimits = DEFAULT_LIMITS) -> Rule:
    """The rule (value and tag, no id yet) for ``query``.

    Raises :class:`RuleError` (``limit="max_rule_chars"``) when the value is
    longer than X allows.
    """
    value = rule_value(query, lang=lang)
    if len(value) > limits.max_rule_chars:
        raise RuleError(
            f"the X rule for query {query.key!r} is {len(value)} characters long; "
            f"X allows {limits.max_rule_chars} per rule (max_rule_chars)",
            limit="max_rule_chars",
        )
    return Rule(value=value, tag=tag_for(query.key))


def check_room(existing: int, adding: int = 1, *, limits: RuleLimits = DEFAULT_LIMITS) -> None:
    """Raise :class:`RuleError` (``limit="max_rules"``) if ``existing + adding`` is too many."""
    if existing + adding > limits.max_rules:
        raise RuleError(
            f"cannot add {adding} rule(s) to the {existing} already on the stream: "
            f"X allows {limits.max_rules} rules on this access level (max_rules)",
            limit="max_rules",
        )


def reconcile(
    existing: Iterable[Rule],
    wanted: Iterable[Query],
    *,
    lang: str | None = None,
    limits: RuleLimits = DEFAULT_LIMITS,
) -> RuleSync:
    """What to delete and add so that senti's rules are exactly one per ``wanted`` query.

    A senti rule is kept only if its tag names a wanted query *and* its value is
    the one :func:`rule_for` makes now (a changed ``lang`` replaces it); a
    second rule with the same tag is deleted. Rules without a ``senti:`` tag
    are never deleted, but count against ``limits.max_rules``.

    Raises :class:`RuleError` if a wanted rule is too long or the result would
    exceed the number of rules X allows.
    """
    rules = list(existing)
    want: dict[str, Rule] = {}
    for query in wanted:
        rule = rule_for(query, lang=lang, limits=limits)
        want.setdefault(rule.tag or "", rule)
    foreign = sum(1 for rule in rules if not rule.ours)
    check_room(foreign, len(want), limits=limits)

    kept: set[str] = set()
    to_delete: list[str] = []
    for rule in rules:
        if not rule.ours or rule.id is None:
            continue
        target = want.get(rule.tag or "")
        if target is not None and target.value == rule.value and rule.tag not in kept:
            kept.add(target.tag or "")
        else:
            to_delete.append(rule.id)
    to_add = tuple(rule for tag, rule in want.items() if tag not in kept)
    return RuleSync(to_delete=tuple(to_delete), to_add=to_add)
