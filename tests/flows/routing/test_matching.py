"""Track semantics, canonical keys, query limits and the term index (flows.routing.matching)."""

from __future__ import annotations

import pickle
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.analysis.text import extract_hashtags, stopwords
from flows.routing.matching import (
    MAX_PHRASES,
    MAX_QUERY_CHARS,
    MAX_TERMS_PER_PHRASE,
    InvalidQuery,
    Phrase,
    Query,
    Subscription,
    TermIndex,
    matches_at,
    parse_query,
    post_terms,
)

NFD_CAFE = unicodedata.normalize("NFD", "café")


def matches(query: str, text: str, hashtags: tuple[str, ...] = ()) -> bool:
    """Whether a post with ``text`` and (case-folded) ``hashtags`` matches ``query``."""
    return parse_query(query).first_match(post_terms(text, hashtags)) is not None


# The track-semantics table: (query, post text, hashtags as X extracts them, expected).
TRACK_TABLE = [
    # Case-insensitivity.
    pytest.param("python", "I love PYTHON", (), True, id="case-upper-post"),
    pytest.param("PyThOn", "python is fun", (), True, id="case-mixed-query"),
    pytest.param("straße", "STRASSE gesperrt", (), True, id="case-full-casefold"),
    # Punctuation around words.
    pytest.param("python", "Python! Python? (python)", (), True, id="punct-bang"),
    pytest.param("python", '"python",', (), True, id="punct-quotes-comma"),
    pytest.param("python", "...python...", (), True, id="punct-ellipsis"),
    # Whole words only.
    pytest.param("python", "A pythonista writes code", (), False, id="word-not-prefix"),
    pytest.param("python", "cpython internals", (), False, id="word-not-suffix"),
    pytest.param("pythonista", "python is great", (), False, id="word-not-shorter"),
    # A bare term matches the word, the hashtag and the mention.
    pytest.param("python", "#Python tips", ("python",), True, id="bare-matches-hashtag"),
    pytest.param("python", "thanks @Python", (), True, id="bare-matches-mention"),
    pytest.param("python", "python", (), True, id="bare-matches-word"),
    # A #term or @term matches only its own form.
    pytest.param("#python", "#Python tips", ("python",), True, id="hashtag-matches-hashtag"),
    pytest.param("#python", "python tips", (), False, id="hashtag-not-word"),
    pytest.param("#python", "thanks @python", (), False, id="hashtag-not-mention"),
    pytest.param("@python", "thanks @Python!", (), True, id="mention-matches-mention"),
    pytest.param("@python", "python tips", (), False, id="mention-not-word"),
    pytest.param("@python", "#python tips", ("python",), False, id="mention-not-hashtag"),
    pytest.param("@python", "mail me@python.org", (), False, id="mention-not-email"),
    pytest.param("\uff03Python", "#python", ("python",), True, id="fullwidth-hash-query"),
    pytest.param("@ada", "hi \uff20Ada", (), True, id="fullwidth-at-post"),
    # AND of the terms of a phrase, in any order.
    pytest.param("climate change", "Climate change is real", (), True, id="and-in-order"),
    pytest.param("climate change", "the change of climate", (), True, id="and-any-order"),
    pytest.param("climate change", "climate policy", (), False, id="and-missing-term"),
    pytest.param("python #ai", "python and #AI", ("ai",), True, id="and-mixed-forms"),
    pytest.param("python #ai", "python and AI", (), False, id="and-hashtag-strict"),
    # OR of phrases.
    pytest.param("coffee, tea", "green tea", (), True, id="or-second-phrase"),
    pytest.param("coffee, tea", "black coffee", (), True, id="or-first-phrase"),
    pytest.param("coffee, tea", "orange juice", (), False, id="or-neither"),
    pytest.param("climate change, #ai", "#AI news", ("ai",), True, id="or-with-and-phrase"),
    # Unicode: accents, NFC vs NFD, CJK.
    pytest.param("café", "Un café, s'il vous plaît", (), True, id="unicode-accent"),
    pytest.param("cafe", "Un café", (), False, id="unicode-accent-distinct"),
    pytest.param("café", f"Un {NFD_CAFE.upper()} noir", (), True, id="unicode-nfd-post"),
    pytest.param(NFD_CAFE, "Un café noir", (), True, id="unicode-nfd-query"),
    pytest.param("#café", "#café", ("café",), True, id="unicode-hashtag"),
    pytest.param("日本", "I love 日本 !", (), True, id="cjk-spaced"),
    pytest.param("#日本", "#日本", ("日本",), True, id="cjk-hashtag"),
    # Like X's track, words are runs of letters: unspaced CJK text is one word.
    pytest.param("日本", "日本が好き", (), False, id="cjk-unspaced-is-one-word"),
    # Apostrophes, straight and curly.
    pytest.param("don't", "I don't know", (), True, id="apostrophe-straight"),
    pytest.param("don't", "I don\u2019t know", (), True, id="apostrophe-curly-post"),
    pytest.param("don\u2019t", "I don't know", (), True, id="apostrophe-curly-query"),
    pytest.param("dont", "I don't know", (), False, id="apostrophe-is-part-of-word"),
    pytest.param("don", "I don't know", (), False, id="apostrophe-no-prefix"),
    # Digits.
    pytest.param("covid19", "COVID19 cases rise", (), True, id="digits-word"),
    pytest.param("covid19", "#covid19 update", ("covid19",), True, id="digits-hashtag"),
    pytest.param("covid19", "covid cases", (), False, id="digits-required"),
    pytest.param("2024", "the 2024 election", (), True, id="digits-only-bare-term"),
    # Hyphenated terms split into words that must all occur.
    pytest.param("covid-19", "covid-19 cases", (), True, id="hyphen-same"),
    pytest.param("covid-19", "COVID 19 cases", (), True, id="hyphen-spaced-post"),
    pytest.param("covid-19", "19 new covid cases", (), True, id="hyphen-any-order"),
    pytest.param("covid-19", "covid19 cases", (), False, id="hyphen-not-joined"),
    pytest.param("covid19", "covid-19 cases", (), False, id="joined-not-hyphen"),
    # Stopwords are ordinary terms.
    pytest.param("the who", "The Who live tonight", (), True, id="stopwords-match"),
]


@pytest.mark.parametrize(("query", "text", "hashtags", "expected"), TRACK_TABLE)
def test_track_semantics(query: str, text: str, hashtags: tuple[str, ...], expected: bool) -> None:
    """A post matches a query exactly as X's classic track semantics say."""
    assert matches(query, text, hashtags) is expected


@pytest.mark.parametrize(("query", "text", "hashtags", "expected"), TRACK_TABLE)
def test_term_index_agrees_with_the_table(
    query: str, text: str, hashtags: tuple[str, ...], expected: bool
) -> None:
    """The term index routes every table row exactly as the direct evaluation does."""
    index = TermIndex()
    parsed = parse_query(query)
    index.add(parsed)
    assert index.match(post_terms(text, hashtags)) == ([parsed.key] if expected else [])


def test_nfd_hashtag_matches_nfc_query() -> None:
    """A post whose hashtag is spelled in NFD matches a ``#café`` query (NFC)."""
    text = f"#{NFD_CAFE}"
    assert matches("#café", text, tuple(extract_hashtags(text)))


def test_hashtag_with_combining_marks_can_be_tracked() -> None:
    """A hashtag X accepts, with combining marks (``#हिन्दी``), is a valid query and matches."""
    text = "#हिन्दी दिवस"
    assert matches("#हिन्दी", text, tuple(extract_hashtags(text)))


# The original server's matching, kept here to show what senti fixes: it lower-cased
# the text, removed @handles, replaced everything but ASCII letters and # by spaces,
# dropped stopwords, and delivered a post when the whole query equalled one token.


def original_server_matches(query: str, text: str) -> bool:
    """The original server's ``topic in filtered_hashtag_list`` check."""
    lowered = re.sub(r"@\w*", "", text.lower())
    tokens = [t for t in re.sub(r"[^a-zA-Z#]", " ", lowered).split() if t not in stopwords()]
    return query.lower() in tokens


@pytest.mark.parametrize(
    ("query", "text", "hashtags"),
    [
        pytest.param("climate change", "Climate change is real", (), id="multi-word"),
        pytest.param("python", "#Python tips", ("python",), id="word-vs-hashtag"),
        pytest.param("covid19", "covid19 cases", (), id="digits"),
        pytest.param("@nasa", "thanks @NASA", (), id="mention"),
        pytest.param("the who", "The Who live", (), id="stopwords"),
        pytest.param("python, rust", "rust is fast", (), id="or-of-phrases"),
        pytest.param("café", "un café", (), id="non-ascii"),
    ],
)
def test_regression_original_server_matched_only_whole_query_tokens(
    query: str, text: str, hashtags: tuple[str, ...]
) -> None:
    """Posts the original server never delivered (query had to equal one token) now match."""
    assert not original_server_matches(query, text)
    assert matches(query, text, hashtags)


# Post terms


def test_post_terms_has_words_hashtags_and_mentions() -> None:
    """A post offers its case-folded words, ``#tags`` from X and ``@mentions`` from the text."""
    terms = post_terms("Loving #Python with @Ada!", ("python",))
    assert terms == {"loving", "python", "with", "ada", "#python", "@ada"}


def test_post_terms_takes_hashtags_only_from_the_argument() -> None:
    """Only the hashtags X extracted become ``#tag`` terms; the text's ``#`` is just a word."""
    assert "#python" not in post_terms("#Python", ())
    assert "#rust" in post_terms("no tag in the text", ("rust",))


def test_post_terms_ignores_email_addresses_as_mentions() -> None:
    """``me@example.com`` is an address, not a mention of ``@example``."""
    assert not any(term.startswith("@") for term in post_terms("write to me@example.com"))


# Canonical keys


@pytest.mark.parametrize(
    ("spellings", "key"),
    [
        pytest.param(["Python, #AI  ml", "#ai ML,python", " python ,ml #ai,"], "#ai ml,python"),
        pytest.param(["climate change", "Change CLIMATE", "change  climate"], "change climate"),
        pytest.param(["python python, PYTHON", "python"], "python"),
        pytest.param(["tea, coffee, tea", "coffee,tea"], "coffee,tea"),
        pytest.param(["covid-19", "19 covid", "COVID 19"], "19 covid"),
        pytest.param(["\uff03Python", "#python"], "#python"),
        pytest.param([NFD_CAFE, "café", "CAFÉ"], "café"),
        pytest.param(["don\u2019t", "don't"], "don't"),
    ],
)
def test_spellings_of_one_query_share_a_canonical_key(spellings: list[str], key: str) -> None:
    """Different spellings of the same query normalise to one sorted, de-duplicated key."""
    assert {parse_query(text).key for text in spellings} == {key}


def test_key_sorts_terms_within_phrases_and_phrases_by_text() -> None:
    """Terms are sorted inside each phrase and phrases are sorted by their text."""
    query = parse_query("zeta alpha, beta, #tag word")
    assert query.key == "#tag word,alpha zeta,beta"
    assert [phrase.terms for phrase in query.phrases] == [
        ("#tag", "word"),
        ("alpha", "zeta"),
        ("beta",),
    ]


def test_a_query_keeps_its_spelling_outside_equality() -> None:
    """A query remembers the text it was parsed from (spaces collapsed) for people, but
    spellings of one query are equal and hash alike, in subscriptions too."""
    typed, other = parse_query("  Climate   Change "), parse_query("change CLIMATE")
    assert (typed.key, typed.spelling, typed.shown) == (
        "change climate",
        "Climate Change",
        "Climate Change",
    )
    assert typed == other
    assert hash(typed) == hash(other)
    assert Subscription(typed) == Subscription(other)
    assert Query(typed.phrases).shown == "change climate"
    restored = Query.__new__(Query)
    restored.__setstate__(typed.__getstate__()[:2])  # a snapshot from before spellings
    assert (restored, restored.shown) == (typed, "change climate")
    assert pickle.loads(pickle.dumps(typed)).shown == "Climate Change"  # noqa: S301 (our own bytes)


def test_reparsing_a_key_gives_the_same_query() -> None:
    """A canonical key is itself a spelling of its query."""
    query = parse_query("Climate Change, #AI, @NASA space")
    assert parse_query(query.key) == query


# Parse errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "no words", id="empty"),
        pytest.param("   ", "no words", id="blank"),
        pytest.param("!!! ?? ...", "no words", id="only-punctuation"),
        pytest.param(", ,", "no words", id="only-commas"),
        pytest.param("a" * (MAX_QUERY_CHARS + 1), "longer than", id="too-long"),
        pytest.param(
            ",".join(f"w{n}" for n in range(MAX_PHRASES + 1)), "phrases", id="too-many-phrases"
        ),
        pytest.param(
            " ".join(f"w{n}" for n in range(MAX_TERMS_PER_PHRASE + 1)), "terms", id="too-many-terms"
        ),
        pytest.param(
            "-".join("abcdefghijk"[: MAX_TERMS_PER_PHRASE + 1]),
            "terms",
            id="too-many-terms-after-hyphen-split",
        ),
        pytest.param("#2024", "not a valid hashtag", id="hashtag-digits-only"),
        pytest.param("#a-b", "not a valid hashtag", id="hashtag-with-hyphen"),
        pytest.param("#", "not a valid hashtag", id="lone-hash"),
        pytest.param("python #", "not a valid hashtag", id="trailing-hash"),
        pytest.param("@", "not a valid mention", id="lone-at"),
        pytest.param("@a.b", "not a valid mention", id="mention-with-dot"),
    ],
)
def test_unusable_queries_raise_invalid_query(text: str, message: str) -> None:
    """Empty, oversized or malformed queries raise InvalidQuery saying what is wrong."""
    with pytest.raises(InvalidQuery, match=message):
        parse_query(text)


@pytest.mark.parametrize("value", [None, 42, b"python", ["python"]])
def test_non_string_query_raises_invalid_query(value: Any) -> None:
    """A query that is not a string raises InvalidQuery, not TypeError."""
    with pytest.raises(InvalidQuery, match="string"):
        parse_query(value)


def test_invalid_query_is_a_value_error() -> None:
    """InvalidQuery is a ValueError, so generic validation code catches it."""
    assert issubclass(InvalidQuery, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * MAX_QUERY_CHARS, id="longest"),
        pytest.param(",".join(f"w{n}" for n in range(MAX_PHRASES)), id="most-phrases"),
        pytest.param(" ".join(f"w{n}" for n in range(MAX_TERMS_PER_PHRASE)), id="most-terms"),
        pytest.param(" ".join(["spam"] * 40), id="repeats-count-once"),
        pytest.param("#covid19", id="hashtag-with-digits"),
        pytest.param("#_x", id="hashtag-underscore"),
        pytest.param("@2024", id="mention-digits"),
    ],
)
def test_queries_at_the_limits_are_accepted(text: str) -> None:
    """Queries exactly at the limits, and unusual but valid forms, parse."""
    assert parse_query(text).phrases


# Anchors


@pytest.mark.parametrize(
    ("phrase", "anchor"),
    [
        pytest.param("python #ai", "#ai", id="hashtag-over-longer-word"),
        pytest.param("programming @guido", "@guido", id="mention-over-longer-word"),
        pytest.param("#ai @guido", "@guido", id="sigils-then-longer"),
        pytest.param("the python", "python", id="non-stopword-over-stopword"),
        pytest.param("themselves ai", "ai", id="non-stopword-over-longer-stopword"),
        pytest.param("machine learning", "learning", id="longer-word"),
        pytest.param("is the", "the", id="all-stopwords-longest"),
        pytest.param("ab cd", "cd", id="tie-broken-by-text"),
        pytest.param("python", "python", id="single-term"),
    ],
)
def test_anchor_prefers_hashtags_then_non_stopwords_then_length(phrase: str, anchor: str) -> None:
    """A phrase is filed under its rarest-looking term: #/@, then non-stopword, then longest."""
    (parsed,) = parse_query(phrase).phrases
    assert parsed.anchor == anchor


def test_anchor_does_not_affect_phrase_equality() -> None:
    """Phrases compare by their terms alone."""
    assert Phrase(("a", "b")) == Phrase(("a", "b"))
    assert hash(Phrase(("a", "b"))) == hash(Phrase(("a", "b")))


def test_matches_at_yields_a_query_only_at_its_first_matching_anchor() -> None:
    """Across a post's terms, a query with several matching phrases is yielded once."""
    query = parse_query("coffee, tea")
    terms = post_terms("coffee and tea")
    filed = {query.key: query}
    assert list(matches_at("coffee", filed, terms)) == ["coffee,tea"]
    assert list(matches_at("tea", filed, terms)) == []


# TermIndex


def test_index_add_is_idempotent() -> None:
    """Adding a query twice tracks it once."""
    index = TermIndex()
    query = parse_query("python, #ai")
    index.add(query)
    index.add(parse_query("#AI,  Python"))
    assert len(index) == 1
    assert index.anchors() == {"python", "#ai"}


def test_index_remove_is_idempotent_and_forgets_empty_anchors() -> None:
    """Removing a query twice, or one never added, is harmless; empty anchors go away."""
    index = TermIndex()
    query = parse_query("python")
    index.remove(query)
    index.add(query)
    index.remove(query)
    index.remove(query)
    assert len(index) == 0
    assert index.anchors() == frozenset()
    assert index.match(post_terms("python")) == []


def test_index_remove_keeps_other_queries_on_the_same_anchor() -> None:
    """Removing one query leaves another filed under the same anchor."""
    index = TermIndex()
    python, snake = parse_query("python"), parse_query("python snake")
    index.add(python)
    index.add(snake)
    index.remove(python)
    assert dict(index.filed_under("python")) == {"python snake": snake}
    assert index.match(post_terms("a python snake")) == ["python snake"]


def test_index_apply_adds_and_removes() -> None:
    """A subscription change adds (active) or removes (inactive) its query."""
    index = TermIndex()
    query = parse_query("tea")
    index.apply(Subscription(query))
    index.apply(Subscription(query))
    assert index.match(post_terms("tea")) == ["tea"]
    index.apply(Subscription(query, active=False))
    index.apply(Subscription(query, active=False))
    assert index.match(post_terms("tea")) == []
    assert len(index) == 0


def test_index_match_returns_each_query_once() -> None:
    """A post satisfying several phrases of a query is matched to it once."""
    index = TermIndex()
    index.add(parse_query("coffee, tea, milk, coffee tea"))
    index.add(parse_query("milk"))
    found = index.match(post_terms("coffee tea and milk"))
    assert sorted(found) == ["coffee,coffee tea,milk,tea", "milk"]


def test_index_len_counts_queries_not_phrases() -> None:
    """``len`` is the number of tracked queries, however many phrases they have."""
    index = TermIndex()
    for text in ["a b, c, #d", "c", "e f"]:
        index.add(parse_query(text))
    assert len(index) == 3


def test_index_checks_only_queries_filed_under_the_post_terms() -> None:
    """Thousands of unrelated queries are not consulted for a post: only its terms' filings."""
    index = TermIndex()
    for n in range(5_000):
        index.add(parse_query(f"topic{n} extra{n}"))
    index.add(parse_query("python"))
    terms = post_terms("I love python")
    consulted = sum(len(index.filed_under(term)) for term in terms)
    assert consulted == 1
    assert index.match(terms) == ["python"]
    assert len(index) == 5_001


# The index is equivalent to evaluating every query: a property test.

_VOCABULARY = ["py", "data", "the", "ai", "café", "straße", "日本", "x1"]
_KINDS = ["", "#", "@"]


def _cased(word: str, style: int) -> str:
    return [word, word.upper(), word.title(), unicodedata.normalize("NFD", word)][style]


_post_tokens = st.lists(
    st.tuples(
        st.sampled_from(_KINDS),
        st.sampled_from(_VOCABULARY),
        st.integers(0, 3),
        st.sampled_from(["", "!", ",", "?!", "."]),
    ),
    max_size=6,
)
_query_terms = st.lists(
    st.tuples(st.sampled_from(_KINDS), st.sampled_from(_VOCABULARY), st.integers(0, 3)),
    min_size=1,
    max_size=3,
)
_queries = st.lists(st.lists(_query_terms, min_size=1, max_size=3), min_size=1, max_size=5)


def _fold(word: str) -> str:
    return unicodedata.normalize("NFC", word).casefold()


def _brute_force(query: list[list[tuple[str, str, int]]], post: set[tuple[str, str]]) -> bool:
    """The documented semantics, evaluated on the generated structure of post and query."""

    def occurs(kind: str, word: str) -> bool:
        if kind == "":
            return any(w == _fold(word) for _, w in post)
        return (kind, _fold(word)) in post

    return any(all(occurs(kind, word) for kind, word, _ in phrase) for phrase in query)


@settings(max_examples=300, deadline=None)
@given(queries=_queries, tokens=_post_tokens, removed=st.sets(st.integers(0, 4)))
def test_index_matches_brute_force_evaluation(
    queries: list[list[list[tuple[str, str, int]]]],
    tokens: list[tuple[str, str, int, str]],
    removed: set[int],
) -> None:
    """For random queries and posts, the term index returns exactly the queries the rules match."""
    text = " ".join(kind + _cased(word, style) + punct for kind, word, style, punct in tokens)
    hashtags = tuple(_fold(word) for kind, word, _, _ in tokens if kind == "#")
    post = {(kind, _fold(word)) for kind, word, _, _ in tokens}
    terms = post_terms(text, hashtags)

    expected: dict[str, bool] = {}
    index = TermIndex()
    parsed = []
    for structure in queries:
        spelled = ", ".join(
            " ".join(kind + _cased(word, style) for kind, word, style in phrase)
            for phrase in structure
        )
        query = parse_query(spelled)
        parsed.append(query)
        index.add(query)
        truth = _brute_force(structure, post)
        assert expected.setdefault(query.key, truth) == truth  # same key, same meaning
        assert (query.first_match(terms) is not None) == truth  # the loop agrees

    found = index.match(terms)
    assert len(found) == len(set(found))
    assert set(found) == {key for key, truth in expected.items() if truth}

    gone = {parsed[n].key for n in removed if n < len(parsed)}
    for key in gone:
        index.remove(parse_query(key))
    assert set(index.match(terms)) == {k for k, truth in expected.items() if truth} - gone
    assert len(index) == len(set(expected) - gone)


def test_deep_copies_of_an_index_share_queries_but_not_filing() -> None:
    """A deep copy (a Bytewax snapshot) is independent but reuses the immutable queries."""
    import copy

    index = TermIndex()
    python = parse_query("python")
    index.add(python)
    snapshot = copy.deepcopy(index)
    index.add(parse_query("coffee"))
    index.remove(python)
    assert snapshot.match(post_terms("python")) == ["python"]
    assert snapshot.filed_under("python")["python"] is python
    assert index.match(post_terms("python")) == []


def test_copies_of_an_index_change_independently_on_shared_anchors() -> None:
    """After a deep copy, adding or removing queries on either side, on anchors both still
    share, never shows on the other, through several rounds of copies."""
    import copy
    import random

    rng = random.Random(7)
    texts = [f"w{i % 7} x{i}" for i in range(30)] + [f"w{i % 7}" for i in range(7)]
    texts += [f"#t{i % 5}, w{i % 7} y{i}" for i in range(20)]
    queries = [parse_query(text) for text in texts]
    sides: list[tuple[TermIndex, set[str]]] = [(TermIndex(), set())]
    for _round in range(200):
        side = rng.randrange(len(sides))
        index, model = sides[side]
        step = rng.random()
        if step < 0.15 and len(sides) < 6:
            sides.append((copy.deepcopy(index), set(model)))
            continue
        query = rng.choice(queries)
        if step < 0.6:
            index.add(query)
            model.add(query.key)
        else:
            index.remove(query)
            model.discard(query.key)
        for other, expected in sides:
            assert len(other) == len(expected)
            for term in ("w1", "w3", "#t2", "x5", "y4"):
                terms = frozenset({term, f"w{int(term[-1]) % 7}", "x3", "y2", "v1"})
                found = sorted(other.match(terms))
                truth = sorted(q.key for q in queries if q.key in expected and q.first_match(terms))
                assert found == truth


def test_pickled_index_matches_the_same_and_plans_follow_changes() -> None:
    """A pickled index (a recovery snapshot) matches like the original; adding a query after
    a match has planned its anchor still finds the new query."""
    import pickle

    index = TermIndex()
    index.add(parse_query("python"))
    index.add(parse_query("python rust"))
    terms = post_terms("python and rust")
    assert sorted(index.match(terms)) == ["python", "python rust"]
    index.add(parse_query("python, tea"))
    index.add(parse_query("rust"))
    expected = ["python", "python rust", "python,tea", "rust"]
    assert sorted(index.match(terms)) == expected
    assert sorted(pickle.loads(pickle.dumps(index)).match(terms)) == expected  # noqa: S301 (our own bytes)


def test_many_and_phrases_on_one_anchor_match_from_short_and_long_posts() -> None:
    """AND phrases sharing an anchor match exactly when the post has all their terms,
    whether the post has fewer terms than the phrases' second terms or more."""
    index = TermIndex()
    for word in ("alpha", "beta", "gamma", "delta", "epsilon"):
        index.add(parse_query(f"morningstar {word}"))
    index.add(parse_query("morningstar beta gamma"))
    short = post_terms("morningstar beta")
    assert sorted(index.match(short)) == ["beta morningstar"]
    long = post_terms("morningstar beta gamma one two three four five six seven")
    assert sorted(index.match(long)) == [
        "beta gamma morningstar",
        "beta morningstar",
        "gamma morningstar",
    ]
