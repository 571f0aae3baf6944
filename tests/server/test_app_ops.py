"""End to end, what an operator reads: connection logs, ``/metrics`` post counts, ``/healthz``.

A real :class:`~server.app.SentiServer` on port 0 with real websocket clients
(``serve`` in ``conftest.py``); logs go through senti's own JSON formatter.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from conftest import make_settings

from flows.model import Line
from flows.sources.synthetic import write_synthetic
from server.app import SentiServer
from server.flowproc import ProcessBackend
from server.logs import JsonFormatter


@pytest.fixture
def websocket_log() -> Iterator[io.StringIO]:
    """The ``senti.websockets`` logger's records, as senti's JSON lines, at info level."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("senti.websockets")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_connection_logs_name_the_peer_address(
    serve: Any, websocket_log: io.StringIO
) -> None:
    """The websockets library's ``connection open`` / ``connection closed`` lines carry the
    client's ``host:port`` as ``peer``, not the connection object's repr."""
    async with serve() as senti:
        async with senti.connect() as ws:
            host, port = ws.local_address[:2]
            await ws.send("{}")  # answered: the server has the connection open
            await ws.recv()
        await senti.server.close()
    entries = [json.loads(line) for line in websocket_log.getvalue().splitlines()]
    events = {entry["event"]: entry for entry in entries if "peer" in entry}
    assert events["connection open"]["peer"] == f"{host}:{port}"
    assert events["connection closed"]["peer"] == f"{host}:{port}"
    assert "object at 0x" not in websocket_log.getvalue()


# /metrics counts posts as read; /healthz reflects a dead source


def http_get(port: int, path: str) -> tuple[int, str]:
    """``GET path`` on 127.0.0.1: status and body (blocking)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def samples(port: int) -> dict[str, str]:
    """The samples of ``/metrics`` by name (with labels)."""
    _, body = http_get(port, "/metrics")
    return dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))


async def until_posts(port: int, count: int) -> dict[str, str]:
    """Poll ``/metrics`` until ``senti_posts_total`` is ``count`` (the test's timeout bounds it)."""
    while (found := await asyncio.to_thread(samples, port))["senti_posts_total"] != str(count):
        assert int(found["senti_posts_total"]) < count, found
        await asyncio.sleep(0.02)
    return found


async def test_live_posts_are_counted_when_read_not_when_their_window_closes(serve: Any) -> None:
    """With day-long windows (none closes), ``senti_posts_total`` counts each post read;
    rejected lines are counted apart, never as posts."""
    async with serve() as senti:
        for number in range(5):
            senti.post(f"post {number}")
        senti.posts.push(Line('{"data": {"id": "bad", "text": "tru', "test:bad"))
        senti.post("post after the bad line")
        found = await until_posts(senti.server.port, 6)
        assert found["senti_posts_per_second"] == "0.000"  # no window has closed
        while not senti.server.metrics.source_rejected:
            await asyncio.sleep(0.02)
        assert (await asyncio.to_thread(samples, senti.server.port))["senti_posts_total"] == "6"


class OnePartSource(FixedPartitionedSource[Line, None]):
    """A post source whose only partition ends at once, as a live source must not."""

    def list_parts(self) -> list[str]:
        return ["once"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> StatefulSourcePartition[Line, None]:
        return _Ends()


class _Ends(StatefulSourcePartition[Line, None]):
    def next_batch(self) -> list[Line]:
        raise StopIteration

    def snapshot(self) -> None:
        return None


async def test_healthz_fails_with_a_reason_when_a_live_source_ends(serve: Any) -> None:
    """A (synthetic) source whose input ends while the server runs is a dead source:
    ``/healthz`` answers 503 with a JSON reason naming it."""
    async with serve(post_source=OnePartSource()) as senti:
        port = senti.server.port
        while (await asyncio.to_thread(http_get, port, "/healthz"))[0] == 200:
            await asyncio.sleep(0.02)
        status, body = await asyncio.to_thread(http_get, port, "/healthz")
        assert status == 503
        assert json.loads(body) == {
            "status": "down",
            "reason": "synthetic source: its input has ended; no more posts will arrive",
        }
        assert senti.server.flow_running


@pytest.mark.async_timeout(60)
async def test_a_finished_replay_reports_its_posts_and_stays_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --source replay`` (dataflow in a child process): once the file is read,
    ``senti_posts_total`` is its number of posts though no window has closed, and a replay
    ending is no failure (``/healthz`` stays ok)."""
    for name in list(os.environ):
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)
    path = tmp_path / "posts.jsonl"
    written = write_synthetic(
        path, count=300, seed=1, start=datetime(2024, 5, 1, tzinfo=UTC), rate=50
    )
    with path.open("a", encoding="utf-8") as out:
        out.write("not json\n")
    settings = make_settings(source="replay", replay=[path], speed=1000.0)
    server = SentiServer(settings)
    assert isinstance(server.backend, ProcessBackend)
    await server.start()
    try:
        await until_posts(server.port, written)
        while not (server.read_count and server.read_count.finished):
            await asyncio.sleep(0.02)
        assert await asyncio.to_thread(http_get, server.port, "/healthz") == (200, "ok\n")
        assert server.metrics.posts == 0  # what the closed windows say
    finally:
        await server.close()
