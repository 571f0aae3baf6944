"""``senti gateway``: a stateless websocket gateway fed by the dataflow through Redis.

A gateway is a :class:`~server.app.SentiServer` (same routes, security, limits,
protocol and hub) whose backend is :class:`RedisBackend` instead of an
in-process dataflow. Run as many as needed behind any load balancer: each one
only knows its own connections.

* The hub pushes a ``join`` when the gateway's first client tracks a query and
  a ``leave`` when its last one stops; the backend writes them (in order, one
  writer task) to the gateway's hash and the events stream the dataflow reads
  (:mod:`flows.runtime.redis_bus`).
* A reader task reads, with one blocking ``XREAD``, the streams of exactly the
  queries this gateway's clients track, each from the position it had when the
  gateway joined it, and hands the messages to the hub.
* A heartbeat every ``heartbeat`` seconds states the full set of tracked queries
  (repairing anything a Redis outage lost) and reaps gateways silent for three
  heartbeats: a gateway that dies loses only its own connections, and its
  queries stop when no live gateway tracks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import redis.asyncio as aioredis
from pydantic import Field
from redis.exceptions import RedisError

from flows.model import ALL_POSTS, Match, WindowSummary
from flows.routing.matching import Subscription
from flows.runtime.redis_bus import (
    BEAT_SCRIPT,
    CHANGE_SCRIPT,
    EVENTS_MAXLEN,
    JOIN,
    LAST_ID_SCRIPT,
    LEAVE,
    LEAVE_ALL_SCRIPT,
    BusKeys,
    decode_message,
    flat_counts,
)
from server.app import SentiServer
from server.backend import Deliver
from server.settings import ServerSettings

__all__ = ["GatewaySettings", "RedisBackend", "run_gateway"]

logger = logging.getLogger("senti.gateway")

READ_BLOCK_MS: Final = 1000
READ_COUNT: Final = 500
RETRY_SECONDS: Final = 0.5


class GatewaySettings(ServerSettings):
    """:class:`~server.settings.ServerSettings` plus the Redis bus (``SENTI_REDIS_*``)."""

    # Redis bus
    redis_url: str = "redis://localhost:6379/0"
    redis_prefix: str = "senti"
    """Key prefix; deployments sharing one Redis use different prefixes."""
    gateway_id: str | None = None
    """Stable id of this gateway (default: host, pid and a random suffix)."""
    heartbeat: float = Field(default=2.0, gt=0)
    """Seconds between heartbeats; a gateway silent for 3 of them is reaped."""


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBackend:
    """The Redis side of a gateway (a :class:`~server.backend.Backend`).

    ``counts`` (set by :func:`run_gateway` to the hub's ``tracked``) gives the
    per-query client counts the heartbeat publishes in the gateway's hash.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        gateway_id: str | None = None,
        heartbeat: float = 2.0,
    ) -> None:
        self.url = url
        self.keys = BusKeys(prefix) if prefix else BusKeys()
        self.gateway_id = gateway_id or (
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self.heartbeat = heartbeat
        self.ttl = 3 * heartbeat
        self.counts: Callable[[], Mapping[str, int]] | None = None
        self._redis: aioredis.Redis | None = None
        self._reader_redis: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changes: asyncio.Queue[Subscription | None] | None = None
        self._early: list[Subscription] = []
        self._local: dict[str, None] = {}  # query keys this gateway joined, in order
        self._reading: dict[str, str] = {}  # stream -> last id delivered
        self._wake_id = "0-0"
        self._tasks: list[asyncio.Task[None]] = []
        self._last_ok = 0.0
        self._closed = False

    # Backend

    def push(self, item: Subscription) -> None:
        """Queue a join/leave for the writer (called by the hub on the loop)."""
        if self._changes is None or self._loop is None:
            self._early.append(item)
            return
        self._loop.call_soon_threadsafe(self._changes.put_nowait, item)

    async def start(self, deliver: Deliver) -> None:
        """Connect, register, and start the writer, reader and heartbeat tasks."""
        self._loop = asyncio.get_running_loop()
        self._redis = aioredis.Redis.from_url(self.url)
        # Blocking reads get their own connection so writes never wait behind them.
        self._reader_redis = aioredis.Redis.from_url(self.url)
        await self._redis.ping()
        self._ok()
        all_posts = self.keys.query(ALL_POSTS)
        self._reading[all_posts] = await self._last_id(all_posts)
        self._wake_id = await self._last_id(self.keys.wake(self.gateway_id))
        await self._beat()
        self._changes = asyncio.Queue()
        for item in self._early:
            self._changes.put_nowait(item)
        self._early.clear()
        self._tasks = [
            asyncio.create_task(self._write(), name="gateway-writer"),
            asyncio.create_task(self._read(deliver), name="gateway-reader"),
            asyncio.create_task(self._beat_forever(), name="gateway-heartbeat"),
        ]
        logger.info("gateway registered", extra={"gateway": self.gateway_id})

    @property
    def running(self) -> bool:
        """Redis answered within the last ``ttl`` seconds and the tasks run."""
        alive = bool(self._tasks) and all(not task.done() for task in self._tasks)
        return alive and not self._closed and time.monotonic() - self._last_ok < self.ttl

    async def close(self) -> None:
        """Write the pending changes, leave every query, disconnect."""
        if self._closed:
            return
        self._closed = True
        if self._changes is not None and self._tasks:
            self._changes.put_nowait(None)  # the writer drains the queue, then ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), timeout=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            keys = self.keys
            try:
                await self._redis.eval(
                    LEAVE_ALL_SCRIPT,
                    3,
                    keys.gateways,
                    keys.gateway(self.gateway_id),
                    keys.events,
                    self.gateway_id,
                    EVENTS_MAXLEN,
                )
                await self._redis.delete(keys.wake(self.gateway_id))
            except RedisError as exc:  # the others reap us after the ttl
                logger.warning("could not deregister", extra={"reason": str(exc)})
            await self._redis.aclose()
        if self._reader_redis is not None:
            await self._reader_redis.aclose()
        logger.info("gateway deregistered", extra={"gateway": self.gateway_id})

    # Tasks

    async def _write(self) -> None:
        assert self._changes is not None  # noqa: S101 - started in start()
        while True:
            change = await self._changes.get()
            if change is None:
                return
            while True:
                try:
                    await self._apply(change)
                    break
                except RedisError as exc:
                    logger.warning("redis write failed", extra={"reason": str(exc)})
                    if self._closed:
                        break
                    await asyncio.sleep(RETRY_SECONDS)

    async def _apply(self, change: Subscription) -> None:
        assert self._redis is not None  # noqa: S101
        key, keys = change.key, self.keys
        stream = keys.query(key)
        if change.active:
            # Read from here: messages published from now on, none from before.
            start = await self._last_id(stream)
            await self._change(JOIN, key)
            self._local[key] = None
            self._reading[stream] = start
            wake = keys.wake(self.gateway_id)
            await self._redis.xadd(wake, {"w": "1"}, maxlen=1)
        else:
            self._local.pop(key, None)
            self._reading.pop(stream, None)
            await self._change(LEAVE, key)
        self._ok()

    async def _change(self, op: str, key: str) -> None:
        assert self._redis is not None  # noqa: S101
        keys = self.keys
        await self._redis.eval(
            CHANGE_SCRIPT,
            3,
            keys.gateway(self.gateway_id),
            keys.events,
            keys.gateways,
            self.gateway_id,
            op,
            key,
            EVENTS_MAXLEN,
        )

    async def _read(self, deliver: Deliver) -> None:
        assert self._reader_redis is not None  # noqa: S101
        wake = self.keys.wake(self.gateway_id)
        while True:
            streams: dict[Any, Any] = dict(self._reading)
            streams[wake] = self._wake_id
            try:
                reply: Any = await self._reader_redis.xread(
                    streams, count=READ_COUNT, block=READ_BLOCK_MS
                )
            except RedisError as exc:
                logger.warning("redis read failed", extra={"reason": str(exc)})
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._ok()
            items: list[Match | WindowSummary] = []
            for raw_stream, entries in reply or []:
                stream = _text(raw_stream)
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    if stream == wake:
                        self._wake_id = entry_id
                        continue
                    last = self._reading.get(stream)
                    if last is None or _id_key(entry_id) <= _id_key(last):
                        continue  # left, or re-joined later, while this read was blocked
                    self._reading[stream] = entry_id
                    try:
                        items.append(decode_message(fields[b"m"]))
                    except (KeyError, ValueError) as exc:
                        logger.warning(
                            "bad bus message", extra={"stream": stream, "reason": str(exc)}
                        )
            if items:
                deliver(items)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
            except RedisError as exc:
                logger.warning("heartbeat failed", extra={"reason": str(exc)})

    async def _beat(self) -> None:
        assert self._redis is not None  # noqa: S101
        keys = self.keys
        counts = self.counts() if self.counts is not None else {}
        tracked = {key: counts.get(key, 1) for key in self._local}
        dead = await self._redis.eval(
            BEAT_SCRIPT,
            3,
            keys.gateways,
            keys.gateway(self.gateway_id),
            keys.events,
            self.gateway_id,
            round(self.ttl * 1000),
            keys.prefix,
            EVENTS_MAXLEN,
            *flat_counts(tracked),
        )
        self._ok()
        for gateway in dead or []:
            logger.info("reaped a silent gateway", extra={"gateway": _text(gateway)})

    async def _last_id(self, stream: str) -> str:
        assert self._redis is not None  # noqa: S101
        reply = await self._redis.eval(LAST_ID_SCRIPT, 1, stream)
        return _text(reply)

    def _ok(self) -> None:
        self._last_ok = time.monotonic()


async def run_gateway(settings: GatewaySettings) -> None:
    """``senti gateway``: serve clients from the Redis bus until SIGTERM/SIGINT."""
    backend = RedisBackend(
        settings.redis_url,
        prefix=settings.redis_prefix,
        gateway_id=settings.gateway_id,
        heartbeat=settings.heartbeat,
    )
    server = SentiServer(settings, backend=backend)
    backend.counts = server.hub.tracked
    await server.start()
    page = f"{'https' if settings.certfile else 'http'}://{settings.host}:{server.port}/"
    print(
        f"senti: gateway {backend.gateway_id} websocket {server.url}  metrics {page}metrics",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        # Not SentiServer.wait_stopped: a Redis outage turns /healthz to 503 (the
        # load balancer sends new clients elsewhere) but must not end the gateway.
        await stopping.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.close()
