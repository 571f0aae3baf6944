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
the envelope :func:`flows.platforms.x.parse_line` reads, so the dataflow downstream is
the same for every source:

=========================  ==============================================================
X envelope field           from the Jetstream event
=========================  ==============================================================
``data.id``                ``at://{did}/app.bsky.feed.post/{rkey}`` (the post's AT URI)
``data.text``              ``record.text``
``data.created_at``        ``record.createdAt`` in UTC; ``time_us`` when it is unreadable,
                           has no offset, or is more than ``max_ahead`` after ``time_us``
``data.lang``              the first language tag in ``record.langs`` (absent when none)
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

A malformed event is ``Skipped`` as ``invalid: ...`` with a
:class:`~flows.model.RejectCode` (:attr:`Skipped.code`), which the source
passes on to the dataflow as a rejected line: a field missing or null
(``missing-field``), of the wrong type (``wrong-type``), an unknown ``kind`` or
``operation`` (``unknown-kind``), an unusable ``time_us`` (``bad-time``), a
message that is not JSON (``invalid-json``, ``bad-encoding``). Every field is
checked for its type before it is used. ``record.langs`` must be a list of
strings: any other value, a string included (``"en"`` is never split into
``e`` and ``n``), makes the post ``wrong-type``; strings in it that are not
language tags (empty, spaces, too long) are ignored. Malformed optional parts
(``createdAt``, facets, reply and embed) are ignored instead, as the table
says. :func:`map_event` never raises: an unexpected error in the mapping
itself gives ``invalid: internal error (...)`` with the code ``internal``.

No I/O, no websockets, no bytewax: unit tests need neither network nor loop.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard, TypeVar, cast

from flows.analysis.text import HashtagSpan, extract_hashtags_with_indices
from flows.model import (
    EARLIEST_POST_TIME,
    LATEST_POST_TIME,
    RejectCode,
    format_time,
    is_utf8,
    micros,
    parse_time,
)

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

_MAX_TIME_US: Final = micros(LATEST_POST_TIME) - 1
"""The latest ``time_us`` taken: the microsecond before :data:`~flows.model.LATEST_POST_TIME`."""

_LANGUAGE_TAG: Final = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
"""The shape of a BCP 47 language tag (``en``, ``pt-BR``, ``zh-Hant-TW``)."""

X = TypeVar("X")

_QUOTE_EMBEDS: Final = frozenset({"app.bsky.embed.record", "app.bsky.embed.recordWithMedia"})


@dataclass(frozen=True, slots=True)
class Mapped:
    """A Bluesky post as an X API v2 envelope, with what identifies it in the stream."""

    envelope: dict[str, Any]
    """``{"data": {...}}`` in the shape :func:`flows.platforms.x.parse_line` reads."""
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
    code: RejectCode | None = None
    """Set when the event is malformed (``invalid: ...``): why, as a fixed word."""


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
    offset, lies more than ``max_ahead`` after ``time_us``, or lies outside
    the times a post may have (:data:`~flows.model.EARLIEST_POST_TIME` to
    :data:`~flows.model.LATEST_POST_TIME`).
    """
    seen = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    if not isinstance(value, str):
        return seen
    try:
        declared = parse_time(value)
    except ValueError:
        return seen
    if declared - seen > max_ahead or not EARLIEST_POST_TIME <= declared < LATEST_POST_TIME:
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
    extractor (:func:`flows.analysis.text.extract_hashtags_with_indices`) finds in
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
    kind = embed.get("$type") if isinstance(embed, dict) else None
    if isinstance(embed, dict) and isinstance(kind, str) and kind in _QUOTE_EMBEDS:
        quoted = embed.get("record")
        if isinstance(quoted, dict) and isinstance(quoted.get("record"), dict):
            quoted = quoted["record"]  # recordWithMedia nests the embed.record
        if isinstance(quoted, dict) and isinstance(quoted.get("uri"), str):
            refs.append({"type": "quoted", "id": quoted["uri"]})
    return refs


def _describe(value: object) -> str:
    """A short, bounded description of a value for a reason: a string's start, else its type."""
    if isinstance(value, str):
        return repr(value[:40])
    return "null" if value is None else type(value).__name__


def _invalid(code: RejectCode, what: str, time_us: int | None = None) -> Skipped:
    return Skipped(f"invalid: {what}"[:120], time_us, code)


class _Skip(Exception):
    """Raised by the checks below with the :class:`Skipped` the event gets."""

    def __init__(self, skipped: Skipped) -> None:
        super().__init__(skipped.reason)
        self.skipped = skipped


def _field(obj: dict[str, Any], path: str, kind: type[X], time_us: int) -> X:
    """The field ``path`` (its last dotted part is the key) if it is a non-empty ``kind``."""
    value = obj.get(path.rpartition(".")[2])
    if value is None or (isinstance(value, str | dict) and not value):
        raise _Skip(_invalid(RejectCode.MISSING_FIELD, f"no {path}", time_us))
    if not isinstance(value, kind):
        raise _Skip(_invalid(RejectCode.WRONG_TYPE, f"{path} is {_describe(value)}", time_us))
    return value


def _post_commit(event: dict[str, Any], time_us: int) -> dict[str, Any]:
    """The commit if it creates a post record; raises :class:`_Skip` with why not."""
    kind = event.get("kind")
    if kind in ("identity", "account"):
        raise _Skip(Skipped(str(kind), time_us))
    if kind != "commit":
        code = RejectCode.UNKNOWN_KIND if isinstance(kind, str) else RejectCode.WRONG_TYPE
        if kind is None:
            code = RejectCode.MISSING_FIELD
        raise _Skip(_invalid(code, f"kind {_describe(kind)}", time_us))
    commit = _field(event, "commit", dict, time_us)
    if _field(commit, "commit.collection", str, time_us) != POST_COLLECTION:
        raise _Skip(Skipped("collection", time_us))
    operation = _field(commit, "commit.operation", str, time_us)
    if operation in ("update", "delete"):
        raise _Skip(Skipped(operation, time_us))
    if operation != "create":
        what = f"operation {_describe(operation)}"
        raise _Skip(_invalid(RejectCode.UNKNOWN_KIND, what, time_us))
    return commit


def _post_text(record: dict[str, Any], time_us: int) -> str:
    """``record.text``, not blank; raises :class:`_Skip` with why not."""
    text = record.get("text")
    if text is None:
        raise _Skip(_invalid(RejectCode.MISSING_FIELD, "no record.text", time_us))
    if not isinstance(text, str):
        what = f"record.text is {_describe(text)}"
        raise _Skip(_invalid(RejectCode.WRONG_TYPE, what, time_us))
    if not text.strip():
        raise _Skip(Skipped("empty-text", time_us))
    return text


def _post_langs(record: dict[str, Any], time_us: int) -> list[str]:
    """The language tags in ``record.langs`` (``[]`` when absent); :class:`_Skip` if invalid."""
    langs = record.get("langs")
    if langs is None:
        return []
    if not isinstance(langs, list) or not all(isinstance(lang, str) for lang in langs):
        what = f"record.langs is {_describe(langs)}, not a list of strings"
        raise _Skip(_invalid(RejectCode.WRONG_TYPE, what, time_us))
    return [lang for lang in langs if _LANGUAGE_TAG.fullmatch(lang)]


def _event_time(event: object) -> int | Skipped:
    """The event's ``time_us``, else why the event is invalid."""
    if not isinstance(event, dict):
        return _invalid(RejectCode.NOT_AN_OBJECT, f"event is {_describe(event)}")
    time_us = event.get("time_us")
    if time_us is None:
        return _invalid(RejectCode.MISSING_FIELD, "no time_us")
    if not _is_int(time_us):
        return _invalid(RejectCode.WRONG_TYPE, f"time_us is {_describe(time_us)}")
    if not 0 <= time_us <= _MAX_TIME_US:
        return _invalid(RejectCode.BAD_TIME, "time_us out of range")
    return time_us


def map_event(
    event: object,
    *,
    langs: Collection[str] = (),
    max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> Mapped | Skipped:
    """Map one decoded Jetstream event: a new post is :class:`Mapped`, the rest :class:`Skipped`.

    ``langs`` keeps only posts in those languages (see :func:`wants_lang`);
    ``max_ahead`` bounds a post's declared time (see :func:`created_at`).
    Never raises: a malformed event is ``Skipped`` with a :attr:`~Skipped.code`.
    """
    time_us = _event_time(event)
    if isinstance(time_us, Skipped):
        return time_us
    try:
        return _map_post(cast(dict[str, Any], event), time_us, langs, max_ahead)
    except _Skip as skip:
        return skip.skipped
    except Exception as exc:  # a bug in the mapping must not end the stream
        return _invalid(RejectCode.INTERNAL, f"internal error ({type(exc).__name__})", time_us)


def _map_post(
    event: dict[str, Any], time_us: int, langs: Collection[str], max_ahead: timedelta
) -> Mapped | Skipped:
    commit = _post_commit(event, time_us)
    did = _field(event, "did", str, time_us)
    rkey = _field(commit, "commit.rkey", str, time_us)
    record = _field(commit, "commit.record", dict, time_us)
    text = _post_text(record, time_us)
    post_langs = _post_langs(record, time_us)
    if not wants_lang(post_langs, langs):
        return Skipped("language", time_us)

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
    strings = [text, uri, *post_langs[:1], *(tag["tag"] for tag in hashtags or ())]
    if not is_utf8("".join(strings + [ref["id"] for ref in refs])):
        what = "a field is not valid UTF-8 (lone surrogate)"
        return _invalid(RejectCode.BAD_ENCODING, what, time_us)
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
    except UnicodeDecodeError:
        return _invalid(RejectCode.BAD_ENCODING, "not UTF-8")
    except (ValueError, RecursionError) as exc:
        return _invalid(RejectCode.INVALID_JSON, f"not JSON ({type(exc).__name__})")
    return map_event(event, langs=langs, max_ahead=max_ahead)
