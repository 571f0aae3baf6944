"""A sink publishing each per-query message once, to that query's Redis stream.

Every worker of a scaled-out dataflow writes its own share of the output (each
:class:`~flows.model.PostMatches` and :class:`~flows.model.WindowSummary` leaves the
dataflow on exactly one worker), one pipeline per batch: ``XADD
{prefix}:q:<query> MAXLEN ~ n * m <json>`` and an ``EXPIRE`` so the streams of
queries no one tracks any more go away. The gateways read the streams of the
queries their clients track (:mod:`server.gateway`).
"""

from __future__ import annotations

from typing import Any

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.model import Match, WindowSummary, per_query
from flows.runtime.redis_bus import STREAM_MAXLEN, STREAM_TTL_SECONDS, BusKeys, encode_message

__all__ = ["RedisFanoutSink"]


class _FanoutPartition(StatelessSinkPartition[Any]):
    def __init__(self, client: redis.Redis, keys: BusKeys, maxlen: int, ttl: int) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = maxlen
        self._ttl = ttl

    @override
    def write_batch(self, items: list[Any]) -> None:
        pipe = self._client.pipeline(transaction=False)
        streams: set[str] = set()
        for item in per_query(items):
            if not isinstance(item, Match | WindowSummary):
                continue  # late posts, rejected lines and subscription changes stay here
            stream = self._keys.query(item.query)
            pipe.xadd(stream, {"m": encode_message(item)}, maxlen=self._maxlen, approximate=True)
            streams.add(stream)
        for stream in streams:
            pipe.expire(stream, self._ttl)
        if streams:
            pipe.execute()

    @override
    def close(self) -> None:
        self._client.close()


class RedisFanoutSink(DynamicSink[Any]):
    """Publish matches and window summaries to ``{prefix}:q:<query key>`` streams.

    The connection opens when a worker builds its partition, never before.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        maxlen: int = STREAM_MAXLEN,
        ttl_seconds: int = STREAM_TTL_SECONDS,
    ) -> None:
        self.url = url
        self.keys = BusKeys(prefix) if prefix else BusKeys()
        self.maxlen = maxlen
        self.ttl_seconds = ttl_seconds

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FanoutPartition:
        client = redis.Redis.from_url(self.url)
        return _FanoutPartition(client, self.keys, self.maxlen, self.ttl_seconds)
