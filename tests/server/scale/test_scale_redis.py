"""Scaled-out senti, all real: Redis, a 2-process dataflow cluster, 2 gateways, clients.

Every component is a real process on 127.0.0.1 (``senti dataflow -p 2``,
``senti gateway``, Debian's ``redis-server`` on a free port with ``--save ''``).
Results are compared with the one-process ``senti replay --out`` on the same
files and queries. Waits are on observable conditions (a line printed, a Redis
key, a set of received messages), each with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from flows.sources.synthetic import write_synthetic
from server.protocol import SUBPROTOCOL_V2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed (Debian: apt-get install redis-server)",
    ),
]

SENTI = [sys.executable, "-m", "server.cli"]
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEARTBEAT = 0.3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a free port, without persistence."""
    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
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


async def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _reference(files: list[Path], out: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """The one-process system: ``senti replay --out`` on the same files and queries."""
    argv = [*SENTI, "replay", *map(str, files), "--track", "python", "--track", "climate"]
    return subprocess.Popen([*argv, "--out", str(out)], cwd=cwd, stderr=subprocess.DEVNULL)


def _expected(out: Path) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {"python": set(), "climate": set()}
    for line in out.read_text("utf-8").splitlines():
        record = json.loads(line)
        if record["type"] == "match":
            sets[record["query"]].add(record["id"])
    return sets


class Gateway:
    """A ``senti gateway`` subprocess and its URL."""

    def __init__(self, redis_url: str, cwd: Path, log: Path) -> None:
        argv = [*SENTI, "gateway", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--redis-url", redis_url, "--heartbeat", str(HEARTBEAT)]
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=log.open("wb"), env=_env()
        )
        self.url = ""
        self.id = ""

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        line = (await asyncio.to_thread(self.proc.stdout.readline)).decode()
        assert line.startswith("senti: gateway "), f"gateway did not start: {line!r}"
        words = line.split()
        self.id, self.url = words[2], words[4]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")}


class Client:
    """A v2 client recording the (query, id) of every post it receives."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.posts: dict[str, set[str]] = {"python": set(), "climate": set()}
        self.task = asyncio.create_task(self._receive())

    @classmethod
    async def open(cls, url: str, *queries: str) -> Client:
        conn = await connect(url, subprotocols=[SUBPROTOCOL_V2])  # type: ignore[list-item]
        for query in queries:
            await conn.send(json.dumps({"type": "track", "query": query}))
            reply = json.loads(await conn.recv())
            assert reply["type"] == "tracking", reply
        return cls(conn)

    async def _receive(self) -> None:
        async for text in self.conn:
            message = json.loads(text)
            if message.get("type") == "post":
                self.posts[message["query"]].add(message["id"])


def _tracked(client: redis.Redis, gateway: Gateway) -> set[str]:
    return {key.decode() for key in client.hkeys(f"senti:gw:{gateway.id}")}  # type: ignore[union-attr]


async def _dataflow(files: list[Path], redis_url: str, cwd: Path, log: Path) -> None:
    argv = [*SENTI, "dataflow", "--source", "replay", "-p", "2", "--redis-url", redis_url]
    argv += [arg for path in files for arg in ("--replay", str(path))]
    argv += ["--gateway-ttl", str(3 * HEARTBEAT)]
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    code = await asyncio.to_thread(proc.wait, 45)
    assert code == 0, log.read_text()[-3000:]


def test_two_gateways_two_dataflow_processes(redis_url: str, tmp_path: Path) -> None:
    """Clients on either gateway get exactly the one-process results for their queries;
    a query tracked on gateway 2 only never reaches gateway 1; killing gateway 1 leaves
    gateway 2 serving, and a restarted dataflow picks up what gateway 2 still tracks."""
    files = [tmp_path / f"posts-{seed}.jsonl" for seed in (0, 2, 1)]
    for number, path in enumerate(files):
        write_synthetic(path, count=300, seed=int(path.stem[-1]), start=START, rate=20 + number)
    first, second = files[:2], files[2:]
    references = [
        _reference(first, tmp_path / "ref-1.jsonl", tmp_path),
        _reference(second, tmp_path / "ref-2.jsonl", tmp_path),
    ]
    asyncio.run(_scenario(redis_url, tmp_path, first, second, references))


async def _scenario(
    redis_url: str,
    tmp_path: Path,
    first: list[Path],
    second: list[Path],
    references: list[subprocess.Popen[bytes]],
) -> None:
    bus = redis.Redis.from_url(redis_url)
    gateways = [Gateway(redis_url, tmp_path, tmp_path / f"gateway-{n}.log") for n in (1, 2)]
    try:
        await asyncio.gather(*(gateway.ready() for gateway in gateways))
        gw1, gw2 = gateways
        a = await Client.open(gw1.url, "python")
        b = await Client.open(gw2.url, "python", "climate")
        await _until(lambda: _tracked(bus, gw1) == {"python"}, "gateway 1's queries in Redis")
        await _until(lambda: _tracked(bus, gw2) == {"python", "climate"}, "gateway 2's queries")

        await _dataflow(first, redis_url, tmp_path, tmp_path / "dataflow-1.log")
        assert all(proc.wait(timeout=45) == 0 for proc in references)
        want = _expected(tmp_path / "ref-1.jsonl")
        assert want["python"]
        assert want["climate"]
        await _until(lambda: a.posts["python"] == want["python"], "gateway 1's python posts")
        await _until(lambda: b.posts == want, "gateway 2's posts")
        assert a.posts["climate"] == set()
        metrics = await asyncio.to_thread(_metrics, gw1)
        assert f"senti_matches_total {len(want['python'])}" in metrics  # read no climate stream

        gw1.proc.send_signal(signal.SIGKILL)
        gw1.proc.wait(timeout=10)
        await _until(lambda: bus.zscore("senti:gateways", gw1.id) is None, "gateway 1 to be reaped")
        assert _tracked(bus, gw2) == {"python", "climate"}

        await _dataflow(second, redis_url, tmp_path, tmp_path / "dataflow-2.log")
        again = _expected(tmp_path / "ref-2.jsonl")
        union = {query: want[query] | again[query] for query in want}
        await _until(lambda: b.posts == union, "gateway 2's posts after gateway 1 died")
        await b.conn.close()
        await a.conn.close()
        for client in (a, b):
            await asyncio.gather(client.task, return_exceptions=True)
    finally:
        for gateway in gateways:
            gateway.stop()
        bus.close()


def _metrics(gateway: Gateway) -> str:
    import urllib.request

    http = gateway.url.replace("ws://", "http://").replace("/track", "/metrics")
    with urllib.request.urlopen(http, timeout=5) as response:  # noqa: S310 - local test server
        body: bytes = response.read()
        return body.decode()
