"""Mastodon wire formats to posts : SSE, HTML content, statuses, hostility."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import Line, RejectCode, Rejected
from flows.platforms.mastodon import (
    MAX_CONTENT_CHARS,
    Mapped,
    Skipped,
    SseDecoder,
    SseEvent,
    html_to_text,
    map_event,
    map_status,
)
from flows.platforms.x import parse_line
from tests.helpers.fakes.mastodon import status
from tests.helpers.mutations import as_received, check_parsed, check_rejected, encoded, mutated


def _decode(lines: list[str]) -> list[SseEvent]:
    decoder = SseDecoder()
    return [event for line in lines if (event := decoder.feed(line)) is not None]


def test_sse_events_end_at_a_blank_line_and_heartbeats_are_dropped() -> None:
    """``event:``/``data:`` fields make one event per blank line; ``:thump`` comments vanish."""
    lines = [":thump", "event: update", 'data: {"a":', "data: 1}", "", ":thump", "", "data: x", ""]
    assert _decode(lines) == [SseEvent("update", '{"a":\n1}'), SseEvent("message", "x")]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello <a href='https://x'>#world</a></p>", "Hello #world"),
        ("<p>one<br>two<br/>three</p>", "one\ntwo\nthree"),
        ("<p>first</p><p>second</p>", "first\n\nsecond"),
        ("<p>Tom &amp; Jerry &lt;3 &#128512;</p>", "Tom & Jerry <3 \U0001f600"),
        ("<p><span class='invisible'>https://</span>example.org</p>", "https://example.org"),
        ("<p>unclosed <b>bold <i", "unclosed bold <i"),
        ("<<<>>>&&&;<p", "<<<>>>&&&;<p"),
        ("<script>x</script>y", "xy"),
        ("", ""),
    ],
)
def test_html_content_becomes_text(html: str, text: str) -> None:
    """Tags are dropped, entities unescaped, line breaks and paragraphs kept; bad HTML tolerated."""
    assert html_to_text(html) == text


def test_a_status_maps_to_a_post() -> None:
    """Text, id (the status URI), time, language, author and folded tags come from the status."""
    result = map_status(status(7, "<p>Hi #Senti</p>", tags=["Senti", "senti", "news"]))
    assert isinstance(result, Mapped)
    post = result.post
    assert result.position == 100_000_007
    assert post.id == "https://fake.example/users/alice/statuses/100000007"
    assert post.text == "Hi #Senti"
    assert post.hashtags == ("senti", "news")
    assert post.lang == "en"
    assert post.author == "alice"
    assert post.created_at.isoformat() == "2024-05-01T12:00:07+00:00"


def test_boosts_and_other_events_are_skipped_not_rejected() -> None:
    """A boost (``reblog`` set), a delete and unknown events are plain skips, with a reason."""
    assert map_status(status(2, reblog=status(1))) == Skipped("boost", None, 100_000_002)
    assert map_event(SseEvent("delete", "123")) == Skipped("delete")
    assert map_event(SseEvent("x" * 1000, "")) == Skipped("other event")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id": 5}, RejectCode.WRONG_TYPE),
        ({"id": "12a"}, RejectCode.WRONG_TYPE),
        ({"uri": None}, RejectCode.MISSING_FIELD),
        ({"content": ["x"]}, RejectCode.WRONG_TYPE),
        ({"content": "<p></p>"}, RejectCode.MISSING_FIELD),
        ({"content": "a" * (MAX_CONTENT_CHARS + 1)}, RejectCode.TOO_LARGE),
        ({"created_at": "yesterday"}, RejectCode.BAD_TIME),
        ({"created_at": "9999-01-01T00:00:00Z"}, RejectCode.BAD_TIME),
        ({"tags": "senti"}, RejectCode.WRONG_TYPE),
        ({"tags": [{"name": 3}]}, RejectCode.WRONG_TYPE),
        ({"language": 1}, RejectCode.WRONG_TYPE),
        ({"account": "alice"}, RejectCode.WRONG_TYPE),
        ({"uri": "\udc80"}, RejectCode.BAD_ENCODING),
    ],
)
def test_a_malformed_status_is_rejected_with_a_code(
    change: dict[str, Any], code: RejectCode
) -> None:
    """Each wrong field is a rejection naming it, never an exception."""
    result = map_status({**status(1), **change})
    assert isinstance(result, Skipped)
    assert result.code is code
    assert result.reason


def _check(result: Mapped | Skipped, raw: str) -> None:
    if isinstance(result, Mapped):
        check_parsed(parse_line(Line(raw, origin="mastodon:1", post=result.post)))
    elif result.code is not None:
        rejected = parse_line(Line(raw, origin="mastodon:1", rejected=(result.code, result.reason)))
        assert isinstance(rejected, Rejected)
        check_rejected(rejected)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_hostile_statuses_map_to_a_post_or_a_rejection(data: st.DataObject) -> None:
    """Any status with fields broken (types, encodings, truncation) is a valid post or a
    storable rejection with a known code, never an exception."""
    raw = as_received(data.draw(encoded(status(1, "<p>I love #senti</p>", tags=["senti"]))))
    _check(map_event(SseEvent("update", raw)), raw)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_status_values_never_raise(data: st.DataObject) -> None:
    """A decoded status with fields replaced by other types maps without raising."""
    value = data.draw(mutated(status(1, tags=["a"], reblog=None)))
    _check(map_status(value), "{}")
