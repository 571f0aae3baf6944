"""The synthetic X API v2 stream generator: determinism, resumability and realism."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from flows.model import Line, Post
from flows.platforms.synthetic import (
    EVENT_EPOCH,
    TOPICS,
    created_at_for,
    event_at,
    event_schedule,
    generate_lines,
    mood_shares,
    synthetic_envelope,
    synthetic_line,
)
from flows.platforms.x import parse_line

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SAMPLE = 2_000

# One marker per topic: a post about the topic contains it (case-insensitive).
TOPIC_MARKERS = {
    "python": r"python|pandas|asyncio",
    "climate": r"climate|carbon|solar|cop28|netzero|renewables",
    "football": r"world ?cup|football|quarterfinal|group stage|messi|fifa|soccer",
    "music": r"album|song|concert|playlist|summer tour|music|nowplaying|spotify|grammys",
    "ai": r"\bai\b|chatgpt|gpt|machine ?learning|language models|llm",
    "coffee": r"coffee|espresso|café|latte",
    "japan": r"tokyo|japan|kyoto|osaka|cherry blossoms|日本|東京",
    "health": r"covid19|health|hospital|booster|vaccine",
    "space": r"rocket|mars|nasa|eclipse|space|artemis",
    "gaming": r"zelda|game|ps5|switch|speedrun|gaming",
}


@pytest.fixture(scope="module")
def envelopes() -> list[dict[str, Any]]:
    """A sample of decoded synthetic lines."""
    return [json.loads(line) for line in generate_lines(SAMPLE, seed=7, start=T0, rate=50.0)]


def _texts(envelopes: list[dict[str, Any]]) -> list[str]:
    return [envelope["data"]["text"] for envelope in envelopes]


def test_same_seed_gives_same_lines() -> None:
    """Two runs with the same seed yield identical lines, another seed different ones."""
    first = list(generate_lines(200, seed=1, start=T0, rate=10.0))
    again = list(generate_lines(200, seed=1, start=T0, rate=10.0))
    other = list(generate_lines(200, seed=2, start=T0, rate=10.0))
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) == 200


def test_resumed_run_yields_the_tail_of_a_full_run() -> None:
    """Lines generated from a resume at ``first`` equal the same lines of a full run."""
    full = list(generate_lines(300, seed=5, start=T0, rate=25.0))
    for first in (0, 1, 137, 299, 300):
        tail = list(generate_lines(300, seed=5, start=T0, rate=25.0, first=first))
        assert tail == full[first:]


def test_post_depends_on_n_and_seed_only() -> None:
    """Apart from created_at, post n is the same whatever time it is stamped with."""
    early = synthetic_envelope(42, seed=3, created_at=T0)
    late = synthetic_envelope(42, seed=3, created_at=T0 + timedelta(days=3))
    assert early["data"].pop("created_at") == "2024-05-01T12:00:00.000Z"
    assert late["data"].pop("created_at") == "2024-05-04T12:00:00.000Z"
    assert early == late


def test_created_at_follows_start_and_rate() -> None:
    """Post n is created at start + n / rate, written like X with milliseconds and a Z."""
    lines = list(generate_lines(101, seed=0, start=T0, rate=20.0))
    stamps = [json.loads(line)["data"]["created_at"] for line in lines]
    assert stamps[0] == "2024-05-01T12:00:00.000Z"
    assert stamps[1] == "2024-05-01T12:00:00.050Z"
    assert stamps[100] == "2024-05-01T12:00:05.000Z"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)
    assert created_at_for(3, start=T0, rate=2.0) == T0 + timedelta(seconds=1.5)


def test_ids_are_increasing_numeric_and_unique_per_seed() -> None:
    """Ids are numeric strings that increase with n and differ between seeds."""
    ids = [json.loads(line)["data"]["id"] for line in generate_lines(500, seed=1, start=T0, rate=1)]
    other = {
        json.loads(line)["data"]["id"] for line in generate_lines(500, seed=2, start=T0, rate=1)
    }
    assert all(post_id.isdigit() and len(post_id) == 19 for post_id in ids)
    assert [int(post_id) for post_id in ids] == sorted({int(post_id) for post_id in ids})
    assert not other & set(ids)


def test_lines_are_compact_single_line_json() -> None:
    """Each line is compact JSON on one line, UTF-8 text kept unescaped as X sends it."""
    for line in generate_lines(300, seed=4, start=T0, rate=50.0):
        assert "\n" not in line
        assert line == json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":"))
        assert json.loads(line)["matching_rules"] == []


def test_every_line_parses_into_a_post_with_utc_time() -> None:
    """Every generated line parses into a Post with an aware UTC created_at and an author."""
    start = T0
    for n, text in enumerate(generate_lines(SAMPLE, seed=9, start=start, rate=50.0)):
        post = parse_line(Line(text, origin=f"synthetic:9:{n}"))
        assert isinstance(post, Post), post
        assert post.created_at.utcoffset() == timedelta(0)
        assert post.created_at == start + timedelta(seconds=n / 50.0)
        assert post.author is not None
        assert not post.author.isdigit()  # resolved through includes.users


def test_retweet_share_and_shape(envelopes: list[dict[str, Any]]) -> None:
    """About a fifth of the posts are retweets, marked in both the text and referenced_tweets."""
    retweets = [e for e in envelopes if "referenced_tweets" in e["data"]]
    assert 0.15 <= len(retweets) / SAMPLE <= 0.25
    for envelope in retweets:
        assert re.match(r"RT @\w+: ", envelope["data"]["text"])
        assert envelope["data"]["referenced_tweets"][0]["type"] == "retweeted"
    originals = [e for e in envelopes if "referenced_tweets" not in e["data"]]
    assert not any(e["data"]["text"].startswith("RT @") for e in originals)


def test_every_topic_is_present(envelopes: list[dict[str, Any]]) -> None:
    """Each topic appears in at least 5% of the posts, and typical queries match posts."""
    assert set(TOPIC_MARKERS) == set(TOPICS)
    texts = [text.casefold() for text in _texts(envelopes)]
    for topic, marker in TOPIC_MARKERS.items():
        hits = sum(bool(re.search(marker, text)) for text in texts)
        assert hits >= 0.05 * SAMPLE, topic
    for query in ("python", "#worldcup", "climate change", "coffee"):
        assert sum(query in text for text in texts) >= 20, query


def test_hashtags_include_digits_and_unicode(envelopes: list[dict[str, Any]]) -> None:
    """Hashtags with digits and non-ASCII letters occur, in text and in entities."""
    tags = {
        item["tag"]
        for envelope in envelopes
        for item in envelope["data"].get("entities", {}).get("hashtags", [])
    }
    assert {"covid19", "café", "日本", "Python3"} <= tags
    text = " ".join(_texts(envelopes))
    for tag in ("#covid19", "#café", "#日本", "#Python3"):
        assert tag in text


def test_entity_indices_point_at_their_text(envelopes: list[dict[str, Any]]) -> None:
    """Entity start/end are code-point indices: text[start:end] is the #tag, @user or URL."""
    checked = 0
    for envelope in envelopes:
        data = envelope["data"]
        text = data["text"]
        entities = data.get("entities", {})
        for item in entities.get("hashtags", []):
            assert text[item["start"] : item["end"]] == "#" + item["tag"]
            checked += 1
        for item in entities.get("mentions", []):
            assert text[item["start"] : item["end"]] == "@" + item["username"]
        for item in entities.get("urls", []):
            assert text[item["start"] : item["end"]] == item["url"]
            assert item["url"].startswith("https://t.co/")
    assert checked > SAMPLE // 2


def test_entities_are_left_out_on_some_posts(envelopes: list[dict[str, Any]]) -> None:
    """About 90% of posts with a hashtag carry entities; the rest must be read from the text."""
    tagged = [e for e in envelopes if re.search(r"#\w", e["data"]["text"])]
    with_entities = [e for e in tagged if "hashtags" in e["data"].get("entities", {})]
    assert 0.8 <= len(with_entities) / len(tagged) <= 0.97


def test_mentions_and_authors_resolve_through_includes(envelopes: list[dict[str, Any]]) -> None:
    """The author and every mentioned user have an includes.users entry."""
    mentions = 0
    for envelope in envelopes:
        users = {user["id"]: user["username"] for user in envelope["includes"]["users"]}
        assert envelope["data"]["author_id"] in users
        for item in envelope["data"].get("entities", {}).get("mentions", []):
            assert users[item["id"]] == item["username"]
            mentions += 1
    assert mentions > 0.2 * SAMPLE


def test_text_features_are_mixed(envelopes: list[dict[str, Any]]) -> None:
    """Emoticons, emoji, CAPS with !!!, links and a few non-English posts all occur."""
    texts = _texts(envelopes)
    assert any(":)" in text for text in texts)
    assert any(":(" in text for text in texts)
    assert any(re.search("[\U0001f300-\U0001faff]", text) for text in texts)
    assert any(re.search(r"\b[A-Z]{4,} [A-Z]{2,}.*!!!", text) for text in texts)
    assert any("https://t.co/" in text for text in texts)
    langs = Counter(envelope["data"]["lang"] for envelope in envelopes)
    assert 0.85 <= langs["en"] / SAMPLE < 1.0


def test_vader_scores_a_balanced_mix(envelopes: list[dict[str, Any]]) -> None:
    """VADER finds positive, negative and neutral posts in roughly equal shares."""
    analyzer = SentimentIntensityAnalyzer()
    classes: Counter[str] = Counter()
    for text in _texts(envelopes):
        compound = analyzer.polarity_scores(text)["compound"]
        classes["pos" if compound >= 0.05 else "neg" if compound <= -0.05 else "neu"] += 1
    for share in classes.values():
        assert 0.22 <= share / SAMPLE <= 0.45, classes
    assert analyzer.polarity_scores("I love coffee :)")["compound"] > 0.05  # phrasing sanity


def test_count_none_never_ends() -> None:
    """With count=None the generator goes on past any count asked for."""
    lines = list(islice(generate_lines(None, seed=0, start=T0, rate=1.0, first=10**6), 3))
    assert len(lines) == 3
    assert lines[0] == synthetic_line(
        10**6, seed=0, created_at=created_at_for(10**6, start=T0, rate=1.0)
    )


def test_bad_arguments_fail_before_iteration() -> None:
    """A naive start, a non-positive rate or a negative first raise ValueError at the call."""
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_lines(1, start=datetime(2024, 5, 1), rate=1.0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="rate"):
        generate_lines(1, start=T0, rate=0.0)
    with pytest.raises(ValueError, match="first"):
        generate_lines(1, start=T0, rate=1.0, first=-1)
    with pytest.raises(ValueError, match=">= 0"):
        synthetic_envelope(-1, seed=0, created_at=T0)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10**12), seed=st.integers(-(2**63), 2**63))
def test_any_post_is_deterministic_and_well_formed(n: int, seed: int) -> None:
    """For any (n, seed) the post is reproducible, parses, and its entity indices are exact."""
    line = synthetic_line(n, seed=seed, created_at=T0)
    assert line == synthetic_line(n, seed=seed, created_at=T0)
    post = parse_line(Line(line))
    assert isinstance(post, Post)
    data = json.loads(line)["data"]
    for item in data.get("entities", {}).get("hashtags", []):
        assert data["text"][item["start"] : item["end"]] == "#" + item["tag"]


def test_event_schedule_is_a_pure_function_of_the_seed() -> None:
    """The schedule repeats for a seed, holds one event per epoch and differs between seeds."""
    events = event_schedule(3, until=10 * EVENT_EPOCH)
    assert events == event_schedule(3, until=10 * EVENT_EPOCH)
    assert len(events) == 10
    assert events != event_schedule(4, until=10 * EVENT_EPOCH)
    for epoch, event in enumerate(events):
        assert event.topic in TOPICS
        assert event.kind in ("crisis", "launch")
        assert epoch * EVENT_EPOCH + 2_000 <= event.first < event.end <= (epoch + 1) * EVENT_EPOCH
        assert event_at(event.first, seed=3) == event
        assert event_at(event.end, seed=3) is None
    assert event_schedule(3, until=events[0].first) == ()
    assert event_schedule(3, until=events[0].first + 1) == events[:1]


def test_mood_shares_drift_slowly_and_jump_in_events() -> None:
    """Shares add up to 1, drift by at most 0.08 outside events and jump during one."""
    assert event_schedule(1, until=1) == ()
    event = event_schedule(1, until=EVENT_EPOCH)[0]
    for n in range(0, 3 * EVENT_EPOCH, 97):
        for topic in TOPICS:
            shares = mood_shares(n, seed=1, topic=topic)
            assert sum(shares) == pytest.approx(1.0)
            calm = mood_shares(n, seed=1, topic=topic, events=False)
            assert all(abs(share - 1 / 3) <= 0.081 for share in calm)
            step = mood_shares(n + 200, seed=1, topic=topic, events=False)
            assert abs(step[0] - calm[0]) < 0.01  # slow: a window of 200 posts moves < 1 point
    inside = mood_shares(event.first, seed=1, topic=event.topic)
    shifted = inside[1] if event.kind == "crisis" else inside[0]
    assert shifted >= 0.7


def test_an_event_shifts_what_vader_finds() -> None:
    """During an event the topic's posts are mostly of the event's polarity; with events off not."""
    analyzer = SentimentIntensityAnalyzer()
    event = event_schedule(2, until=EVENT_EPOCH)[0]
    marker = TOPIC_MARKERS[event.topic]

    def share(events: bool) -> float:
        found: Counter[str] = Counter()
        for n in range(event.first, event.end):
            text = synthetic_envelope(n, seed=2, created_at=T0, events=events)["data"]["text"]
            if text.startswith("RT @") or not re.search(marker, text.casefold()):
                continue
            compound = analyzer.polarity_scores(text)["compound"]
            found["pos" if compound >= 0.05 else "neg" if compound <= -0.05 else "neu"] += 1
        wanted = "neg" if event.kind == "crisis" else "pos"
        return found[wanted] / sum(found.values())

    assert share(True) >= 0.55
    assert share(False) <= 0.45
