"""Which languages are scored, and the key a post's language counts under."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.analysis import languages
from flows.analysis.languages import (
    OTHER,
    TOP_LANGUAGES,
    UNDECLARED,
    ScoredLanguages,
    language_key,
    parse_scored_languages,
    top_languages,
)


@pytest.mark.parametrize(
    ("lang", "key"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        (" pt-BR ", "pt"),
        ("zh-Hant-TW", "zh"),
        ("und", UNDECLARED),
        ("qme", "qme"),
        (None, UNDECLARED),
        ("", UNDECLARED),
        ("e", OTHER),
        ("english", OTHER),
        ("x-klingon", OTHER),
        ("12", OTHER),
        ("日本", OTHER),
        ("-en", OTHER),
        ("e\ud800", OTHER),
    ],
)
def test_language_key_is_the_lower_case_primary_subtag(lang: str | None, key: str) -> None:
    """A language counts under its primary subtag, lower-cased; none is ``und``; a primary
    subtag that is not 2 or 3 ASCII letters is ``other``."""
    assert language_key(lang) == key


@given(st.text(max_size=40))
def test_language_key_of_any_text_is_a_code_or_other(lang: str) -> None:
    """Whatever a stream declares, the key is a 2-3 letter lower-case code or ``other``, and
    the same on every call."""
    key = language_key(lang)
    assert key == OTHER or (
        2 <= len(key) <= 3 and key.isascii() and key.isalpha() and key.islower()
    )
    assert language_key(lang) == key


def test_language_keys_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile stream sending ever new spellings does not grow the table of keys."""
    monkeypatch.setattr(languages, "_keys", {})
    for number in range(languages._MAX_CACHED + 500):
        assert language_key(f"en-{number}") == "en"
    assert len(languages._keys) == languages._MAX_CACHED


def test_default_scores_english_and_undeclared() -> None:
    """By default English (any region) and posts that declare no language are scored."""
    default = ScoredLanguages()
    assert default == parse_scored_languages("en,und")
    assert default.scores(language_key("en-US"))
    assert default.scores(language_key(None))
    assert default.scores(language_key("und"))
    assert not default.scores(language_key("pt"))
    assert not default.scores(language_key("qme"))
    assert not default.scores(language_key("bogus language"))


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("en", {"en"}),
        ("EN-us, pt-BR", {"en", "pt"}),
        ("en,,und, ", {"en", UNDECLARED}),
        (["es", "ES-mx"], {"es"}),
    ],
)
def test_parse_scored_languages_compares_primary_subtags(text: str, keys: set[str]) -> None:
    """A setting's entries are compared by primary subtag, case-insensitively."""
    assert parse_scored_languages(text) == ScoredLanguages(frozenset(keys))


def test_star_scores_every_language() -> None:
    """``*`` scores every post, malformed languages included, as senti did before."""
    every = parse_scored_languages(" * ")
    assert every.every
    assert all(every.scores(language_key(lang)) for lang in ("pt", "ja", None, "??"))
    assert str(every) == "*"


def test_a_setting_spells_itself_canonically() -> None:
    """``str()`` gives a setting back in one spelling, sorted."""
    assert str(parse_scored_languages("und, EN-gb")) == "en,und"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no languages to score"),
        (" , ", "no languages to score"),
        ("english", "'english' is not a language code"),
        ("en,x", "'x' is not a language code"),
        ("*,en", "give it alone"),
        ("other", "'other' is not a language code"),
    ],
)
def test_parse_scored_languages_refuses(text: str, message: str) -> None:
    """An empty setting, a malformed entry or ``*`` among others is a ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        parse_scored_languages(text)


def test_top_languages_lists_the_most_frequent_then_other() -> None:
    """At most ``top`` languages by count (ties by key), then ``other`` with the rest."""
    counts = {"en": 10, "pt": 4, "ja": 4, "es": 1, OTHER: 2, "de": 0}
    assert top_languages(counts, top=2) == (("en", 10), ("ja", 4), (OTHER, 7))
    assert top_languages(counts) == (("en", 10), ("ja", 4), ("pt", 4), ("es", 1), (OTHER, 2))
    assert top_languages({"en": 3}) == (("en", 3),)
    assert top_languages({}) == ()


@given(
    st.dictionaries(
        st.sampled_from(["en", "pt", "ja", "es", "de", "fr", OTHER]), st.integers(0, 50)
    )
)
def test_top_languages_keep_every_post(counts: dict[str, int]) -> None:
    """The bounded list counts every post exactly once."""
    pairs = top_languages(counts, top=3)
    assert sum(n for _lang, n in pairs) == sum(counts.values())
    assert len(pairs) <= 4
    assert all(n > 0 for _lang, n in pairs)
    assert TOP_LANGUAGES == 10
