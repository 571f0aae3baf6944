"""One post from text to polarity, hashtags and match terms (flows.analysis.posts)."""

from __future__ import annotations

import json
import unicodedata

import pytest

from flows.analysis.languages import parse_scored_languages
from flows.analysis.posts import PostAnalyzer
from flows.analysis.sentiment import Thresholds
from flows.model import Polarity
from flows.routing.matching import parse_query
from tests.helpers.factories import make_post


@pytest.fixture(scope="module")
def analyzer() -> PostAnalyzer:
    """An analyser with the default thresholds (±0.05)."""
    return PostAnalyzer()


@pytest.mark.parametrize(
    ("text", "polarity"),
    [
        ("I love this, it is wonderful :)", Polarity.POSITIVE),
        ("GREAT news!!! 😀", Polarity.POSITIVE),
        ("This is terrible, I hate it", Polarity.NEGATIVE),
        ("I don\u2019t like it", Polarity.NEGATIVE),
        ("The meeting is at noon", Polarity.NEUTRAL),
        ("", Polarity.NEUTRAL),
    ],
)
def test_polarity_classes(analyzer: PostAnalyzer, text: str, polarity: Polarity) -> None:
    """Clearly positive, negative and neutral texts land in their class."""
    assert analyzer.analyse(make_post(1, text)).polarity is polarity


def test_compound_sign_follows_the_class(analyzer: PostAnalyzer) -> None:
    """The compound score is positive for positive posts and negative for negative ones."""
    good = analyzer.analyse(make_post(1, "what a lovely day"))
    bad = analyzer.analyse(make_post(2, "what an awful day"))
    assert good.compound >= 0.05 > -0.05 >= bad.compound
    assert -1.0 <= bad.compound <= good.compound <= 1.0


def test_handles_and_urls_do_not_sway_polarity(analyzer: PostAnalyzer) -> None:
    """A handle or link made of sentiment words does not change the score."""
    plain = analyzer.analyse(make_post(1, "the release is out"))
    noisy = analyzer.analyse(make_post(2, "@HappyLove the release is out https://t.co/hate"))
    assert noisy.compound == plain.compound
    assert noisy.polarity is Polarity.NEUTRAL


def test_hashtags_from_entities_take_precedence_over_text(analyzer: PostAnalyzer) -> None:
    """When X sent ``entities.hashtags``, they (case-folded) are the post's hashtags."""
    post = make_post(1, "Loving #Python today", hashtags=("Rust", "RUST"))
    result = analyzer.analyse(post)
    assert result.hashtags == {"rust": 2}
    assert "#rust" in result.terms
    assert "#python" not in result.terms


def test_empty_entities_mean_no_hashtags(analyzer: PostAnalyzer) -> None:
    """An empty ``entities.hashtags`` list is X saying there are none."""
    result = analyzer.analyse(make_post(1, "Loving #Python", hashtags=()))
    assert result.hashtags == {}


def test_hashtags_fall_back_to_the_text(analyzer: PostAnalyzer) -> None:
    """Without entities, hashtags are extracted from the text by X's rules, with counts."""
    result = analyzer.analyse(make_post(1, "#Python #python and #AI, not #2024 or a#b"))
    assert result.hashtags == {"python": 2, "ai": 1}


def test_terms_have_words_hashtags_and_mentions(analyzer: PostAnalyzer) -> None:
    """A post's terms hold its words, ``#tags`` and ``@mentions``, case-folded."""
    result = analyzer.analyse(make_post(1, "Loving #Python with @Ada!"))
    assert result.terms == {"loving", "python", "with", "ada", "#python", "@ada"}


def test_scored_post_keeps_the_post(analyzer: PostAnalyzer) -> None:
    """The scored record wraps the post it came from, unchanged."""
    post = make_post(7, "hello")
    assert analyzer.analyse(post).post is post


def test_analysed_terms_route_to_queries(analyzer: PostAnalyzer) -> None:
    """Terms from analysis satisfy the queries the post should match."""
    terms = analyzer.analyse(make_post(1, "Climate change is real #ClimateAction")).terms
    assert parse_query("change climate").first_match(terms) is not None
    assert parse_query("#climateaction").first_match(terms) is not None
    assert parse_query("#climate").first_match(terms) is None


def test_nfd_hashtag_in_text_matches_nfc_query(analyzer: PostAnalyzer) -> None:
    """A post typed with a decomposed é in ``#café`` matches the query ``#café``."""
    text = "Un " + unicodedata.normalize("NFD", "#café") + " noir"
    terms = analyzer.analyse(make_post(1, text)).terms
    assert parse_query("#café").first_match(terms) is not None


def test_thresholds_change_the_class() -> None:
    """The same text is positive under default thresholds and neutral under wider ones."""
    text = "it is ok"
    default = PostAnalyzer().score_text(text)
    strict = PostAnalyzer(Thresholds(negative=-0.9, positive=0.9)).score_text(text)
    assert default.compound == strict.compound
    assert default.polarity is Polarity.POSITIVE
    assert strict.polarity is Polarity.NEUTRAL


def test_score_text_message_shape(analyzer: PostAnalyzer) -> None:
    """``senti analyze`` prints polarityIndex (an int), compound and hashtag counts."""
    message = analyzer.score_text("I love #Python and #python").message()
    assert set(message) == {"polarityIndex", "compound", "hashtags"}
    assert message["polarityIndex"] == 0
    assert type(message["polarityIndex"]) is int
    assert isinstance(message["compound"], float)
    assert message["hashtags"] == {"python": 2}
    assert json.loads(json.dumps(message)) == message


def test_score_text_uses_given_hashtags(analyzer: PostAnalyzer) -> None:
    """Hashtags passed to score_text replace those found in the text."""
    assert analyzer.score_text("#a #b", ["C", "c"]).hashtags == {"c": 2}
    assert analyzer.score_text("#a #b", []).hashtags == {}


# Languages


def test_posts_in_unscored_languages_are_unscored_not_neutral(analyzer: PostAnalyzer) -> None:
    """A Portuguese post gets no compound and no class (VADER would call it neutral), but keeps
    its hashtags and the terms queries match."""
    post = make_post(1, "Que dia horrível #Python @ada", lang="pt-BR")
    result = analyzer.analyse(post)
    assert result.unscored
    assert (result.compound, result.polarity) == (None, None)
    assert result.hashtags == {"python": 1}
    assert {"#python", "@ada", "horrível"} <= result.terms
    assert analyzer.analyse(make_post(2, "Que dia horrível", lang=None)).polarity is not None


@pytest.mark.parametrize("lang", ["en", "EN-us", "und", None, ""])
def test_english_and_undeclared_posts_are_scored_by_default(
    analyzer: PostAnalyzer, lang: str | None
) -> None:
    """English in any spelling, and posts that declare no language, are scored."""
    result = analyzer.analyse(make_post(1, "what a lovely day", lang=lang))
    assert result.polarity is Polarity.POSITIVE


def test_scored_languages_are_a_setting() -> None:
    """Another setting scores other languages; ``*`` scores everything."""
    spanish = PostAnalyzer(languages=parse_scored_languages("es"))
    assert spanish.analyse(make_post(1, "me encanta", lang="es-MX")).polarity is not None
    assert spanish.analyse(make_post(2, "lovely", lang="en")).unscored
    every = PostAnalyzer(languages=parse_scored_languages("*"))
    assert every.analyse(make_post(3, "lovely", lang="ja")).polarity is Polarity.POSITIVE


def test_unscored_post_uses_entities_hashtags_too(analyzer: PostAnalyzer) -> None:
    """Hashtags X sent in entities are an unscored post's hashtags, as for a scored one."""
    post = make_post(1, "Bom dia #cafe", lang="pt", hashtags=("Café", "CAFÉ"))
    assert analyzer.analyse(post).hashtags == {"café": 2}
