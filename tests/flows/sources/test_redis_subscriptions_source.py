"""The Redis subscription source against a real redis-server: hostile entries are rejected.

Debian's ``redis-server`` runs on a free port without persistence; entries are
written with ``XADD`` as anyone with access to the Redis could.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings

from flows.model import RejectCode, Rejected
from flows.routing.matching import Subscription
from flows.runtime.redis_bus import BusKeys, BusSnapshot
from flows.sources.redis_subscriptions import RedisSubscriptionSource
from tests.helpers.mutations import mutated

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed (Debian: apt-get install redis-server)",
    ),
]

TIMEOUT = 5.0


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a free port, without persistence."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.02)
    client.close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


class Reader:
    """One partition of the source, read until what a test waits for comes out."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.keys = BusKeys()
        source = RedisSubscriptionSource(
            url, stop=threading.Event(), snapshot=BusSnapshot("0-0", {})
        )
        self.part = source.build_part("subscriptions", "redis-subscriptions", None)

    def add(self, fields: dict[Any, Any]) -> None:
        self.client.xadd(self.keys.events, fields)

    def until_change(self) -> list[Subscription | Rejected]:
        """Items up to and including the next Subscription."""
        items: list[Subscription | Rejected] = []
        deadline = time.monotonic() + TIMEOUT
        while not items or not isinstance(items[-1], Subscription):
            assert time.monotonic() < deadline, f"no subscription change; got {items}"
            items += self.part.next_batch()
        return items

    def close(self) -> None:
        self.part.close()
        self.client.close()


@pytest.fixture
def reader(redis_url: str) -> Iterator[Reader]:
    """A subscription partition reading a fresh events stream."""
    made = Reader(redis_url)
    yield made
    made.close()


def test_malformed_entries_are_rejected_and_the_next_join_is_read(reader: Reader) -> None:
    """Entries with a field missing, an unknown op, a query that does not parse or bytes that
    are not UTF-8 come out as Rejected records (origin: stream and entry id); a good join
    after them still starts its query."""
    reader.add({"gw": "g1", "op": "join"})
    reader.add({"gw": "g1", "op": "rejoin", "key": "python"})
    reader.add({"gw": "g1", "op": "join", "key": "#"})
    reader.add({"gw": b"\xff\xfe", "op": "join", "key": "python"})
    reader.add({"gw": "g1", "op": "join", "key": "python"})
    *rejected, change = reader.until_change()
    assert change == Subscription(change.query)
    assert change.key == "python"
    assert [item.code for item in rejected if isinstance(item, Rejected)] == [
        RejectCode.MISSING_FIELD,
        RejectCode.UNKNOWN_KIND,
        RejectCode.INVALID_QUERY,
        RejectCode.BAD_ENCODING,
    ]
    assert all(item.origin.startswith("senti:subscriptions:") for item in rejected)


def test_a_counter_that_is_not_a_number_does_not_end_or_break_the_source(
    redis_url: str,
) -> None:
    """A run's done counter overwritten with text is no end, and no crash."""
    client = redis.Redis.from_url(redis_url)
    client.set(BusKeys().done("run1"), "not a number")
    source = RedisSubscriptionSource(
        redis_url, stop=threading.Event(), snapshot=BusSnapshot("0-0", {}), run_id="run1", parts=1
    )
    part = source.build_part("subscriptions", "redis-subscriptions", None)
    try:
        assert part.next_batch() == []
    finally:
        part.close()
        client.close()


def test_mutated_entries_never_stop_the_source(reader: Reader) -> None:
    """After each hostile entry (any field of another type, missing, unknown, huge) a good
    join still comes out; everything before it is a change or a rejection with a code."""
    queries = iter(f"topic{n}" for n in range(10_000))

    @settings(max_examples=60, deadline=None)
    @given(fields=mutated({"gw": "g1", "op": "join", "key": "python"}, {"op": ["part", ""]}))
    def hostile_then_good(fields: Any) -> None:
        if not isinstance(fields, dict) or not fields:
            return  # Redis stores only non-empty field maps
        entry = {_bytes(name): _bytes(value) for name, value in fields.items()}
        reader.add(entry)
        query = next(queries)
        reader.add({"gw": "g2", "op": "join", "key": query})
        *before, change = reader.until_change()
        while isinstance(change, Subscription) and change.key != query:
            *before, change = reader.until_change()
        for item in before:
            if isinstance(item, Rejected):
                assert item.code not in (RejectCode.INTERNAL, RejectCode.OTHER), item

    hostile_then_good()


def _bytes(value: Any) -> bytes:
    """What Redis stores of a value: its bytes (text as UTF-8, surrogates and all)."""
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "surrogatepass")
