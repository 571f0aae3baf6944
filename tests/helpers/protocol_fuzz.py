"""Fuzzing the websocket server with hostile frames: strategies, a server thread, the oracle.

Shared by ``tests/server/test_fuzz.py`` (a few thousand cases) and
``bench/fuzz_protocol.py`` (100,000). One :class:`ServerThread` runs a real
:class:`~server.app.SentiServer` on its own event loop; the test thread talks to
it with blocking ``websockets.sync`` clients:

* :class:`Fuzzer` sends one :class:`Frame` and checks the server's answer
  against :func:`server.protocol.decode_message` (the sans-I/O oracle): a frame
  the protocol rejects gets exactly that error, a frame the transport rejects
  (invalid UTF-8, too big) gets the right close code, and nothing else happens.
  A ping (v2) or ``{}`` (v1) sent after each frame is the causal mark that the
  server has handled it, so no test waits on a timer.
* :class:`Watcher` is a well-behaved client tracking a query; :meth:`Watcher.heartbeat`
  pushes a post for it and waits until it arrives.

The strategies are derived from the protocol's msgspec schemas (the message
types and their fields, as in docs/asyncapi.yaml), then broken: wrong types,
unknown fields, huge numbers and strings, deep nesting, invalid UTF-8, binary,
fragmented and oversized frames.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode as WsCloseCode
from websockets.sync.client import ClientConnection, connect

from flows.model import Line
from flows.sources.control import QueueSource
from server.app import SentiServer
from server.protocol import (
    MAX_REQUEST_ID_CHARS,
    MAX_SAFE_INTEGER,
    SUBPROTOCOL_V2,
    ClientMessage,
    Dialect,
    ErrorCode,
    ProtocolError,
    V1TrackRequest,
    decode_message,
)
from server.settings import ServerSettings
from tests.helpers.xlines import x_line

MAX_MESSAGE_BYTES = 4096
TIMEOUT = 10.0
"""Seconds any single answer may take before the case fails."""

VALID_ANSWER_ERRORS = frozenset(
    {
        ErrorCode.INVALID_QUERY,
        ErrorCode.TOO_MANY_QUERIES,
        ErrorCode.RATE_LIMITED,
        ErrorCode.UNKNOWN_QUERY,
    }
)
"""Errors a well-formed message may still get (about its query, not its form)."""

WATCHED = "heartbeatword"


# The server


class ServerThread:
    """A :class:`SentiServer` on its own thread and event loop, fed from a queue."""

    def __init__(self, **overrides: Any) -> None:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "window": 86_400.0,
            "max_message_bytes": MAX_MESSAGE_BYTES,
            "track_changes_per_minute": 1_000_000,
            **overrides,
        }
        self.settings = ServerSettings(_env_file=None, **options)  # type: ignore[call-arg]
        self.posts: QueueSource[Line] = QueueSource()
        self.server = SentiServer(self.settings, post_source=self.posts)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._closing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._closing = asyncio.Event()
        await self.server.start()
        self._started.set()
        try:
            await self._closing.wait()
        finally:
            await self.server.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._started.wait(TIMEOUT) or self.error is not None:
            raise RuntimeError("the server did not start") from self.error
        return self

    def __exit__(self, *exc: object) -> None:
        closing = self._closing
        if closing is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(closing.set)
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the server did not stop"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/track"

    def healthz(self) -> str:
        """The body of ``/healthz`` (raises for any status but 200)."""
        url = f"http://127.0.0.1:{self.server.port}/healthz"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return str(response.read().decode("ascii"))

    def connect(self, dialect: Dialect) -> ClientConnection:
        """A blocking client of ``dialect``, offering permessage-deflate like browsers do."""
        # Entered at once (the closing is the caller's), as websockets 17.1 asks.
        return connect(
            self.url,
            subprotocols=[SUBPROTOCOL_V2] if dialect is Dialect.V2 else None,  # type: ignore[list-item]
            open_timeout=TIMEOUT,
            close_timeout=1,
            max_size=None,
        ).__enter__()


# Frames


Kind = Literal["text", "bytes-as-text", "binary", "fragments"]


@dataclass(frozen=True)
class Frame:
    """One client message: how it is framed and what it carries."""

    dialect: Dialect
    kind: Kind
    text: str = ""
    data: bytes = b""
    chunks: tuple[str, ...] = ()

    def payload_bytes(self) -> bytes:
        """The message's bytes once reassembled."""
        if self.kind == "text":
            return self.text.encode("utf-8", "surrogatepass")
        if self.kind == "fragments":
            return "".join(self.chunks).encode("utf-8", "surrogatepass")
        return self.data


ids = st.one_of(
    st.none(),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.integers(),  # out of range too
    st.text(max_size=MAX_REQUEST_ID_CHARS + 10),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
queries = st.one_of(
    st.sampled_from(["python", "#covid19", "@nasa", "coffee, tea", "new york", WATCHED]),
    st.text(max_size=300),
    st.text(alphabet='#@," \t\n', max_size=40),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


def _messages_of_schema() -> st.SearchStrategy[dict[str, Any]]:
    """Messages shaped by the v2 schema (msgspec's JSON schema), valid or slightly not."""
    schema = msgspec.json.schema(ClientMessage)
    tags = sorted(
        definition["properties"]["type"]["enum"][0]
        for definition in schema["$defs"].values()
        if "type" in definition.get("properties", {})
    )
    base = st.fixed_dictionaries(
        {"type": st.sampled_from([*tags, "unknown", ""])},
        optional={"query": queries, "id": ids},
    )
    broken = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(tags), json_values)},
        optional={"query": json_values, "id": json_values, "extra": json_values},
    )
    return st.one_of(base, broken)


def _v1_messages() -> st.SearchStrategy[dict[str, Any]]:
    fields = msgspec.structs.fields(V1TrackRequest)
    names = [field.encode_name for field in fields]
    return st.one_of(
        st.fixed_dictionaries({name: st.one_of(st.none(), queries) for name in names}),
        st.dictionaries(st.sampled_from([*names, "type", "query"]), json_values, max_size=3),
    )


def _deep(depth: int, opener: str) -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return opener * depth + closer * depth


texts = st.one_of(
    st.builds(json.dumps, _messages_of_schema()),
    st.builds(json.dumps, _v1_messages()),
    st.builds(json.dumps, json_values),
    st.text(max_size=200),  # mostly not JSON
    st.builds(_deep, st.integers(1, 3000), st.sampled_from(["[", "{"])),
    st.builds(lambda n: '{"type":"ping","id":' + "9" * n + "}", st.integers(1, 4000)),
    st.builds(
        lambda s: json.dumps({"type": "track", "query": s}), st.text(min_size=500, max_size=1500)
    ),
    st.sampled_from(["", " ", "null", "[]", "{}", '{"track":null}', '"\\ud800"', "1e999", "-0"]),
)


def frames(dialect: Dialect | None = None) -> st.SearchStrategy[Frame]:
    """Any client message a hostile client could send, in either dialect."""
    dialects = st.sampled_from(list(Dialect)) if dialect is None else st.just(dialect)
    oversized = st.integers(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES * 4)
    return st.one_of(
        st.builds(Frame, dialects, st.just("text"), text=texts),
        st.builds(Frame, dialects, st.just("text"), text=st.builds(lambda n: "x" * n, oversized)),
        st.builds(Frame, dialects, st.just("bytes-as-text"), data=st.binary(max_size=300)),
        st.builds(
            Frame,
            dialects,
            st.just("bytes-as-text"),
            data=st.builds(lambda t, b: t.encode() + b, texts, st.sampled_from([b"\xff", b"\xc3"])),
        ),
        st.builds(Frame, dialects, st.just("binary"), data=st.binary(max_size=300)),
        st.builds(Frame, dialects, st.just("binary"), data=st.builds(bytes, oversized)),
        st.builds(
            Frame,
            dialects,
            st.just("fragments"),
            chunks=st.one_of(
                texts.flatmap(_split),
                st.lists(st.text(min_size=1, max_size=2000), min_size=2, max_size=6).map(tuple),
            ),
        ),
    )


def _split(text: str) -> st.SearchStrategy[tuple[str, ...]]:
    if len(text) < 2:
        return st.just((text, ""))
    return st.lists(st.integers(1, len(text) - 1), min_size=1, max_size=4, unique=True).map(
        lambda cuts: tuple(text[a:b] for a, b in itertools.pairwise([0, *sorted(cuts), len(text)]))
    )


# The oracle


@dataclass(frozen=True)
class Expected:
    """What the server must do with a frame: reply with an error code, close, or neither."""

    error: ErrorCode | None = None
    close: int | None = None


def expected(frame: Frame) -> Expected:
    """The server's required reaction to ``frame``, from the sans-I/O protocol and RFC 6455."""
    payload = frame.payload_bytes()
    if len(payload) > MAX_MESSAGE_BYTES:
        return Expected(close=WsCloseCode.MESSAGE_TOO_BIG)
    if frame.kind == "binary":
        return Expected(error=ErrorCode.BINARY_NOT_SUPPORTED)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Expected(close=WsCloseCode.INVALID_DATA)
    try:
        decode_message(text, frame.dialect, max_bytes=MAX_MESSAGE_BYTES)
    except ProtocolError as exc:
        return Expected(error=exc.code)
    return Expected()


def _unencodable(frame: Frame) -> bool:
    """Whether the frame holds lone surrogates a client library cannot send as text."""
    try:
        frame.payload_bytes().decode("utf-8")
        if frame.kind == "text":
            frame.text.encode("utf-8")
        if frame.kind == "fragments":
            for chunk in frame.chunks:
                chunk.encode("utf-8")
    except UnicodeError:
        return True
    return False


class Fuzzer:
    """Sends frames to the server and checks each reaction; reconnects after a close."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self._conns: dict[Dialect, ClientConnection] = {}
        self._marks = itertools.count()
        self.cases = 0
        self.closes = 0
        self.errors = 0

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _conn(self, dialect: Dialect) -> ClientConnection:
        conn = self._conns.get(dialect)
        if conn is None:
            conn = self._conns[dialect] = self.server.connect(dialect)
        return conn

    def check(self, frame: Frame) -> Expected:
        """Send ``frame`` and assert the server reacts as :func:`expected` says."""
        if _unencodable(frame):  # send the raw bytes instead, as an attacker would
            frame = Frame(frame.dialect, "bytes-as-text", data=frame.payload_bytes())
        want = expected(frame)
        conn = self._conn(frame.dialect)
        self.cases += 1
        try:
            if frame.kind == "text":
                conn.send(frame.text)
            elif frame.kind == "bytes-as-text":
                conn.send(frame.data, text=True)
            elif frame.kind == "binary":
                conn.send(frame.data)
            else:
                conn.send(list(frame.chunks))
        except ConnectionClosed:  # the server closed before the client finished sending
            assert want.close is not None, f"closed on a frame it should answer: {frame!r}"
        if want.close is not None:
            self._expect_close(frame.dialect, want.close)
            return want
        self._expect_answer(frame.dialect, want.error)
        return want

    def _expect_close(self, dialect: Dialect, code: int) -> None:
        conn = self._conns.pop(dialect)
        closed: ConnectionClosed | None = None
        try:
            while True:
                conn.recv(timeout=TIMEOUT)  # posts or replies sent before the close
        except ConnectionClosed as exc:
            closed = exc
        finally:
            conn.close()
        assert closed is not None
        assert closed.rcvd is not None, "closed without a close frame"
        assert closed.rcvd.code == code, f"close code {closed.rcvd.code}, expected {code}"
        self.closes += 1

    def _expect_answer(self, dialect: Dialect, error: ErrorCode | None) -> None:
        conn = self._conns[dialect]
        mark = f"mark-{next(self._marks)}"
        if dialect is Dialect.V2:
            conn.send(json.dumps({"type": "ping", "id": mark}))
        else:
            conn.send("{}")
        errors: list[str] = []
        while True:
            message = json.loads(conn.recv(timeout=TIMEOUT))
            assert isinstance(message, dict), message
            kind = message.get("type")
            if dialect is Dialect.V2 and kind == "pong" and message.get("id") == mark:
                break
            if kind == "error":
                code = message["code"]
                if (
                    dialect is Dialect.V1
                    and code == ErrorCode.INVALID_MESSAGE
                    and (error != ErrorCode.INVALID_MESSAGE or errors)
                ):
                    break  # the answer to "{}"
                errors.append(code)
                continue
            if dialect is Dialect.V1:
                assert "polarityIndex" in message, message  # a post: v1 has nothing else
            else:
                assert kind in {"tracking", "untracked", "pong", "post", "window"}, message
        self.errors += len(errors)
        if error is not None:
            assert errors == [error], f"expected one {error} error, got {errors}"
        else:
            assert set(errors) <= VALID_ANSWER_ERRORS, errors
            assert len(errors) <= 1, errors


class Watcher:
    """A well-behaved v2 client tracking :data:`WATCHED`; it must keep getting its posts."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.conn = server.connect(Dialect.V2)
        self.conn.send(json.dumps({"type": "track", "query": WATCHED, "id": "watch"}))
        self._ids = itertools.count(1)
        self.beats = 0
        self._tags: set[str] = set()
        answer = json.loads(self.conn.recv(timeout=TIMEOUT))
        assert answer.get("type") == "tracking", answer

    def heartbeat(self) -> None:
        """Push posts for the watched query until one arrives; each must arrive in time."""
        tag = f"beat{next(self._ids)}"
        self._push(tag)
        deadline = datetime.now(UTC).timestamp() + TIMEOUT
        while True:
            remaining = deadline - datetime.now(UTC).timestamp()
            assert remaining > 0, "the well-behaved client stopped receiving its posts"
            try:
                message = json.loads(self.conn.recv(timeout=min(remaining, 0.2)))
            except TimeoutError:
                self._push(tag)  # the subscription may still be on its way to the dataflow
                continue
            if tag in message.get("hashtags", {}):
                self.beats += 1
                return

    def _push(self, tag: str) -> None:
        number = next(self._ids)
        self.server.posts.push(
            x_line(f"w{number}", f"{WATCHED} #{tag}", hashtags=[tag], at=datetime.now(UTC))
        )

    def close(self) -> None:
        self.conn.close()


@contextmanager
def fuzzing(**overrides: Any) -> Iterator[tuple[ServerThread, Fuzzer, Watcher]]:
    """A server, a fuzzing client and a watching client, all closed on exit."""
    with ServerThread(**overrides) as server:
        watcher = Watcher(server)
        watcher.heartbeat()
        fuzzer = Fuzzer(server)
        try:
            yield server, fuzzer, watcher
        finally:
            fuzzer.close()
            watcher.close()
