"""Hostile source input through the real dataflow: counted as malformed or analysed, never stuck.

The lines are written to a file and read by the real :class:`ReplaySource`
(bytes, so invalid UTF-8 really reaches the parser), under one and two
workers. Each run is bounded by pytest-timeout; no test asserts a duration.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import TestingSink

from flows.dataflow import FlowSettings, build_flow
from flows.model import ALL_POSTS, Match, Rejected, WindowSummary, per_query
from flows.routing.matching import parse_query
from flows.sources.replay import ReplaySource
from tests.helpers.xlines import x_envelope

pytestmark = pytest.mark.timeout(120)

EMOJI_FLOOD = "😂🔥💯😭❤️" * 2_000  # 10,000 emoji, many with sentiment-bearing names
LONG_WORDS = ("happy terrible wonderful awful good bad " * 700)[:25_000]


def _line(post_id: int, text: str, **options: Any) -> bytes:
    return json.dumps(x_envelope(post_id, text, at=post_id, **options)).encode("utf-8")


def _hostile_lines() -> tuple[list[bytes], int, set[str]]:
    """The file's lines, how many are malformed, and the ids of the valid posts."""
    good = [
        _line(1, "python is great"),
        _line(2, "python " + LONG_WORDS),  # 25,000 characters
        _line(3, "python " + EMOJI_FLOOD),
        _line(4, "python #" + "a" * 5_000 + " " + "#tag " * 2_000),
        _line(5, "python \u202e\u200b\ufeff zero width and bidi controls"),
        _line(6, "python " + "x" * 25_000),  # one enormous token
    ]
    full = _line(7, "python truncated")
    missing_text = json.dumps({"data": {"id": "8", "created_at": "2024-05-01T12:00:00Z"}})
    bad = [
        full[: len(full) // 2],  # truncated line
        b'{"data": {"id": "9", "text": "python \xff\xfe bad bytes", "created_at": "x"}}',
        missing_text.encode(),
        b'{"data": {"text": "python no id", "created_at": "2024-05-01T12:00:00Z"}}',
        b'{"data": {"id": "10", "text": "python no time"}}',
        b"[" * 50_000,  # deep nesting
        b'{"data": {"id": 11, "text": 42, "created_at": null}}',  # wrong types
        b"\xff" * 1_000,  # not UTF-8 at all
        b"not json",
    ]
    lines = [*good[:3], *bad[:4], *good[3:], *bad[4:]]
    return lines, len(bad), {str(n) for n in range(1, 7)}


def test_hostile_lines_are_counted_as_malformed_or_analysed(
    entry_point: Any, tmp_path: Path
) -> None:
    """Every hostile line ends as a rejected record or an analysed post; the flow completes."""
    lines, malformed, valid_ids = _hostile_lines()
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out: list[Any] = []
    flow = build_flow(
        ReplaySource([path]),
        None,
        [TestingSink(out)],
        settings=FlowSettings(
            queries=[parse_query("python")], live=False, wait=timedelta(0), window=timedelta(days=1)
        ),
    )
    entry_point(flow)

    rejected = [item for item in out if isinstance(item, Rejected)]
    assert len(rejected) == malformed, [r.reason for r in rejected]
    assert {item.scored.post.id for item in per_query(out) if isinstance(item, Match)} == valid_ids
    totals = [i for i in out if isinstance(i, WindowSummary) and i.query == ALL_POSTS]
    assert sum(summary.posts for summary in totals) == len(valid_ids)
    for item in rejected:
        assert len(item.raw) <= 1_100_000  # a rejected record never exceeds the line cap


def test_a_flood_of_long_posts_completes(entry_point: Any, tmp_path: Path) -> None:
    """A thousand 25,000-character posts alternating words and emoji are all analysed."""
    path = tmp_path / "flood.jsonl"
    with path.open("wb") as file:
        for n in range(1, 1_001):
            text = LONG_WORDS if n % 2 else ("python " + EMOJI_FLOOD)[:25_000]
            file.write(_line(n, text) + b"\n")
    out: list[Any] = []
    flow = build_flow(
        ReplaySource([path]),
        None,
        [TestingSink(out)],
        settings=FlowSettings(live=False, wait=timedelta(0), window=timedelta(days=1)),
    )
    entry_point(flow)
    totals = [i for i in out if isinstance(i, WindowSummary) and i.query == ALL_POSTS]
    assert sum(summary.posts for summary in totals) == 1_000
    assert not [item for item in out if isinstance(item, Rejected)]
