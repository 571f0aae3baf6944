"""Queries as X filtered-stream rules, X's limits, and reconciliation of senti's rules."""

from __future__ import annotations

import pytest

from flows.platforms.x_rules import (
    TIERS,
    Rule,
    RuleError,
    RuleLimits,
    check_room,
    key_of,
    reconcile,
    rule_for,
    rule_value,
    tag_for,
)
from flows.routing.matching import parse_query, post_terms
from tests.helpers.fakes.x_api import rule_matches
from tests.helpers.xlines import x_envelope


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("python", "python -is:retweet"),
        ("Python AI", "ai python -is:retweet"),
        ("python, rust", "(python OR rust) -is:retweet"),
        ("python, #AI ml", "((#ai ml) OR python) -is:retweet"),
        ("@Ada lovelace", "@ada lovelace -is:retweet"),
        ("don't panic", '"don\'t" panic -is:retweet'),
        ("covid-19", "19 covid -is:retweet"),
        ("a b, c d", "((a b) OR (c d)) -is:retweet"),
    ],
)
def test_rule_value_translates_phrases_terms_and_operators(query: str, value: str) -> None:
    """Phrases become ORed groups of ANDed terms, with #/@ operators and -is:retweet."""
    assert rule_value(parse_query(query)) == value


def test_language_is_appended_as_an_operator() -> None:
    """A configured language adds lang:xx after -is:retweet."""
    assert rule_value(parse_query("python"), lang="en") == "python -is:retweet lang:en"


def test_a_bad_language_code_is_refused() -> None:
    """Only 2-3 letter lowercase codes are accepted, so nothing can be injected."""
    with pytest.raises(ValueError, match="language code"):
        rule_value(parse_query("python"), lang="en OR cats")


def test_words_with_combining_marks_are_quoted() -> None:
    """A term with characters outside \\w (a Devanagari word) becomes an exact phrase."""
    value = rule_value(parse_query("हिन्दी"))
    assert value.startswith('"')
    assert value.endswith('" -is:retweet')


def test_rule_tag_carries_the_canonical_key() -> None:
    """Two spellings of one query give the same rule and the tag senti:<key>."""
    first = rule_for(parse_query("Python, #AI  ml"))
    second = rule_for(parse_query("#ai ML,python"))
    assert first == second
    assert first.tag == "senti:#ai ml,python"
    assert first.ours
    assert first.key == "#ai ml,python"


def test_tags_of_others_are_not_ours() -> None:
    """Only tags starting with senti: name a query."""
    assert key_of(tag_for("x y")) == "x y"
    assert key_of("marketing") is None
    assert key_of(None) is None
    assert not Rule("cats", tag="marketing").ours


def test_a_rule_longer_than_the_tier_allows_names_the_limit() -> None:
    """A rule over max_rule_chars raises RuleError saying which limit and how long."""
    query = parse_query(", ".join(f"word{n} other{n}" for n in range(20)))
    with pytest.raises(RuleError, match=r"max_rule_chars") as info:
        rule_for(query, limits=RuleLimits(max_rules=5, max_rule_chars=100))
    assert info.value.limit == "max_rule_chars"
    assert "100" in str(info.value)


def test_room_for_rules_is_checked_against_the_tier() -> None:
    """Adding past max_rules raises RuleError naming max_rules; up to it is fine."""
    check_room(4, limits=TIERS["essential"])
    with pytest.raises(RuleError, match="max_rules") as info:
        check_room(5, limits=TIERS["essential"])
    assert info.value.limit == "max_rules"


def test_tiers_have_the_documented_limits() -> None:
    """Essential 5x512, Basic 25x512, Pro 1000x1024."""
    assert [(t.max_rules, t.max_rule_chars) for t in TIERS.values()] == [
        (5, 512),
        (25, 512),
        (1000, 1024),
    ]


def test_reconcile_deletes_stale_rules_adds_missing_and_keeps_others() -> None:
    """Stale senti rules go, missing ones come, a current one stays, foreign rules are untouched."""
    python, rust = parse_query("python"), parse_query("rust")
    existing = [
        Rule("old -is:retweet", tag="senti:old", id="1"),
        Rule("python -is:retweet", tag="senti:python", id="2"),
        Rule("cats", tag="marketing", id="3"),
        Rule("dogs", tag=None, id="4"),
    ]
    sync = reconcile(existing, [python, rust], limits=TIERS["basic"])
    assert sync.to_delete == ("1",)
    assert sync.to_add == (rule_for(rust),)


def test_reconcile_replaces_a_rule_whose_value_changed() -> None:
    """A senti rule with the right tag but another value (lang changed) is replaced."""
    existing = [Rule("python -is:retweet", tag="senti:python", id="2")]
    sync = reconcile(existing, [parse_query("python")], lang="en", limits=TIERS["basic"])
    assert sync.to_delete == ("2",)
    assert [rule.value for rule in sync.to_add] == ["python -is:retweet lang:en"]


def test_reconcile_deletes_a_second_rule_with_the_same_tag() -> None:
    """Of two identical senti rules, one is kept and the other deleted."""
    existing = [
        Rule("python -is:retweet", tag="senti:python", id="2"),
        Rule("python -is:retweet", tag="senti:python", id="5"),
    ]
    sync = reconcile(existing, [parse_query("python")])
    assert sync == type(sync)(to_delete=("5",), to_add=())


def test_reconcile_with_nothing_wanted_deletes_all_of_senti_and_nothing_else() -> None:
    """At start-up with no queries, every senti rule is deleted and no other."""
    existing = [Rule("a", tag="senti:a", id="1"), Rule("b", tag="theirs", id="2")]
    assert reconcile(existing, []).to_delete == ("1",)


def test_reconcile_counts_foreign_rules_against_the_limit() -> None:
    """Foreign rules plus wanted queries beyond max_rules raise RuleError."""
    existing = [Rule(f"r{n}", tag="theirs", id=str(n)) for n in range(4)]
    queries = [parse_query("python"), parse_query("rust")]
    with pytest.raises(RuleError, match="max_rules"):
        reconcile(existing, queries, limits=TIERS["essential"])


@pytest.mark.parametrize(
    ("query", "text", "hashtags"),
    [
        ("python", "I love Python!", None),
        ("python", "new release #python", ["python"]),
        ("#ai ml", "ml meets #AI today", ["AI"]),
        ("rust, go lang", "go is a lang", None),
        ("@ada", "hello @Ada how are you", None),
        ("don't panic", "Don't panic now", None),
        ("covid-19", "covid 19 numbers", None),
    ],
)
def test_rule_matches_every_post_senti_matches(
    query: str, text: str, hashtags: list[str] | None
) -> None:
    """X's rule is a superset of senti's matching: every post senti matches, X sends."""
    parsed = parse_query(query)
    terms = post_terms(text, [tag.casefold() for tag in hashtags or []])
    assert parsed.first_match(terms) is not None
    assert rule_matches(rule_value(parsed), x_envelope(1, text, hashtags=hashtags))


def test_rule_excludes_retweets() -> None:
    """The rule does not match a retweet of a post it would otherwise match."""
    value = rule_value(parse_query("python"))
    assert not rule_matches(value, x_envelope(1, "RT @x: python", retweet=True))
