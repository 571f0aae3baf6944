"""Source positions between the sources and the store (flows.runtime.cursors)."""

from __future__ import annotations

from flows.runtime.cursors import Positions, SourceCursor, jetstream_key, replay_key


def test_keys_name_the_source_and_where_it_reads() -> None:
    """A Jetstream cursor is keyed by its URL, a replay offset by the file's path."""
    assert jetstream_key("wss://j.example/subscribe") == "bluesky:wss://j.example/subscribe"
    assert replay_key("data/a.jsonl") == "replay:data/a.jsonl"


def test_a_position_settles_one_snapshot_after_it_was_marked() -> None:
    """What was emitted by one snapshot is handed to the store at the next, once."""
    positions = Positions()
    positions.advance("k", 10)
    positions.mark("k")
    assert positions.take_settled() == []
    positions.advance("k", 20)
    positions.mark("k")
    assert positions.take_settled() == [SourceCursor("k", 10)]
    assert positions.take_settled() == []
    positions.mark("k")
    assert positions.take_settled() == [SourceCursor("k", 20)]


def test_final_positions_are_the_latest_and_a_finished_one_is_forgotten() -> None:
    """After the flow: each partition's latest position, None once its input ended."""
    positions = Positions()
    positions.advance("a", 5)
    positions.advance("b", 7)
    positions.finish("b")
    assert positions.final() == [SourceCursor("a", 5), SourceCursor("b", None)]
