"""The live Mastodon source: a timeline's streaming API, resumable by status id.

:class:`MastodonStream` extends :class:`~flows.sources.live.LiveStream`: one
HTTP connection (``http.client``) to ``/api/v1/streaming/public`` (``/local``,
or ``/hashtag?tag=``), read as Server-Sent Events (:mod:`flows.platforms.mastodon`).
Every connection after the first post seen (and the first, when resuming)
backfills what it missed from the REST timeline (``/api/v1/timelines/public``
or ``/tag/NAME``) with ``since_id``, paging back with ``max_id``; what comes
twice is dropped by id. A connection refused with 401, 403 or 404 ends the
source (:class:`MastodonRefused`); other failures reconnect after the
:class:`~flows.platforms.x_backoff.Backoff` waits. Each post's line carries the post
already parsed (:attr:`flows.model.Line.post`) and the status JSON as its text.

:class:`MastodonSettings` reads ``SENTI_MASTODON_URL`` (the instance),
``SENTI_MASTODON_TOKEN`` (optional, sent as a bearer token) and
``SENTI_MASTODON_TIMELINE`` (``public``, ``local`` or ``hashtag:NAME``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from typing_extensions import override

from flows.model import Line, RejectCode
from flows.platforms.mastodon import Mapped, Skipped, SseDecoder, map_event, map_status
from flows.platforms.x_backoff import Failure
from flows.sources.control import SourceError
from flows.sources.live import LiveSource, PositionedStream, read_settings

__all__ = [
    "MastodonError",
    "MastodonRefused",
    "MastodonSettings",
    "MastodonSource",
    "MastodonStream",
    "mastodon_key",
    "settings_from_env",
]

_FATAL_STATUSES: Final = frozenset({400, 401, 403, 404})
_PAGE: Final = 40
"""Statuses per timeline page (Mastodon's maximum)."""


class MastodonError(SourceError):
    """Root of the errors of the Mastodon source; messages are meant for the user."""


class MastodonRefused(MastodonError):
    """The instance refused the source in a way no reconnect fixes (HTTP 401, 404...)."""


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def mastodon_key(url: str, timeline: str) -> str:
    """The cursor key of a Mastodon timeline."""
    return f"mastodon:{url.rstrip('/')}:{timeline}"


class MastodonSettings(BaseSettings):
    """The Mastodon source's options; each field is also ``SENTI_MASTODON_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SENTI_MASTODON_", env_file=".env", extra="ignore", validate_default=True
    )

    url: str = "https://mastodon.social"
    """The instance's base URL."""
    token: SecretStr | None = None
    """An access token; public timelines need none on most instances."""
    timeline: str = "public"
    """``public``, ``local`` or ``hashtag:NAME``."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds without a byte (Mastodon sends a heartbeat every ~10 s) before reconnecting."""
    queue_size: int = Field(default=10_000, ge=1)
    dedup_size: int = Field(default=10_000, ge=1)
    max_event_bytes: int = Field(default=1 << 20, ge=1024)
    """Longest SSE line accepted; a longer event is rejected as too large."""
    backfill_pages: int = Field(default=10, ge=0)
    """Timeline pages (of 40) a reconnect reads back at most."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL such as https://mastodon.social")
        return value.rstrip("/")

    @field_validator("timeline")
    @classmethod
    def _check_timeline(cls, value: str) -> str:
        if value in ("public", "local"):
            return value
        kind, _, tag = value.partition(":")
        if kind == "hashtag" and tag.strip().lstrip("#"):
            return f"hashtag:{tag.strip().lstrip('#')}"
        raise ValueError(f"must be public, local or hashtag:NAME, not {value!r}")

    def streaming_path(self) -> str:
        """The streaming API path of the timeline."""
        if self.timeline == "local":
            return "/api/v1/streaming/public/local"
        if self.timeline.startswith("hashtag:"):
            return "/api/v1/streaming/hashtag?" + urlencode({"tag": self.timeline[8:]})
        return "/api/v1/streaming/public"

    def timeline_path(self, since_id: int, max_id: int | None) -> str:
        """The REST timeline path of statuses after ``since_id`` (before ``max_id``)."""
        query: dict[str, Any] = {"since_id": since_id, "limit": _PAGE}
        if max_id is not None:
            query["max_id"] = max_id
        if self.timeline.startswith("hashtag:"):
            path = "/api/v1/timelines/tag/" + quote(self.timeline[8:], safe="")
        else:
            path = "/api/v1/timelines/public"
            if self.timeline == "local":
                query["local"] = "true"
        return f"{path}?{urlencode(query)}"


class MastodonStream(PositionedStream[MastodonSettings]):
    """One Mastodon timeline subscription on its own thread (see the module docs)."""

    name = "mastodon"

    @property
    def _base(self) -> SplitResult:
        return urlsplit(self.settings.url)

    def _connection(self) -> http.client.HTTPConnection:
        host = self._base.netloc
        timeout = self.settings.timeout
        if self._base.scheme == "https":
            return http.client.HTTPSConnection(host, timeout=timeout)
        return http.client.HTTPConnection(host, timeout=timeout)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "senti"}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        return headers

    def _get(self, conn: http.client.HTTPConnection, path: str, accept: str) -> Any:
        conn.request("GET", self._base.path + path, headers=self._headers(accept))
        response = conn.getresponse()
        if response.status != 200:
            response.read()
            raise _HttpStatus(response.status)
        return response

    @override
    def _endpoint(self) -> str:
        return self.settings.url

    @override
    def _failure(self, error: Exception) -> Failure | None:
        if isinstance(error, _HttpStatus):
            if error.status in _FATAL_STATUSES:
                reason = http.client.responses.get(error.status, "")
                self._fail(
                    MastodonRefused(
                        f"{self.settings.url} refused the connection (HTTP {error.status} {reason})"
                    )
                )
                return None
            reason = http.client.responses.get(error.status, "")
            self._retrying(f"{self.settings.url} answered HTTP {error.status} {reason}")
            return Failure.RATE_LIMIT if error.status == 429 else Failure.HTTP
        if isinstance(error, (OSError, http.client.HTTPException)):
            self._lost(error)
            return Failure.NETWORK
        raise error

    @override
    def _connect_and_read(self) -> None:
        conn = self._connection()
        try:
            response = self._get(conn, self.settings.streaming_path(), "text/event-stream")
            if not self._hold(lambda: _shutdown(conn)):
                return
            self._set_connected(value=True)
            since = self._latest()
            if since is not None:
                self._backfill(since)
            self._read(response)
        finally:
            conn.close()

    def _backfill(self, since: int) -> None:
        """The statuses after ``since`` from the REST timeline, oldest first."""
        statuses: list[Any] = []
        max_id: int | None = None
        conn = self._connection()
        try:
            for _ in range(self.settings.backfill_pages):
                page = json.loads(
                    self._get(
                        conn, self.settings.timeline_path(since, max_id), "application/json"
                    ).read()
                )
                if not isinstance(page, list):
                    self._logger.warning("Mastodon timeline is not a list; backfill skipped")
                    break
                statuses += page
                ids = [m.position for m in map(map_status, page) if m.position is not None]
                if len(page) < _PAGE or not ids:
                    break
                max_id = min(ids)
        finally:
            conn.close()
        for status in reversed(statuses):
            raw = json.dumps(status, ensure_ascii=False)
            self._on_result(map_status(status), raw)

    def _read(self, response: http.client.HTTPResponse) -> None:
        decoder = SseDecoder()
        first = True
        limit = self.settings.max_event_bytes
        for raw_line in _lines(response, limit):
            if first:  # the connection works: waits start over
                self._backoff.reset()
                first = False
            if raw_line is None:
                self._event(None)
                self._reject(
                    _digest("too-large", b""),
                    None,
                    "",
                    RejectCode.TOO_LARGE,
                    f"event longer than {limit} bytes",
                )
                decoder = SseDecoder()
                continue
            event = decoder.feed(raw_line.decode("utf-8", "surrogateescape"))
            if event is not None:
                self._on_result(map_event(event), event.data)

    def _on_result(self, result: Mapped | Skipped, raw: str) -> None:
        self._event(result.position)
        if isinstance(result, Mapped):
            line = Line(raw, origin=f"mastodon:{result.position}", post=result.post)
            self._deliver(result.post.id, result.position, line)
        elif result.code is None:
            self._skip(result.reason)
        else:
            if result.code is RejectCode.INTERNAL:
                self._logger.warning("Mastodon status not mapped: %s", result.reason)
            key = (
                f"mastodon:{result.position}"
                if result.position is not None
                else _digest("no-id", raw.encode("utf-8", "surrogatepass"))
            )
            self._reject(key, result.position, raw, result.code, result.reason)


def _digest(kind: str, raw: bytes) -> str:
    return f"mastodon:{kind}:{hashlib.blake2b(raw, digest_size=8).hexdigest()}"


def _shutdown(conn: http.client.HTTPConnection) -> None:
    """Interrupt a blocking read on ``conn`` from another thread."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _lines(response: http.client.HTTPResponse, limit: int) -> Iterator[bytes | None]:
    """The response's lines without their endings; ``None`` for one over ``limit`` bytes."""
    while True:
        line = response.readline(limit + 1)
        if not line:
            raise ConnectionResetError("the stream ended")
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of it
                line = response.readline(limit + 1)
            yield None
            continue
        yield line.rstrip(b"\r\n")


class MastodonSource(LiveSource[MastodonStream]):
    """The posts of a :class:`MastodonStream` as a bytewax input (one partition, ``"mastodon"``)."""

    part = "mastodon"

    @property
    @override
    def cursor_key(self) -> str:
        """``mastodon:<instance URL>:<timeline>``."""
        return mastodon_key(self.stream.settings.url, self.stream.settings.timeline)


def settings_from_env(**overrides: Any) -> MastodonSettings:
    """:class:`MastodonSettings` from ``SENTI_MASTODON_*``; raises :class:`MastodonError`."""
    return read_settings(MastodonSettings, MastodonError, **overrides)
