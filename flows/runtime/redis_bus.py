"""The Redis bus between a scaled-out dataflow and its websocket gateways.

No bytewax and no asyncio here: key names, the wire format of messages, the Lua
scripts both sides run, and the pure bookkeeping of who tracks what. The
dataflow's side is :mod:`flows.sinks.redis_fanout` and
:mod:`flows.sources.redis_subscriptions`; the gateways' side is
:mod:`server.gateway`. ``docs/deploy.md`` explains the design::

    dataflow --XADD--> {prefix}:q:<query key>      (one stream per tracked query)
    gateway  --XADD--> {prefix}:subscriptions      (join/leave events, per gateway)
    gateway  --HSET--> {prefix}:gw:<gateway id>    (query key -> local clients)
    gateway  --ZADD--> {prefix}:gateways           (gateway id -> last heartbeat, ms)

A gateway says ``join`` when its first client tracks a query and ``leave`` when
its last one stops; a query is tracked by the dataflow while at least one live
gateway has joined it. A gateway that misses its heartbeats for ``ttl`` is
reaped (by any other gateway or by the dataflow): its queries leave for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from flows.model import (
    Match,
    Polarity,
    Post,
    RejectCode,
    ScoredPost,
    WindowSummary,
    parse_time,
)
from flows.routing.matching import MAX_QUERY_CHARS, InvalidQuery, Query, Subscription, parse_query

__all__ = [
    "DEFAULT_PREFIX",
    "JOIN",
    "LEAVE",
    "BusEvent",
    "BusKeys",
    "BusSnapshot",
    "Tracked",
    "decode_message",
    "encode_message",
    "event_raw",
    "flat_counts",
    "parse_event",
    "parse_snapshot",
]

logger = logging.getLogger("senti.bus")

DEFAULT_PREFIX: Final = "senti"
JOIN: Final = "join"
LEAVE: Final = "leave"

STREAM_MAXLEN: Final = 10_000
"""Approximate entries kept per query stream (``XADD ... MAXLEN ~``)."""
STREAM_TTL_SECONDS: Final = 3600
"""A query stream nobody writes to for this long disappears (``EXPIRE``)."""
EVENTS_MAXLEN: Final = 100_000
"""Approximate subscription events kept; a restarted dataflow reads the snapshot instead."""


@dataclass(frozen=True, slots=True)
class BusKeys:
    """The Redis key names under one prefix (several deployments may share a Redis)."""

    prefix: str = DEFAULT_PREFIX

    @property
    def events(self) -> str:
        """Stream of ``join``/``leave`` events from every gateway."""
        return f"{self.prefix}:subscriptions"

    @property
    def gateways(self) -> str:
        """Sorted set of live gateway ids, scored by their last heartbeat (ms, Redis clock)."""
        return f"{self.prefix}:gateways"

    def gateway(self, gateway_id: str) -> str:
        """Hash of the queries one gateway tracks: query key -> its local client count."""
        return f"{self.prefix}:gw:{gateway_id}"

    def wake(self, gateway_id: str) -> str:
        """Stream a gateway adds to itself to interrupt its blocking read."""
        return f"{self.prefix}:gw:{gateway_id}:wake"

    def query(self, key: str) -> str:
        """Stream of one query's messages (``*``: the all-posts window summaries)."""
        return f"{self.prefix}:q:{key}"

    def done(self, run_id: str) -> str:
        """Counter of the post partitions of run ``run_id`` that reached their end."""
        return f"{self.prefix}:run:{run_id}:done"


# Messages: the JSON of ``senti replay --out`` (Match.message(), WindowSummary.message()).


def encode_message(item: Match | WindowSummary) -> str:
    """One stream entry's ``m`` field."""
    return json.dumps(item.message(), ensure_ascii=False, separators=(",", ":"))


def decode_message(text: str | bytes) -> Match | WindowSummary:
    """The item :func:`encode_message` wrote, with what the protocol encoders use.

    A decoded :class:`~flows.model.Match` has no post text and no terms: the
    gateways only forward it. Raises :class:`ValueError` for anything else,
    whatever is wrong with it (a field missing or of another type, a number
    out of range, nesting too deep).
    """
    try:
        data = json.loads(text)
        if data.get("type") == "window":
            return WindowSummary(
                query=str(data["query"]),
                start=parse_time(data["start"]),
                end=parse_time(data["end"]),
                posts=int(data["posts"]),
                positive=int(data["positive"]),
                negative=int(data["negative"]),
                neutral=int(data["neutral"]),
                top_hashtags=tuple((str(tag), int(count)) for tag, count in data["top_hashtags"]),
                retweets=int(data.get("retweets", 0)),
                unscored=int(data.get("unscored", 0)),
                langs=tuple(
                    (str(lang), int(count)) for lang, count in data.get("langs", {}).items()
                ),
            )
        lang = data.get("lang")
        post = Post(
            id=str(data["id"]),
            text="",
            created_at=parse_time(data["created_at"]),
            lang=None if lang is None else str(lang),
        )
        index, compound = data["polarityIndex"], data["compound"]
        scored = ScoredPost(
            post=post,
            compound=None if compound is None else float(compound),
            polarity=None if index is None else Polarity(int(index)),
            hashtags={str(tag): int(count) for tag, count in data["hashtags"].items()},
        )
        return Match(str(data["query"]), scored)
    except (KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        raise ValueError(f"not a senti message: {type(exc).__name__}") from None


# Who tracks what


@dataclass(slots=True)
class Tracked:
    """The union of the gateways' tracked queries, as changes for the dataflow.

    :meth:`apply` takes one gateway event and returns the
    :class:`~flows.routing.matching.Subscription` the dataflow must see, if any: a query
    starts when its first gateway joins and stops when its last one leaves.
    Repeated events are harmless (a set per query).
    """

    members: dict[str, set[str]] = field(default_factory=dict)
    queries: dict[str, Query] = field(default_factory=dict)

    def apply(self, gateway: str, op: str, key: str) -> Subscription | None:
        """Apply ``gateway``'s ``join``/``leave`` of the query ``key``."""
        if op == JOIN:
            query = self.queries.get(key) or _parse(key)
            if query is None:
                return None
            members = self.members.setdefault(key, set())
            first = not members
            members.add(gateway)
            self.queries[key] = query
            return Subscription(query, active=True) if first else None
        if op == LEAVE:
            joined = self.members.get(key)
            if joined is None or gateway not in joined:
                return None
            joined.discard(gateway)
            if joined:
                return None
            del self.members[key]
            return Subscription(self.queries.pop(key), active=False)
        logger.warning("unknown subscription event", extra={"op": op})
        return None

    def active(self) -> list[Query]:
        """Every query some gateway tracks."""
        return list(self.queries.values())


def _parse(key: str) -> Query | None:
    try:
        return parse_query(key)
    except InvalidQuery:
        logger.warning("invalid query on the bus", extra={"query": key[:200]})
        return None


@dataclass(frozen=True, slots=True)
class BusSnapshot:
    """Tracked queries at one position of the events stream (taken atomically)."""

    last_id: str
    """The last event included; read on after it."""
    gateways: Mapping[str, Sequence[str]]
    """Each live gateway's tracked query keys."""

    def tracked(self) -> Tracked:
        """The union as a :class:`Tracked` (queries that do not parse are left out)."""
        tracked = Tracked()
        for gateway, keys in self.gateways.items():
            for key in keys:
                tracked.apply(gateway, JOIN, key)
        return tracked

    def to_json(self) -> str:
        """Serialised, for a launcher to hand to the processes it starts."""
        return json.dumps({"last_id": self.last_id, "gateways": dict(self.gateways)})

    @classmethod
    def from_json(cls, text: str) -> BusSnapshot:
        """The inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(str(data["last_id"]), {str(k): list(v) for k, v in data["gateways"].items()})


def parse_snapshot(reply: Sequence[Any]) -> BusSnapshot:
    """A :class:`BusSnapshot` from the reply of :data:`SNAPSHOT_SCRIPT`."""
    last_id = _text(reply[0])
    gateways: dict[str, list[str]] = {}
    rest = list(reply[1:])
    for gateway, keys in zip(rest[::2], rest[1::2], strict=True):
        gateways[_text(gateway)] = [_text(key) for key in keys]
    return BusSnapshot(last_id, gateways)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def flat_counts(counts: Mapping[str, int]) -> list[str]:
    """``{key: n}`` as the ``key n key n ...`` arguments of :data:`BEAT_SCRIPT`."""
    return [text for key, n in counts.items() for text in (key, str(n))]


class BusEvent(NamedTuple):
    """One ``join``/``leave`` entry of the events stream, checked."""

    gateway: str
    op: str
    key: str


_MAX_GATEWAY_CHARS: Final = 200
"""Longest gateway id taken (senti's are 12 hex digits)."""


def parse_event(fields: object) -> BusEvent | tuple[RejectCode, str]:
    """The event of one events-stream entry, or ``(code, reason)`` when it is unusable.

    Anyone who can write to Redis can add an entry, so each field is checked:
    ``gw``, ``op`` and ``key`` present (``missing-field``), UTF-8 text
    (``wrong-type``, ``bad-encoding``), not overlong (``too-large``), ``op`` a
    ``join`` or ``leave`` (``unknown-kind``) and ``key`` a query
    (``invalid-query``). Other fields are ignored. Never raises.
    """
    if not isinstance(fields, Mapping):
        return RejectCode.NOT_AN_OBJECT, "entry has no fields"
    values: list[str] = []
    for name in ("gw", "op", "key"):
        value = _event_text(fields, name)
        if isinstance(value, tuple):
            return value
        values.append(value)
    event = BusEvent(*values)
    problem = _event_problem(event)
    return event if problem is None else problem


def _event_text(fields: Mapping[Any, Any], name: str) -> str | tuple[RejectCode, str]:
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        return RejectCode.MISSING_FIELD, f"no {name} field"
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return RejectCode.BAD_ENCODING, f"{name} is not UTF-8"
    if not isinstance(value, str):
        return RejectCode.WRONG_TYPE, f"{name} is {type(value).__name__}, not text"
    return value


def _event_problem(event: BusEvent) -> tuple[RejectCode, str] | None:
    if not event.gateway:
        return RejectCode.MISSING_FIELD, "empty gw"
    if len(event.gateway) > _MAX_GATEWAY_CHARS or len(event.key) > MAX_QUERY_CHARS:
        return RejectCode.TOO_LARGE, "gw or key too long"
    if event.op not in (JOIN, LEAVE):
        return RejectCode.UNKNOWN_KIND, f"op {event.op[:40]!r}"
    try:
        parse_query(event.key)
    except InvalidQuery as exc:
        return RejectCode.INVALID_QUERY, f"key is not a query: {exc}"[:200]
    return None


def event_raw(fields: object, limit: int = 10_000) -> str:
    """An entry's fields as JSON text for the store (bytes shown with escapes), bounded."""
    if not isinstance(fields, Mapping):
        return repr(fields)[:limit]
    shown = {_shown(name): _shown(value) for name, value in fields.items()}
    return json.dumps(shown, ensure_ascii=False)[:limit]


def _shown(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unique(keys: Iterable[str]) -> list[str]:
    """``keys`` without repeats, in order."""
    return list(dict.fromkeys(keys))


# Lua scripts: each runs atomically, so gateways, reapers and snapshots never
# see half an update. They name keys built from the prefix (plain Redis, not
# Redis Cluster, which would need every key in KEYS).

_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_CHANGE: Final = """
-- KEYS: gateway hash, events stream, gateways zset
-- ARGV: gateway id, 'join'|'leave', query key, events maxlen
local present = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not present then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
end
if ARGV[2] == 'join' then
  if redis.call('HSETNX', KEYS[1], ARGV[3], 1) == 0 then return 0 end
else
  if redis.call('HDEL', KEYS[1], ARGV[3]) == 0 then return 0 end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'gw', ARGV[1], 'op', ARGV[2], 'key', ARGV[3])
return 1
"""

_REAP: Final = """
local function reap(zset, events, prefix, ttl, maxlen, now)
  local dead = redis.call('ZRANGEBYSCORE', zset, '-inf', now - ttl)
  for _, gw in ipairs(dead) do
    local hash = prefix .. ':gw:' .. gw
    for _, key in ipairs(redis.call('HKEYS', hash)) do
      redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'gw', gw, 'op', 'leave', 'key', key)
    end
    redis.call('DEL', hash)
    redis.call('ZREM', zset, gw)
  end
  return dead
end
"""

BEAT_SCRIPT: Final = (
    _NOW
    + _REAP
    + """
-- KEYS: gateways zset, gateway hash, events stream
-- ARGV: gateway id, ttl ms, prefix, events maxlen, then key count key count ...
local zset, hash, events = KEYS[1], KEYS[2], KEYS[3]
local gw, ttl, prefix, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dead = reap(zset, events, prefix, ttl, maxlen, now)
redis.call('ZADD', zset, now, gw)
local wanted = {}
for i = 5, #ARGV, 2 do
  local key, count = ARGV[i], ARGV[i + 1]
  wanted[key] = true
  if redis.call('HSET', hash, key, count) == 1 then
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'gw', gw, 'op', 'join', 'key', key)
  end
end
for _, key in ipairs(redis.call('HKEYS', hash)) do
  if not wanted[key] then
    redis.call('HDEL', hash, key)
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'gw', gw, 'op', 'leave', 'key', key)
  end
end
return dead
"""
)
"""A gateway's heartbeat: reap dead gateways, then state exactly which queries it tracks
(joins what a reaper dropped while it was unreachable, leaves what it no longer has)."""

REAP_SCRIPT: Final = (
    _NOW
    + _REAP
    + """
-- KEYS: gateways zset, events stream; ARGV: prefix, ttl ms, events maxlen
return reap(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3], now)
"""
)
"""Drop gateways whose heartbeat is older than the ttl; their queries leave."""

LEAVE_ALL_SCRIPT: Final = """
-- KEYS: gateways zset, gateway hash, events stream; ARGV: gateway id, events maxlen
for _, key in ipairs(redis.call('HKEYS', KEYS[2])) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'gw', ARGV[1], 'op', 'leave', 'key', key)
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""
"""A gateway shutting down cleanly: all its queries leave at once."""

SNAPSHOT_SCRIPT: Final = """
-- KEYS: gateways zset, events stream; ARGV: prefix
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local reply = {'0-0'}
if #last > 0 then reply[1] = last[1][1] end
for _, gw in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(reply, gw)
  table.insert(reply, redis.call('HKEYS', ARGV[1] .. ':gw:' .. gw))
end
return reply
"""
"""Every live gateway's queries and the last event id, in one atomic read."""

LAST_ID_SCRIPT: Final = """
-- KEYS: a stream. Its last entry id, or 0-0: a reader starting here sees only new entries.
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then return last[1][1] end
return '0-0'
"""

CHANGE_SCRIPT: Final = _NOW + _CHANGE
"""One gateway's join or leave: its hash and the events stream change together."""
