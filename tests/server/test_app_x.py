"""``senti serve --source x``: clients' queries become X rules while the stream stays up.

A real ``SentiServer`` with the real tweepy-based :class:`~flows.sources.x.XStream`
pointed at a local fake of the X API (tests/fakes/x_api.py); real websocket clients.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from flows.sources.x import XSettings, XStream
from server.app import SentiServer
from server.protocol import SUBPROTOCOL_V2
from server.settings import ServerSettings
from tests.helpers.fakes.x_api import FakeXApi
from tests.helpers.xlines import x_envelope

TOKEN = "AAAA-server-test-token-91b2"  # noqa: S105 - the fake's credential
TIMEOUT = 10.0


@pytest.fixture
def fake() -> Iterator[FakeXApi]:
    """A fake X API that refuses rules mentioning ``forbidden``."""

    def reject(value: str) -> str | None:
        return "operator 'forbidden' is not allowed" if "forbidden" in value else None

    with FakeXApi(token=TOKEN, reject=reject) as api:
        yield api


def _server(fake: FakeXApi) -> SentiServer:
    settings = ServerSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=0, source="x", window=60.0, wait=0.0
    )
    x_settings = XSettings(  # type: ignore[call-arg]
        _env_file=None, bearer_token=TOKEN, api_base=fake.base_url, tier="basic"
    )
    return SentiServer(settings, x_stream=XStream(x_settings, sleep=lambda _: None))


async def _wait(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def _track(ws: ClientConnection, query: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "track", "query": query}))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


def _push_until_received(fake: FakeXApi, text: str) -> Callable[[int], None]:
    def push(n: int) -> None:
        fake.push(x_envelope(f"9{n:05d}", f"{text} {n}", at=datetime.now(UTC)))

    return push


async def _receive_post(ws: ClientConnection, push: Callable[[int], None]) -> dict[str, Any]:
    """Push posts until one reaches the client (rules apply asynchronously at X)."""
    for n in range(200):
        push(n)
        try:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
        except TimeoutError:
            continue
        if message.get("type") == "post":
            return message
    raise AssertionError("no post arrived")


def test_tracking_adds_a_rule_and_leaving_deletes_it_without_reconnecting(
    fake: FakeXApi,
) -> None:
    """The first client's query becomes a tagged rule, posts flow, the last leaver deletes it."""

    async def scenario() -> None:
        server = _server(fake)
        await server.start()
        try:
            async with asyncio.timeout(TIMEOUT):
                url = f"ws://127.0.0.1:{server.port}/track"
                async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as first:  # type: ignore[list-item]
                    ack = await _track(first, "Python")
                    assert ack["type"] == "tracking"
                    assert [tag for _, tag in fake.rules.values()] == ["senti:python"]
                    post = await _receive_post(first, _push_until_received(fake, "python rocks"))
                    assert post["query"] == "python"
                    async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as second:  # type: ignore[list-item]
                        await _track(second, "python")
                    assert len(fake.rules) == 1  # the second client shared the rule
                await _wait(lambda: not fake.rules)
                assert fake.connections == 1
        finally:
            await server.close()
        fake.wait(lambda: fake.client_disconnects >= 1, TIMEOUT)  # closed on shutdown

    asyncio.run(scenario())


def test_a_rule_x_refuses_reaches_the_client_as_an_error(fake: FakeXApi) -> None:
    """X's refusal becomes a query-rejected error; the query is not tracked, others still are."""

    async def scenario() -> None:
        server = _server(fake)
        await server.start()
        try:
            async with asyncio.timeout(TIMEOUT):
                url = f"ws://127.0.0.1:{server.port}/track"
                async with connect(url, subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
                    error = await _track(ws, "forbidden words")
                    assert error["type"] == "error"
                    assert error["code"] == "query-rejected"
                    assert "not allowed" in error["message"]
                    assert server.hub.queries == 0
                    ack = await _track(ws, "coffee")
                    assert ack["queries"] == ["coffee"]
                async with connect(url) as original:
                    await original.send(json.dumps({"track": "forbidden"}))
                    v1_error = json.loads(await original.recv())
                    assert v1_error["code"] == "query-rejected"
        finally:
            await server.close()
        assert all("forbidden" not in value for value, _ in fake.rules.values())

    asyncio.run(scenario())


def test_stale_senti_rules_are_deleted_at_start_and_metrics_show_the_stream(
    fake: FakeXApi,
) -> None:
    """Start-up removes senti: rules of a previous run, keeps foreign ones; /metrics has X."""
    fake.add_rule("python -is:retweet", "senti:python")
    foreign = fake.add_rule("rust", "someone-else")

    async def scenario() -> None:
        server = _server(fake)
        await server.start()
        try:
            assert list(fake.rules) == [foreign]
            deadline = time.monotonic() + TIMEOUT
            while "senti_x_connected 1" not in server.metrics.render(
                connections=0, queries=0, flow_running=True, source=server._source_metrics()
            ):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        finally:
            await server.close()

    asyncio.run(scenario())
