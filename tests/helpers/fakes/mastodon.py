"""A local fake of a Mastodon instance (streaming and timeline APIs): an HTTP server on 127.0.0.1.

It speaks the wire protocol of Mastodon's documentation:

* ``GET /api/v1/streaming/public`` (``/public/local``, ``/hashtag?tag=NAME``)
  answers ``200`` with ``Content-Type: text/event-stream`` and sends each
  status published after the connection opened as ``event: update`` and
  ``data: <status JSON>``, deletes as ``event: delete``, and ``:thump``
  heartbeats.
* ``GET /api/v1/timelines/public`` (``?local=true``) and
  ``/api/v1/timelines/tag/NAME`` answer the published statuses newest first,
  honouring ``since_id``, ``max_id`` and ``limit`` (at most 40).

Scripted faults: :meth:`FakeMastodon.refuse` answers the next requests with
an HTTP status; :meth:`FakeMastodon.drop` cuts every open stream;
:meth:`FakeMastodon.send_raw` writes raw bytes to the open streams (hostile
events). It records each request's path (:attr:`FakeMastodon.requests`) and
``Authorization`` header. :func:`status` builds statuses in the real shape.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["T0", "FakeMastodon", "status"]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed, aware time for tests (never the wall clock)."""

_TIMEOUT = 5.0


def status(
    n: int,
    content: str = "<p>hello</p>",
    *,
    tags: list[str] | None = None,
    language: str | None = "en",
    reblog: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    local: bool = True,
) -> dict[str, Any]:
    """A status in Mastodon's shape, id ``n`` (a string of digits, as Mastodon sends ids)."""
    sid = str(100_000_000 + n)
    domain = "fake.example" if local else "remote.example"
    return {
        "id": sid,
        "uri": f"https://{domain}/users/alice/statuses/{sid}",
        "url": f"https://{domain}/@alice/{sid}",
        "created_at": (created_at or T0 + timedelta(seconds=n))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "content": content,
        "language": language,
        "visibility": "public",
        "sensitive": False,
        "spoiler_text": "",
        "reblog": reblog,
        "account": {"id": "1", "username": "alice", "acct": "alice" if local else "alice@remote"},
        "tags": [{"name": t, "url": f"https://{domain}/tags/{t}"} for t in tags or []],
        "_local": local,
    }


class FakeMastodon:
    """The fake instance; use as a context manager (it serves on a free port)."""

    def __init__(self, *, heartbeat: float = 0.2) -> None:
        self.heartbeat = heartbeat
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        self._lock = threading.Condition()
        self._statuses: list[dict[str, Any]] = []
        self._outbox: list[tuple[dict[str, Any] | None, bytes]] = []
        """(status, frame) sent to every stream open at the time."""
        self._refusals: list[int] = []
        self._drops = 0
        self.streams_opened = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The instance's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeMastodon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._drops += 1
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # Scripting

    def publish(self, *statuses: dict[str, Any]) -> None:
        """Add statuses to the timeline and send them to the open streams."""
        with self._lock:
            for item in statuses:
                self._statuses.append(item)
                self._outbox.append((item, _frame("update", _wire(item))))
            self._lock.notify_all()

    def delete(self, status_id: str) -> None:
        """Send a delete event to the open streams."""
        with self._lock:
            self._outbox.append((None, _frame("delete", status_id)))
            self._lock.notify_all()

    def send_raw(self, data: bytes) -> None:
        """Write raw bytes to the open streams (not kept in the timeline)."""
        with self._lock:
            self._outbox.append((None, data))
            self._lock.notify_all()

    def refuse(self, status_code: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status_code``."""
        with self._lock:
            self._refusals += [status_code] * times

    def drop(self) -> None:
        """Cut every open stream."""
        with self._lock:
            self._drops += 1
            self._lock.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = _TIMEOUT) -> None:
        """Wait until ``condition()`` holds; ``AssertionError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.01)

    # Serving

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append(handler.path)
            self.authorizations.append(handler.headers.get("Authorization"))
            refusal = self._refusals.pop(0) if self._refusals else None
        if refusal is not None:
            _send(handler, refusal, b'{"error":"refused"}', "application/json")
            return
        path = parts.path
        if path.startswith("/api/v1/streaming/"):
            kind = path.removeprefix("/api/v1/streaming/")
            if kind not in ("public", "public/local", "hashtag"):
                _send(handler, 404, b'{"error":"not found"}', "application/json")
                return
            tag = query.get("tag", [""])[0] if kind == "hashtag" else None
            self._stream(handler, local=kind == "public/local", tag=tag)
        elif path == "/api/v1/timelines/public":
            self._timeline(handler, query, local=query.get("local", [""])[0] == "true", tag=None)
        elif path.startswith("/api/v1/timelines/tag/"):
            tag = unquote(path.removeprefix("/api/v1/timelines/tag/"))
            self._timeline(handler, query, local=False, tag=tag)
        else:
            _send(handler, 404, b'{"error":"not found"}', "application/json")

    @staticmethod
    def _wanted(item: dict[str, Any], *, local: bool, tag: str | None) -> bool:
        if local and not item.get("_local", True):
            return False
        if tag is not None:
            names = [
                t.get("name", "").casefold() for t in item.get("tags") or [] if isinstance(t, dict)
            ]
            return tag.casefold() in names
        return True

    def _timeline(
        self,
        handler: BaseHTTPRequestHandler,
        query: dict[str, list[str]],
        *,
        local: bool,
        tag: str | None,
    ) -> None:
        since = int(query.get("since_id", ["0"])[0])
        max_id = int(query["max_id"][0]) if "max_id" in query else None
        limit = min(int(query.get("limit", ["20"])[0]), 40)
        with self._lock:
            chosen = [
                s
                for s in self._statuses
                if isinstance(s, dict)
                and str(s.get("id", "")).isdigit()
                and int(s["id"]) > since
                and (max_id is None or int(s["id"]) < max_id)
                and self._wanted(s, local=local, tag=tag)
            ]
        chosen.sort(key=lambda s: int(s["id"]), reverse=True)
        body = json.dumps([_wire(s) for s in chosen[:limit]]).encode()
        _send(handler, 200, body, "application/json")

    def _stream(self, handler: BaseHTTPRequestHandler, *, local: bool, tag: str | None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Connection", "close")
        handler.end_headers()
        with self._lock:
            generation = self._drops
            sent = len(self._outbox)
            self.streams_opened += 1
        try:
            handler.wfile.write(b":)\n")
            handler.wfile.flush()
            while True:
                with self._lock:
                    if self._drops != generation:
                        return
                    if sent == len(self._outbox):
                        self._lock.wait(self.heartbeat)
                    frames = self._outbox[sent:]
                    sent = len(self._outbox)
                    dropped = self._drops != generation
                if dropped:
                    return
                for item, frame in frames:
                    if item is not None and not self._wanted(item, local=local, tag=tag):
                        continue
                    handler.wfile.write(frame)
                if not frames:
                    handler.wfile.write(b":thump\n")
                handler.wfile.flush()
        except OSError:
            return
        finally:
            handler.close_connection = True


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "_local"}


def _frame(event: str, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {text}\n\n".encode()


def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes, kind: str) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
