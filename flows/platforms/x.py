"""X API v2 stream lines to :class:`~flows.model.Post` records (pure: no I/O).

An X API v2 filtered-stream line looks like::

    {"data": {"id": "1", "text": "...", "created_at": "2024-05-01T12:00:00.000Z",
              "lang": "en", "author_id": "42",
              "entities": {"hashtags": [{"start": 0, "end": 7, "tag": "Python"}]},
              "referenced_tweets": [{"type": "retweeted", "id": "0"}]},
     "includes": {"users": [{"id": "42", "username": "ada"}]},
     "matching_rules": [{"id": "9", "tag": "senti:python"}]}

:func:`parse_line` turns one such line (or a line its source already decoded
or rejected, see :class:`~flows.model.Line`) into a :class:`~flows.model.Post`,
or into a :class:`~flows.model.Rejected` record that says why it could not, so
a malformed line is counted and kept instead of crashing the flow. Every field
is checked for its type before it is used.
"""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec

from flows.model import (
    EARLIEST_POST_TIME,
    LATEST_POST_TIME,
    MAX_REJECTED_RAW,
    Line,
    Post,
    RejectCode,
    Rejected,
    format_time,
    is_utf8,
    parse_time,
)

__all__ = ["parse_line", "post_from_envelope"]


class _Malformed(ValueError):
    """A line that parses as JSON but is not a post."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(RejectCode.WRONG_TYPE, f"data.{name} is not a string")


def _required_str(obj: dict[str, Any], name: str) -> str:
    value = _optional_str(obj, name)
    if value is None:
        raise _Malformed(RejectCode.MISSING_FIELD, f"missing data.{name}")
    return value


def _hashtags(data: dict[str, Any]) -> tuple[str, ...] | None:
    entities = data.get("entities")
    if not isinstance(entities, dict) or "hashtags" not in entities:
        return None
    items = entities["hashtags"]
    if not isinstance(items, list):
        raise _Malformed(RejectCode.WRONG_TYPE, "data.entities.hashtags is not a list")
    tags = []
    for item in items:
        tag = item.get("tag") if isinstance(item, dict) else None
        if not isinstance(tag, str):
            raise _Malformed(RejectCode.WRONG_TYPE, "data.entities.hashtags item has no tag")
        tags.append(tag)
    return tuple(tags)


def _is_retweet(data: dict[str, Any], text: str) -> bool:
    refs = data.get("referenced_tweets")
    if isinstance(refs, list) and any(
        isinstance(ref, dict) and ref.get("type") == "retweeted" for ref in refs
    ):
        return True
    # Captures made before referenced_tweets existed mark retweets only in the text.
    return text.startswith("RT @")


def _author(data: dict[str, Any], includes: Any) -> str | None:
    author_id = _optional_str(data, "author_id")
    users = includes.get("users") if isinstance(includes, dict) else None
    if author_id is not None and isinstance(users, list):
        for user in users:
            if isinstance(user, dict) and user.get("id") == author_id:
                username = user.get("username")
                if isinstance(username, str):
                    return username
    return author_id


def _rule_tags(envelope: dict[str, Any]) -> tuple[str, ...]:
    rules = envelope.get("matching_rules")
    if not isinstance(rules, list):
        return ()
    return tuple(
        rule["tag"] for rule in rules if isinstance(rule, dict) and isinstance(rule.get("tag"), str)
    )


def post_from_envelope(envelope: Any) -> Post:
    """Build a :class:`Post` from a decoded stream line; :class:`ValueError` if unusable."""
    if not isinstance(envelope, dict):
        raise _Malformed(RejectCode.NOT_AN_OBJECT, "line is not a JSON object")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise _Malformed(RejectCode.NOT_AN_OBJECT, "missing data object")
    post_id = _required_str(data, "id")
    text = _required_str(data, "text")
    created = _required_str(data, "created_at")
    if not post_id:
        raise _Malformed(RejectCode.MISSING_FIELD, "empty data.id")
    try:
        created_at = parse_time(created)
    except ValueError as exc:
        raise _Malformed(RejectCode.BAD_TIME, f"bad data.created_at: {exc}"[:200]) from None
    if not EARLIEST_POST_TIME <= created_at < LATEST_POST_TIME:
        raise _Malformed(
            RejectCode.BAD_TIME,
            f"bad data.created_at: {format_time(created_at)} is outside "
            f"{EARLIEST_POST_TIME.year}-{LATEST_POST_TIME.year - 1}",
        )
    post = Post(
        id=post_id,
        text=text,
        created_at=created_at,
        lang=_optional_str(data, "lang"),
        author=_author(data, envelope.get("includes")),
        is_retweet=_is_retweet(data, text),
        hashtags=_hashtags(data),
        rule_tags=_rule_tags(envelope),
    )
    strings = [post.id, post.text, post.lang or "", post.author or "", *(post.hashtags or ())]
    if not is_utf8("".join(strings + list(post.rule_tags))):
        raise _Malformed(
            RejectCode.BAD_ENCODING,
            "a field is not valid UTF-8 (undecodable byte or lone surrogate)",
        )
    return post


_decode: Final = msgspec.json.Decoder().decode
"""JSON to Python values as ``json.loads`` gives them, faster on stream lines
(docs/benchmarks.md); on what it refuses, :func:`parse_line` falls back to ``json.loads``."""


def parse_line(line: Line) -> Post | Rejected:
    """Parse one X API v2 stream line; never raises.

    Blank lines are X's keep-alive signal and are rejected as ``keep-alive``;
    callers usually skip them before parsing. A line its source already
    rejected (:attr:`Line.rejected`) is rejected with that code and reason.
    A :class:`Rejected` record is always storable: its origin, reason and raw
    text are valid UTF-8 (undecodable bytes and lone surrogates as escapes).
    """
    result = _parse(line)
    if isinstance(result, Rejected) and not is_utf8(result.origin + result.reason):
        return Rejected(_escaped(result.origin), _escaped(result.reason), result.raw, result.code)
    return result


def _parse(line: Line) -> Post | Rejected:  # noqa: PLR0911 - one return per outcome
    text = line.text
    if line.rejected is not None:
        code, reason = line.rejected
        return Rejected(line.origin, reason, _keep(text), code)
    if line.post is not None:
        return line.post
    if not text.strip():
        return Rejected(line.origin, "keep-alive", "", RejectCode.KEEP_ALIVE)
    try:
        envelope = _decode(text)
    except (ValueError, RecursionError):
        # msgspec refuses some JSON the standard library takes (NaN, 1e999, lone
        # surrogate escapes) and words its errors otherwise: let json decide.
        try:
            envelope = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = f"invalid JSON: {exc}"[:200]
            return Rejected(line.origin, reason, _keep(text), RejectCode.INVALID_JSON)
    try:
        return post_from_envelope(envelope)
    except _Malformed as exc:
        return Rejected(line.origin, str(exc), _keep(text), exc.code)
    except Exception as exc:  # a bug must cost one line, not the flow
        reason = f"internal error: {type(exc).__name__}"
        return Rejected(line.origin, reason, _keep(text), RejectCode.INTERNAL)


def _escaped(text: str) -> str:
    """``text`` as valid UTF-8: undecodable bytes and lone surrogates become escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _keep(raw: str) -> str:
    """The raw line, storable as UTF-8 (undecodable bytes become escapes) and bounded."""
    if not is_utf8(raw):
        raw = _escaped(raw)
    if len(raw) <= MAX_REJECTED_RAW:
        return raw
    return raw[:MAX_REJECTED_RAW] + f"...[{len(raw) - MAX_REJECTED_RAW} more characters]"
