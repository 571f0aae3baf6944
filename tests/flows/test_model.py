"""Parsing X API v2 stream lines into posts or rejected lines, and message shapes (flows.model)."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import (
    MAX_REJECTED_RAW,
    Line,
    Polarity,
    Post,
    RejectCode,
    Rejected,
    format_time,
    parse_time,
)
from flows.platforms import x as platform_x
from flows.platforms.x import parse_line
from tests.helpers.factories import (
    T0,
    make_late,
    make_match,
    make_rejected,
    make_scored,
    make_window,
)
from tests.helpers.mutations import as_received, check_parsed, encoded
from tests.helpers.xlines import x_envelope, x_line


def parse(envelope: Any, origin: str = "f:0") -> Post | Rejected:
    """Parse ``envelope`` serialised as one stream line."""
    return parse_line(Line(json.dumps(envelope), origin))


def post_of(envelope: Any) -> Post:
    """Parse ``envelope`` and insist it is a post."""
    result = parse(envelope)
    assert isinstance(result, Post), result
    return result


def rejected_of(raw: str, origin: str = "f:0") -> Rejected:
    """Parse the raw line and insist it is rejected."""
    result = parse_line(Line(raw, origin))
    assert isinstance(result, Rejected), result
    return result


def data(**overrides: Any) -> dict[str, Any]:
    """A minimal valid ``data`` object with ``overrides`` applied (``None`` deletes a key)."""
    base: dict[str, Any] = {"id": "1", "text": "hello", "created_at": "2024-05-01T12:00:00.000Z"}
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


# Good lines


def test_parse_line_reads_every_field() -> None:
    """A full stream line yields a post with every field: time, lang, author, tags, rule tags."""
    envelope = {
        "data": {
            "id": "1790000000000000001",
            "text": "Loving #Python and #AI",
            "created_at": "2024-05-01T12:00:03.250Z",
            "lang": "en",
            "author_id": "42",
            "entities": {
                "hashtags": [
                    {"start": 7, "end": 14, "tag": "Python"},
                    {"start": 19, "end": 22, "tag": "AI"},
                ]
            },
        },
        "includes": {"users": [{"id": "7", "username": "bob"}, {"id": "42", "username": "ada"}]},
        "matching_rules": [{"id": "9", "tag": "senti:python"}, {"id": "10", "tag": "senti:ai"}],
    }
    assert post_of(envelope) == Post(
        id="1790000000000000001",
        text="Loving #Python and #AI",
        created_at=T0 + timedelta(seconds=3.25),
        lang="en",
        author="ada",
        is_retweet=False,
        hashtags=("Python", "AI"),
        rule_tags=("senti:python", "senti:ai"),
    )


def test_author_falls_back_to_author_id_without_a_matching_user() -> None:
    """Without the author in ``includes.users`` the author is the ``author_id``."""
    envelope = {"data": data(author_id="42"), "includes": {"users": [{"id": "7", "username": "b"}]}}
    assert post_of(envelope).author == "42"
    assert post_of({"data": data(author_id="42")}).author == "42"


def test_optional_fields_default_when_absent() -> None:
    """A line with only id, text and created_at has no lang, author, hashtags or rule tags."""
    post = post_of({"data": data()})
    assert (post.lang, post.author, post.hashtags, post.rule_tags) == (None, None, None, ())
    assert post.is_retweet is False


def test_hashtags_are_none_without_entities_and_empty_when_listed_empty() -> None:
    """``hashtags`` distinguishes "X sent no entities" (None) from "X found none" (())."""
    assert post_of({"data": data(entities={"urls": []})}).hashtags is None
    assert post_of({"data": data(entities={"hashtags": []})}).hashtags == ()


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-05-01T12:00:00.000Z", T0),
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T12:00:00+00:00", T0),
        ("2024-05-01T14:30:00+02:30", T0),
        ("2024-05-01T07:00:00-05:00", T0),
    ],
)
def test_created_at_becomes_aware_utc(stamp: str, expected: datetime) -> None:
    """``Z`` and numeric offsets all give the same timezone-aware UTC instant."""
    created = post_of({"data": data(created_at=stamp)}).created_at
    assert created == expected
    assert created.tzinfo is UTC


def test_parse_time_refuses_naive_timestamps() -> None:
    """A timestamp without an offset is ambiguous and raises ValueError."""
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2024-05-01T12:00:00")


def test_xlines_builder_round_trips() -> None:
    """The test line builder produces lines the parser accepts as posts."""
    post = parse_line(x_line(5, "python rocks", at=2, hashtags=["Py"]))
    assert isinstance(post, Post)
    assert (post.id, post.hashtags, post.author) == ("5", ("Py",), "ada")
    assert post.created_at == T0 + timedelta(seconds=2)


# Retweets


@pytest.mark.parametrize(
    ("refs", "text", "retweet"),
    [
        pytest.param([{"type": "retweeted", "id": "0"}], "python", True, id="retweeted"),
        pytest.param(
            [{"type": "quoted", "id": "0"}, {"type": "retweeted", "id": "1"}],
            "python",
            True,
            id="retweeted-among-others",
        ),
        pytest.param([{"type": "quoted", "id": "0"}], "python", False, id="quoted"),
        pytest.param([{"type": "replied_to", "id": "0"}], "python", False, id="replied_to"),
        pytest.param(None, "RT @ada: python", True, id="rt-prefix-in-text"),
        pytest.param(None, "I said RT @ada later", False, id="rt-not-leading"),
        pytest.param(None, "RTX 4090 @nvidia", False, id="rt-needs-space-at"),
        pytest.param(None, "python", False, id="plain"),
    ],
)
def test_retweet_detection(refs: list[dict[str, str]] | None, text: str, retweet: bool) -> None:
    """Retweets are ``referenced_tweets`` of type retweeted or text starting ``RT @``."""
    post = post_of({"data": data(text=text, referenced_tweets=refs)})
    assert post.is_retweet is retweet


def test_xlines_retweet_flag_is_detected() -> None:
    """The builder's ``retweet=True`` produces a retweet."""
    post = parse(x_envelope(1, "python", retweet=True))
    assert isinstance(post, Post)
    assert post.is_retweet


def test_json_the_fast_decoder_refuses_is_read_as_json_reads_it() -> None:
    """NaN, an out-of-range number, or a lone surrogate in a field senti ignores: still a post."""
    line = '{"data": {"id": "1", "text": "hi", "created_at": "2024-05-01T12:00:00Z", '
    for extra in ('"geo": NaN', '"n": 1e999', '"note": "\\ud800"'):
        post = parse_line(Line(line + extra + "}}", "f:0"))
        assert isinstance(post, Post), (extra, post)
        assert post.text == "hi"


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_the_fast_decoder_reads_json_as_the_standard_library(value: Any) -> None:
    """Whatever msgspec decodes, it decodes to the values ``json.loads`` gives."""
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        try:
            decoded = platform_x._decode(text)
        except ValueError:
            continue  # parse_line asks json.loads then
        assert decoded == json.loads(text)
        assert type(decoded) is type(json.loads(text))


# Malformed lines


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param('{"data": {"id": "1"', "invalid JSON", id="truncated-json"),
        pytest.param("not json at all", "invalid JSON", id="garbage"),
        pytest.param("[" * 100_000, "invalid JSON", id="deep-nesting"),
        pytest.param("[1, 2]", "line is not a JSON object", id="array"),
        pytest.param('"a string"', "line is not a JSON object", id="string"),
        pytest.param("null", "line is not a JSON object", id="null"),
        pytest.param("{}", "missing data object", id="no-data"),
        pytest.param('{"data": []}', "missing data object", id="data-not-object"),
        pytest.param(
            json.dumps({"errors": [{"title": "ConnectionException"}]}),
            "missing data object",
            id="x-error-message",
        ),
        pytest.param(json.dumps({"data": data(id=None)}), "missing data.id", id="no-id"),
        pytest.param(json.dumps({"data": data(id="")}), "empty data.id", id="empty-id"),
        pytest.param(json.dumps({"data": data(text=None)}), "missing data.text", id="no-text"),
        pytest.param(
            json.dumps({"data": data(created_at=None)}), "missing data.created_at", id="no-time"
        ),
        pytest.param(
            json.dumps({"data": data(id=1)}), "data.id is not a string", id="id-not-string"
        ),
        pytest.param(
            json.dumps({"data": data(text=["a"])}), "data.text is not a string", id="text-list"
        ),
        pytest.param(
            json.dumps({"data": data(created_at=1714564800)}),
            "data.created_at is not a string",
            id="time-number",
        ),
        pytest.param(
            json.dumps({"data": data(lang=5)}), "data.lang is not a string", id="lang-number"
        ),
        pytest.param(
            json.dumps({"data": data(author_id=42)}),
            "data.author_id is not a string",
            id="author-number",
        ),
        pytest.param(
            json.dumps({"data": data(created_at="2024-05-01T12:00:00")}),
            "bad data.created_at: timestamp without a time zone",
            id="naive-time",
        ),
        pytest.param(
            json.dumps({"data": data(created_at="yesterday")}),
            "bad data.created_at",
            id="unparseable-time",
        ),
        pytest.param(
            json.dumps({"data": data(entities={"hashtags": "python"})}),
            "data.entities.hashtags is not a list",
            id="hashtags-not-list",
        ),
        pytest.param(
            json.dumps({"data": data(entities={"hashtags": [{"start": 0}]})}),
            "data.entities.hashtags item has no tag",
            id="hashtag-without-tag",
        ),
        pytest.param(
            json.dumps({"data": data(entities={"hashtags": ["python"]})}),
            "data.entities.hashtags item has no tag",
            id="hashtag-not-object",
        ),
        pytest.param(
            '{"data": {"id": "1", "text": "bad \\ud800 half", '
            '"created_at": "2024-05-01T12:00:00Z"}}',
            "lone surrogate",
            id="lone-surrogate-in-text",
        ),
    ],
)
def test_malformed_lines_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    """Each kind of unusable line becomes a Rejected record whose reason names the problem."""
    rejected = rejected_of(raw, origin="capture.jsonl:120")
    assert rejected.origin == "capture.jsonl:120"
    assert rejected.reason.startswith(reason) or reason in rejected.reason
    assert rejected.raw == raw


@pytest.mark.parametrize("raw", ["", "   ", "\r", "\t \n"])
def test_blank_lines_are_keep_alives(raw: str) -> None:
    """Blank lines (X's keep-alive signal) are rejected as ``keep-alive`` with no raw text."""
    rejected = rejected_of(raw)
    assert (rejected.reason, rejected.raw) == ("keep-alive", "")


def test_invalid_utf8_bytes_are_kept_as_escapes() -> None:
    """A line with undecodable bytes (surrogate-escaped) keeps a storable, escaped raw text."""
    raw = b'{"data": {"id": "1", "text": "\xff\xfe"'.decode("utf-8", errors="surrogateescape")
    rejected = rejected_of(raw)
    assert rejected.reason.startswith("invalid JSON")
    rejected.raw.encode("utf-8")
    assert "\\udcff\\udcfe" in rejected.raw


def test_long_rejected_lines_are_cut_and_marked() -> None:
    """A rejected line longer than MAX_REJECTED_RAW keeps its start and says how much was cut."""
    raw = "{" + "x" * (MAX_REJECTED_RAW + 49)
    rejected = rejected_of(raw)
    assert rejected.raw.startswith(raw[:MAX_REJECTED_RAW])
    assert rejected.raw.endswith("...[50 more characters]")
    assert len(rejected.raw) == MAX_REJECTED_RAW + len("...[50 more characters]")


def test_rejected_line_at_the_limit_is_kept_whole() -> None:
    """A rejected line of exactly MAX_REJECTED_RAW characters is not marked."""
    raw = "{" + "x" * (MAX_REJECTED_RAW - 1)
    assert rejected_of(raw).raw == raw


def test_rejected_message_has_type_origin_and_reason() -> None:
    """A rejected line's message carries its origin and reason, not its raw text."""
    message = make_rejected("f:7", "invalid JSON: x", raw="{").message()
    assert message == {"type": "rejected", "origin": "f:7", "reason": "invalid JSON: x"}


def test_non_list_includes_users_does_not_raise() -> None:
    """parse_line never raises, even when ``includes.users`` is not a list."""
    result = parse({"data": data(author_id="42"), "includes": {"users": 5}})
    assert isinstance(result, Post | Rejected)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"entities": {"hashtags": [{"tag": "\ud800"}]}}, id="hashtag"),
        pytest.param({"lang": "\ud800"}, id="lang"),
        pytest.param({"author_id": "\ud800"}, id="author"),
    ],
)
def test_lone_surrogates_never_reach_a_post(overrides: dict[str, Any]) -> None:
    """No string of a parsed post holds a lone surrogate: such lines are rejected."""
    result = parse({"data": data(**overrides)})
    assert isinstance(result, Rejected)


# Message shapes and times


def test_match_message_shape() -> None:
    """A per-post message has exactly polarityIndex, hashtags, query, id, created_at, compound
    and lang."""
    match = make_match(
        "python",
        9,
        created_at=1.5,
        compound=0.61,
        polarity=Polarity.POSITIVE,
        hashtags={"py": 2},
    )
    message = match.message()
    assert message == {
        "polarityIndex": 0,
        "hashtags": {"py": 2},
        "query": "python",
        "id": "9",
        "created_at": "2024-05-01T12:00:01.500Z",
        "compound": 0.61,
        "lang": "en",
    }
    assert type(message["polarityIndex"]) is int
    json.dumps(message)


def test_unscored_match_message_has_null_polarity_and_compound() -> None:
    """An unscored post's message says so: polarityIndex and compound are None (JSON null)."""
    message = make_match(polarity=None, hashtags={"py": 1}, lang="pt").message()
    assert (message["polarityIndex"], message["compound"], message["lang"]) == (None, None, "pt")
    assert message["hashtags"] == {"py": 1}
    assert '"polarityIndex": null' in json.dumps(message)


def test_scored_post_says_whether_it_was_scored() -> None:
    """``unscored`` is true exactly when the post has no polarity."""
    assert not make_scored(polarity=Polarity.NEUTRAL).unscored
    assert make_scored(polarity=None).unscored


def test_unscored_post_pickles_as_unscored() -> None:
    """An unscored post crosses between workers with no polarity and no compound."""
    scored = make_scored(3, polarity=None, hashtags={"a": 1}, lang="ja")
    again = pickle.loads(pickle.dumps(scored))  # noqa: S301 - our own bytes
    assert again == scored
    assert (again.polarity, again.compound, again.post.lang) == (None, None, "ja")


def test_match_message_hashtags_are_a_copy() -> None:
    """Mutating a message's hashtags does not change the record."""
    match = make_match(hashtags={"py": 1})
    match.message()["hashtags"]["py"] = 99
    assert match.scored.hashtags == {"py": 1}


def test_window_summary_message_shape() -> None:
    """A window message is tagged ``window`` and lists top hashtags as [tag, count] pairs."""
    summary = make_window(
        "*", 60, posts=4, positive=2, negative=1, neutral=1, retweets=3,
        top_hashtags=(("py", 3), ("ai", 1)),
    )  # fmt: skip
    assert summary.message() == {
        "type": "window",
        "query": "*",
        "start": "2024-05-01T12:01:00.000Z",
        "end": "2024-05-01T12:02:00.000Z",
        "posts": 4,
        "positive": 2,
        "negative": 1,
        "neutral": 1,
        "unscored": 0,
        "retweets": 3,
        "top_hashtags": [["py", 3], ["ai", 1]],
        "langs": {},
    }
    json.dumps(summary.message())


def test_late_post_message_shape() -> None:
    """A late-post message is tagged ``late`` with the window start and post id."""
    assert make_late("python", 4, window_start=120).message() == {
        "type": "late",
        "query": "python",
        "window_start": "2024-05-01T12:02:00.000Z",
        "id": "4",
        "retweet": False,
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (T0, "2024-05-01T12:00:00.000Z"),
        (T0 + timedelta(microseconds=123_456), "2024-05-01T12:00:00.123Z"),
        (
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00.000Z",
        ),
    ],
)
def test_format_time_is_utc_milliseconds_with_z(moment: datetime, text: str) -> None:
    """Times are written in UTC with millisecond precision and a ``Z``, as X writes them."""
    assert format_time(moment) == text


def test_format_time_round_trips_through_parse_time() -> None:
    """parse_time reads back what format_time writes."""
    moment = T0 + timedelta(milliseconds=250)
    assert parse_time(format_time(moment)) == moment


def test_records_are_frozen() -> None:
    """Posts are immutable values."""
    post = post_of({"data": data()})
    with pytest.raises(AttributeError):
        post.text = "changed"  # type: ignore[misc]


def test_records_survive_pickling_between_workers() -> None:
    """Posts, scored posts and matches come back equal, times still aware UTC."""
    import pickle

    from tests.helpers.factories import make_match

    match = make_match("python")
    copy = pickle.loads(pickle.dumps(match))  # noqa: S301 - our own bytes
    assert copy == match
    assert copy.scored.post.created_at.tzinfo is not None
    assert copy.scored.polarity is match.scored.polarity


# Hostile lines: any field of the envelope, or its encoding, broken


_X_KINDS = {"type": ["liked", "RETWEETED", ""], "tag": ["", "senti:"]}
"""Enumerated fields of an X envelope, and values they never have."""


@settings(max_examples=400, deadline=None)
@given(encoded(x_envelope(7, "python #fun rocks", hashtags=["fun"], retweet=True), _X_KINDS))
def test_a_mutated_stream_line_is_a_usable_post_or_a_counted_rejection(raw: str | bytes) -> None:
    """Whatever is broken in a stream line, parse_line returns a usable post or a rejection
    with a known code (never internal), and never raises."""
    check_parsed(parse_line(Line(as_received(raw), "x:7")))


@pytest.mark.parametrize(
    ("created_at", "code"),
    [
        pytest.param("0001-01-01T00:00:00+01:00", RejectCode.BAD_TIME, id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-01:00", RejectCode.BAD_TIME, id="after-9999-in-utc"),
        pytest.param("9999-12-31T23:59:59Z", RejectCode.BAD_TIME, id="window-end-overflows"),
        pytest.param("1969-12-31T23:59:59Z", RejectCode.BAD_TIME, id="before-1970"),
        pytest.param("2200-01-01T00:00:00Z", RejectCode.BAD_TIME, id="from-2200"),
        pytest.param("x" * 100_000, RejectCode.BAD_TIME, id="huge"),
    ],
)
def test_a_time_no_post_can_have_is_rejected_as_bad_time(created_at: str, code: RejectCode) -> None:
    """created_at outside 1970-2199 is rejected (it raised, or stopped the flow in its
    window), with a bounded reason."""
    rejected = rejected_of(json.dumps({"data": data(created_at=created_at)}))
    assert rejected.code is code
    assert len(rejected.reason) <= 200


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        pytest.param("[1]", RejectCode.NOT_AN_OBJECT, id="not-an-object"),
        pytest.param('{"data": 5}', RejectCode.NOT_AN_OBJECT, id="data-not-object"),
        pytest.param(json.dumps({"data": data(id=None)}), RejectCode.MISSING_FIELD, id="no-id"),
        pytest.param(json.dumps({"data": data(id="")}), RejectCode.MISSING_FIELD, id="empty-id"),
        pytest.param(json.dumps({"data": data(lang=5)}), RejectCode.WRONG_TYPE, id="lang-number"),
        pytest.param(
            json.dumps({"data": data(entities={"hashtags": {}})}),
            RejectCode.WRONG_TYPE,
            id="hashtags-object",
        ),
        pytest.param('{"data": {"id": "1"', RejectCode.INVALID_JSON, id="truncated"),
        pytest.param(
            json.dumps({"data": data(text="\ud800")}), RejectCode.BAD_ENCODING, id="surrogate"
        ),
    ],
)
def test_every_rejection_has_a_code(envelope: str, code: RejectCode) -> None:
    """The code of a rejection says in a fixed word what its reason says in words."""
    assert rejected_of(envelope).code is code


def test_a_line_its_source_rejected_is_rejected_with_its_code() -> None:
    """A Line carrying the source's (code, reason) is rejected with them, its text kept raw."""
    line = Line("{not jetstream", "bluesky:5", rejected=(RejectCode.UNKNOWN_KIND, "invalid: kind"))
    assert parse_line(line) == Rejected(
        "bluesky:5", "invalid: kind", "{not jetstream", RejectCode.UNKNOWN_KIND
    )


def test_a_rejected_line_pickles_with_its_rejection() -> None:
    """Lines cross between workers pickled: a source's rejection goes with them."""
    line = Line("x", "o", rejected=(RejectCode.TOO_LARGE, "too long"))
    for item in (line, Line("x", "o")):
        assert pickle.loads(pickle.dumps(item)) == item  # noqa: S301 - our own bytes


def test_a_rejection_is_always_storable() -> None:
    """Origins and reasons holding undecodable bytes (a post id of the line, say) are kept
    with escapes, so the store never fails on a rejected line."""
    line = Line('{"data": {"id": "\udcff"}}', "x:\udcff")
    rejected = rejected_of(line.text, origin=line.origin)
    assert rejected.origin == "x:\\udcff"
    rejected.reason.encode("utf-8")
