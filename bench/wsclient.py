"""A minimal RFC 6455 websocket client for the benchmark's load clients.

``bench/clients.py`` runs up to thousands of connections in one process, and
in the latency benchmark they receive tens of thousands of messages a second
on the same machine as the server they measure. The ``websockets`` asyncio
client costs ~60 us of CPU per message here (a task, a queue, a future and a
UTF-8 decode per message, and asyncio's ``recv`` of a fresh 256 KiB ``bytes``
per read), so 1,000 of its clients took more than a core away from the
server. This module is just enough of RFC 6455 for a load client, so that the
same 1,000 clients cost a fraction of a core:

* a hand-written opening handshake (``GET`` with ``Upgrade``, a random
  ``Sec-WebSocket-Key``, version 13 and one subprotocol; no ``Origin``, no
  extensions), checking the ``101`` status, ``Sec-WebSocket-Accept``, the
  chosen subprotocol and that no extension was negotiated;
* a frame reader over one reused receive buffer per connection
  (:class:`asyncio.BufferedProtocol`: the transport reads into it with
  ``recv_into``, so a read allocates nothing): 7/16/64-bit payload lengths,
  unmasked server frames, fragmented messages, pings answered with masked
  pongs echoing the payload, close frames answered and the connection dropped;
* masked client frames (text, pong, close) with a fresh ``os.urandom`` key.

A message's payload is handed to ``on_message`` as the buffer and a slice
(``buffer[start:end]``), without copying or decoding it: text frames are not
checked to be valid UTF-8. Nothing here is used by the project's tests, which
talk to the server with the real ``websockets`` client; this is load
generation only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["InvalidHandshake", "InvalidStatus", "MessageHandler", "WebSocket", "connect"]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The RFC 6455 constant appended to the key for ``Sec-WebSocket-Accept``."""

MessageHandler = Callable[[bytearray, int, int], None]
"""Called with ``(buffer, start, end)`` once per complete text or binary message.

The payload is ``buffer[start:end]``; the buffer is reused after the call returns,
so the handler must copy what it keeps.
"""

_TEXT, _BINARY, _CONTINUATION = 0x1, 0x2, 0x0
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_FINAL_DATA = frozenset({0x80 | _TEXT, 0x80 | _BINARY})
"""First header byte (RSV bits masked off) of a complete, unfragmented message."""
_READ_SIZE = 4096
"""Initial receive buffer per connection (posts are ~200 bytes); grows for longer frames."""
_MIN_FREE = 1024
"""Free bytes offered to each ``recv_into``."""
_KEEP_SIZE = 64 * 1024
"""A buffer grown beyond this is replaced by a small one once empty."""
_MAX_HEAD = 64 * 1024
_MAX_MESSAGE = 16 * 2**20
_CLOSE_TIMEOUT = 10.0


class InvalidHandshake(Exception):
    """The server's answer to the opening handshake is not a valid websocket upgrade.

    Named like the ``websockets`` exceptions, so the ``errors`` counts read the same.
    """


class InvalidStatus(InvalidHandshake):
    """The server answered the handshake with a status other than 101 (it refused)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"server rejected the websocket connection: HTTP {status} {reason}")
        self.status = status


def _mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``key`` (one big-int XOR: fine for small payloads)."""
    size = len(payload)
    if not size:
        return b""
    keys = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")


def _encode(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = os.urandom(4)
    return head + key + _mask(payload, key)


def accept_value(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 - required by RFC 6455


class WebSocket(asyncio.BufferedProtocol):
    """One client connection: the handshake, then the frame reader. Open with :func:`connect`."""

    def __init__(
        self,
        request: bytes,
        key: bytes,
        subprotocol: str,
        on_message: MessageHandler,
        on_closed: Callable[[WebSocket], None] | None = None,
    ) -> None:
        self._request = request
        self._accept = accept_value(key)
        self._subprotocol = subprotocol
        self._on_message = on_message
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(_READ_SIZE)
        self._pos = 0
        """Start of the bytes of ``_buffer`` not handled yet."""
        self._end = 0
        """End of the bytes received into ``_buffer``."""
        self._fragments: bytearray | None = None
        self._handshaking = True
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_sent = False
        self.closed = False
        """Whether the server's close frame arrived, the server broke the protocol, or the
        TCP connection ended (sending our own close frame does not count)."""
        self.close_code: int | None = None
        """The code of the server's close frame; 1006 if the connection ended without one."""

    @property
    def open(self) -> bool:
        """Whether the connection is up and neither side started closing it."""
        return not self.closed

    # asyncio.BufferedProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(
                exc or InvalidHandshake("connection closed during the handshake")
            )
        if not self._lost.done():
            self._lost.set_result(None)
        if self.close_code is None:
            self.close_code = 1006
        self._mark_closed()

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self._buffer
        if len(buffer) - self._end < _MIN_FREE:
            self._make_room()
            buffer = self._buffer
        return memoryview(buffer)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._handshaking and not self._handshake():
            return
        pos = self._frames(self._buffer, self._pos, self._end)
        if pos < 0:  # the connection is closing
            return
        if pos == self._end:  # the common case: everything handled, start over
            self._pos = self._end = 0
            if len(self._buffer) > _KEEP_SIZE:  # a big message grew it
                self._buffer = bytearray(_READ_SIZE)
        else:
            self._pos = pos

    def _make_room(self) -> None:
        """Move the unhandled bytes to the front; double the buffer if that is not enough."""
        buffer = self._buffer
        pos, end = self._pos, self._end
        if pos:
            buffer[: end - pos] = buffer[pos:end]
            self._pos, self._end = 0, end - pos
        if len(buffer) - self._end < _MIN_FREE:  # a frame (or response head) longer than it
            buffer.extend(bytes(len(buffer)))

    # Frames in

    def _frames(self, view: bytearray, pos: int, size: int) -> int:
        """Handle the whole frames in ``view[pos:size]``; where the rest starts, -1 if closing."""
        while size - pos >= 2:
            first = view[pos]
            second = view[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                start = pos + 4
                if start > size:
                    break
                length = (view[pos + 2] << 8) | view[pos + 3]
            elif length == 127:
                start = pos + 10
                if start > size:
                    break
                length = int.from_bytes(view[pos + 2 : start], "big")
            if second & 0x80 or first & 0x70:  # a masked server frame, or RSV bits set
                self._fail(1002)
                return -1
            if length > _MAX_MESSAGE:
                self._fail(1009)
                return -1
            end = start + length
            if end > size:
                break
            if (first & 0x8F) in _FINAL_DATA and self._fragments is None:  # the hot path
                self._on_message(view, start, end)
            elif not self._frame(first, bytes(view[start:end])):
                return -1
            pos = end
        return pos

    def _frame(self, first: int, payload: bytes) -> bool:
        """A fragment or a control frame; whether to go on reading."""
        opcode = first & 0x0F
        if opcode < _CLOSE:
            return self._fragment(opcode, bool(first & 0x80), payload)
        if not first & 0x80 or len(payload) > 125 or opcode > _PONG:
            self._fail(1002)  # control frames are final and short; 0xB-0xF are reserved
            return False
        if opcode == _PING:
            self._write(_PONG, payload)
        elif opcode == _CLOSE:
            self._closing(payload)
            return False
        return True

    def _fragment(self, opcode: int, final: bool, payload: bytes) -> bool:
        """One frame of a fragmented message; whether to go on reading."""
        fragments = self._fragments
        if opcode == _CONTINUATION:
            problem = 1002 if fragments is None else 0
            if fragments is not None and len(fragments) + len(payload) > _MAX_MESSAGE:
                problem = 1009
        else:  # a new message inside a fragmented one, or a reserved opcode (3-7)
            problem = 1002 if fragments is not None or opcode > _BINARY else 0
        if problem:
            self._fail(problem)
            return False
        if fragments is None:
            self._fragments = fragments = bytearray(payload)
        else:
            fragments += payload
        if final:
            self._fragments = None
            self._on_message(fragments, 0, len(fragments))
        return True

    # The handshake

    def _handshake(self) -> bool:
        """Check the response once its head arrived; frames start after it."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", 0, self._end)
        if end < 0:
            if self._end > _MAX_HEAD:
                self._reject(InvalidHandshake("response head too long"))
            return False
        head = buffer[:end].decode("latin-1")
        self._pos = end + 4
        status_line, *lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            self._reject(InvalidHandshake(f"bad status line {status_line!r}"))
            return False
        if parts[1] != "101":
            self._reject(InvalidStatus(int(parts[1]), parts[2] if len(parts) > 2 else ""))
            return False
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                self._reject(InvalidHandshake(f"bad header line {line!r}"))
                return False
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        problem = self._check(headers)
        if problem:
            self._reject(InvalidHandshake(problem))
            return False
        self._handshaking = False
        self._opened.set_result(None)
        return True

    def _check(self, headers: dict[str, str]) -> str:
        """What is wrong with a 101 response's headers, or ``""``."""
        if headers.get("upgrade", "").lower() != "websocket":
            return f"Upgrade: {headers.get('upgrade')!r}"
        connection = [token.strip().lower() for token in headers.get("connection", "").split(",")]
        if "upgrade" not in connection:
            return f"Connection: {headers.get('connection')!r}"
        if headers.get("sec-websocket-accept", "").encode("latin-1") != self._accept:
            return "wrong Sec-WebSocket-Accept"
        if headers.get("sec-websocket-protocol") != self._subprotocol:
            chosen = headers.get("sec-websocket-protocol")
            return f"subprotocol {chosen!r} instead of {self._subprotocol!r}"
        if "sec-websocket-extensions" in headers:
            return f"unrequested extensions {headers['sec-websocket-extensions']!r}"
        return ""

    def _reject(self, exc: Exception) -> None:
        if not self._opened.done():
            self._opened.set_exception(exc)
        if self._transport is not None:
            self._transport.abort()

    # Frames out

    def _write(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_encode(opcode, payload))

    def send_text(self, text: str) -> None:
        """Send one text message (a single masked frame); ignored once closing."""
        if not self._close_sent:
            self._write(_TEXT, text.encode("utf-8"))

    def _send_close(self, code: int) -> None:
        if not self._close_sent:
            self._close_sent = True
            self._write(_CLOSE, code.to_bytes(2, "big"))

    def _closing(self, payload: bytes) -> None:
        """The server's close frame: answer it (unless we started) and end the connection."""
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self.close_code = code
        sendable = 1000 <= code < 5000 and code not in (1004, 1005, 1006, 1015)
        self._send_close(code if sendable else 1000)  # echo the server's code
        self._mark_closed()
        if self._transport is not None:
            self._transport.close()

    def _fail(self, code: int) -> None:
        """A protocol violation by the server: close with ``code`` and drop the connection."""
        self._send_close(code)
        self.close_code = 1006
        self._mark_closed()
        if self._transport is not None:
            self._transport.close()

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            if self._on_closed is not None and not self._handshaking:
                self._on_closed(self)

    async def close(self, code: int = 1000) -> None:
        """Send a close frame and wait (up to 10 s) for the connection to end."""
        self._send_close(code)
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), timeout=_CLOSE_TIMEOUT)
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()


async def connect(
    url: str,
    *,
    subprotocol: str,
    on_message: MessageHandler,
    on_closed: Callable[[WebSocket], None] | None = None,
    open_timeout: float = 60.0,
) -> WebSocket:
    """Open a websocket to ``url`` (``ws://`` or ``wss://``) offering only ``subprotocol``.

    Raises :class:`InvalidStatus` if the server refuses, :class:`InvalidHandshake`
    if its answer is not a valid upgrade, :class:`TimeoutError` after
    ``open_timeout`` seconds, or the :class:`OSError` of the TCP connection.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode('ascii')}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
        "\r\n"
    ).encode("ascii")
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(open_timeout):
        transport, protocol = await loop.create_connection(
            lambda: WebSocket(request, key, subprotocol, on_message, on_closed),
            parts.hostname,
            port,
            ssl=ssl.create_default_context() if secure else None,
        )
        try:
            await protocol._opened
        except BaseException:
            transport.abort()
            raise
    return protocol
