"""What the X API v2 filtered stream and its rules endpoint send, read without I/O (pure).

No sockets, no tweepy: :mod:`flows.sources.x` receives the bytes and the
responses, and asks this module what they mean.

* A stream line is one JSON envelope: a post (``data`` with its ``id``), or an
  error message without a post (``errors``); :func:`peek` tells them apart
  without parsing the post (the dataflow does, :func:`flows.platforms.x.parse_line`).
  :func:`origin` names a line by its post id.
* X's errors come as objects with ``title``, ``detail``, ``message`` or a list
  of ``details``: :func:`messages` makes them readable; :func:`problem` reads an
  HTTP error body; :func:`rules_failure` and :func:`rejection` are the one-line
  messages senti shows for a failed rules request and a refused rule.
* :func:`add_errors` splits the ``errors`` of a rules ``add`` answer into
  rules someone else has already (``DuplicateRule``) and real refusals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

__all__ = [
    "FATAL_STATUSES",
    "MAX_DETAIL",
    "STREAM_PARAMS",
    "add_errors",
    "messages",
    "origin",
    "peek",
    "problem",
    "rejection",
    "rules_failure",
    "status_line",
]

STREAM_PARAMS: Final[dict[str, list[str]]] = {
    "tweet_fields": ["created_at", "lang", "entities", "referenced_tweets", "author_id"],
    "expansions": ["author_id"],
    "user_fields": ["username"],
}
"""What the stream asks X for: every field :func:`flows.platforms.x.parse_line` reads."""

FATAL_STATUSES: Final = frozenset({400, 401, 403, 404})
"""Stream statuses that no reconnect can fix (bad request, credentials, access)."""

MAX_DETAIL: Final = 500
"""The longest explanation of X's kept in a message."""

_ID: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
"""What a post id used in an origin may look like (X's are digits)."""


def peek(text: str) -> tuple[str | None, list[Any] | None]:
    """A stream line's post id, and its errors if it is an error message without a post."""
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    data = envelope.get("data")
    if isinstance(data, dict):
        post_id = data.get("id")
        return (post_id if isinstance(post_id, str) and post_id else None), None
    errors = envelope.get("errors")
    return None, (errors if isinstance(errors, list) else None)


def origin(post_id: str | None) -> str | None:
    """``x:<post id>``, or ``None`` when there is no id or it is not one a post has."""
    if post_id is not None and _ID.fullmatch(post_id):
        return f"x:{post_id}"
    return None


def messages(errors: Iterable[Any]) -> list[str]:
    """Readable messages of X error objects (``details``, ``detail``, ``message``, ``title``)."""
    found: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            found.append(str(error))
            continue
        details = error.get("details")
        if isinstance(details, list) and details:
            found.extend(str(detail) for detail in details)
        elif error.get("detail") or error.get("message"):
            found.append(str(error.get("detail") or error.get("message")))
        elif error.get("title"):
            found.append(str(error["title"]))
    return found


def problem(body: object, reason: str) -> str:
    """X's explanation of an HTTP error from its JSON ``body`` (title and detail), bounded.

    ``reason`` (the status's phrase) stands in when the body explains nothing.
    """
    if not isinstance(body, dict):
        return reason
    parts = [str(body[name]) for name in ("title", "detail") if body.get(name)]
    parts += messages(body.get("errors") or [])
    return "; ".join(dict.fromkeys(parts))[:MAX_DETAIL] or reason


def status_line(status: int, reason: str | None) -> str:
    """``HTTP 401 Unauthorized``."""
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def rules_failure(status: int, reason: str | None, api_messages: Iterable[Any]) -> str:
    """One line for a failed rules request: the status, then X's messages if they add any."""
    extra = [m for m in dict.fromkeys(map(str, api_messages)) if m and m != reason]
    detail = f": {'; '.join(extra)}" if extra else ""
    line = f"X refused the rules request ({status_line(status, reason)}){detail}"
    return " ".join(line.split())[:MAX_DETAIL]


def rejection(errors: Sequence[Any]) -> str:
    """Why X refused a rule (or rules): the rule's value when there is one, and X's messages."""
    values = [str(e["value"]) for e in errors if isinstance(e, dict) and e.get("value")]
    about = f" {values[0]!r}" if len(values) == 1 else ""
    return f"X rejected the rule{about}: " + "; ".join(messages(errors))


def add_errors(errors: Iterable[Any]) -> tuple[dict[str, str], list[Any]]:
    """The ``errors`` of an ``add`` answer: duplicates (value → the other rule's id), refusals.

    X answers a rule whose value another rule has already with a
    ``DuplicateRule`` error; its posts arrive anyway, so it is not a refusal.
    """
    duplicates: dict[str, str] = {}
    refusals: list[Any] = []
    for error in errors:
        if isinstance(error, dict) and error.get("title") == "DuplicateRule":
            duplicates[str(error.get("value"))] = str(error.get("id") or "")
        else:
            refusals.append(error)
    return duplicates, refusals
