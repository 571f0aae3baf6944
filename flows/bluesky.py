"""Bluesky posts from Jetstream, mapped to the X API v2 envelope senti parses (pure).

`Jetstream <https://github.com/bluesky-social/jetstream>`_ sends every event of
the Bluesky network as one JSON websocket message::

    {"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329308,
     "kind": "commit",
     "commit": {"rev": "3l3qo2vutsw2b", "operation": "create",
                "collection": "app.bsky.feed.post", "rkey": "3l3qo2vuowo2b",
                "record": {"$type": "app.bsky.feed.post", "text": "hello #bsky",
                           "createdAt": "2024-09-09T19:46:02.102Z", "langs": ["en"],
                           "facets": [{"index": {"byteStart": 6, "byteEnd": 11},
                                       "features": [{"$type": "app.bsky.richtext.facet#tag",
                                                     "tag": "bsky"}]}]},
                "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}

``kind`` is ``commit``, ``identity`` or ``account``; a commit's ``operation``
is ``create``, ``update`` or ``delete`` (a delete has no ``record``).

:func:`map_event` turns the creation of an ``app.bsky.feed.post`` record into
the envelope :func:`flows.model.parse_line` reads, so the dataflow downstream is
the same for every source:

=========================  ==============================================================
X envelope field           from the Jetstream event
=========================  ==============================================================
``data.id``                ``at://{did}/app.bsky.feed.post/{rkey}`` (the post's AT URI)
``data.text``              ``record.text``
``data.created_at``        ``record.createdAt`` in UTC; ``time_us`` when it is unreadable,
                           has no offset, or is more than ``max_ahead`` after ``time_us``
``data.lang``              the first of ``record.langs`` (absent when there are none)
``data.author_id``         ``did`` (Jetstream carries no handle)
``data.entities.hashtags`` tag facets, byte offsets turned into code-point offsets, plus
                           hashtags senti's extractor finds in the text outside them;
                           absent when the post has no tag facet (senti then extracts)
``data.referenced_tweets`` ``replied_to`` the reply's parent, ``quoted`` a quoted record
=========================  ==============================================================

Everything else is :class:`Skipped` with a short reason, so the source can
count it: identity and account events, updates and deletes, other collections
(reposts are ``app.bsky.feed.repost`` records, never posts), posts with no
text, posts outside the wanted languages, and malformed events.

No I/O, no websockets, no bytewax: unit tests need neither network nor loop.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard

from flows.model import format_time, parse_time
from flows.text import HashtagSpan, extract_hashtags_with_indices

__all__ = [
    "POST_COLLECTION",
    "TAG_FEATURE",
    "Mapped",
    "Skipped",
    "char_span",
    "created_at",
    "hashtag_entities",
    "map_event",
    "map_message",
    "post_uri",
    "wants_lang",
]

POST_COLLECTION: Final = "app.bsky.feed.post"
"""The collection of Bluesky posts; the only one senti maps."""

TAG_FEATURE: Final = "app.bsky.richtext.facet#tag"
"""The ``$type`` of a facet feature marking a hashtag (its ``tag`` has no ``#``)."""

DEFAULT_MAX_AHEAD: Final = timedelta(minutes=5)
"""How far a post's own ``createdAt`` may lie after Jetstream's ``time_us``.

``createdAt`` is declared by the posting client. One post dated in the future
would move the event-time windows forward for everyone and make the posts after
it late, so beyond this the time Jetstream saw the post is used instead.
Backdated posts (imported archives) keep their date and arrive late.
"""

_MAX_TIME_US: Final = 253_402_300_799_999_999
"""The last microsecond of year 9999, the latest time a datetime holds."""

_QUOTE_EMBEDS: Final = frozenset({"app.bsky.embed.record", "app.bsky.embed.recordWithMedia"})


@dataclass(frozen=True, slots=True)
class Mapped:
    """A Bluesky post as an X API v2 envelope, with what identifies it in the stream."""

    envelope: dict[str, Any]
    """``{"data": {...}}`` in the shape :func:`flows.model.parse_line` reads."""
    post_id: str
    """The post's AT URI, also ``envelope["data"]["id"]``; the key for de-duplication."""
    time_us: int
    """Jetstream's time of the event, microseconds since the epoch (its cursor unit)."""

    def line(self) -> str:
        """The envelope as one JSON line (non-ASCII kept as is)."""
        return json.dumps(self.envelope, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event that is not a new post, and why."""

    reason: str
    """``identity``, ``account``, ``update``, ``delete``, ``collection``, ``language``,
    ``empty-text`` or ``invalid: ...``."""
    time_us: int | None = None
    """The event's ``time_us`` when it has one (it still moves the cursor)."""


def post_uri(did: str, rkey: str) -> str:
    """The AT URI of the post with record key ``rkey`` in ``did``'s repository."""
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


def wants_lang(langs: Iterable[str], wanted: Collection[str]) -> bool:
    """Whether a post in ``langs`` is in one of the ``wanted`` languages.

    Languages compare by their primary subtag, case-insensitively: ``en``
    wants ``en-US``. No ``wanted`` languages wants everything; a post that
    declares no language is wanted only then.
    """
    if not wanted:
        return True
    primaries = {_primary(lang) for lang in wanted}
    return any(_primary(lang) in primaries for lang in langs)


def _primary(lang: str) -> str:
    return lang.split("-", 1)[0].strip().casefold()


def created_at(
    value: object, time_us: int, *, max_ahead: timedelta = DEFAULT_MAX_AHEAD
) -> datetime:
    """The post's time: ``record.createdAt`` in UTC, or ``time_us`` if it cannot be trusted.

    ``time_us`` is used when ``value`` is not an ISO 8601 string with an
    offset, or lies more than ``max_ahead`` after ``time_us``.
    """
    seen = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    if not isinstance(value, str):
        return seen
    try:
        declared = parse_time(value)
    except (ValueError, OverflowError):
        return seen
    if declared - seen > max_ahead:
        return seen
    return declared


def char_span(text: str, byte_start: object, byte_end: object) -> tuple[int, int] | None:
    """Code-point ``(start, end)`` of the UTF-8 byte slice ``[byte_start, byte_end)`` of ``text``.

    ``None`` when the slice is not two integers with ``0 <= start <= end <=``
    the text's length in bytes. An offset inside a multi-byte character
    counts from that character's first byte.
    """
    if not _is_int(byte_start) or not _is_int(byte_end):
        return None
    encoded = text.encode("utf-8", "surrogatepass")
    if not 0 <= byte_start <= byte_end <= len(encoded):
        return None
    start = len(encoded[:byte_start].decode("utf-8", "ignore"))
    end = len(encoded[:byte_end].decode("utf-8", "ignore"))
    return start, end


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _fold(tag: str) -> str:
    return unicodedata.normalize("NFC", tag).casefold()


def _facet_tags(text: str, facets: object) -> list[dict[str, Any]]:
    """``{"start", "end", "tag"}`` of every tag feature (no start/end if its slice is bad)."""
    if not isinstance(facets, list):
        return []
    found: list[dict[str, Any]] = []
    for facet in facets:
        if not isinstance(facet, dict) or not isinstance(facet.get("features"), list):
            continue
        index = facet.get("index")
        span = None
        if isinstance(index, dict):
            span = char_span(text, index.get("byteStart"), index.get("byteEnd"))
        for feature in facet["features"]:
            if not isinstance(feature, dict) or feature.get("$type") != TAG_FEATURE:
                continue
            tag = feature.get("tag")
            if not isinstance(tag, str) or not tag.strip():
                continue
            entity: dict[str, Any] = {"tag": tag}
            if span is not None:
                entity = {"start": span[0], "end": span[1], "tag": tag}
            found.append(entity)
    return found


def hashtag_entities(text: str, facets: object) -> list[dict[str, Any]] | None:
    """X-style ``entities.hashtags`` of a post, or ``None`` when it has no tag facet.

    The tag facets come first, in their order. Then come the hashtags senti's
    extractor (:func:`flows.text.extract_hashtags_with_indices`) finds in
    ``text`` that belong to no facet, in text order, case-folded, with their
    code-point ``start``/``end``: a post is never poorer in hashtags than its
    text, and no tag counts twice.

    A hashtag the extractor finds inside a facet's span is that facet's, so
    ``#self-care`` is one tag, never also ``self``. A facet whose span is
    missing, out of range, or covers neither an extracted hashtag nor its own
    tag is matched by text instead: it takes the first unclaimed extracted
    hashtag where the text reads ``#`` and the facet's tag, and the
    ``start``/``end`` of that ``#tag`` in the text.
    """
    tags = _facet_tags(text, facets)
    if not tags:
        return None
    found = extract_hashtags_with_indices(text)
    claimed = [False] * len(found)
    unplaced: list[int] = []
    for n, entity in enumerate(tags):
        if "start" not in entity or not _claim_span(text, found, claimed, entity):
            unplaced.append(n)
    for n in unplaced:
        bare = tags[n]["tag"].lstrip("#\uff03")
        index = _match_by_text(text, found, claimed, bare)
        if index is None:
            continue
        claimed[index] = True
        start = found[index].start
        tags[n] = {"start": start, "end": start + 1 + len(bare), "tag": tags[n]["tag"]}
    tags.extend(
        {"start": span.start, "end": span.end, "tag": _fold(span.tag)}
        for span, taken in zip(found, claimed, strict=True)
        if not taken
    )
    return tags


def _claim_span(
    text: str, found: list[HashtagSpan], claimed: list[bool], entity: dict[str, Any]
) -> bool:
    """Claim the extracted hashtags overlapping ``entity``'s span; whether the span is usable.

    A span is usable when it overlaps an extracted hashtag or its text holds the
    facet's tag (a tag the extractor does not see, such as ``#2024``).
    """
    start, end = entity["start"], entity["end"]
    usable = False
    for index, span in enumerate(found):
        if span.start < end and start < span.end:
            claimed[index] = usable = True
    return usable or _fold(entity["tag"]) in _fold(text[start:end])


def _match_by_text(
    text: str, found: list[HashtagSpan], claimed: list[bool], tag: str
) -> int | None:
    """The first unclaimed extracted hashtag where the text reads a sign and ``tag``.

    The extracted tag must begin the facet's (``self`` of ``#self-care``), so a
    facet ``go`` never takes ``#golang``.
    """
    want = _fold(tag)
    if not want:
        return None
    for index, span in enumerate(found):
        if claimed[index] or not want.startswith(_fold(span.tag)):
            continue
        if _fold(text[span.start + 1 : span.start + 1 + len(tag)]) == want:
            return index
    return None


def _references(record: dict[str, Any]) -> list[dict[str, str]]:
    refs: list[dict[str, str]] = []
    reply = record.get("reply")
    parent = reply.get("parent") if isinstance(reply, dict) else None
    if isinstance(parent, dict) and isinstance(parent.get("uri"), str):
        refs.append({"type": "replied_to", "id": parent["uri"]})
    embed = record.get("embed")
    if isinstance(embed, dict) and embed.get("$type") in _QUOTE_EMBEDS:
        quoted = embed.get("record")
        if isinstance(quoted, dict) and isinstance(quoted.get("record"), dict):
            quoted = quoted["record"]  # recordWithMedia nests the embed.record
        if isinstance(quoted, dict) and isinstance(quoted.get("uri"), str):
            refs.append({"type": "quoted", "id": quoted["uri"]})
    return refs


def _post_commit(kind: object, commit: object) -> dict[str, Any] | str:
    """The commit if it creates a post record, else why the event is skipped."""
    if kind in ("identity", "account"):
        return str(kind)
    if kind != "commit" or not isinstance(commit, dict):
        return f"invalid: kind {kind!r}"[:80]
    if commit.get("collection") != POST_COLLECTION:
        return "collection"
    operation = commit.get("operation")
    if operation in ("update", "delete"):
        return str(operation)
    return commit if operation == "create" else f"invalid: operation {operation!r}"[:80]


def _new_post(event: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | str:
    """``(did, rkey, record)`` of a usable new post, else why the event is skipped."""
    commit = _post_commit(event.get("kind"), event.get("commit"))
    if isinstance(commit, str):
        return commit
    did, rkey, record = event.get("did"), commit.get("rkey"), commit.get("record")
    if not isinstance(did, str) or not did or not isinstance(rkey, str) or not rkey:
        return "invalid: no did or rkey"
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return "invalid: record has no text"
    return (did, rkey, record) if record["text"].strip() else "empty-text"


def map_event(
    event: object,
    *,
    langs: Collection[str] = (),
    max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> Mapped | Skipped:
    """Map one decoded Jetstream event: a new post is :class:`Mapped`, the rest :class:`Skipped`.

    ``langs`` keeps only posts in those languages (see :func:`wants_lang`);
    ``max_ahead`` bounds a post's declared time (see :func:`created_at`).
    Never raises.
    """
    time_us = event.get("time_us") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not _is_int(time_us) or not 0 <= time_us <= _MAX_TIME_US:
        return Skipped("invalid: no time_us")
    post = _new_post(event)
    if isinstance(post, str):
        return Skipped(post, time_us)
    did, rkey, record = post
    post_langs = [lang for lang in record.get("langs") or () if isinstance(lang, str)]
    if not wants_lang(post_langs, langs):
        return Skipped("language", time_us)

    text = record["text"]
    uri = post_uri(did, rkey)
    moment = created_at(record.get("createdAt"), time_us, max_ahead=max_ahead)
    data: dict[str, Any] = {
        "id": uri,
        "text": text,
        "created_at": format_time(moment),
        "author_id": did,
    }
    if post_langs:
        data["lang"] = post_langs[0]
    hashtags = hashtag_entities(text, record.get("facets"))
    if hashtags is not None:
        data["entities"] = {"hashtags": hashtags}
    refs = _references(record)
    if refs:
        data["referenced_tweets"] = refs
    return Mapped({"data": data}, uri, time_us)


def map_message(
    message: str | bytes,
    *,
    langs: Collection[str] = (),
    max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> Mapped | Skipped:
    """:func:`map_event` of one websocket message (JSON text); never raises."""
    try:
        event = json.loads(message)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return Skipped(f"invalid: not JSON ({type(exc).__name__})")
    return map_event(event, langs=langs, max_ahead=max_ahead)
