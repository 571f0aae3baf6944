"""Tests for flows.analysis.sentiment (thresholds, classification, VADER bounds) and TweetEval."""

from __future__ import annotations

import importlib.metadata
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from flows.analysis import sentiment
from flows.analysis.sentiment import (
    MAX_SCORED_CHARS,
    Analyzer,
    FastVader,
    Thresholds,
    ThresholdsError,
    bounded_text,
    classify,
    load_thresholds,
    scored_length,
)
from flows.analysis.text import clean_for_polarity
from flows.model import Polarity
from flows.platforms.synthetic import synthetic_envelope
from flows.tuning.scores import macro_recall
from flows.tuning.tweeteval import (
    TweetEvalError,
    label_from_polarity,
    polarity_from_label,
    read_tweeteval,
)

REPO = Path(__file__).resolve().parents[3]

# Thresholds


def test_default_thresholds() -> None:
    """The defaults are VADER's recommended ±0.05."""
    assert Thresholds() == Thresholds(negative=-0.05, positive=0.05)


@pytest.mark.parametrize(
    ("negative", "positive"),
    [(0.1, -0.1), (-1.5, 0.0), (0.0, 1.01), (float("nan"), 0.0)],
)
def test_invalid_thresholds_raise(negative: float, positive: float) -> None:
    """Thresholds outside -1 <= negative <= positive <= 1 raise ValueError."""
    with pytest.raises(ValueError, match=r"negative|NaN"):
        Thresholds(negative=negative, positive=positive)


def test_equal_thresholds_are_valid() -> None:
    """negative == positive is allowed (no neutral band)."""
    assert Thresholds(0.0, 0.0).positive == 0.0


# classify


@pytest.mark.parametrize(
    ("compound", "expected"),
    [
        (0.05, Polarity.POSITIVE),
        (0.0501, Polarity.POSITIVE),
        (1.0, Polarity.POSITIVE),
        (0.0499, Polarity.NEUTRAL),
        (0.0, Polarity.NEUTRAL),
        (-0.0499, Polarity.NEUTRAL),
        (-0.05, Polarity.NEGATIVE),
        (-1.0, Polarity.NEGATIVE),
    ],
)
def test_classify_boundaries_are_inclusive(compound: float, expected: Polarity) -> None:
    """Compound scores equal to a threshold take that threshold's class."""
    assert classify(compound, Thresholds()) is expected


def test_classify_polarity_values_match_protocol() -> None:
    """Polarity indices are the original protocol's: 0 positive, 1 negative, 2 neutral."""
    assert [int(classify(c, Thresholds())) for c in (0.9, -0.9, 0.0)] == [0, 1, 2]


# load_thresholds


def test_load_default_thresholds() -> None:
    """Without a path the shipped config (flows/defaults/thresholds.toml) loads."""
    shipped = REPO / "flows" / "defaults" / "thresholds.toml"
    assert load_thresholds() == load_thresholds(shipped)
    # The shipped values are tuned (docs/tuning.md); the class default stays VADER's ±0.05.
    assert load_thresholds() != Thresholds()


def test_load_thresholds_ignores_other_tables(tmp_path: Path) -> None:
    """A [provenance] table from a tuning tool is ignored; integers are accepted."""
    path = tmp_path / "t.toml"
    path.write_text(
        "[thresholds]\nnegative = -0.2\npositive = 0\n"
        '[provenance]\ndata = "tweeteval val"\nmetric = "macro_recall"\ngrid = [0.0, 0.1]\n',
        encoding="utf-8",
    )
    assert load_thresholds(str(path)) == Thresholds(-0.2, 0.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[thresholds\n", "not valid TOML"),
        ("[other]\nx = 1\n", "missing \\[thresholds\\]"),
        ("[thresholds]\nnegative = -0.1\n", "missing thresholds.positive"),
        ('[thresholds]\nnegative = "-0.1"\npositive = 0.1\n', "must be a number"),
        ("[thresholds]\nnegative = true\npositive = 0.1\n", "must be a number"),
        ("[thresholds]\nnegative = 0.5\npositive = 0.1\n", "negative <= positive"),
    ],
)
def test_bad_thresholds_file_raises(tmp_path: Path, content: str, message: str) -> None:
    """A malformed file raises ThresholdsError naming the file and the problem."""
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ThresholdsError, match=message) as info:
        load_thresholds(path)
    assert "bad.toml" in str(info.value)


def test_missing_thresholds_file_raises(tmp_path: Path) -> None:
    """A missing file raises ThresholdsError (a ValueError) naming it."""
    with pytest.raises(ValueError, match=r"nowhere\.toml: thresholds file not found"):
        load_thresholds(tmp_path / "nowhere.toml")


# Analyzer


def test_analyzer_scores_emphasis() -> None:
    """Caps, ``!`` and emoticons raise VADER's score, which is why cleaning keeps them."""
    analyzer = Analyzer()
    assert analyzer.compound("This is GREAT!!! :)") > analyzer.compound("this is great")
    assert analyzer.score("I love this")[1] is Polarity.POSITIVE
    assert analyzer.score("I hate this")[1] is Polarity.NEGATIVE
    assert analyzer.score("The bus leaves at noon")[1] is Polarity.NEUTRAL


def test_analyzer_uses_its_thresholds() -> None:
    """A text's class depends on the analyser's thresholds, its compound does not."""
    strict = Analyzer(Thresholds(negative=-0.99, positive=0.99))
    compound, polarity = strict.score("I love this")
    assert compound == Analyzer().compound("I love this")
    assert polarity is Polarity.NEUTRAL


def test_analyzers_share_one_vader() -> None:
    """Every analyser uses the same VADER instance (loaded once per process)."""
    Analyzer().compound("a")
    Analyzer(Thresholds(-0.5, 0.5)).compound("b")
    assert sentiment._vader() is sentiment._vader()
    assert sentiment._vader.cache_info().currsize == 1


# Bounded cost


EMOJI = "\N{CAT FACE WITH TEARS OF JOY}"


def test_normal_posts_are_not_bounded() -> None:
    """A 280-character post, even with 40 emoji, is scored whole."""
    prose = ("The quick brown fox had a great day but not so bad. " * 6)[:240]
    for text in (prose + "x" * 40, prose + "😂🔥" * 20):
        assert bounded_text(text) == text


def test_hostile_emoji_post_is_bounded() -> None:
    """25,000 emoji are cut to a start whose scored length is within the limit."""
    text = EMOJI * 25_000
    bounded = bounded_text(text)
    assert text.startswith(bounded)
    assert 0 < scored_length(bounded) <= MAX_SCORED_CHARS
    assert scored_length(bounded + EMOJI) > MAX_SCORED_CHARS


def test_hostile_word_post_is_bounded_at_a_word_boundary() -> None:
    """25,000 characters of words are cut to at most the limit, between words."""
    text = "x joy " * 5000
    bounded = bounded_text(text)
    assert text.startswith(bounded)
    assert MAX_SCORED_CHARS - 6 <= len(bounded) <= MAX_SCORED_CHARS
    assert not bounded.endswith((" j", " jo"))


def test_word_longer_than_limit_is_cut() -> None:
    """A single huge word is cut at the limit."""
    assert bounded_text("a" * 30_000) == "a" * MAX_SCORED_CHARS


def test_scored_length_counts_emoji_descriptions() -> None:
    """An emoji counts as its description's length ("cat face with tears of joy")."""
    assert scored_length("ab") == 2
    assert scored_length(EMOJI) == len("cat face with tears of joy")
    assert scored_length("é") == 1


def test_analyzer_scores_the_bounded_text() -> None:
    """A hostile post scores exactly like its bounded start, deterministically."""
    analyzer = Analyzer()
    text = "I love it " + EMOJI * 25_000
    assert analyzer.compound(text) == analyzer.compound(bounded_text(text))
    assert analyzer.compound(text) == analyzer.compound(text)


# TweetEval


def _tweeteval_dir() -> Path:
    override = os.environ.get("SENTI_TWEETEVAL_DIR")
    if override:
        return Path(override)
    return REPO.parent / "shared" / "data" / "tweeteval-sentiment"


def test_label_mapping_round_trips() -> None:
    """TweetEval 0/1/2 map to negative/neutral/positive and back."""
    assert [polarity_from_label(label) for label in (0, 1, 2)] == [
        Polarity.NEGATIVE,
        Polarity.NEUTRAL,
        Polarity.POSITIVE,
    ]
    for polarity in Polarity:
        assert polarity_from_label(label_from_polarity(polarity)) is polarity


def test_unknown_label_raises() -> None:
    """A label outside 0/1/2 raises ValueError."""
    with pytest.raises(ValueError, match="not a TweetEval"):
        polarity_from_label(3)


def test_read_tweeteval(tmp_path: Path) -> None:
    """Texts are read verbatim, one per line, with integer labels."""
    (tmp_path / "val_text.txt").write_text("good day \nbad\u2028day\n", encoding="utf-8")
    (tmp_path / "val_labels.txt").write_text("2\n0\n", encoding="utf-8")
    assert read_tweeteval(tmp_path) == (["good day ", "bad\u2028day"], [2, 0])


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        ("a\nb\n", "1\n", "2 lines but val_labels.txt has 1"),
        ("a\n", "3\n", "val_labels.txt:1: label '3'"),
        ("a\n", "x\n", "is not 0, 1 or 2"),
    ],
)
def test_read_tweeteval_rejects_bad_files(
    tmp_path: Path, texts: str, labels: str, message: str
) -> None:
    """Files of different lengths or labels other than 0/1/2 raise TweetEvalError."""
    (tmp_path / "val_text.txt").write_text(texts, encoding="utf-8")
    (tmp_path / "val_labels.txt").write_text(labels, encoding="utf-8")
    with pytest.raises(TweetEvalError, match=message):
        read_tweeteval(tmp_path)


def test_read_tweeteval_missing_file(tmp_path: Path) -> None:
    """A missing file raises TweetEvalError naming it."""
    with pytest.raises(TweetEvalError, match=r"val_text\.txt: file not found"):
        read_tweeteval(tmp_path)


def test_cleaning_does_not_hurt_tweeteval_macro_recall() -> None:
    """Cleaned text scored by Analyzer has at least raw VADER's macro recall on TweetEval val."""
    directory = _tweeteval_dir()
    if not (directory / "val_text.txt").is_file():
        pytest.skip(f"TweetEval sentiment data not found in {directory} (set SENTI_TWEETEVAL_DIR)")
    texts, labels = read_tweeteval(directory)
    truth = [polarity_from_label(label) for label in labels]
    vader = sentiment._vader()
    raw = [classify(vader.polarity_scores(text)["compound"], Thresholds()) for text in texts]
    analyzer = Analyzer()
    cleaned = [analyzer.score(clean_for_polarity(text))[1] for text in texts]
    raw_recall = macro_recall(truth, raw, list(Polarity))
    cleaned_recall = macro_recall(truth, cleaned, list(Polarity))
    assert raw_recall > 0.55  # raw VADER at ±0.05 scores about 0.598
    assert cleaned_recall >= raw_recall


# FastVader: the library's scores without its per-character emoji loop

_LIBRARY = SentimentIntensityAnalyzer()
_EMOJI = sorted(emoji for emoji in _LIBRARY.emojis if len(emoji) == 1)


def _same_scores(texts: list[str]) -> None:
    """FastVader's scores, and its compound alone, are the library's for every text."""
    fast = FastVader()
    different = [t for t in texts if fast.polarity_scores(t) != _LIBRARY.polarity_scores(t)]
    assert different == []
    compounds = [fast.compound(t) for t in texts]
    assert compounds == [_LIBRARY.polarity_scores(t)["compound"] for t in texts]


def test_fast_vader_matches_the_library_on_tweeteval() -> None:
    """Every TweetEval val text scores exactly as vaderSentiment scores it."""
    directory = _tweeteval_dir()
    if not (directory / "val_text.txt").is_file():
        pytest.skip(f"TweetEval sentiment data not found in {directory} (set SENTI_TWEETEVAL_DIR)")
    texts, _ = read_tweeteval(directory)
    _same_scores(texts + [clean_for_polarity(text) for text in texts])


def test_fast_vader_matches_the_library_on_the_synthetic_stream() -> None:
    """The synthetic stream's texts (emoji, emoticons, hashtags, caps) score the same."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    envelopes = [synthetic_envelope(n, seed=5, created_at=start) for n in range(3000)]
    _same_scores([envelope["data"]["text"] for envelope in envelopes])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀",
        " 😀 ",
        "a😀b",
        "😀😀 😀",
        "great 😂😂😂 stuff",
        "not bad 👎",
        "I ❤ this\u2764\ufe0f",
        "kind of 😡 but ok",
        "GREAT!!! 😍 but 😢",
        "\t😀\n",
        "naïve café ☕ résumé",
    ],
)
def test_fast_vader_matches_the_library_on_emoji_edge_cases(text: str) -> None:
    """Emoji at the edges, runs of emoji, emoji beside words and other non-ASCII text."""
    _same_scores([text])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_EMOJI),
            st.sampled_from(["good", "bad", "not", "very", "but", "kind", "of", "LOVE", "!", "?"]),
            st.sampled_from([" ", "  ", "\t", ":)", ":(", "é", "—"]),
            st.text(max_size=3),
        ),
        max_size=25,
    )
)
def test_fast_vader_matches_the_library_on_generated_texts(parts: list[str]) -> None:
    """Random mixes of emoji, sentiment words, boosters, spaces and any characters."""
    _same_scores(["".join(parts), " ".join(parts)])


_IDIOM_WORDS = [
    "kiss",
    "of",
    "death",
    "the",
    "bomb",
    "yeah",
    "right",
    "sort",
    "kind",
    "to",
    "die",
    "for",
]
_NEGATION_WORDS = ["not", "never", "without", "doubt", "so", "this", "isn't", "mayn't", "no", "nor"]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [*_NEGATION_WORDS, *_IDIOM_WORDS, "good", "bad", "great", "very", "least", "at", "x"]
        ),
        max_size=12,
    )
)
def test_fast_vader_matches_the_library_on_negations_and_idioms(words: list[str]) -> None:
    """Negations one to three words back, "never so", "without doubt", idioms and n-gram
    boosters ("kiss of death", "sort of"), in any order and case."""
    text = " ".join(words)
    _same_scores([text, text.upper(), text.title()])


@pytest.mark.parametrize(
    "text",
    [
        "x x x kiss of death",
        "one two three KISS of death today",
        "we all know you are the bomb",
        "a b c good yeah right",
        "a b c cake to die for",
        "it was just sort of good",
        "it was kind of bad honestly",
        "a b c beating heart",
        "x x x the shit",
        "never so good",
        "x never so good",
        "x without doubt good",
        "x x without a doubt good",
        "x x not at all good",
        "x mayn't good",
    ],
)
def test_fast_vader_matches_the_library_on_idioms(text: str) -> None:
    """Each idiom and n-gram booster VADER looks up, around a sentiment word."""
    _same_scores([text, text.upper()])


def test_the_vader_release_fastvader_follows_is_pinned_and_installed() -> None:
    """pyproject pins vaderSentiment to exactly :data:`VADER_VERSION`, the release installed."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("vaderSentiment")]
    assert pins == [f"vaderSentiment=={sentiment.VADER_VERSION}"]
    assert importlib.metadata.version("vaderSentiment") == sentiment.VADER_VERSION
