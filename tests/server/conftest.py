"""Fixtures for end-to-end tests of ``SentiServer``: a real server, real clients, no mocks.

Every server listens on 127.0.0.1 at port 0 and reads posts from a
:class:`~flows.sources.control.QueueSource` the test pushes X API v2 lines
into. Clients are ``websockets.asyncio.client`` connections.

``async def`` tests run under :func:`asyncio.run`, bounded by
:func:`asyncio.timeout` (:data:`DEFAULT_TIMEOUT`, or the ``async_timeout``
marker); see :func:`pytest_pyfunc_call`. No pytest plugin is needed.

Two kinds of causal waiting replace sleeps:

* The dataflow learns a client's query asynchronously, so a post pushed right
  after ``{"track": ...}`` may be routed before the subscription arrives.
  :meth:`Senti.until_tracking` pushes probe posts (the query word plus a
  unique ``#probeN`` hashtag) until the client receives one;
  :meth:`Senti.receive` then skips probe messages still in flight.
* "Nothing arrives" is checked after a barrier: push the post that must not
  be delivered, then a post for another client's query
  (:meth:`Senti.barrier`); once that client has it, the first client's queue
  must stay empty for :data:`QUIET` seconds (:meth:`Senti.expect_silence`).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import pytest
from bytewax.inputs import FixedPartitionedSource
from websockets.asyncio.client import ClientConnection, connect

from flows.model import Line
from flows.sources.control import QueueSource
from server.app import SentiServer
from server.protocol import SUBPROTOCOL_V2
from server.settings import ServerSettings
from tests.helpers.xlines import x_line

DEFAULT_TIMEOUT = 10.0
"""Seconds an ``async def`` test may run before it fails."""

QUIET = 0.2
"""Seconds a client must receive nothing, after a barrier, to count as silent."""

PROBE_INTERVAL = 0.02
"""Seconds between probe posts while waiting for a subscription to reach the dataflow."""

Message = dict[str, Any]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``async_timeout`` marker (``--strict-markers`` is on)."""
    config.addinivalue_line(
        "markers", "async_timeout(seconds): bound an async test (default DEFAULT_TIMEOUT)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with :func:`asyncio.run` under :func:`asyncio.timeout`."""
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    marker = pyfuncitem.get_closest_marker("async_timeout")
    seconds = float(marker.args[0]) if marker else DEFAULT_TIMEOUT
    arguments = {name: pyfuncitem.funcargs[name] for name in inspect.signature(test).parameters}

    async def bounded() -> None:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                await test(**arguments)
        except TimeoutError:
            if deadline.expired():
                pytest.fail(f"the test did not finish within {seconds} s")
            raise

    asyncio.run(bounded())
    return True


class Senti:
    """A running :class:`SentiServer`, the queue its posts come from, and client helpers."""

    def __init__(self, server: SentiServer, posts: QueueSource[Line]) -> None:
        self.server = server
        self.posts = posts
        self._ids = itertools.count(1)

    # Clients

    def connect(self, *, v2: bool = False, path: str = "/track", **options: Any) -> connect:
        """A client of ``path`` (v1 unless ``v2``); use with ``async with`` or ``await``."""
        settings = self.server.settings
        url = f"{settings.scheme}://{settings.host}:{self.server.port}{path}"
        options.setdefault("open_timeout", 5)
        subprotocols = [SUBPROTOCOL_V2] if v2 else None
        return connect(url, subprotocols=subprotocols, **options)

    async def open_raw(self, *, receive_buffer: int | None = None) -> socket.socket:
        """A non-blocking TCP socket connected to the server, for hand-made requests."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", self.server.port))
        return raw

    def upgrade_request(self, path: str = "/track") -> bytes:
        """A websocket opening handshake request (RFC 6455, section 4.1), written by hand."""
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        return (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.server.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        ).encode("ascii")

    @staticmethod
    async def read_status_line(raw: socket.socket) -> str:
        """Read a hand-made request's HTTP response head; return its status line."""
        loop = asyncio.get_running_loop()
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(raw, 1024)
            assert chunk, f"the server closed the connection after {head!r}"
            head += chunk
        return head.split(b"\r\n", 1)[0].decode("ascii")

    # Posts

    def post(
        self,
        text: str,
        *,
        hashtags: list[str] | None = None,
        at: datetime | None = None,
        lang: str = "en",
    ) -> str:
        """Push one live post (created now unless ``at``, in ``lang``); return its id."""
        post_id = str(next(self._ids))
        line = x_line(post_id, text, hashtags=hashtags, at=at or datetime.now(UTC), lang=lang)
        self.posts.push(line)
        return post_id

    def unique(self, prefix: str) -> str:
        """A hashtag (without ``#``) no other post of this server carries."""
        return f"{prefix}{next(self._ids)}"

    # Causality

    @asynccontextmanager
    async def probing(self, word: str) -> AsyncIterator[set[str]]:
        """Push a probe post for ``word`` every :data:`PROBE_INTERVAL` s while the block runs.

        Yields the set of probe hashtags pushed so far (it grows as probes go out).
        """
        tags: set[str] = set()

        async def probe() -> None:
            while True:
                tag = self.unique("probe")
                tags.add(tag)
                self.post(f"{word} #{tag}")
                await asyncio.sleep(PROBE_INTERVAL)  # pacing the probes, not waiting

        prober = asyncio.create_task(probe())
        try:
            yield tags
        finally:
            prober.cancel()
            with suppress(asyncio.CancelledError):
                await prober

    async def until_tracking(self, ws: ClientConnection, word: str) -> list[str]:
        """Push probes for ``word`` until ``ws`` receives one of them; return the texts received.

        Fails at once on an error message, since the query will then never be tracked.
        """
        received: list[str] = []
        async with self.probing(word) as tags:
            while True:
                text = await ws.recv()
                assert isinstance(text, str), f"expected a text frame, got {text!r}"
                received.append(text)
                message = json.loads(text)
                assert message.get("type") != "error", message
                if tags.intersection(message.get("hashtags", ())):
                    return received

    async def barrier(self, ws: ClientConnection, word: str) -> list[Message]:
        """Push a post for ``word`` and wait until ``ws`` (tracking it) receives it.

        Returns the other non-probe messages ``ws`` received before it, summaries included.
        """
        tag = self.unique("barrier")
        self.post(f"{word} #{tag}")
        before: list[Message] = []
        while True:
            message = await self.receive(ws, windows=True)
            if tag in message.get("hashtags", {}):
                return before
            before.append(message)

    async def request(self, ws: ClientConnection, message: Message) -> Message:
        """Send a v2 message; return the next message but probes and summaries (its answer)."""
        await ws.send(json.dumps(message))
        return await self.receive(ws)

    async def sync(self, ws: ClientConnection) -> None:
        """Return once the server has handled every message ``ws`` sent before (v1).

        v1 has no acknowledgements, but a connection's messages are handled in
        order and an invalid one is answered: its error reply is the causal mark.
        """
        await ws.send("{}")
        answer = await self.receive(ws)
        assert answer.get("code") == "invalid-message", answer

    @staticmethod
    async def receive(ws: ClientConnection, *, windows: bool = False) -> Message:
        """The next message for ``ws``, skipping probe posts and (unless ``windows``) summaries."""
        while True:
            text = await ws.recv()
            assert isinstance(text, str), f"expected a text frame, got {text!r}"
            message: Message = json.loads(text)
            if is_probe(message):
                continue
            if message.get("type") == "window" and not windows:
                continue
            return message

    async def expect_silence(self, ws: ClientConnection) -> None:
        """Assert ``ws`` receives nothing (but probes) for :data:`QUIET` s; call after a barrier."""
        try:
            message = await asyncio.wait_for(self.receive(ws), QUIET)
        except TimeoutError:
            return
        pytest.fail(f"expected no message, got {message!r}")


def is_probe(message: Message) -> bool:
    """Whether ``message`` is a post sent by :meth:`Senti.until_tracking`."""
    hashtags = message.get("hashtags")
    return isinstance(hashtags, dict) and any(tag.startswith("probe") for tag in hashtags)


def make_settings(**overrides: Any) -> ServerSettings:
    """Settings for a test server: 127.0.0.1, any free port, day-long windows, no ``.env``."""
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        # Windows close at midnight UTC only, so summaries never surprise a test; the
        # default wait of 5 s keeps posts created "now" from being late for theirs.
        "window": 86_400.0,
        **overrides,
    }
    return ServerSettings(_env_file=None, **options)


Serve = Callable[..., AbstractAsyncContextManager[Senti]]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Serve:
    """``async with serve(**settings) as senti``: a started server, closed on exit.

    Posts come from ``senti.posts`` unless another ``post_source`` is given.

    ``SENTI_*`` variables of the environment are removed so they cannot change
    the settings.
    """
    for name in list(os.environ):
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)

    @asynccontextmanager
    async def serving(
        *, post_source: FixedPartitionedSource[Line, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[Senti]:
        posts: QueueSource[Line] = QueueSource()
        server = SentiServer(make_settings(**overrides), post_source=post_source or posts)
        await server.start()
        try:
            yield Senti(server, posts)
        finally:
            await server.close()

    return serving
