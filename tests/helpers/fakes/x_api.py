"""A local fake of the X API v2 filtered stream, over real HTTP on 127.0.0.1.

Endpoints (bearer token checked on each; 401 in X's problem shape otherwise):

* ``GET /2/tweets/search/stream``: HTTP/1.1 chunked, newline-delimited JSON,
  a ``\\r\\n`` keep-alive every ``keepalive`` seconds. Posts given to
  :meth:`FakeXApi.push` are routed to every open stream with the
  ``matching_rules`` they match (a small evaluator of the rule syntax senti
  writes: keywords, quoted phrases, ``#``, ``@``, ``is:retweet``, ``lang:``,
  ``-``, ``OR``, parentheses).
* ``GET/POST /2/tweets/search/stream/rules``: list, add (with ``dry_run``) and
  delete by ids, with X's response shapes: ``DuplicateRule`` and invalid-rule
  errors in ``errors`` with HTTP 200.

Scripted faults: :meth:`fail_next` answers the next stream connections with
HTTP errors (503, 429...); :meth:`drop` cuts open streams mid-chunk;
:meth:`go_silent` makes them send nothing, not even keep-alives;
``resend_on_reconnect`` replays the last posts on each new connection, as X
may after a reconnect. It counts stream connections and client disconnects,
and records every rule operation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeXApi", "RuleOp", "rule_matches"]

STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
_SENT = "2024-05-01T12:00:00.000Z"
_DROP = object()
_SILENCE = object()


@dataclass(frozen=True)
class RuleOp:
    """One recorded rule operation."""

    kind: str
    """``get``, ``add`` or ``delete``."""
    value: str | None = None
    tag: str | None = None
    id: str | None = None
    dry_run: bool = False


@dataclass
class _Stream:
    outbox: queue.Queue[Any] = field(default_factory=queue.Queue)
    silent: bool = False


# Rule evaluation

_TOKEN = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+')


def _post_facts(envelope: dict[str, Any]) -> dict[str, Any]:
    data = envelope.get("data", {})
    text = str(data.get("text", "")).casefold()
    entities = data.get("entities") or {}
    tags = {str(h.get("tag", "")).casefold() for h in entities.get("hashtags", [])}
    refs = data.get("referenced_tweets") or []
    return {
        "text": text,
        "words": set(re.findall(r"\w+", text)) | tags,
        "tags": tags,
        "mentions": set(re.findall(r"@(\w+)", text)),
        "retweet": any(ref.get("type") == "retweeted" for ref in refs),
        "lang": data.get("lang"),
    }


def _atom(token: str, facts: dict[str, Any]) -> bool:
    if token.startswith('"'):
        phrase = json.loads(token).casefold()
        return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", facts["text"]) is not None
    lowered = token.casefold()
    if lowered == "is:retweet":
        return bool(facts["retweet"])
    if lowered.startswith("lang:"):
        return bool(facts["lang"] == lowered[5:])
    if lowered.startswith("#"):
        return lowered[1:] in facts["tags"]
    if lowered.startswith("@"):
        return lowered[1:] in facts["mentions"]
    return lowered in facts["words"]


def rule_matches(value: str, envelope: dict[str, Any]) -> bool:
    """Whether a post envelope matches a rule value (the subset of X's syntax senti uses)."""
    tokens = _TOKEN.findall(value)
    facts = _post_facts(envelope)
    position = 0

    def expression() -> bool:
        nonlocal position
        result = conjunction()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            right = conjunction()
            result = result or right
        return result

    def conjunction() -> bool:
        nonlocal position
        result = True
        while position < len(tokens) and tokens[position] not in (")", "OR"):
            result = unary() and result
        return result

    def unary() -> bool:
        nonlocal position
        token = tokens[position]
        if token == "(":  # noqa: S105 - a rule token, not a secret
            position += 1
            inner = expression()
            position += 1  # ")"
            return inner
        position += 1
        if token.startswith("-") and len(token) > 1:
            return not _atom(token[1:], facts)
        return _atom(token, facts)

    return expression()


def _invalid(value: str) -> str | None:
    """Why X would refuse a rule value (a few of its checks), or ``None``."""
    depth = 0
    for part in _TOKEN.findall(value):
        depth += part == "("
        depth -= part == ")"
        if depth < 0:
            return "Unbalanced parentheses"
    if depth or value.count('"') % 2:
        return "Unbalanced parentheses or quotes"
    positives = [
        t for t in _TOKEN.findall(value) if t not in ("(", ")", "OR") and not t.startswith("-")
    ]
    if not any(not t.casefold().startswith(("is:", "lang:")) for t in positives):
        return "Rules must contain a non-negation term that is not a conjunction-required operator"
    return None


# The server


class FakeXApi:
    """The fake X API; use as a context manager, point ``SENTI_X_API_BASE`` at :attr:`base_url`."""

    def __init__(
        self,
        *,
        token: str = "fake-bearer-token",  # noqa: S107 - a fake's fake credential
        keepalive: float = 0.05,
        max_rule_chars: int = 512,
        reject: Callable[[str], str | None] | None = None,
        resend_on_reconnect: int = 0,
    ) -> None:
        self.token = token
        self.keepalive = keepalive
        self.max_rule_chars = max_rule_chars
        self.reject = reject
        """``value -> detail`` for extra rules to refuse as X would (``None``: accept)."""
        self.resend_on_reconnect = resend_on_reconnect

        self.rules: dict[str, tuple[str, str | None]] = {}
        """Rules by id: (value, tag)."""
        self.rule_ops: list[RuleOp] = []
        self.stream_params: list[dict[str, str]] = []
        self.connections = 0
        """Stream connections answered with HTTP 200."""
        self.attempts = 0
        """Stream connection attempts, refused ones included."""
        self.client_disconnects = 0
        """Streams the client closed (seen as end of file on the socket)."""
        self.delivered: list[str] = []
        """Lines sent on streams, in order (resends included)."""

        self._lock = threading.Condition()
        self._ids = itertools.count(1_500_000_000_000_000_001)
        self._faults: list[int] = []
        self._streams: list[_Stream] = []
        self._history: list[str] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # Lifecycle

    def __enter__(self) -> FakeXApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; open streams end within one keep-alive interval."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Scripting

    def add_rule(self, value: str, tag: str | None = None) -> str:
        """Put a rule on the stream directly (someone else's, or a stale one); its id."""
        with self._lock:
            rule_id = str(next(self._ids))
            self.rules[rule_id] = (value, tag)
            return rule_id

    def fail_next(self, *statuses: int) -> None:
        """Answer the next stream connection attempts with these HTTP statuses, in order."""
        with self._lock:
            self._faults.extend(statuses)

    def drop(self) -> None:
        """Cut every open stream abruptly (no terminating chunk)."""
        self._to_streams(_DROP)

    def go_silent(self) -> None:
        """Make every open stream send nothing more, not even keep-alives."""
        self._to_streams(_SILENCE)

    def push(self, envelope: dict[str, Any], *, force: bool = False) -> list[str]:
        """Route a post to the open streams with the rules it matches; the matched tags.

        ``force`` sends it even if no rule matches (as if another rule did).
        """
        with self._lock:
            matching = [
                {"id": rule_id, "tag": tag}
                for rule_id, (value, tag) in self.rules.items()
                if rule_matches(value, envelope)
            ]
        if not matching and not force:
            return []
        line = json.dumps({**envelope, "matching_rules": matching}, ensure_ascii=False)
        with self._lock:
            self._history.append(line)
        self._to_streams(line)
        return [str(rule["tag"]) for rule in matching]

    def push_raw(self, line: str | bytes) -> None:
        """Send one line exactly as given on the open streams.

        Bytes are sent as they are (invalid UTF-8 too); a string is encoded as
        UTF-8 with its lone surrogates as their three bytes each (invalid UTF-8).
        """
        self._to_streams(line)

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (checked on every change); AssertionError if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake X API: condition not reached in time")
                self._lock.wait(min(left, 0.05))

    def _to_streams(self, item: Any) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.outbox.put(item)

    def _changed(self) -> None:
        with self._lock:
            self._lock.notify_all()

    # Rules endpoint

    def _add(self, items: list[dict[str, Any]], *, dry_run: bool) -> dict[str, Any]:
        data, errors = [], []
        with self._lock:
            values = {value: rule_id for rule_id, (value, _) in self.rules.items()}
            for item in items:
                value, tag = str(item.get("value", "")), item.get("tag")
                self.rule_ops.append(RuleOp("add", value=value, tag=tag, dry_run=dry_run))
                problem = _invalid(value)
                if problem is None and len(value) > self.max_rule_chars:
                    problem = f"Rule is longer than {self.max_rule_chars} characters"
                if problem is None and self.reject is not None:
                    problem = self.reject(value)
                if problem is not None:
                    errors.append(
                        {
                            "value": value,
                            "details": [problem],
                            "title": "UnprocessableEntity",
                            "type": "https://api.twitter.com/2/problems/invalid-rules",
                        }
                    )
                elif value in values:
                    errors.append(
                        {
                            "value": value,
                            "id": values[value],
                            "title": "DuplicateRule",
                            "type": "https://api.twitter.com/2/problems/duplicate-rules",
                        }
                    )
                else:
                    rule_id = str(next(self._ids))
                    rule = {"value": value, "id": rule_id}
                    if tag is not None:
                        rule["tag"] = tag
                    data.append(rule)
            if not dry_run and not errors:
                for rule in data:
                    self.rules[rule["id"]] = (rule["value"], rule.get("tag"))
            created = len(data) if not dry_run and not errors else 0
        body: dict[str, Any] = {
            "meta": {
                "sent": _SENT,
                "summary": {
                    "created": created,
                    "not_created": len(items) - created,
                    "valid": len(items) - sum(1 for e in errors if e["title"] != "DuplicateRule"),
                    "invalid": sum(1 for e in errors if e["title"] != "DuplicateRule"),
                },
            }
        }
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        self._changed()
        return body

    def _delete(self, ids: list[str], *, dry_run: bool) -> dict[str, Any]:
        deleted, errors = 0, []
        with self._lock:
            for rule_id in ids:
                self.rule_ops.append(RuleOp("delete", id=rule_id, dry_run=dry_run))
                if rule_id in self.rules:
                    deleted += 1
                    if not dry_run:
                        del self.rules[rule_id]
                else:
                    errors.append(
                        {
                            "errors": [{"parameters": {}, "message": "Rule does not exist"}],
                            "title": "Invalid Request",
                            "detail": "One or more parameters to your request was invalid.",
                            "type": "https://api.twitter.com/2/problems/invalid-request",
                            "id": rule_id,
                        }
                    )
        body: dict[str, Any] = {
            "meta": {
                "sent": _SENT,
                "summary": {"deleted": deleted, "not_deleted": len(ids) - deleted},
            }
        }
        if errors:
            body["errors"] = errors
        self._changed()
        return body

    def _list(self) -> dict[str, Any]:
        with self._lock:
            self.rule_ops.append(RuleOp("get"))
            data = []
            for rule_id, (value, tag) in self.rules.items():
                rule = {"id": rule_id, "value": value}
                if tag is not None:
                    rule["tag"] = tag
                data.append(rule)
        body: dict[str, Any] = {"meta": {"sent": _SENT, "result_count": len(data)}}
        if data:
            body["data"] = data
        return body

    # HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == STREAM_PATH:
                    with fake._lock:
                        fake.attempts += 1
                if not self._authorised():
                    return
                if url.path == STREAM_PATH:
                    fake._serve_stream(self, url.query)
                elif url.path == RULES_PATH:
                    self._json(200, fake._list())
                else:
                    self._json(404, {"title": "Not Found Error", "status": 404})

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                if not self._authorised():
                    return
                if url.path != RULES_PATH:
                    self._json(404, {"title": "Not Found Error", "status": 404})
                    return
                query = parse_qs(url.query)
                dry_run = query.get("dry_run", ["false"])[0].lower() == "true"
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._json(400, {"title": "Invalid Request", "detail": "not JSON"})
                    return
                if "add" in body:
                    self._json(200, fake._add(list(body["add"]), dry_run=dry_run))
                elif "delete" in body:
                    ids = [str(i) for i in body["delete"].get("ids", [])]
                    self._json(200, fake._delete(ids, dry_run=dry_run))
                else:
                    self._json(400, {"title": "Invalid Request", "detail": "add or delete"})

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.token}":
                    return True
                self._json(
                    401,
                    {
                        "title": "Unauthorized",
                        "type": "about:blank",
                        "status": 401,
                        "detail": "Unauthorized",
                    },
                )
                return False

            def _json(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _serve_stream(self, handler: BaseHTTPRequestHandler, query: str) -> None:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        self._changed()
        if fault is not None:
            body = {
                429: {
                    "title": "ConnectionException",
                    "detail": "This stream is currently at the maximum allowed connection limit.",
                    "connection_issue": "TooManyConnections",
                    "type": "https://api.twitter.com/2/problems/streaming-connection",
                },
            }.get(fault, {"title": "Service Unavailable", "status": fault, "type": "about:blank"})
            handler._json(fault, body, close=True)  # type: ignore[attr-defined]
            return
        stream = _Stream()
        with self._lock:
            self.stream_params.append({k: v[0] for k, v in parse_qs(query).items()})
            self.connections += 1
            if self.connections > 1 and self.resend_on_reconnect:
                for line in self._history[-self.resend_on_reconnect :]:
                    stream.outbox.put(line)
            self._streams.append(stream)
        self._changed()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        sock: socket.socket = handler.connection
        try:
            for item in self._stream_items(stream, sock):
                if item is _DROP:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(item, bytes):
                    data, sent = item + b"\r\n", item.decode("utf-8", "surrogateescape")
                else:
                    data = b"\r\n" if item is None else _encode(item) + b"\r\n"
                    sent = item
                handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                handler.wfile.flush()
                if sent is not None:
                    with self._lock:
                        self.delivered.append(sent)
                    self._changed()
        except OSError:
            with self._lock:
                self.client_disconnects += 1
        finally:
            with self._lock:
                self._streams.remove(stream)
            self._changed()

    def _stream_items(self, stream: _Stream, sock: socket.socket) -> Iterator[Any]:
        """What to write next: a line, ``None`` for a keep-alive, or ``_DROP``."""
        while not self._closing.is_set():
            if _peer_closed(sock):
                raise ConnectionResetError("client closed the stream")
            try:
                item = stream.outbox.get(timeout=self.keepalive)
            except queue.Empty:
                item = None
            if item is _SILENCE:
                stream.silent = True
                continue
            if item is _DROP:
                yield item
                return
            if stream.silent:
                continue
            yield item


def _encode(line: str) -> bytes:
    """UTF-8, lone surrogates included (as the invalid bytes a broken encoder writes)."""
    return line.encode("utf-8", "surrogatepass")


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its end (readable with nothing to read)."""
    with contextlib.suppress(OSError, ValueError):
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sock.recv(1, socket.MSG_PEEK) == b""
        return False
    return True
