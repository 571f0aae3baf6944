"""Tests for flows.analysis.text: cleaning for VADER, hashtags, stopwords and tokens."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flows.analysis.text import (
    NLTK_DATA,
    HashtagSpan,
    clean_for_polarity,
    extract_hashtags,
    extract_hashtags_with_indices,
    hashtag_counts,
    is_valid_hashtag,
    stopwords,
    tokenize,
)

CONFORMANCE_FILE = Path(__file__).parent / "conformance" / "twitter_text_hashtags.yml"
CONFORMANCE: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    CONFORMANCE_FILE.read_text(encoding="utf-8")
)

# clean_for_polarity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@ada this is GREAT!!!", "this is GREAT!!!"),
        ("love it http://t.co/abc123", "love it"),
        ("see https://example.com/a?b=c&d=e now", "see now"),
        ("bare www.example.com/page, nice", "bare , nice"),
        ("shouting HTTPS://T.CO/X works", "shouting works"),
        ("great http://t.co/x!", "great !"),
        ("mail me@example.com", "mail me@example.com"),
        ("fish &amp; chips &lt;3 &gt;:(", "fish & chips <3 >:("),
        ("so   much\n\tspace ", "so much space"),
        ("sad :-( happy :) <3 😂", "sad :-( happy :) <3 😂"),
        ("Why?? WHY?!", "Why?? WHY?!"),
        ("#Blessed day #covid19", "#Blessed day #covid19"),
        ("I don\u2019t like it", "I don't like it"),
        ("", ""),
    ],
)
def test_clean_for_polarity_table(text: str, expected: str) -> None:
    """Handles and URLs go, entities are decoded, and what VADER scores stays."""
    assert clean_for_polarity(text) == expected


def test_clean_handle_with_regex_metacharacters_is_literal() -> None:
    """A handle followed by ``.`` is removed literally and other text survives (original bug)."""
    assert clean_for_polarity("@a.b said axb and a.b") == ".b said axb and a.b"


def test_clean_url_with_regex_metacharacters_is_literal() -> None:
    """A URL with ``+`` and parentheses is removed whole, without touching similar text."""
    text = "wow http://x.co/a+b(c) but http://xaco/a and a+b(c) stay"
    assert clean_for_polarity(text) == "wow but and a+b(c) stay"


def test_clean_compares_by_value() -> None:
    """Cleaning a non-interned copy gives an equal result (the original used ``is``)."""
    text = "".join(["@ada ", "good ", "day"])
    assert clean_for_polarity(text) == "good day"
    assert clean_for_polarity(text) == clean_for_polarity(str(text))


@given(st.text(alphabet=st.characters(blacklist_characters="&")))
def test_clean_is_idempotent(text: str) -> None:
    """Cleaning cleaned text (without entities, which may nest) changes nothing."""
    once = clean_for_polarity(text)
    assert clean_for_polarity(once) == once


@given(st.text(alphabet=st.characters(blacklist_characters="@\uff20hHwW&\u2018\u2019")))
def test_clean_only_normalises_space_without_noise(text: str) -> None:
    """Text without handles, URLs, entities or curly quotes keeps its words."""
    assert clean_for_polarity(text) == " ".join(text.split())


# extract_hashtags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#python rocks", ["python"]),
        ("#café au lait", ["café"]),
        ("#日本 travel", ["日本"]),
        ("#covid_19 cases", ["covid_19"]),
        ("#covid19 cases", ["covid19"]),
        ("#2024 is a year", []),
        ("#_1 not letters", []),
        ("a#b is not one", []),
        ("it&#39;s no tag", []),
        ("\uff03fullwidth sign", ["fullwidth"]),
        ("#हिन्दी with marks", ["हिन्दी"]),
        ("#Python #PYTHON #python", ["python", "python", "python"]),
        ("#Straße", ["strasse"]),
        ("end.#tag and (#paren)", ["tag", "paren"]),
        ("#a#b joined", []),
        ("#abc://x scheme", []),
        ("http://x.co/#anchor inside a URL", []),
        ("#ok, #fine! #yes?", ["ok", "fine", "yes"]),
        ("no tags here", []),
        ("#", []),
    ],
)
def test_extract_hashtags_table(text: str, expected: list[str]) -> None:
    """Hashtags follow X's rules and are case-folded, in order, with repeats."""
    assert extract_hashtags(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I \u2764\ufe0f#love it", ["love"]),
        ("calm \u2615\ufe0e#tea", ["tea"]),
        ("wave \U0001f44b\U0001f3fd#hi", ["hi"]),
        ("wave \U0001f44b\U0001f3fd\ufe0f#hi", ["hi"]),
        ("\U0001f3f3\ufe0f\u200d\U0001f308#pride", ["pride"]),
        ("\U0001f469\u200d\U0001f4bb#dev", ["dev"]),
        ("1\ufe0f\u20e3#first", ["first"]),
        ("#\ufe0f\u20e3#tag after the keycap hash", ["tag"]),
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f#eng", ["eng"]),
        ("\u2764\ufe0f#2024", []),
        ("\u2764\ufe0f&#39;", []),
        ("e\u0301#x glued to a combining accent", []),
        ("\u0915\u093f#x glued to a vowel sign", []),
        ("\U0001f468\u200d#x glued to a dangling ZWJ", []),
    ],
)
def test_a_hashtag_may_follow_an_emoji(text: str, expected: list[str]) -> None:
    """A tag right after an emoji counts, after a variation selector, skin tone or keycap mark too.

    Other marks (accents, vowel signs) and a dangling ZWJ still glue the sign to the word before.
    """
    assert extract_hashtags(text) == expected


def test_hashtags_keep_digits() -> None:
    """Digits stay in a hashtag (the original dropped them with ``[^a-zA-Z#]``)."""
    assert extract_hashtags("#covid19 #web3 #A1B2") == ["covid19", "web3", "a1b2"]


def test_hashtags_compare_by_value() -> None:
    """Tags built at run time equal literals (the original compared with ``is``)."""
    tag = "".join(["py", "thon"])
    assert extract_hashtags("#" + tag) == ["python"]
    assert hashtag_counts([tag, "python"]) == {"python": 2}


@given(st.text())
def test_extracted_hashtags_are_folded_and_not_all_digits(text: str) -> None:
    """Every extracted tag is non-empty, case-folded and not made of digits only."""
    for tag in extract_hashtags(text):
        assert tag
        assert tag == tag.casefold()
        assert not tag.isdigit()


def test_hashtags_with_indices_locate_the_sign_and_keep_the_spelling() -> None:
    """Each span starts at the sign and ends after the tag, in code points, tag as written."""
    text = "👋🏽 #Café and \uff03日本, not #2024"
    spans = extract_hashtags_with_indices(text)
    assert spans == [HashtagSpan("Café", 3, 8), HashtagSpan("日本", 13, 16)]
    for span in spans:
        assert text[span.start + 1 : span.end] == span.tag
    assert extract_hashtags_with_indices("no tags") == []


@given(st.text())
def test_indices_agree_with_extraction(text: str) -> None:
    """The spans name the same tags, folded, as extract_hashtags, each slice being sign plus tag."""
    spans = extract_hashtags_with_indices(text)
    assert [_fold(span.tag) for span in spans] == extract_hashtags(text)
    for span in spans:
        assert text[span.start] in "#\uff03"
        assert text[span.start + 1 : span.end] == span.tag


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("#python", True),
        ("\uff03日本", True),
        ("#covid19", True),
        ("#2024", False),
        ("python", False),
        ("#", False),
        (" #python", False),
        ("#python ", False),
        ("#a #b", False),
        ("#self-care", False),
        ("", False),
    ],
)
def test_is_valid_hashtag(text: str, valid: bool) -> None:
    """A valid hashtag is the whole text: a sign and one tag, nothing before or after."""
    assert is_valid_hashtag(text) is valid


# twitter-text's conformance cases (tests/conformance/twitter_text_hashtags.yml)


def _fold(tag: str) -> str:
    return unicodedata.normalize("NFC", tag).casefold()


def _cases(section: str) -> list[Any]:
    return [pytest.param(case, id=case["description"]) for case in CONFORMANCE[section]]


def _expected(case: dict[str, Any], key: str) -> Any:
    """The spec's answer, or senti's where the case names a deliberate difference."""
    differs = case.get("differs")
    if differs is None:
        return case[key]
    assert differs["reason"].strip()
    assert differs["senti"] != case[key]
    return differs["senti"]


@pytest.mark.parametrize("case", _cases("extract"))
def test_conformance_extract(case: dict[str, Any]) -> None:
    """twitter-text's extract cases: the same tags, as written and folded, in order."""
    expected = _expected(case, "expected")
    assert [span.tag for span in extract_hashtags_with_indices(case["text"])] == expected
    assert extract_hashtags(case["text"]) == [_fold(tag) for tag in expected]


@pytest.mark.parametrize("case", _cases("extract_with_indices"))
def test_conformance_extract_with_indices(case: dict[str, Any]) -> None:
    """twitter-text's extract-with-indices cases: the same tags at the same code-point indices."""
    expected = [HashtagSpan(item["tag"], *item["indices"]) for item in _expected(case, "expected")]
    assert extract_hashtags_with_indices(case["text"]) == expected


@pytest.mark.parametrize("case", _cases("autolink"))
def test_conformance_autolink(case: dict[str, Any]) -> None:
    """The hashtags twitter-text's autolinker links are the ones senti extracts."""
    linked = _expected(case, "linked")
    assert [span.tag for span in extract_hashtags_with_indices(case["text"])] == linked
    assert extract_hashtags(case["text"]) == [_fold(tag) for tag in linked]


@pytest.mark.parametrize("case", _cases("validate"))
def test_conformance_validate(case: dict[str, Any]) -> None:
    """twitter-text's hashtag validation cases."""
    assert is_valid_hashtag(case["text"]) is _expected(case, "valid")


def test_conformance_file_has_every_section() -> None:
    """The data file keeps its four sections, each non-empty, every case described."""
    assert set(CONFORMANCE) == {"extract", "extract_with_indices", "autolink", "validate"}
    for cases in CONFORMANCE.values():
        assert cases
        assert all(case["description"] and "text" in case for case in cases)


# hashtag_counts


def test_hashtag_counts_fold_and_count() -> None:
    """Tags are counted case-folded, in first-seen order."""
    counts = hashtag_counts(["Python", "bytewax", "PYTHON", "python"])
    assert counts == {"python": 3, "bytewax": 1}
    assert list(counts) == ["python", "bytewax"]


def test_hashtag_counts_empty() -> None:
    """No tags give an empty mapping."""
    assert hashtag_counts([]) == {}


def test_hashtag_counts_from_extraction() -> None:
    """Counting extracted tags gives the documented message's ``hashtags`` field."""
    assert hashtag_counts(extract_hashtags("#A #b #a")) == {"a": 2, "b": 1}


# stopwords and tokens


def test_stopwords_are_nltk_english() -> None:
    """The shipped nltk English list loads, with its usual words."""
    words = stopwords()
    assert isinstance(words, frozenset)
    assert {"the", "and", "not", "you're"} <= words
    assert "python" not in words
    assert len(words) == len(
        (NLTK_DATA / "corpora" / "stopwords" / "english").read_text("utf-8").split()
    )


def test_stopwords_are_cached() -> None:
    """The list is read once per process."""
    assert stopwords() is stopwords()


def test_tokenize_keeps_tweet_units() -> None:
    """Handles, hashtags, emoticons and emoji stay single tokens, case kept."""
    assert tokenize("@ada LOVES #python :-) 😂") == ["@ada", "LOVES", "#python", ":-)", "😂"]


def test_tokenize_empty() -> None:
    """Empty text has no tokens."""
    assert tokenize("") == []
