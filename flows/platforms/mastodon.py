"""Mastodon's wire formats to senti's records, without I/O.

* :class:`SseDecoder` turns the lines of a Server-Sent Events stream (the
  streaming API) into :class:`SseEvent`\\ s: ``event:`` and ``data:`` fields,
  an event ending at a blank line; comments (``:thump``, the heartbeat) are
  dropped.
* :func:`map_event` maps one streaming event: ``update`` carries a status,
  mapped by :func:`map_status`; ``delete`` and the others are skipped.
* :func:`map_status` maps a status (a decoded JSON value) to a
  :class:`~flows.model.Post`: the text from the HTML ``content``
  (:func:`html_to_text`), tags from ``tags``, language from ``language``,
  the author from ``account.acct``. Boosts (``reblog`` set) are skipped.
  A status that is not usable is :class:`Skipped` with a
  :class:`~flows.model.RejectCode` and a reason; nothing raises.

A status's position is its ``id`` as an integer (Mastodon ids are strings of
digits that grow with time), which ``since_id`` resumes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Final

from flows.model import (
    EARLIEST_POST_TIME,
    LATEST_POST_TIME,
    Post,
    RejectCode,
    is_utf8,
    parse_time,
)

__all__ = [
    "MAX_CONTENT_CHARS",
    "Mapped",
    "Skipped",
    "SseDecoder",
    "SseEvent",
    "html_to_text",
    "map_event",
    "map_status",
]

MAX_CONTENT_CHARS: Final = 100_000
"""Longest ``content`` accepted (a status is 500 characters on most instances)."""

_MAX_TAGS: Final = 100
_MAX_FIELD: Final = 2_000
_KNOWN_EVENTS: Final = frozenset({"delete", "status.update", "notification", "filters_changed"})
_BLOCKS: Final = frozenset({"p", "div", "blockquote", "li", "pre", "h1", "h2", "h3", "h4"})


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One Server-Sent Event: its ``event`` name (``message`` by default) and ``data``."""

    event: str
    data: str


@dataclass(slots=True)
class SseDecoder:
    """Incremental SSE parser: :meth:`feed` one line (no line ending) at a time."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseEvent | None:
        """The event a blank line completes, else ``None``."""
        if not line:
            if not self._data and not self._event:
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):  # a comment: the heartbeat
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


@dataclass(frozen=True, slots=True)
class Mapped:
    """A status mapped to a post, with its position (the id as an integer)."""

    post: Post
    position: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event that is no new post: ``code`` is ``None`` for a normal skip
    (a delete, a boost), a :class:`RejectCode` for a malformed one."""

    reason: str
    code: RejectCode | None = None
    position: int | None = None


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS and self.parts and not "".join(self.parts[-2:]).endswith("\n\n"):
            self.parts.append("\n\n" if not self.parts[-1].endswith("\n") else "\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text of Mastodon's HTML ``content``: tags dropped, entities unescaped,
    ``<br>`` a line break and paragraphs separated by a blank line. Never raises."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: S110 - hostile HTML yields what was read so far
        pass
    return "".join(parser.parts).strip()


class _Invalid(Exception):
    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _str(obj: dict[str, Any], name: str, *, limit: int = _MAX_FIELD) -> str:
    value = obj.get(name)
    if value is None or value == "":
        raise _Invalid(RejectCode.MISSING_FIELD, f"missing {name}")
    if not isinstance(value, str):
        raise _Invalid(RejectCode.WRONG_TYPE, f"{name} is {_describe(value)}, not a string")
    if len(value) > limit:
        raise _Invalid(RejectCode.TOO_LARGE, f"{name} longer than {limit} characters")
    if not is_utf8(value):
        raise _Invalid(RejectCode.BAD_ENCODING, f"{name} is not valid UTF-8")
    return value


def _position(status: dict[str, Any]) -> int:
    raw = _str(status, "id", limit=40)
    if not raw.isascii() or not raw.isdigit():
        raise _Invalid(RejectCode.WRONG_TYPE, "id is not a string of digits")
    return int(raw)


def _tags(status: dict[str, Any]) -> tuple[str, ...]:
    tags = status.get("tags", [])
    if tags is None:
        return ()
    if not isinstance(tags, list):
        raise _Invalid(RejectCode.WRONG_TYPE, f"tags is {_describe(tags)}, not a list")
    names: list[str] = []
    for tag in tags[:_MAX_TAGS]:
        if not isinstance(tag, dict):
            raise _Invalid(RejectCode.WRONG_TYPE, f"a tag is {_describe(tag)}, not an object")
        name = _str(tag, "name", limit=200)
        if name.casefold() not in names:
            names.append(name.casefold())
    return tuple(names)


def _optional(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(RejectCode.WRONG_TYPE, f"{name} is {_describe(value)}, not a string")
    if not is_utf8(value):
        raise _Invalid(RejectCode.BAD_ENCODING, f"{name} is not valid UTF-8")
    return value[:_MAX_FIELD] or None


def map_status(status: object) -> Mapped | Skipped:
    """A status as a post, or why not (see the module docs); never raises."""
    if not isinstance(status, dict):
        return Skipped(f"status is {_describe(status)}, not an object", RejectCode.NOT_AN_OBJECT)
    position: int | None = None
    try:
        position = _position(status)
        if status.get("reblog") is not None:
            return Skipped("boost", None, position)
        uri = _str(status, "uri")
        content = _str(status, "content", limit=MAX_CONTENT_CHARS)
        text = html_to_text(content)
        if not text:
            raise _Invalid(RejectCode.MISSING_FIELD, "content has no text")
        try:
            created_at = parse_time(_str(status, "created_at", limit=64))
        except ValueError:
            raise _Invalid(RejectCode.BAD_TIME, "created_at is not an ISO 8601 time") from None
        if not EARLIEST_POST_TIME <= created_at < LATEST_POST_TIME:
            raise _Invalid(RejectCode.BAD_TIME, "created_at out of range")
        account = status.get("account")
        if account is not None and not isinstance(account, dict):
            raise _Invalid(RejectCode.WRONG_TYPE, f"account is {_describe(account)}, not an object")
        author = _optional(account, "acct") if account else None
        post = Post(
            id=uri,
            text=text,
            created_at=created_at,
            lang=_optional(status, "language"),
            author=author,
            hashtags=_tags(status),
        )
    except _Invalid as exc:
        return Skipped(str(exc), exc.code, position)
    except Exception as exc:
        return Skipped(f"internal error: {type(exc).__name__}", RejectCode.INTERNAL, position)
    return Mapped(post, position)


def map_event(event: SseEvent) -> Mapped | Skipped:
    """One streaming event: an ``update``'s status mapped, anything else skipped."""
    if event.event != "update":
        return Skipped(event.event if event.event in _KNOWN_EVENTS else "other event")
    try:
        status = json.loads(event.data)
    except (ValueError, RecursionError) as exc:
        return Skipped(f"invalid JSON: {exc}"[:200], RejectCode.INVALID_JSON)
    return map_status(status)
