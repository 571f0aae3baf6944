"""End to end: real websocket clients of a real ``SentiServer`` whose posts the test pushes.

Delivery (v1 and v2), the original client's message shape, window summaries,
dropping queries nobody tracks, protocol errors over the wire, the message size
limit, the track rate limit, and a stalled client that must not delay others.
Helpers (``serve``, ``Senti.until_tracking``, barriers) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError

from flows.model import Line, format_time
from flows.store import open_store
from server.protocol import SUBPROTOCOL_V2

POST_FIELDS = {
    "type", "query", "id", "created_at", "compound", "polarityIndex", "hashtags", "lang",
}  # fmt: skip


async def track(ws: ClientConnection, query: str | None) -> None:
    """Send the v1 ``{"track": query}`` message."""
    await ws.send(json.dumps({"track": query}))


def tags_of(messages: list[dict[str, Any]]) -> set[str]:
    """Every hashtag of ``messages``."""
    return {tag for message in messages for tag in message["hashtags"]}


# v1: the original protocol


async def test_tracking_client_receives_each_matching_post_and_no_other(serve: Any) -> None:
    """A v1 client tracking a query receives every matching post and no post that does not match."""
    async with serve() as senti, senti.connect() as ws:
        await track(ws, "python")
        await senti.until_tracking(ws, "python")
        senti.post(f"a pythonista writes rust #{senti.unique('other')}")
        wanted = [senti.unique("m") for _ in range(3)]
        for tag in wanted:
            senti.post(f"Python news #{tag}")
        received = [await senti.receive(ws) for _ in wanted]
        assert tags_of(received) == set(wanted)
        await senti.expect_silence(ws)


async def test_two_clients_tracking_one_query_both_receive_each_post(serve: Any) -> None:
    """Two clients tracking the same query both receive every matching post."""
    async with serve() as senti, senti.connect() as first, senti.connect() as second:
        for ws in (first, second):
            await track(ws, "python")
            await senti.until_tracking(ws, "python")
        wanted = [senti.unique("m") for _ in range(5)]
        for tag in wanted:
            senti.post(f"python #{tag}")
        for ws in (first, second):
            assert tags_of([await senti.receive(ws) for _ in wanted]) == set(wanted)
        assert senti.server.hub.tracked() == {"python": 2}


async def test_v1_track_replaces_the_tracked_query(serve: Any) -> None:
    """A second v1 ``{"track": ...}`` replaces the first query: only the new one's posts arrive."""
    async with serve() as senti, senti.connect() as ws:
        await track(ws, "alpha")
        await senti.until_tracking(ws, "alpha")
        await track(ws, "beta")
        await senti.until_tracking(ws, "beta")
        old, new = senti.unique("old"), senti.unique("new")
        senti.post(f"alpha #{old}")
        senti.post(f"beta #{new}")
        assert (await senti.receive(ws))["hashtags"] == {new: 1}
        await senti.expect_silence(ws)
        assert senti.server.hub.tracked() == {"beta": 1}


async def test_v1_track_null_stops_messages_and_keeps_the_connection(serve: Any) -> None:
    """``{"track": null}`` stops the posts but not the connection, which can track again."""
    async with serve() as senti, senti.connect() as ws, senti.connect() as witness:
        await track(witness, "beta")
        await senti.until_tracking(witness, "beta")
        await track(ws, "alpha")
        await senti.until_tracking(ws, "alpha")
        await track(ws, None)
        await senti.sync(ws)
        senti.post(f"alpha #{senti.unique('stopped')}")
        await senti.barrier(witness, "beta")
        await senti.expect_silence(ws)

        await track(ws, "alpha")
        await senti.until_tracking(ws, "alpha")
        again = senti.unique("again")
        senti.post(f"alpha #{again}")
        assert (await senti.receive(ws))["hashtags"] == {again: 1}


async def test_original_client_reads_only_polarity_index_and_hashtags(serve: Any) -> None:
    """A client written like the original JS client gets exactly ``polarityIndex`` and ``hashtags``.

    The original page did ``ws.send(JSON.stringify({track: query}))`` and read
    ``message.polarityIndex`` and ``message.hashtags`` from every message.
    """
    async with serve() as senti, senti.connect() as ws:
        assert ws.subprotocol is None
        await ws.send(json.dumps({"track": "python"}))
        texts = await senti.until_tracking(ws, "python")
        senti.post("I love python, it is wonderful and great! #Fun #fun #ok")
        senti.post("I hate python, it is awful and terrible #sad")
        senti.post("python 3.13 release notes")
        seen: set[tuple[int, frozenset[tuple[str, int]]]] = set()
        while len(seen) < 3:
            text = await ws.recv()
            texts.append(text)  # probes included: every message must fit the old client
            message = json.loads(text)
            if not any(tag.startswith("probe") for tag in message["hashtags"]):
                seen.add((message["polarityIndex"], frozenset(message["hashtags"].items())))

        for text in texts:
            assert isinstance(text, str)
            message = json.loads(text)
            assert list(message) == ["polarityIndex", "hashtags"]
            assert message["polarityIndex"] in {0, 1, 2}
            assert type(message["polarityIndex"]) is int
            assert isinstance(message["hashtags"], dict)
            assert all(
                isinstance(tag, str) and type(count) is int
                for tag, count in message["hashtags"].items()
            )
        assert seen == {
            (0, frozenset({("fun", 2), ("ok", 1)})),
            (1, frozenset({("sad", 1)})),
            (2, frozenset()),
        }


# v2: typed messages


async def test_v2_track_is_acknowledged_with_canonical_keys_and_request_id(serve: Any) -> None:
    """v2 ``track`` answers ``tracking`` with the canonical key, all keys, the request id and
    the spelling sent when it is not the key."""
    async with serve() as senti, senti.connect(v2=True) as ws:
        assert ws.subprotocol == SUBPROTOCOL_V2
        first = {"type": "track", "query": "Python, #AI  ml", "id": 1}
        assert await senti.request(ws, first) == {
            "type": "tracking",
            "query": "#ai ml,python",
            "queries": ["#ai ml,python"],
            "id": 1,
            "spelling": "Python, #AI ml",
        }
        second = {"type": "track", "query": "rust", "id": "b"}
        assert await senti.request(ws, second) == {
            "type": "tracking",
            "query": "rust",
            "queries": ["#ai ml,python", "rust"],
            "id": "b",
        }
        respelled = {"type": "track", "query": "#ai ML,python"}
        assert await senti.request(ws, respelled) == {
            "type": "tracking",
            "query": "#ai ml,python",
            "queries": ["#ai ml,python", "rust"],
            "spelling": "#ai ML,python",
        }
        assert await senti.request(ws, {"type": "ping", "id": 9}) == {"type": "pong", "id": 9}
        assert senti.server.hub.tracked() == {"#ai ml,python": 1, "rust": 1}


async def test_v2_post_messages_carry_details_once_per_matching_query(serve: Any) -> None:
    """A v2 post message has id, time and compound, and comes once for each query it matches."""
    async with serve() as senti, senti.connect(v2=True) as ws:
        for query in ("alpha", "beta"):
            await senti.request(ws, {"type": "track", "query": query})
            await senti.until_tracking(ws, query)
        at = datetime.now(UTC).replace(microsecond=250_000)
        both = senti.post("I love alpha and beta, wonderful! #both", at=at)
        one = senti.post("beta is awful #one", at=at)

        received = [await senti.receive(ws) for _ in range(3)]
        by_query_and_id = {(message["query"], message["id"]): message for message in received}
        assert set(by_query_and_id) == {("alpha", both), ("beta", both), ("beta", one)}
        for message in received:
            assert set(message) == POST_FIELDS
            assert message["type"] == "post"
            assert message["created_at"] == format_time(at)
            assert isinstance(message["compound"], float)
            assert -1.0 <= message["compound"] <= 1.0
        positive = by_query_and_id[("alpha", both)]
        negative = by_query_and_id[("beta", one)]
        assert (positive["polarityIndex"], positive["hashtags"]) == (0, {"both": 1})
        assert positive["compound"] > 0
        assert (negative["polarityIndex"], negative["hashtags"]) == (1, {"one": 1})
        assert negative["compound"] < 0
        await senti.expect_silence(ws)


async def test_unscored_post_reaches_v2_clients_with_nulls_and_not_v1_clients(
    serve: Any,
) -> None:
    """A post in a language senti does not score reaches a v2 client marked unscored, with
    its hashtags and language; a v1 client tracking the same query never receives it."""
    async with serve() as senti, senti.connect(v2=True) as v2, senti.connect() as v1:
        await senti.request(v2, {"type": "track", "query": "alpha"})
        await track(v1, "alpha")
        await senti.until_tracking(v2, "alpha")
        await senti.until_tracking(v1, "alpha")
        foreign = senti.post("alpha: que dia horrível #ruim", lang="pt-BR")
        english = senti.post("alpha is wonderful #bom")
        received = [await senti.receive(v2) for _ in range(2)]
        by_id = {message["id"]: message for message in received}
        assert set(by_id[foreign]) == POST_FIELDS
        assert (by_id[foreign]["compound"], by_id[foreign]["polarityIndex"]) == (None, None)
        assert (by_id[foreign]["hashtags"], by_id[foreign]["lang"]) == ({"ruim": 1}, "pt-BR")
        assert (by_id[english]["polarityIndex"], by_id[english]["lang"]) == (0, "en")
        before = await senti.barrier(v1, "alpha")
        assert before == [{"polarityIndex": 0, "hashtags": {"bom": 1}}]


@pytest.mark.async_timeout(15)
async def test_v2_client_receives_window_summaries_and_v1_client_does_not(serve: Any) -> None:
    """When a window closes, v2 clients tracking the query get its summary; v1 clients do not."""
    async with (
        serve(window=1.0, wait=0.0) as senti,
        senti.connect(v2=True) as v2,
        senti.connect() as v1,
    ):
        await senti.request(v2, {"type": "track", "query": "alpha"})
        await track(v1, "alpha")
        await senti.until_tracking(v2, "alpha")
        await senti.until_tracking(v1, "alpha")
        # Half a second ahead of the probes, so these three are never late for their window.
        at = datetime.now(UTC) + timedelta(seconds=0.5)
        for _ in range(3):
            senti.post("alpha is wonderful #winner", at=at)

        while True:
            message = await senti.receive(v2, windows=True)
            if message["type"] == "window" and ["winner", 3] in message["top_hashtags"]:
                break
        start = datetime.fromisoformat(message["start"])
        end = datetime.fromisoformat(message["end"])
        assert message["query"] == "alpha"
        assert end - start == timedelta(seconds=1)
        assert start <= at < end
        assert message["top_hashtags"][0] == ["winner", 3]
        assert message["posts"] == message["positive"] + message["negative"] + message["neutral"]
        assert message["positive"] >= 3
        assert message["retweets"] == 0

        before = await senti.barrier(v1, "alpha")
        assert before == [{"polarityIndex": 0, "hashtags": {"winner": 1}}] * 3


async def test_v2_untrack_and_untrack_all_stop_posts_and_keep_the_connection(serve: Any) -> None:
    """After ``untracked`` no posts of the removed queries arrive; the connection stays usable."""
    async with serve() as senti, senti.connect(v2=True) as ws, senti.connect() as witness:
        await track(witness, "gamma")
        await senti.until_tracking(witness, "gamma")
        for query in ("alpha", "beta"):
            await senti.request(ws, {"type": "track", "query": query})
            await senti.until_tracking(ws, query)

        untrack = {"type": "untrack", "query": "BETA", "id": 3}
        assert await senti.request(ws, untrack) == {
            "type": "untracked",
            "removed": ["beta"],
            "queries": ["alpha"],
            "id": 3,
        }
        senti.post(f"beta #{senti.unique('gone')}")
        kept = senti.unique("kept")
        senti.post(f"alpha #{kept}")
        message = await senti.receive(ws)
        assert (message["query"], message["hashtags"]) == ("alpha", {kept: 1})

        untrack_all = {"type": "untrack_all", "id": 4}
        assert await senti.request(ws, untrack_all) == {
            "type": "untracked",
            "removed": ["alpha"],
            "queries": [],
            "id": 4,
        }
        senti.post(f"alpha beta #{senti.unique('gone')}")
        await senti.barrier(witness, "gamma")
        await senti.expect_silence(ws)

        unknown = {"type": "untrack", "query": "alpha", "id": 5}
        error = await senti.request(ws, unknown)
        assert (error["type"], error["code"], error["id"]) == ("error", "unknown-query", 5)
        assert await senti.request(ws, {"type": "ping"}) == {"type": "pong"}
        assert senti.server.hub.tracked() == {"gamma": 1}


async def test_dataflow_drops_a_query_when_its_last_client_leaves(serve: Any) -> None:
    """Once the last client of a query untracks or disconnects, its posts no longer match."""
    async with serve() as senti, senti.connect() as witness:
        await track(witness, "beta")
        await senti.until_tracking(witness, "beta")
        async with senti.connect(v2=True) as first, senti.connect(v2=True) as second:
            for ws in (first, second):
                await senti.request(ws, {"type": "track", "query": "alpha"})
                await senti.until_tracking(ws, "alpha")
            assert senti.server.hub.tracked() == {"alpha": 2, "beta": 1}
            await senti.request(first, {"type": "untrack", "query": "alpha"})
            assert senti.server.hub.tracked() == {"alpha": 1, "beta": 1}
            still = senti.unique("still")
            senti.post(f"alpha #{still}")
            assert (await senti.receive(second))["hashtags"] == {still: 1}
        # ``second`` disconnected. Each round pushes an alpha post, then a beta post as
        # a barrier: once the barrier arrives, the alpha post was routed (or not) too.
        metrics = senti.server.metrics
        while True:
            before = metrics.matches
            senti.post(f"alpha #{senti.unique('left')}")
            await senti.barrier(witness, "beta")
            if metrics.matches == before + 1:  # the barrier's match only
                break
        assert senti.server.hub.queries == 1
        assert senti.server.hub.tracked() == {"beta": 1}
        before = metrics.matches
        senti.post(f"alpha #{senti.unique('left')}")
        await senti.barrier(witness, "beta")
        assert metrics.matches == before + 1


# Errors and limits

V1_ERRORS = [
    pytest.param("{", "invalid-json", id="malformed-json"),
    pytest.param('{"track": 5}', "invalid-message", id="wrong-type"),
    pytest.param('["track", "python"]', "invalid-message", id="not-an-object"),
    pytest.param('{"type": "track", "query": "python"}', "invalid-message", id="v2-on-v1"),
    pytest.param(b"\x00\x01", "binary-not-supported", id="binary"),
    pytest.param('{"track": ""}', "invalid-query", id="empty-query"),
    pytest.param(json.dumps({"track": "a" * 513}), "invalid-query", id="query-over-512"),
]


@pytest.mark.parametrize(("frame", "code"), V1_ERRORS)
async def test_v1_bad_message_gets_an_error_and_the_connection_still_works(
    serve: Any, frame: str | bytes, code: str
) -> None:
    """A v1 message the server cannot act on is answered with an error; tracking still works."""
    async with serve() as senti, senti.connect() as ws:
        await ws.send(frame)
        error = await senti.receive(ws)
        assert set(error) == {"type", "code", "message"}
        assert (error["type"], error["code"]) == ("error", code)
        assert isinstance(error["message"], str)
        assert len(error["message"]) <= 300
        await track(ws, "python")
        await senti.until_tracking(ws, "python")
        assert senti.server.metrics.protocol_errors == 1


V2_ERRORS = [
    pytest.param("{", "invalid-json", None, id="malformed-json"),
    pytest.param('{"type": "track", "query": 5}', "invalid-message", None, id="wrong-type"),
    pytest.param('{"track": "python"}', "invalid-message", None, id="v1-on-v2"),
    pytest.param(b"\x00\x01", "binary-not-supported", None, id="binary"),
    pytest.param('{"type": "track", "query": "", "id": 7}', "invalid-query", 7, id="empty-query"),
    pytest.param(
        json.dumps({"type": "track", "query": "a" * 513, "id": "x"}),
        "invalid-query",
        "x",
        id="query-over-512",
    ),
]


@pytest.mark.parametrize(("frame", "code", "request_id"), V2_ERRORS)
async def test_v2_bad_message_gets_an_error_with_its_id_and_the_connection_still_works(
    serve: Any, frame: str | bytes, code: str, request_id: int | str | None
) -> None:
    """A v2 message the server cannot act on gets an error echoing its id; tracking still works."""
    async with serve() as senti, senti.connect(v2=True) as ws:
        await ws.send(frame)
        error = await senti.receive(ws)
        assert (error["type"], error["code"], error.get("id")) == ("error", code, request_id)
        tracking = await senti.request(ws, {"type": "track", "query": "python", "id": 2})
        assert (tracking["type"], tracking["queries"]) == ("tracking", ["python"])
        await senti.until_tracking(ws, "python")


async def test_query_of_exactly_512_characters_is_tracked(serve: Any) -> None:
    """A query at the 512-character limit is accepted (the limit is inclusive)."""
    async with serve() as senti, senti.connect(v2=True) as ws:
        query = "q" * 512
        answer = await senti.request(ws, {"type": "track", "query": query})
        assert (answer["type"], answer["query"]) == ("tracking", query)


async def test_oversized_frame_closes_with_1009_and_others_are_still_served(serve: Any) -> None:
    """A message over ``max_message_bytes`` closes that connection with 1009, and only that one."""
    async with serve(max_message_bytes=1024) as senti, senti.connect() as other:
        await track(other, "python")
        await senti.until_tracking(other, "python")
        async with senti.connect() as big:
            await big.send(json.dumps({"track": "x" * 1100}))
            with pytest.raises(ConnectionClosedError):
                await big.recv()
            assert big.close_code == 1009
        tag = senti.unique("after")
        senti.post(f"python #{tag}")
        assert (await senti.receive(other))["hashtags"] == {tag: 1}
        async with senti.connect() as newcomer:
            await track(newcomer, "python")
            await senti.until_tracking(newcomer, "python")


async def test_starting_queries_too_fast_is_rate_limited(serve: Any) -> None:
    """Starting more queries than the per-minute budget is refused; untrack stays free."""
    async with serve(track_changes_per_minute=2) as senti, senti.connect(v2=True) as ws:
        for number, query in enumerate(("alpha", "beta"), start=1):
            answer = await senti.request(ws, {"type": "track", "query": query, "id": number})
            assert answer["type"] == "tracking"
        error = await senti.request(ws, {"type": "track", "query": "gamma", "id": 3})
        assert (error["type"], error["code"], error["id"]) == ("error", "rate-limited", 3)
        retrack = await senti.request(ws, {"type": "track", "query": "ALPHA", "id": 4})
        assert retrack == {
            "type": "tracking",
            "query": "alpha",
            "queries": ["alpha", "beta"],
            "id": 4,
            "spelling": "ALPHA",
        }
        untrack = await senti.request(ws, {"type": "untrack", "query": "beta", "id": 5})
        assert untrack["queries"] == ["alpha"]
        assert senti.server.hub.tracked() == {"alpha": 1}


async def test_tracking_more_queries_than_allowed_is_refused(serve: Any) -> None:
    """A v2 ``track`` beyond ``max_queries_per_connection`` gets ``too-many-queries``."""
    async with serve(max_queries_per_connection=2) as senti, senti.connect(v2=True) as ws:
        for query in ("alpha", "beta"):
            answer = await senti.request(ws, {"type": "track", "query": query})
            assert answer["type"] == "tracking"
        error = await senti.request(ws, {"type": "track", "query": "gamma", "id": "g"})
        assert (error["type"], error["code"], error["id"]) == ("error", "too-many-queries", "g")
        await senti.request(ws, {"type": "untrack", "query": "alpha"})
        answer = await senti.request(ws, {"type": "track", "query": "gamma"})
        assert answer["queries"] == ["beta", "gamma"]


async def test_v1_switching_queries_too_fast_is_rate_limited_and_keeps_the_query(
    serve: Any,
) -> None:
    """A v1 switch beyond the budget gets ``rate-limited`` and the client keeps its query."""
    async with serve(track_changes_per_minute=2) as senti, senti.connect() as ws:
        await track(ws, "alpha")
        await track(ws, "beta")
        await track(ws, "gamma")
        error = await senti.receive(ws)
        assert (error["type"], error["code"]) == ("error", "rate-limited")
        await senti.until_tracking(ws, "beta")
        assert senti.server.hub.tracked() == {"beta": 1}


# A client that never reads


def masked_text_frame(text: str) -> bytes:
    """One final, masked text frame as a client must send it (RFC 6455, section 5.2)."""
    payload = text.encode("utf-8")
    if len(payload) < 126:
        header = struct.pack("!BB", 0x81, 0x80 | len(payload))
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
    mask = os.urandom(4)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


async def open_stalled_client(senti: Any) -> socket.socket:
    """A raw TCP socket with a tiny receive buffer that completed the websocket handshake."""
    raw = await senti.open_raw(receive_buffer=4096)
    await asyncio.get_running_loop().sock_sendall(raw, senti.upgrade_request())
    status = await senti.read_status_line(raw)
    assert status.startswith("HTTP/1.1 101 "), status
    return raw


@pytest.mark.async_timeout(30)
async def test_client_that_never_reads_does_not_delay_others(serve: Any) -> None:
    """A stalled client's messages are dropped within a bounded buffer; others get every post."""
    count, chunk = 3000, 250
    # About 4 KB per message, so that the stalled socket's kernel buffers fill up.
    padding = [f"padding_hashtag_number_{number:03d}" for number in range(130)]
    loop = asyncio.get_running_loop()
    async with serve(send_buffer_bytes=4096) as senti, senti.connect() as reader:
        with await open_stalled_client(senti) as stalled:
            await loop.sock_sendall(stalled, masked_text_frame(json.dumps({"track": "flood"})))
            await track(reader, "flood")
            await senti.until_tracking(reader, "flood")
            async with senti.probing("flood"):
                assert await loop.sock_recv(stalled, 65536), "the stalled client got no probe"
            # From now on ``stalled`` never reads again.
            assert senti.server.hub.tracked() == {"flood": 2}

            received: set[str] = set()
            largest = 0
            for first in range(0, count, chunk):
                for number in range(first, first + chunk):
                    tag = f"m{number}"
                    senti.post(f"flood #{tag}", hashtags=[tag, *padding])
                while len(received) < first + chunk:
                    message = await senti.receive(reader)
                    received.update(tag for tag in message["hashtags"] if tag.startswith("m"))
                    largest = max(largest, len(json.dumps(message, separators=(",", ":"))))

            assert received == {f"m{number}" for number in range(count)}
            metrics = senti.server.metrics
            assert metrics.messages_dropped > 0
            # SentiServer exposes no handle on its connections; the websockets Server does.
            (connection,) = (
                conn
                for conn in senti.server._server.connections
                if conn.remote_address[1] == stalled.getsockname()[1]
            )
            assert connection.transport is not None
            buffered = connection.transport.get_write_buffer_size()
            # A message is only written while the buffer is at most the limit:
            # at worst the limit plus one frame (a header of at most 10 bytes).
            assert 0 < buffered <= 4096 + largest + 10


# Hostile source input


def metrics_samples(port: int) -> dict[str, str]:
    """The samples of ``/metrics``, by name with labels (blocking)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode("utf-8")
    return dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))


async def test_rejected_lines_are_counted_by_code_stored_and_posts_still_flow(
    serve: Any, tmp_path: Path
) -> None:
    """Lines the parser rejects are counted on /metrics by source and code (a fixed set of
    labels), kept in the store's rejected table, and the posts after them still arrive."""
    store = f"sqlite:///{tmp_path / 'senti.db'}"
    async with serve(store=store) as senti, senti.connect(v2=True) as ws:
        await ws.send(json.dumps({"type": "track", "query": "python"}))
        assert (await senti.receive(ws))["type"] == "tracking"
        await senti.until_tracking(ws, "python")
        created = format_time(datetime.now(UTC))
        bad = [
            '{"data": {"id": "b1", "text": "python',
            json.dumps({"data": {"id": "b2", "text": "python", "created_at": 5}}),
            json.dumps({"data": {"id": "b3", "text": "python", "created_at": created, "lang": 1}}),
        ]
        for number, line in enumerate(bad):
            senti.posts.push(Line(line, f"test:bad{number}"))
        good = senti.post("python after the bad lines")
        while (message := await senti.receive(ws))["id"] != good:
            assert message["id"] not in ("b1", "b2", "b3")
        wanted = {
            'senti_source_rejected_total{source="synthetic",reason="invalid-json"}': "1",
            'senti_source_rejected_total{source="synthetic",reason="wrong-type"}': "2",
        }
        port = senti.server.port
        # The rejections may come in a later batch than the post: poll until they are in.
        while True:
            samples = await asyncio.to_thread(metrics_samples, port)
            if wanted.items() <= samples.items():
                break
            await asyncio.sleep(0.02)
        assert not [name for name in samples if "reason=" in name and name not in wanted]
    with open_store(store, readonly=True) as reader:
        rows = reader.select("SELECT origin, reason, raw FROM rejected ORDER BY origin")
    assert [(origin, raw) for origin, _, raw in rows] == [
        (f"test:bad{number}", line) for number, line in enumerate(bad)
    ]
