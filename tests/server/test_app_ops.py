"""End to end, what an operator reads: connection logs, ``/metrics`` post counts, ``/healthz``.

A real :class:`~server.app.SentiServer` on port 0 with real websocket clients
(``serve`` in ``conftest.py``); logs go through senti's own JSON formatter.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

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
