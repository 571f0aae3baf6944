"""The dataflow in a child process (server/flowproc.py): same messages, its own core."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from flows.model import ALL_POSTS, Match, PostMatches, RejectCode, Rejected
from server.app import SentiServer
from server.flowproc import EncodedPost, EncodedWindow, ProcessBackend, encode_items
from server.protocol import SUBPROTOCOL_V2, Dialect, encode_post, encode_window
from server.settings import ServerSettings
from tests.helpers.factories import make_match, make_window

TIMEOUT = 20.0


def test_matches_and_windows_are_encoded_once_for_both_dialects() -> None:
    """A matched post becomes, per query, its v1 text (encoded once, the same for every
    query) and its v2 text; a query window its v2 text; the global one none."""
    match = make_match("python")
    tea = Match("tea", match.scored)
    window = make_window("python")
    overall = make_window(ALL_POSTS)
    items = [PostMatches(match.scored, ("python", "tea")), window, overall, object()]
    posted, also, windowed, counted = encode_items(items)
    assert posted == EncodedPost(
        "python", encode_post(match, Dialect.V1), encode_post(match, Dialect.V2)
    )
    assert also == EncodedPost("tea", encode_post(tea, Dialect.V1), encode_post(tea, Dialect.V2))
    assert also.v1 is posted.v1
    assert json.loads(posted.v1).keys() == {"polarityIndex", "hashtags"}
    assert windowed == EncodedWindow(window, encode_window(window))
    assert counted == EncodedWindow(overall, "")


def test_an_unscored_post_is_encoded_for_v2_only() -> None:
    """An unscored post has no v1 text (v1 clients do not receive it) and a v2 text that
    says it is unscored."""
    match = make_match("python", polarity=None, hashtags={"py": 1}, lang="pt")
    (posted,) = encode_items([PostMatches(match.scored, ("python",))])
    assert isinstance(posted, EncodedPost)
    assert posted.v1 is None
    assert json.loads(posted.v2)["polarityIndex"] is None


def test_a_synthetic_server_runs_its_dataflow_in_a_child_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By default a synthetic source runs in a child; clients get posts; close reaps it."""
    for name in list(os.environ):
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)
    settings = ServerSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=0, rate=200.0, window=1.0, wait=0.0
    )

    async def scenario() -> dict[str, Any]:
        server = SentiServer(settings)
        assert isinstance(server.backend, ProcessBackend)
        await server.start()
        try:
            async with asyncio.timeout(TIMEOUT):
                url = f"ws://127.0.0.1:{server.port}/track"
                async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
                    await ws.send(json.dumps({"type": "track", "query": "python"}))
                    assert json.loads(await ws.recv())["type"] == "tracking"
                    while True:
                        message: dict[str, Any] = json.loads(await ws.recv())
                        if message["type"] == "post":
                            break
                assert server.flow_running
        finally:
            await server.close()
        assert server.backend is not None
        assert not server.backend.running
        return message

    message = asyncio.run(scenario())
    assert message["query"] == "python"
    assert message["polarityIndex"] in (0, 1, 2)


def test_thread_mode_is_still_available() -> None:
    """SENTI_DATAFLOW=thread keeps the dataflow on a thread of the server."""
    settings = ServerSettings(_env_file=None, dataflow="thread")  # type: ignore[call-arg]
    assert SentiServer(settings).backend is None


def test_rejected_lines_cross_to_the_server_without_their_raw_text() -> None:
    """A rejected line reaches the server for /metrics with its code; its raw text stays
    in the child (the store has it)."""
    rejected = Rejected("f:1", "invalid JSON: x", "{" * 10_000, RejectCode.INVALID_JSON)
    assert encode_items([rejected]) == [
        Rejected("f:1", "invalid JSON: x", "", RejectCode.INVALID_JSON)
    ]


def test_a_replay_server_counts_the_rejected_lines_of_its_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the dataflow in a child process, the lines it rejects are counted on /metrics."""
    for name in list(os.environ):
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)
    replay = tmp_path / "bad.jsonl"
    replay.write_bytes(b'{"data": 1}\n{"truncated\n\xff\xfe\n')
    settings = ServerSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=0, source="replay", replay=[replay]
    )

    async def scenario() -> dict[str, int]:
        server = SentiServer(settings)
        await server.start()
        try:
            async with asyncio.timeout(TIMEOUT):
                while sum(server.metrics.source_rejected.values()) < 3:
                    await asyncio.sleep(0.02)
        finally:
            await server.close()
        return dict(server.metrics.source_rejected)

    assert asyncio.run(scenario()) == {"not-an-object": 1, "invalid-json": 2}
