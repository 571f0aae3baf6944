"""Builders of X API v2 stream lines for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.model import Line

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, aware, window-aligned start time for tests (never the wall clock)."""


def x_envelope(
    post_id: str | int,
    text: str,
    *,
    at: float | datetime = 0.0,
    retweet: bool = False,
    hashtags: list[str] | None = None,
    lang: str = "en",
    author: str | None = "42",
) -> dict[str, Any]:
    """An X API v2 filtered-stream envelope; ``at`` is seconds after :data:`T0`."""
    created = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    data: dict[str, Any] = {
        "id": str(post_id),
        "text": text,
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lang": lang,
    }
    if author is not None:
        data["author_id"] = author
    if retweet:
        data["referenced_tweets"] = [{"type": "retweeted", "id": "1"}]
    if hashtags is not None:
        data["entities"] = {"hashtags": [{"start": 0, "end": 1, "tag": tag} for tag in hashtags]}
    envelope: dict[str, Any] = {"data": data, "matching_rules": []}
    if author is not None:
        envelope["includes"] = {"users": [{"id": author, "username": "ada"}]}
    return envelope


def x_line(post_id: str | int, text: str, **options: Any) -> Line:
    """One stream line as a source emits it."""
    envelope = x_envelope(post_id, text, **options)
    return Line(json.dumps(envelope), origin=f"test:{post_id}")
