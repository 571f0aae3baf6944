"""The ``--out`` JSON lines sink: every record kind is written as one line with its ``type``."""

from __future__ import annotations

import json
from pathlib import Path

from flows.model import PostMatches
from flows.sinks.jsonl import JsonLinesSink
from tests.helpers.factories import (
    make_late,
    make_rejected,
    make_scored,
    make_subscription,
    make_window,
)


def test_every_record_kind_round_trips_with_its_type(tmp_path: Path) -> None:
    """Matches, windows, late, rejected and subscription records each read back with a type."""
    path = tmp_path / "out.jsonl"
    items = [
        make_subscription("python"),
        PostMatches(make_scored(), ("python", "rust")),
        make_window(),
        make_late(),
        make_rejected(),
        make_subscription("python", active=False),
    ]
    partition = JsonLinesSink(path).build("out", 0, 1)
    partition.write_batch(items)
    partition.close()
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [line["type"] for line in lines] == [
        "subscription", "match", "match", "window", "late", "rejected", "subscription",
    ]  # fmt: skip
    assert [line["query"] for line in lines[1:3]] == ["python", "rust"]
    assert lines[0] == {"type": "subscription", "query": "python", "active": True}
    assert lines[-1]["active"] is False
    assert lines[5] == {"type": "rejected", "origin": "test:1", "reason": "invalid JSON"}
    assert lines[3]["posts"] == make_window().posts


def test_every_record_type_is_documented_with_its_fields() -> None:
    """docs/output.md's table lists each ``type`` the JSON lines sink writes, with its fields."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "output.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[3]
        for line in doc.splitlines()
        if line.startswith("| `") and not line.startswith("| `type`")
    }
    expected = {
        "match": ["query", "id", "created_at", "compound", "polarityIndex", "hashtags", "lang"],
        "window": ["start", "end", "posts", "positive", "negative", "neutral", "top_hashtags"],
        "late": ["query", "window_start", "id", "retweet"],
        "rejected": ["origin", "reason"],
        "subscription": ["query", "active"],
    }
    assert set(rows) == set(expected)
    for kind, fields in expected.items():
        assert all(f"`{name}`" in rows[kind] for name in fields), kind
