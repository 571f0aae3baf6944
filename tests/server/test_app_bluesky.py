"""``senti serve --source bluesky``: live Jetstream posts reach websocket clients.

A real ``SentiServer`` with the real :class:`~flows.sources.bluesky.JetstreamStream`
pointed at a local fake Jetstream (tests/fakes/jetstream.py); real websocket clients.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from flows.sources.bluesky import JetstreamSettings, JetstreamStream
from server.app import SentiServer
from server.protocol import SUBPROTOCOL_V2
from server.settings import ServerSettings
from tests.helpers.fakes.jetstream import FakeJetstream, post_event, repost_event

TIMEOUT = 10.0


@pytest.fixture
def fake() -> Iterator[FakeJetstream]:
    """A fake Jetstream on 127.0.0.1 that sends every collection, reposts included."""
    with FakeJetstream(filter_collections=False) as server:
        yield server


def test_bluesky_posts_reach_clients_and_reposts_do_not(fake: FakeJetstream) -> None:
    """Posts from Jetstream are routed to the tracked query; reposts never reach a client."""
    settings = ServerSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=0, source="bluesky"
    )
    stream = JetstreamStream(
        JetstreamSettings(url=fake.url, _env_file=None),  # type: ignore[call-arg]
        sleep=lambda _: None,
    )

    async def scenario() -> list[dict[str, Any]]:
        server = SentiServer(settings, bluesky_stream=stream)
        await server.start()
        received: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                url = f"ws://127.0.0.1:{server.port}/track"
                async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
                    await ws.send(json.dumps({"type": "track", "query": "bluesky"}))
                    assert json.loads(await ws.recv())["type"] == "tracking"
                    now = time.time_ns() // 1000
                    for n in range(200):  # until the dataflow has the query
                        fake.publish(
                            repost_event(f"r{n}", f"at://x/p{n}", time_us=now + 2 * n),
                            post_event(f"p{n}", f"I love #bluesky {n}", time_us=now + 2 * n + 1),
                        )
                        try:
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
                        except TimeoutError:
                            continue
                        received.append(message)
                        break
        finally:
            await server.close()
        return received

    [message] = asyncio.run(scenario())
    assert message["type"] == "post"
    assert message["query"] == "bluesky"
    assert message["id"].startswith("at://did:plc:alice/app.bsky.feed.post/p")
    assert message["hashtags"] == {"bluesky": 1}
    assert stream.stats().skipped >= 1  # the reposts


def test_a_post_with_langs_a_number_is_counted_and_the_server_keeps_serving(
    fake: FakeJetstream,
) -> None:
    """The reported event ("langs": 1) stopped senti serve --source bluesky: now it is
    counted as rejected (wrong-type) on /metrics and the posts after it reach the client."""
    settings = ServerSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=0, source="bluesky"
    )
    stream = JetstreamStream(
        JetstreamSettings(url=fake.url, _env_file=None),  # type: ignore[call-arg]
        sleep=lambda _: None,
    )

    async def scenario() -> tuple[list[dict[str, Any]], str, bool]:
        server = SentiServer(settings, bluesky_stream=stream)
        await server.start()
        received: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                url = f"ws://127.0.0.1:{server.port}/track"
                async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
                    await ws.send(json.dumps({"type": "track", "query": "bluesky"}))
                    assert json.loads(await ws.recv())["type"] == "tracking"
                    now = time.time_ns() // 1000
                    for n in range(200):  # until the dataflow has the query
                        bad = post_event(f"b{n}", "#bluesky", time_us=now + 2 * n, langs=None)
                        bad["commit"]["record"]["langs"] = 1
                        good = post_event(f"p{n}", f"I love #bluesky {n}", time_us=now + 2 * n + 1)
                        fake.publish(bad, good)
                        try:
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
                        except TimeoutError:
                            continue
                        received.append(message)
                        break
                while server.metrics.source_rejected["wrong-type"] < stream.stats().rejected:
                    await asyncio.sleep(0.02)  # the last rejections may still be in the flow
                body = await asyncio.to_thread(_metrics, server.port)
                running = server.flow_running and stream.running
        finally:
            await server.close()
        return received, body, running

    [message], body, running = asyncio.run(scenario())
    assert message["id"].startswith("at://did:plc:alice/app.bsky.feed.post/p")
    assert running
    rejected = stream.stats().rejected
    assert rejected >= 1
    assert f'senti_source_rejected_total{{source="bluesky",reason="wrong-type"}} {rejected}' in body


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode("utf-8"))
