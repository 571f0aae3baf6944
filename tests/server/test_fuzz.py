"""Hostile frames against one running server: it answers each, closes when it must, stays up.

One server (module scope, its own thread and event loop) takes every case;
a well-behaved client tracking a query on the same server must keep receiving
its posts throughout. The oracle is the sans-I/O protocol itself, see
``tests/protocol_fuzz.py``; ``bench/fuzz_protocol.py`` runs 100,000 cases.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from websockets.frames import CloseCode

from server.protocol import Dialect
from tests.helpers.protocol_fuzz import (
    TIMEOUT,
    Frame,
    Fuzzer,
    ServerThread,
    Watcher,
    frames,
    fuzzing,
)

CASES = 2_000
"""Hypothesis examples in CI; the file stays well under a minute."""
HEARTBEAT_EVERY = 100
"""Cases between two checks that the well-behaved client still receives its posts."""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fuzz() -> Iterator[tuple[ServerThread, Fuzzer, Watcher]]:
    """One server for the whole module, a fuzzing client and a watching client."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SENTI_"):
                patch.delenv(name)
        with fuzzing() as running:
            yield running


@settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(frame=frames())
def test_every_hostile_frame_gets_an_error_or_a_close_and_the_server_stays_up(
    fuzz: tuple[ServerThread, Fuzzer, Watcher], frame: Frame
) -> None:
    """Each frame gets the protocol's error for it, or the RFC close code, and nothing else."""
    server, fuzzer, watcher = fuzz
    fuzzer.check(frame)
    if fuzzer.cases % HEARTBEAT_EVERY == 0:
        watcher.heartbeat()
        assert server.server.flow_running


def test_after_the_fuzzing_the_server_is_healthy_and_the_watcher_served(
    fuzz: tuple[ServerThread, Fuzzer, Watcher],
) -> None:
    """After every case, /healthz is ok and the well-behaved client still gets its posts."""
    server, fuzzer, watcher = fuzz
    watcher.heartbeat()
    assert server.healthz() == "ok\n"
    assert fuzzer.cases >= 1


def _handshake(port: int, extensions: str | None) -> tuple[socket.socket, bytes]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    raw.sendall(
        (
            f"GET /track HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
        ).encode("ascii")
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        assert chunk, f"closed during the handshake after {head!r}"
        head += chunk
    return raw, head.split(b"\r\n\r\n", 1)[0]


def _masked_frame(first_byte: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        length = struct.pack("!B", 0x80 | len(payload))
    else:
        length = struct.pack("!BH", 0x80 | 126, len(payload))
    return bytes([first_byte]) + length + mask + masked


def _close_code(raw: socket.socket) -> int:
    """Read frames until the server's close frame; return its code."""
    data = b""
    while True:
        chunk = raw.recv(4096)
        assert chunk, f"the connection ended without a close frame after {data!r}"
        data += chunk
        while len(data) >= 2:
            opcode, length = data[0] & 0x0F, data[1] & 0x7F
            if len(data) < 2 + length:
                break
            if opcode == 0x8:
                code: int = struct.unpack("!H", data[2:4])[0]
                return code
            data = data[2 + length :]


@pytest.mark.parametrize(
    ("inflated", "code"),
    [
        (3_000_000, CloseCode.PROTOCOL_ERROR),  # ~3 KB on the wire: RSV1 is refused
        (30_000_000, CloseCode.MESSAGE_TOO_BIG),  # ~30 KB: refused by size, never inflated
    ],
)
def test_deflate_is_not_negotiated_and_a_compressed_bomb_is_closed(
    fuzz: tuple[ServerThread, Fuzzer, Watcher], inflated: int, code: CloseCode
) -> None:
    """An offer of permessage-deflate gets no extension; a compressed (RSV1) bomb is closed."""
    server, _, watcher = fuzz
    raw, head = _handshake(server.server.port, "permessage-deflate; client_max_window_bits")
    with raw:
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"sec-websocket-extensions" not in head.lower()
        bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = bomb.compress(b"[" * inflated) + bomb.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 65_536
        raw.sendall(_masked_frame(0x80 | 0x40 | 0x1, payload))  # FIN, RSV1, text
        assert _close_code(raw) == code
    watcher.heartbeat()


def test_a_library_client_offering_compression_gets_none(
    fuzz: tuple[ServerThread, Fuzzer, Watcher],
) -> None:
    """The websockets client offers permessage-deflate by default; the server accepts without."""
    server, _, _ = fuzz
    with server.connect(Dialect.V2) as conn:
        assert conn.protocol.extensions == []
