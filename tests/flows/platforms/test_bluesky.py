"""The pure mapping of Jetstream events to X API v2 envelopes (no network, no loop)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.analysis.posts import PostAnalyzer
from flows.model import Line, Post, RejectCode
from flows.platforms import bluesky
from flows.platforms.bluesky import (
    TAG_FEATURE,
    Mapped,
    Skipped,
    char_span,
    created_at,
    hashtag_entities,
    map_event,
    map_message,
    post_uri,
    wants_lang,
)
from flows.platforms.x import parse_line
from tests.helpers.fakes.jetstream import (
    T0,
    T0_US,
    account_event,
    delete_event,
    identity_event,
    post_event,
    repost_event,
    tag_facet,
    update_event,
)
from tests.helpers.mutations import check_post, encoded


def _mapped(event: object, **options: object) -> Mapped:
    result = map_event(event, **options)  # type: ignore[arg-type]
    assert isinstance(result, Mapped), result
    return result


def _post(event: object, **options: object) -> Post:
    post = parse_line(Line(_mapped(event, **options).line(), origin="test"))
    assert isinstance(post, Post), post
    return post


# A new post


def test_a_new_post_becomes_an_envelope_senti_parses() -> None:
    """A created post maps to the id, text, created_at, lang and author parse_line reads."""
    event = post_event("3l3qo2vuowo2b", "hello bluesky", time_us=T0_US, did="did:plc:ada")
    mapped = _mapped(event)
    assert mapped.post_id == "at://did:plc:ada/app.bsky.feed.post/3l3qo2vuowo2b"
    assert mapped.time_us == T0_US
    post = _post(event)
    assert post == Post(
        id=mapped.post_id,
        text="hello bluesky",
        created_at=T0,
        lang="en",
        author="did:plc:ada",
        hashtags=None,
    )


def test_the_id_is_the_posts_at_uri() -> None:
    """post_uri spells the AT URI of a post record from its repository DID and record key."""
    assert post_uri("did:plc:x", "3k") == "at://did:plc:x/app.bsky.feed.post/3k"


def test_the_line_is_compact_json_keeping_non_ascii() -> None:
    """Mapped.line() is one JSON line with non-ASCII text kept as is."""
    line = _mapped(post_event("a", "olá ☀", time_us=T0_US)).line()
    assert "\n" not in line
    assert "olá ☀" in line
    assert json.loads(line)["data"]["text"] == "olá ☀"


def test_replies_and_quotes_are_referenced_but_not_retweets() -> None:
    """A reply names its parent and a quote its record, and neither counts as a retweet."""
    parent = {"uri": "at://did:plc:b/app.bsky.feed.post/p", "cid": "bafy"}
    quoted = {"uri": "at://did:plc:c/app.bsky.feed.post/q", "cid": "bafy"}
    event = post_event(
        "r",
        "agreed",
        time_us=T0_US,
        reply={"root": parent, "parent": parent},
        embed={
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {"$type": "app.bsky.embed.record", "record": quoted},
            "media": {"$type": "app.bsky.embed.images", "images": []},
        },
    )
    data = _mapped(event).envelope["data"]
    assert data["referenced_tweets"] == [
        {"type": "replied_to", "id": parent["uri"]},
        {"type": "quoted", "id": quoted["uri"]},
    ]
    assert not _post(event).is_retweet


# Hashtags: facets in UTF-8 bytes


def test_a_tag_facet_after_emoji_and_accents_gets_code_point_offsets() -> None:
    """Facet byte offsets past multi-byte characters become code-point start/end of the #tag."""
    text = "café 👋🏽 日本 #Python rocks"
    event = post_event("a", text, time_us=T0_US, facets=[tag_facet(text, "#Python")])
    [entity] = _mapped(event).envelope["data"]["entities"]["hashtags"]
    assert entity["tag"] == "Python"
    assert text[entity["start"] : entity["end"]] == "#Python"
    assert _post(event).hashtags == ("Python",)


def test_hashtags_without_a_facet_are_still_found_in_the_text() -> None:
    """Text hashtags no facet names are added after the facet tags, located in the text."""
    text = "#ŁÓDŹ 🎉 and #rust and #extra"
    event = post_event("a", text, time_us=T0_US, facets=[tag_facet(text, "#rust")])
    tags = _mapped(event).envelope["data"]["entities"]["hashtags"]
    assert [tag["tag"] for tag in tags] == ["rust", "łódź", "extra"]
    for tag in tags:
        assert text[tag["start"] : tag["end"]].casefold() == "#" + tag["tag"]
    scored = PostAnalyzer().analyse(_post(event))
    assert scored.hashtags == {"rust": 1, "łódź": 1, "extra": 1}


def test_a_post_without_tag_facets_leaves_hashtags_to_senti() -> None:
    """With no tag facet there is no entities field, so senti extracts hashtags from the text."""
    text = "loving #Python today"
    link = {
        "index": {"byteStart": 0, "byteEnd": 6},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}],
    }
    event = post_event("a", text, time_us=T0_US, facets=[link])
    assert "entities" not in _mapped(event).envelope["data"]
    post = _post(event)
    assert post.hashtags is None
    assert PostAnalyzer().analyse(post).hashtags == {"python": 1}


def test_repeated_hashtags_are_counted_as_often_as_written() -> None:
    """A tag written twice with one facet gets a second entity for the unfaceted one."""
    text = "#go or #go"
    tags = hashtag_entities(text, [tag_facet(text, "#go")])
    assert tags == [{"start": 0, "end": 3, "tag": "go"}, {"start": 7, "end": 10, "tag": "go"}]


def test_a_facet_with_a_broken_index_keeps_its_tag_without_offsets() -> None:
    """A tag facet whose byte slice is out of range still names its tag."""
    facet = {
        "index": {"byteStart": 5, "byteEnd": 500},
        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "ghost"}],
    }
    assert hashtag_entities("short", [facet]) == [{"tag": "ghost"}]


def test_malformed_facets_are_ignored() -> None:
    """Facets that are not objects, lack features, or carry an empty tag add nothing."""
    facets = [
        "nope",
        {"index": {"byteStart": 0, "byteEnd": 1}},
        {"index": {}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": " "}]},
    ]
    assert hashtag_entities("#a", facets) is None
    assert hashtag_entities("#a", "not a list") is None


def _tag(tag: str, start: object = None, end: object = None) -> dict[str, object]:
    """A tag facet with the given byte offsets (``None`` leaves the index out)."""
    facet: dict[str, object] = {"features": [{"$type": TAG_FEATURE, "tag": tag}]}
    if start is not None or end is not None:
        facet["index"] = {"byteStart": start, "byteEnd": end}
    return facet


def test_a_hyphenated_tag_facet_is_one_tag_not_also_its_first_word() -> None:
    """``#self-care`` is the facet's tag only: the extractor's ``self`` in its span is not added."""
    text = "feeling #self-care today"
    event = post_event("a", text, time_us=T0_US, facets=[tag_facet(text, "#self-care")])
    tags = _mapped(event).envelope["data"]["entities"]["hashtags"]
    assert tags == [{"start": 8, "end": 18, "tag": "self-care"}]
    assert PostAnalyzer().analyse(_post(event)).hashtags == {"self-care": 1}


def test_several_facets_each_keep_their_tag_and_unfaceted_tags_are_added_once() -> None:
    """Every facet claims the hashtag in its span; only the text's other hashtags are added."""
    text = "🌱 #self-care, #well-being and #ŁÓDŹ; also #rest"
    facets = [
        tag_facet(text, "#self-care"),
        tag_facet(text, "#well-being"),
        tag_facet(text, "#ŁÓDŹ"),
    ]
    tags = hashtag_entities(text, facets)
    assert tags is not None
    assert [tag["tag"] for tag in tags] == ["self-care", "well-being", "ŁÓDŹ", "rest"]
    for tag in tags:
        assert text[tag["start"] : tag["end"]] == "#" + tag["tag"]


@pytest.mark.parametrize(
    ("facet", "why"),
    [
        (_tag("self-care", 3, 500), "out of range"),
        (_tag("self-care", "3", "13"), "not integers"),
        (_tag("self-care"), "no index"),
        (_tag("self-care", 0, 2), "in range but over no hashtag (offsets counted wrongly)"),
        (_tag("Self-Care", 6, 3), "reversed, tag cased differently"),
    ],
)
def test_a_facet_without_a_usable_span_is_matched_by_text(
    facet: dict[str, object], why: str
) -> None:
    """A facet whose span is unusable takes its ``#tag`` from the text, so ``self`` is not added."""
    text = "ok 👋 #self-care"
    tags = hashtag_entities(text, [facet])
    assert tags is not None, why
    assert len(tags) == 1, why
    [entity] = tags
    assert text[entity["start"] : entity["end"]].casefold() == "#self-care", why


def test_matching_by_text_never_takes_a_longer_tag() -> None:
    """A span-less facet ``go`` skips ``#golang`` and takes the ``#go`` written later."""
    text = "#golang or #go"
    tags = hashtag_entities(text, [_tag("go")])
    assert tags == [{"start": 11, "end": 14, "tag": "go"}, {"start": 0, "end": 7, "tag": "golang"}]


def test_span_less_facets_of_one_tag_take_its_occurrences_in_turn() -> None:
    """Two span-less facets for one tag written twice take one occurrence each."""
    text = "#go #go"
    tags = hashtag_entities(text, [_tag("go"), _tag("go")])
    assert tags == [{"start": 0, "end": 3, "tag": "go"}, {"start": 4, "end": 7, "tag": "go"}]


def test_a_span_less_facet_not_in_the_text_claims_nothing() -> None:
    """A facet whose tag is not in the text keeps no offsets and leaves the text's tags alone."""
    assert hashtag_entities("#go", [_tag("rust"), _tag("#")]) == [
        {"tag": "rust"},
        {"tag": "#"},
        {"start": 0, "end": 3, "tag": "go"},
    ]


def test_a_facet_over_a_tag_the_extractor_skips_keeps_its_span() -> None:
    """A facet on a glued ``a#rust`` keeps its span, and the separate ``#rust`` is still added."""
    text = "a#rust #rust"
    tags = hashtag_entities(text, [_tag("rust", 1, 6)])
    assert tags == [{"start": 1, "end": 6, "tag": "rust"}, {"start": 7, "end": 12, "tag": "rust"}]


_WORD = st.text(st.sampled_from("abcé日"), min_size=1, max_size=4)


@given(
    st.lists(
        st.tuples(
            st.lists(_WORD, min_size=1, max_size=3).map("-".join),
            st.sampled_from(["facet", "bad span", "no facet", "plain word"]),
        ),
        max_size=6,
    )
)
def test_no_hashtag_is_counted_twice(tokens: list[tuple[str, str]]) -> None:
    """Whatever facets a post has, good spans or bad, each ``#tag`` written counts exactly once."""
    text = " ".join(("" if kind == "plain word" else "#") + word for word, kind in tokens)
    facets: list[dict[str, object]] = []
    offset = 0
    for word, kind in tokens:
        written = ("" if kind == "plain word" else "#") + word
        start = offset
        offset += len(written.encode()) + 1
        if kind == "facet":
            facets.append(_tag(word, start, start + len(written.encode())))
        elif kind == "bad span":
            facets.append(_tag(word, -1, 0))
    tags = hashtag_entities(text, facets) or []
    hashtags = sum(kind != "plain word" for _, kind in tokens)
    assert len(tags) == (hashtags if facets else 0)
    assert len({tag["start"] for tag in tags}) == len(tags)


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        ("abc", 0, 3, (0, 3)),
        ("é#x", 2, 4, (1, 3)),  # é is two bytes
        ("👋#x", 4, 6, (1, 3)),  # the emoji is four bytes, one code point
        ("👋#x", 2, 6, (0, 3)),  # inside the emoji: counts from its first byte
        ("abc", 2, 1, None),
        ("abc", 0, 4, None),
        ("abc", -1, 2, None),
        ("abc", True, 2, None),
        ("abc", "0", 2, None),
    ],
)
def test_char_span_turns_utf8_byte_slices_into_code_points(
    text: str, start: object, end: object, expected: tuple[int, int] | None
) -> None:
    """char_span maps byte offsets to code-point offsets and refuses slices that do not fit."""
    assert char_span(text, start, end) == expected


@given(
    before=st.text(max_size=20),
    tag=st.text(st.characters(categories=["Ll", "Lu", "Lo"]), min_size=1, max_size=8),
    after=st.text(max_size=20),
)
def test_any_facet_slice_round_trips_to_its_text(before: str, tag: str, after: str) -> None:
    """For any text, the code-point span of a facet's byte slice is exactly the sliced text."""
    text = f"{before} #{tag} {after}"
    start = len(f"{before} ".encode("utf-8", "surrogatepass"))
    end = start + len(f"#{tag}".encode())
    span = char_span(text, start, end)
    assert span is not None
    assert text[span[0] : span[1]] == f"#{tag}"


# Languages


def test_lang_is_the_first_declared_language() -> None:
    """data.lang is the first of record.langs, and absent when the post declares none."""
    assert _post(post_event("a", "oi", time_us=T0_US, langs=["pt-BR", "en"])).lang == "pt-BR"
    assert _post(post_event("b", "hm", time_us=T0_US, langs=None)).lang is None
    assert _post(post_event("c", "hm", time_us=T0_US, langs=[])).lang is None


@pytest.mark.parametrize(
    "langs",
    [
        pytest.param(1, id="number"),
        pytest.param("en", id="string"),
        pytest.param({"en": True}, id="object"),
        pytest.param(True, id="boolean"),
        pytest.param(["en", 1], id="a-number-in-the-list"),
        pytest.param([None], id="null-in-the-list"),
        pytest.param([["en"]], id="nested-list"),
    ],
)
def test_langs_that_is_not_a_list_of_strings_makes_the_post_wrong_type(langs: object) -> None:
    """langs of another type (a string too: never split into letters) is invalid, never raised."""
    event = post_event("a", "hello", time_us=T0_US, langs=None)
    event["commit"]["record"]["langs"] = langs
    skipped = map_event(event)
    assert isinstance(skipped, Skipped), skipped
    assert skipped.code is RejectCode.WRONG_TYPE
    assert skipped.reason.startswith("invalid: record.langs")
    assert skipped.time_us == T0_US
    assert map_event(event, langs=["en"]) == skipped


def test_strings_in_langs_that_are_not_language_tags_are_ignored() -> None:
    """Empty, blank and overlong strings are not languages: lang is the first real tag."""
    event = post_event("a", "hi", time_us=T0_US, langs=["", " ", "x" * 100, "en us", "pt-BR"])
    assert _post(event).lang == "pt-BR"
    assert _post(post_event("b", "hi", time_us=T0_US, langs=["", "  "])).lang is None


def test_the_language_filter_compares_primary_subtags() -> None:
    """Wanting en keeps en-US and en+ja posts and skips ja and undeclared ones."""
    assert wants_lang(["en-US"], ["en"])
    assert wants_lang(["ja", "EN"], ["en"])
    assert not wants_lang(["ja"], ["en"])
    assert not wants_lang([], ["en"])
    assert wants_lang([], [])
    skipped = map_event(post_event("a", "こんにちは", time_us=T0_US, langs=["ja"]), langs=["en"])
    assert skipped == Skipped("language", T0_US)


# Times


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("2024-05-01T11:59:59.500Z", T0 - timedelta(milliseconds=500)),
        ("2024-05-01T13:59:00+02:00", T0 - timedelta(minutes=1)),
        ("2024-05-01T12:04:00Z", T0 + timedelta(minutes=4)),  # ahead, within max_ahead
        ("2019-01-01T00:00:00Z", datetime(2019, 1, 1, tzinfo=UTC)),  # backdated: kept
        ("2024-05-01T12:00:00", T0 + timedelta(seconds=7)),  # no offset
        ("yesterday", T0 + timedelta(seconds=7)),
        ("2024-13-01T00:00:00Z", T0 + timedelta(seconds=7)),
        (20240501, T0 + timedelta(seconds=7)),
        ("2031-01-01T00:00:00Z", T0 + timedelta(seconds=7)),  # far in the future
        ("0001-01-01T00:00:00+01:00", T0 + timedelta(seconds=7)),  # before year 1 in UTC
        ("1900-01-01T00:00:00Z", T0 + timedelta(seconds=7)),  # before any post
    ],
)
def test_created_at_is_the_declared_time_unless_it_cannot_be_trusted(
    declared: object, expected: datetime
) -> None:
    """createdAt is used in UTC; unreadable, naive or future ones fall back to time_us."""
    moment = created_at(declared, T0_US + 7_000_000)
    assert moment == expected
    assert moment.tzinfo is UTC


def test_a_bad_created_at_still_gives_a_post() -> None:
    """A post with an unreadable createdAt is dated by time_us and parses."""
    event = post_event("a", "hi", time_us=T0_US + 1_500_000, created_at="not a date")
    assert _post(event).created_at == T0 + timedelta(seconds=1.5)


# Everything else is skipped


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (identity_event(time_us=T0_US), "identity"),
        (account_event(time_us=T0_US, active=False), "account"),
        (update_event("a", "edited", time_us=T0_US), "update"),
        (delete_event("a", time_us=T0_US), "delete"),
        (repost_event("r", "at://did:plc:alice/app.bsky.feed.post/a", time_us=T0_US), "collection"),
        (post_event("a", "   ", time_us=T0_US), "empty-text"),
    ],
)
def test_events_that_are_not_new_posts_are_skipped_with_a_reason(
    event: dict[str, object], reason: str
) -> None:
    """Identity, account, update, delete, repost and empty posts are Skipped, keeping time_us."""
    assert map_event(event) == Skipped(reason, T0_US)


def test_malformed_events_are_skipped_never_raised() -> None:
    """Non-JSON, non-objects, and events missing time_us, rkey or text are Skipped as invalid."""
    good = post_event("a", "hi", time_us=T0_US)
    no_rkey = json.loads(json.dumps(good))
    del no_rkey["commit"]["rkey"]
    no_text = json.loads(json.dumps(good))
    del no_text["commit"]["record"]["text"]
    odd_kind = {**good, "kind": "sync"}
    messages: list[str | bytes] = [
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        json.dumps({**good, "time_us": True}),
        json.dumps({**good, "time_us": -1}),
        json.dumps({**good, "time_us": 10**20}),
        json.dumps(no_rkey),
        json.dumps(no_text),
        json.dumps(odd_kind),
        json.dumps({**good, "commit": {**good["commit"], "operation": "merge"}}),
    ]
    for message in messages:
        result = map_message(message)
        assert isinstance(result, Skipped), message
        assert result.reason.startswith("invalid"), (message, result)
        assert result.code is not None, (message, result)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"kind": "sync"}, RejectCode.UNKNOWN_KIND, id="unknown-kind"),
        pytest.param({"kind": None}, RejectCode.MISSING_FIELD, id="null-kind"),
        pytest.param({"kind": ["commit"]}, RejectCode.WRONG_TYPE, id="list-kind"),
        pytest.param({"time_us": None}, RejectCode.MISSING_FIELD, id="null-time"),
        pytest.param({"time_us": "1"}, RejectCode.WRONG_TYPE, id="string-time"),
        pytest.param({"time_us": 10**20}, RejectCode.BAD_TIME, id="huge-time"),
        pytest.param({"did": 5}, RejectCode.WRONG_TYPE, id="number-did"),
        pytest.param({"did": ""}, RejectCode.MISSING_FIELD, id="empty-did"),
        pytest.param({"commit": "x"}, RejectCode.WRONG_TYPE, id="string-commit"),
        pytest.param({"commit": None}, RejectCode.MISSING_FIELD, id="null-commit"),
    ],
)
def test_each_malformed_event_names_what_is_wrong(change: dict[str, object], code: str) -> None:
    """A field of the event missing, null, of another type or unknown kind has its own code."""
    skipped = map_event({**post_event("a", "hi", time_us=T0_US), **change})
    assert isinstance(skipped, Skipped), skipped
    assert skipped.code is code, skipped


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"operation": "merge"}, RejectCode.UNKNOWN_KIND, id="unknown-operation"),
        pytest.param({"operation": 1}, RejectCode.WRONG_TYPE, id="number-operation"),
        pytest.param({"collection": None}, RejectCode.MISSING_FIELD, id="null-collection"),
        pytest.param({"rkey": ["a"]}, RejectCode.WRONG_TYPE, id="list-rkey"),
        pytest.param({"record": []}, RejectCode.WRONG_TYPE, id="list-record"),
        pytest.param(
            {"record": {"text": 5, "langs": ["en"]}}, RejectCode.WRONG_TYPE, id="number-text"
        ),
        pytest.param({"record": {"langs": ["en"]}}, RejectCode.MISSING_FIELD, id="no-text"),
        pytest.param({"record": {"text": "a \ud800"}}, RejectCode.BAD_ENCODING, id="surrogate"),
    ],
)
def test_each_malformed_commit_names_what_is_wrong(change: dict[str, object], code: str) -> None:
    """A field of the commit or its record missing, null, mistyped or unknown has its own code."""
    event = post_event("a", "hi", time_us=T0_US)
    event["commit"].update(change)
    skipped = map_event(event)
    assert isinstance(skipped, Skipped), skipped
    assert skipped.code is code, skipped
    assert skipped.time_us == T0_US


def test_an_unhashable_embed_type_is_ignored() -> None:
    """An embed whose $type is a list (it raised TypeError) is no quote: the post maps."""
    event = post_event("a", "hi", time_us=T0_US, embed={"$type": ["x"], "record": {"uri": "u"}})
    assert "referenced_tweets" not in _mapped(event).envelope["data"]


def test_a_bug_in_the_mapping_is_caught_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error while mapping gives invalid: internal error, never an exception."""

    def broken(text: str, facets: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(bluesky, "hashtag_entities", broken)
    skipped = map_event(post_event("a", "hi", time_us=T0_US))
    assert skipped == Skipped(
        "invalid: internal error (ZeroDivisionError)", T0_US, RejectCode.INTERNAL
    )


_JETSTREAM_KINDS = {
    "kind": ["sync", "Commit", "", "commit "],
    "operation": ["merge", "CREATE", ""],
    "collection": ["app.bsky.feed.like", "app.bsky.feed.post "],
    "$type": ["app.bsky.embed.nope", "app.bsky.richtext.facet#link"],
}
"""Enumerated fields of a Jetstream event, and values they never legitimately have."""

_LEGITIMATE_SKIPS = {"identity", "account", "update", "delete", "collection", "language"}

_RICH_POST = post_event(
    "3l3qo2vuowo2b",
    "café #Python 👋 rocks",
    time_us=T0_US,
    langs=["en", "pt"],
    facets=[tag_facet("café #Python 👋 rocks", "#Python")],
    reply={"root": {"uri": "at://r", "cid": "c"}, "parent": {"uri": "at://p", "cid": "c"}},
    embed={"$type": "app.bsky.embed.record", "record": {"uri": "at://q", "cid": "c"}},
)


@settings(max_examples=600, deadline=None)
@given(raw=encoded(_RICH_POST, _JETSTREAM_KINDS), wanted=st.sampled_from([(), ("en",)]))
def test_a_mutated_event_is_a_post_a_skip_or_a_counted_rejection(
    raw: str | bytes, wanted: tuple[str, ...]
) -> None:
    """Whatever is broken in an event, map_message never raises: a mapped post parses into a
    usable post, a skip has a known reason, a malformed event a known code (never internal)."""
    result = map_message(raw, langs=wanted)
    if isinstance(result, Mapped):
        post = parse_line(Line(result.line(), f"bluesky:{result.time_us}"))
        assert isinstance(post, Post), post
        check_post(post)
        assert post.id == result.post_id
        assert post.lang is None or isinstance(post.lang, str)
    elif result.code is None:
        assert result.reason in _LEGITIMATE_SKIPS | {"empty-text"}, result
    else:
        assert result.reason.startswith("invalid: "), result
        assert result.code not in (RejectCode.INTERNAL, RejectCode.OTHER), result
        assert len(result.reason) <= 120


def test_a_message_of_bytes_is_decoded_as_utf8_json() -> None:
    """map_message accepts the bytes of a binary frame as well as text."""
    event = post_event("a", "naïve", time_us=T0_US)
    result = map_message(json.dumps(event).encode())
    assert isinstance(result, Mapped)
    assert result.envelope["data"]["text"] == "naïve"
