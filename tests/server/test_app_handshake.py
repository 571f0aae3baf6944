"""End to end: clients that never finish their opening handshake cannot hold the server.

``open_timeout`` bounds the handshake: a socket that connects and sends
nothing, or half a request, is closed once it expires, and while such sockets
wait, well-behaved clients still connect and are served.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

HALF_REQUEST = b"GET /track HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


async def closed_by_server(raw: socket.socket) -> bytes:
    """Read until the server closes ``raw``; return what it sent (if anything)."""
    loop = asyncio.get_running_loop()
    received = b""
    while True:
        try:
            chunk = await loop.sock_recv(raw, 4096)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


@pytest.mark.parametrize("sent", [b"", HALF_REQUEST], ids=["silent", "half-request"])
async def test_an_unfinished_handshake_is_closed_after_open_timeout(
    serve: Any, sent: bytes
) -> None:
    """A socket that sends nothing or half a request is disconnected after ``open_timeout``."""
    async with serve(open_timeout=0.3) as senti:
        raw = await senti.open_raw()
        with raw:
            if sent:
                await asyncio.get_running_loop().sock_sendall(raw, sent)
            received = await closed_by_server(raw)
        assert b"101 Switching Protocols" not in received


@pytest.mark.async_timeout(20)
async def test_many_half_open_connections_do_not_block_good_clients(serve: Any) -> None:
    """With 200 stalled handshakes pending, a good client still connects, tracks and is served."""
    async with serve(open_timeout=5.0) as senti:
        loop = asyncio.get_running_loop()
        stalled = [await senti.open_raw() for _ in range(200)]
        try:
            for raw in stalled[::2]:
                await loop.sock_sendall(raw, HALF_REQUEST)
            async with senti.connect(v2=True) as ws:
                await ws.send(json.dumps({"type": "track", "query": "python", "id": 1}))
                assert json.loads(await ws.recv())["type"] == "tracking"
                await senti.until_tracking(ws, "python")
            # The stalled sockets were still waiting (not closed) while it was served.
            for raw in stalled:
                with pytest.raises(BlockingIOError):
                    raw.recv(1)
        finally:
            for raw in stalled:
                raw.close()
