"""The tracked queries of every gateway, read from Redis as a dataflow input.

:class:`RedisSubscriptionSource` has one partition (the one worker of the
cluster that builds it reads for everyone). It starts from a
:class:`~flows.runtime.redis_bus.BusSnapshot` (the queries live gateways track, and the
position in the events stream they correspond to), emits those queries, then
turns each ``join``/``leave`` event after that position into a
:class:`~flows.routing.matching.Subscription` when it changes the union. An entry that
is not a valid event (:func:`~flows.runtime.redis_bus.parse_event`) comes out as a
:class:`~flows.model.Rejected` record instead, which the dataflow sends to its
sinks like a rejected post line. It also reaps gateways that stopped beating,
so their queries stop even if no other gateway is left to do it.

:class:`CountedEnd` lets a finite input (replay files, a counted synthetic
stream) end the whole cluster: each post partition that reaches its end
increments a Redis counter, and the subscription source ends once all have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from flows.model import Rejected
from flows.routing.matching import Subscription
from flows.runtime.redis_bus import (
    EVENTS_MAXLEN,
    REAP_SCRIPT,
    SNAPSHOT_SCRIPT,
    BusEvent,
    BusKeys,
    BusSnapshot,
    Tracked,
    event_raw,
    parse_event,
    parse_snapshot,
)
from flows.sources.control import PollingPartition

__all__ = ["CountedEnd", "RedisSubscriptionSource", "take_snapshot"]

POLL: Final = timedelta(milliseconds=20)
MAX_EVENTS: Final = 1000
DONE_TTL_SECONDS: Final = 86_400

X = TypeVar("X")
S = TypeVar("S")


def take_snapshot(client: redis.Redis, keys: BusKeys) -> BusSnapshot:
    """The live gateways' queries and the events position, read atomically."""
    reply = client.eval(SNAPSHOT_SCRIPT, 2, keys.gateways, keys.events, keys.prefix)
    return parse_snapshot(reply)


class _SubscriptionPartition(PollingPartition[Subscription | Rejected, None]):
    def __init__(
        self,
        client: redis.Redis,
        keys: BusKeys,
        snapshot: BusSnapshot,
        *,
        stop: threading.Event,
        run_id: str | None,
        parts: int,
        gateway_ttl: float,
    ) -> None:
        self._client = client
        self._keys = keys
        self._stop = stop
        self._run_id = run_id
        self._parts = parts
        self._ttl_ms = round(gateway_ttl * 1000)
        self._tracked: Tracked = snapshot.tracked()
        self._last_id = snapshot.last_id
        # Re-announce the snapshot: adding a query twice is harmless, and a
        # process of the cluster that started from an older snapshot catches up.
        self._pending = [Subscription(query) for query in self._tracked.active()]
        self._next_reap = time.monotonic()
        self.poll = POLL

    @override
    def fetch(self) -> list[Subscription | Rejected]:
        if self._stop.is_set() or self._finished():
            raise StopIteration
        batch: list[Subscription | Rejected] = list(self._pending)
        self._pending = []
        if time.monotonic() >= self._next_reap:
            self._reap()
        reply: Any = self._client.xread({self._keys.events: self._last_id}, count=MAX_EVENTS)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                event = parse_event(fields)
                if isinstance(event, BusEvent):
                    change = self._tracked.apply(*event)
                    if change is not None:
                        batch.append(change)
                else:
                    code, reason = event
                    origin = f"{self._keys.events}:{self._last_id}"
                    batch.append(Rejected(origin, reason, event_raw(fields), code))
        return batch

    @override
    def snapshot(self) -> None:
        # A restarted dataflow starts from a fresh snapshot of the gateways instead.
        return None

    @override
    def close(self) -> None:
        self._client.close()

    def _finished(self) -> bool:
        if self._run_id is None:
            return False
        done: Any = self._client.get(self._keys.done(self._run_id))
        try:
            return done is not None and int(done) >= self._parts
        except ValueError:  # not a counter: someone else's value, never an end
            return False

    def _reap(self) -> None:
        self._next_reap = time.monotonic() + max(self._ttl_ms / 2000, 0.1)
        keys = self._keys
        self._client.eval(
            REAP_SCRIPT, 2, keys.gateways, keys.events, keys.prefix, self._ttl_ms, EVENTS_MAXLEN
        )


class RedisSubscriptionSource(FixedPartitionedSource[Subscription | Rejected, None]):
    """Subscription changes of all gateways, from the Redis bus (and its rejected entries).

    ``snapshot`` is where to start (default: taken when the partition is
    built); pass the one the flow's initial queries came from. It ends when
    ``stop`` is set or, with a ``run_id``, when ``parts`` post partitions have
    counted their end (:class:`CountedEnd`). Gateways silent for
    ``gateway_ttl`` seconds are reaped.
    """

    def __init__(
        self,
        url: str,
        *,
        stop: threading.Event,
        prefix: str | None = None,
        snapshot: BusSnapshot | None = None,
        run_id: str | None = None,
        parts: int = 0,
        gateway_ttl: float = 6.0,
    ) -> None:
        self.url = url
        self.keys = BusKeys(prefix) if prefix else BusKeys()
        self.stop = stop
        self.start = snapshot
        self.run_id = run_id
        self.parts = parts
        self.gateway_ttl = gateway_ttl

    @override
    def list_parts(self) -> list[str]:
        return ["redis-subscriptions"]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _SubscriptionPartition:
        client = redis.Redis.from_url(self.url)
        snapshot = self.start or take_snapshot(client, self.keys)
        return _SubscriptionPartition(
            client,
            self.keys,
            snapshot,
            stop=self.stop,
            run_id=self.run_id,
            parts=self.parts,
            gateway_ttl=self.gateway_ttl,
        )


class _CountedPartition(StatefulSourcePartition[X, S], Generic[X, S]):
    def __init__(self, inner: StatefulSourcePartition[X, S], count: Any) -> None:
        self._inner = inner
        self._count = count

    @override
    def next_batch(self) -> Iterable[X]:
        try:
            return self._inner.next_batch()
        except StopIteration:
            self._count()
            raise

    @override
    def next_awake(self) -> datetime | None:
        return self._inner.next_awake()

    @override
    def snapshot(self) -> S:
        return self._inner.snapshot()

    @override
    def close(self) -> None:
        self._inner.close()


class CountedEnd(FixedPartitionedSource[X, S], Generic[X, S]):
    """``inner``, incrementing ``{prefix}:run:<run_id>:done`` as each partition ends."""

    def __init__(
        self, inner: FixedPartitionedSource[X, S], url: str, run_id: str, *, prefix: str | None
    ) -> None:
        self.inner = inner
        self.url = url
        self.run_id = run_id
        self.keys = BusKeys(prefix) if prefix else BusKeys()

    @override
    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    @override
    def build_part(
        self, step_id: str, for_part: str, resume_state: S | None
    ) -> _CountedPartition[X, S]:
        key = self.keys.done(self.run_id)

        def count() -> None:
            with redis.Redis.from_url(self.url) as client:
                client.pipeline().incr(key).expire(key, DONE_TTL_SECONDS).execute()

        return _CountedPartition(self.inner.build_part(step_id, for_part, resume_state), count)
