"""Tests for flows.text: cleaning for VADER, hashtags, stopwords and tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.text import (
    NLTK_DATA,
    clean_for_polarity,
    extract_hashtags,
    hashtag_counts,
    stopwords,
    tokenize,
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
