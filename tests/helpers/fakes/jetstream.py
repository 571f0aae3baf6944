"""A local fake of a Bluesky Jetstream instance: a real ``websockets`` server on 127.0.0.1.

``GET /subscribe`` speaks Jetstream's protocol as its README and
``pkg/models`` describe it: one JSON text message per event, ``kind`` one of
``commit`` (``operation`` create/update/delete on a ``collection``),
``identity`` and ``account``, each with ``did`` and ``time_us``. The query
parameters it honours:

* ``wantedCollections`` (repeatable; ``app.bsky.feed.*`` prefixes too) filters
  commits; identity and account events are sent whatever it says.
* ``wantedDids`` (repeatable) filters every event by ``did``.
* ``cursor`` (a ``time_us``) first replays the published events with
  ``time_us >= cursor``, then goes live; without it the connection is live only.
* ``maxMessageSizeBytes`` leaves out events whose JSON is longer.

Scripted faults: :meth:`FakeJetstream.refuse` answers the next handshakes with
an HTTP status; :meth:`FakeJetstream.drop` cuts every open connection without
a close frame. It records each handshake's query and how each connection ended
(:attr:`FakeJetstream.client_closes` counts clean closes the client started).

The builders (:func:`post_event`, :func:`repost_event`...) make events in the
real shapes, with fixed times from :data:`T0_US`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

__all__ = [
    "T0",
    "T0_US",
    "FakeJetstream",
    "account_event",
    "delete_event",
    "identity_event",
    "post_event",
    "repost_event",
    "tag_facet",
    "update_event",
]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, aware, window-aligned time for tests (never the wall clock)."""
T0_US = int(T0.timestamp()) * 1_000_000
""":data:`T0` as a Jetstream ``time_us``."""

_CID = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
_TIMEOUT = 5.0


# Event builders, in Jetstream's shapes


def _iso(time_us: int) -> str:
    moment = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tag_facet(text: str, hashtag: str, *, tag: str | None = None) -> dict[str, Any]:
    """A tag facet over the first ``hashtag`` (``#`` included) in ``text``, in UTF-8 bytes."""
    encoded = text.encode("utf-8")
    start = encoded.index(hashtag.encode("utf-8"))
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": start + len(hashtag.encode("utf-8"))},
        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag or hashtag.lstrip("#")}],
    }


def _commit(
    did: str, time_us: int, *, operation: str, collection: str, rkey: str, record: Any
) -> dict[str, Any]:
    commit: dict[str, Any] = {
        "rev": f"3l{time_us % 10**9:09d}",
        "operation": operation,
        "collection": collection,
        "rkey": rkey,
    }
    if record is not None:
        commit["record"] = record
        commit["cid"] = _CID
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}


def post_event(
    rkey: str,
    text: str,
    *,
    time_us: int,
    did: str = "did:plc:alice",
    created_at: str | None = None,
    langs: Sequence[str] | None = ("en",),
    facets: Sequence[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A commit creating an ``app.bsky.feed.post`` record (``createdAt`` defaults to time_us)."""
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": created_at if created_at is not None else _iso(time_us),
    }
    if langs is not None:
        record["langs"] = list(langs)
    if facets is not None:
        record["facets"] = list(facets)
    record.update(extra)
    return _commit(
        did,
        time_us,
        operation="create",
        collection="app.bsky.feed.post",
        rkey=rkey,
        record=record,
    )


def update_event(
    rkey: str, text: str, *, time_us: int, did: str = "did:plc:alice"
) -> dict[str, Any]:
    """A commit updating a post record."""
    event = post_event(rkey, text, time_us=time_us, did=did)
    event["commit"]["operation"] = "update"
    return event


def delete_event(rkey: str, *, time_us: int, did: str = "did:plc:alice") -> dict[str, Any]:
    """A commit deleting a post record (no record, no cid)."""
    return _commit(
        did, time_us, operation="delete", collection="app.bsky.feed.post", rkey=rkey, record=None
    )


def repost_event(
    rkey: str, subject_uri: str, *, time_us: int, did: str = "did:plc:bob"
) -> dict[str, Any]:
    """A commit creating an ``app.bsky.feed.repost`` record of ``subject_uri``."""
    record = {
        "$type": "app.bsky.feed.repost",
        "subject": {"uri": subject_uri, "cid": _CID},
        "createdAt": _iso(time_us),
    }
    return _commit(
        did,
        time_us,
        operation="create",
        collection="app.bsky.feed.repost",
        rkey=rkey,
        record=record,
    )


def identity_event(*, time_us: int, did: str = "did:plc:alice") -> dict[str, Any]:
    """An identity event (a handle change)."""
    identity = {"did": did, "handle": "alice.bsky.social", "seq": 1409752997, "time": _iso(time_us)}
    return {"did": did, "time_us": time_us, "kind": "identity", "identity": identity}


def account_event(
    *, time_us: int, did: str = "did:plc:alice", active: bool = True
) -> dict[str, Any]:
    """An account event (activation or deactivation)."""
    account = {"active": active, "did": did, "seq": 1409753013, "time": _iso(time_us)}
    return {"did": did, "time_us": time_us, "kind": "account", "account": account}


# The server


def _bytes(encoded: str | bytes) -> bytes:
    return encoded if isinstance(encoded, bytes) else encoded.encode("utf-8", "surrogatepass")


@dataclass(eq=False)  # hashed by identity, kept in a set
class _Subscriber:
    ws: ServerConnection
    collections: list[str]
    dids: set[str]
    max_bytes: int
    queue: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)

    def wants(self, event: dict[str, Any], encoded: str | bytes) -> bool:
        if event.get("raw"):
            return True
        if self.dids and event.get("did") not in self.dids:
            return False
        if self.max_bytes and len(_bytes(encoded)) > self.max_bytes:
            return False
        if event.get("kind") != "commit" or not self.collections:
            return True
        collection = str(event.get("commit", {}).get("collection", ""))
        return any(
            collection.startswith(wanted[:-1]) if wanted.endswith(".*") else collection == wanted
            for wanted in self.collections
        )


class FakeJetstream:
    """A Jetstream instance on 127.0.0.1 (a free port), run on its own thread and loop."""

    def __init__(self, *, filter_collections: bool = True) -> None:
        self.filter_collections = filter_collections
        """``False`` sends commits of every collection, as a server ignoring the filter would."""
        self.requests: list[dict[str, list[str]]] = []
        """The query of every successful handshake, in order."""
        self.handshakes = 0
        """Handshakes attempted, refused ones included."""
        self.client_closes: list[int] = []
        """Close codes of connections the client closed cleanly."""
        self.dropped = 0
        """Connections cut by :meth:`drop`."""
        self._history: list[tuple[dict[str, Any], str | bytes]] = []
        self._subscribers: set[_Subscriber] = set()
        self._refusals: list[int] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Server | None = None
        self.url = ""

    # Lifecycle

    def __enter__(self) -> FakeJetstream:
        self._thread.start()
        self._server = self._call(self._start())
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/subscribe"
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_TIMEOUT)
        self._loop.close()

    async def _start(self) -> Server:
        return await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, ping_interval=None
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_TIMEOUT)

    # Scripting

    def publish(self, *events: dict[str, Any]) -> None:
        """Add events to the history and send them to every open connection that wants them."""
        self._call(self._publish([(event, json.dumps(event)) for event in events]))

    def publish_raw(self, *messages: str | bytes, time_us: int = 0) -> None:
        """Send messages exactly as given (bytes as binary frames) to every connection.

        No filter applies to them; ``time_us`` places them in the history for cursors.
        A string must be encodable as UTF-8 (a text frame is): send bytes otherwise.
        """
        stamp = {"time_us": time_us, "raw": True}
        self._call(self._publish([(stamp, message) for message in messages]))

    async def _publish(self, events: Sequence[tuple[dict[str, Any], str | bytes]]) -> None:
        for event, encoded in events:
            self._history.append((event, encoded))
            for subscriber in self._subscribers:
                if subscriber.wants(event, encoded):
                    subscriber.queue.put_nowait(encoded)

    def drop(self) -> None:
        """Cut every open connection at once, without a close frame."""
        self._call(self._drop())

    async def _drop(self) -> None:
        for subscriber in list(self._subscribers):
            self._subscribers.discard(subscriber)
            subscriber.ws.transport.abort()
            self.dropped += 1

    def refuse(self, *statuses: int) -> None:
        """Answer the next handshakes with these HTTP statuses, one each."""
        with self._lock:
            self._refusals.extend(statuses)

    @property
    def open_connections(self) -> int:
        """Connections open now."""
        return len(self._subscribers)

    def wait(self, condition: Callable[[], bool], timeout: float = _TIMEOUT) -> None:
        """Poll ``condition`` until it holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    # Protocol

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if urlsplit(request.path).path != "/subscribe":
            return ws.respond(404, "not found\n")
        with self._lock:
            status = self._refusals.pop(0) if self._refusals else None
        if status is not None:
            return ws.respond(status, "refused\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        self.requests.append(query)
        subscriber = _Subscriber(
            ws,
            collections=query.get("wantedCollections", []) if self.filter_collections else [],
            dids=set(query.get("wantedDids", [])),
            max_bytes=int(query.get("maxMessageSizeBytes", ["0"])[0]),
        )
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        # The backlog is read and the subscriber registered in one step of the
        # loop, so an event is either in the backlog or in the queue, never lost.
        backlog = [
            encoded
            for event, encoded in self._history
            if cursor is not None
            and event["time_us"] >= cursor
            and subscriber.wants(event, encoded)
        ]
        self._subscribers.add(subscriber)
        sender = asyncio.create_task(self._send(subscriber, backlog))
        try:
            await ws.wait_closed()
        finally:
            sender.cancel()
            self._subscribers.discard(subscriber)
        protocol = ws.protocol
        if protocol.close_rcvd is not None and protocol.close_rcvd_then_sent:
            self.client_closes.append(protocol.close_rcvd.code)

    async def _send(self, subscriber: _Subscriber, backlog: list[str | bytes]) -> None:
        with contextlib.suppress(Exception):  # the connection closed under us
            for encoded in backlog:
                await subscriber.ws.send(encoded)
            while True:
                await subscriber.ws.send(await subscriber.queue.get())
