"""A process of many websocket clients of ``senti serve``, driven over stdin/stdout.

Started by ``bench/latency.py`` and ``bench/fanout.py``, never by hand::

    python -m bench.clients --url ws://127.0.0.1:PORT/track --count 2500 --queries-file q.json

It opens ``--count`` connections (subprotocol ``senti.v2``, no compression, no
``Origin``: the server admits non-browser clients without one),
at most ``--concurrency`` handshakes at a time, prints one JSON line
``{"event": "connected", ...}`` and then obeys one command per stdin line:

* ``track``: client ``i`` tracks query ``i % len(queries)``; answers ``tracking``
  once every acknowledgement arrived;
* ``measure``: forget what was received so far and start recording;
* ``report``: print ``{"event": "report", ...}`` (messages, latencies, open
  connections, CPU seconds), close every connection and exit.

A post's latency is its receive time (wall clock, ``time.time()`` taken per
message, when the frame reader has the message's last frame) minus its
``created_at`` (ms precision, stamped by the live synthetic source when the
post is emitted). Only the timestamp's bytes are decoded.

The connections are not the ``websockets`` client: they are the minimal
RFC 6455 reader of ``bench/wsclient.py`` (hand-written handshake, frames parsed
in place in a reused receive buffer, pings answered; no per-message task,
queue, allocation or UTF-8 decode), so that 1,000 clients receiving tens of
thousands of messages a second cost a fraction of a core instead of starving
the server they measure. The project's tests use the real ``websockets``
client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.wsclient import WebSocket, connect

_CREATED = b'"created_at":"'
_TRACKING = b'"type":"tracking"'
SUBPROTOCOL = "senti.v2"


class Clients:
    """The connections of this process and what they received."""

    def __init__(self, url: str, queries: list[str]) -> None:
        self.url = url
        self.queries = queries
        self.conns: list[WebSocket] = []
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.recording = False
        self.messages = 0
        self.posts = 0
        self.latencies: list[float] = []
        self.acks = 0
        self.acked = asyncio.Event()
        self.closed = 0

    async def open_one(self, limit: asyncio.Semaphore) -> None:
        """Open one connection; its messages go to :meth:`receive`."""
        async with limit:
            try:
                conn = await connect(
                    self.url,
                    subprotocol=SUBPROTOCOL,
                    on_message=self.receive,
                    on_closed=self.lost,
                    open_timeout=60,
                )
            except Exception as exc:
                self.failed += 1
                name = type(exc).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                return
        self.conns.append(conn)

    def receive(self, data: bytearray, start: int, end: int) -> None:
        """One message (``data[start:end]``): count it; record a post's latency while measuring."""
        now = time.time()
        if not self.recording:
            if data.find(_TRACKING, start, end) >= 0:
                self.acks += 1
                if self.acks >= len(self.conns):
                    self.acked.set()
            return
        self.messages += 1
        at = data.find(_CREATED, start, end)
        if at >= 0:
            begin = at + len(_CREATED)
            created = data[begin : data.index(b'"', begin, end)].decode("ascii")
            self.latencies.append(now - datetime.fromisoformat(created).timestamp())
            self.posts += 1

    def lost(self, conn: WebSocket) -> None:
        """A connection closed (either side), once per connection."""
        self.closed += 1

    async def track(self) -> None:
        """Each connection tracks one query, round robin."""
        for number, conn in enumerate(self.conns):
            query = self.queries[number % len(self.queries)]
            conn.send_text(json.dumps({"type": "track", "query": query}))
            if number % 100 == 99:
                await asyncio.sleep(0)  # let acknowledgements in between writes
        await asyncio.wait_for(self.acked.wait(), timeout=60)

    def report(self, seconds: float) -> dict[str, Any]:
        """What was received since ``measure``."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "event": "report",
            "open": sum(1 for conn in self.conns if conn.open),
            "closed": self.closed,
            "messages": self.messages,
            "posts": self.posts,
            "seconds": seconds,
            "latencies": self.latencies,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }


def _say(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def _main(args: argparse.Namespace) -> None:
    queries = json.loads(Path(args.queries_file).read_text()) if args.queries_file else ["x"]
    clients = Clients(args.url, queries)
    limit = asyncio.Semaphore(args.concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(clients.open_one(limit) for _ in range(args.count)))
    _say(
        {
            "event": "connected",
            "ok": len(clients.conns),
            "failed": clients.failed,
            "errors": clients.errors,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        }
    )
    loop = asyncio.get_running_loop()
    measuring_since = time.perf_counter()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "track":
            await clients.track()
            _say({"event": "tracking"})
        elif command == "measure":
            clients.messages = clients.posts = 0
            clients.latencies = []
            clients.recording = True
            measuring_since = time.perf_counter()
            _say({"event": "measuring"})
        elif command in ("report", ""):
            _say(clients.report(time.perf_counter() - measuring_since))
            await asyncio.gather(*(conn.close() for conn in clients.conns))
            return


def main() -> None:
    """Parse the options and run the clients until ``report``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--queries-file", default=None)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
