"""Scale-out figures: dataflow throughput with 1 vs 2 processes, fan-out with 1 vs 2 gateways.

Starts a private redis-server, then runs ``senti dataflow --source replay -p N`` on
two generated files (one partition each) and times it; then connects clients
spread over 1 or 2 ``senti gateway`` processes and times how long the messages of
one replay take to reach all of them. Wall-clock times include process start-up
(about 2 s), which dominates with ``--quick``. Prints figures and ratios.

    .venv/bin/python -m bench.scale [--posts 20000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
from websockets.asyncio.client import connect

from flows.sources.synthetic import write_synthetic
from server.protocol import SUBPROTOCOL_V2

SENTI = [sys.executable, "-m", "server.cli"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("bench/scale.py needs redis-server (apt-get install redis-server)")
    port = _port()
    argv = [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    while True:
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.02)


def _dataflow(files: list[Path], url: str, processes: int) -> float:
    argv = [*SENTI, "dataflow", "--source", "replay", "-p", str(processes), "--redis-url", url]
    argv += [arg for path in files for arg in ("--replay", str(path))]
    # The replay's default 30 s wait: each process reads its file at its own pace, and
    # each lane keeps its own clock, so the one ahead makes no post of the other late.
    argv += ["--gateway-ttl", "3600"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _pretend_gateway(url: str) -> None:
    """Track ``python`` without a gateway, so the dataflow publishes its matches."""
    client = redis.Redis.from_url(url)
    client.zadd("senti:gateways", {"bench": int(time.time() * 1000)})
    client.hset("senti:gw:bench", "python", 1)


async def _fanout(files: list[Path], url: str, gateways: int, clients: int, want: int) -> float:
    procs = []
    urls = []
    for _ in range(gateways):
        argv = [*SENTI, "gateway", "--host", "127.0.0.1", "--port", "0", "--redis-url", url]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(proc)
        assert proc.stdout is not None
        urls.append((await asyncio.to_thread(proc.stdout.readline)).decode().split()[4])
    conns = []
    for number in range(clients):
        kwargs = {"subprotocols": [SUBPROTOCOL_V2], "max_queue": None}
        conn = await connect(urls[number % gateways], **kwargs)  # type: ignore[arg-type]
        await conn.send(json.dumps({"type": "track", "query": "python"}))
        await conn.recv()
        conns.append(conn)

    async def drain(conn: object) -> None:
        seen = 0
        while seen < want:
            message = json.loads(await conn.recv())  # type: ignore[attr-defined]
            seen += message.get("type") == "post"

    started = time.perf_counter()
    flow = asyncio.create_task(asyncio.to_thread(_dataflow, files, url, 2))
    await asyncio.gather(*(drain(conn) for conn in conns))
    elapsed = time.perf_counter() - started
    await flow
    for conn in conns:
        await conn.close()
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=15)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (smoke test)")
    parser.add_argument("--posts", type=int, default=20_000, help="posts per file (2 files)")
    args = parser.parse_args()
    posts = 1_000 if args.quick else args.posts
    clients = 20 if args.quick else 200
    with tempfile.TemporaryDirectory(prefix="senti-scale-") as tmp:
        folder = Path(tmp)
        start = datetime(2024, 5, 1, tzinfo=UTC)
        files = [folder / f"posts-{seed}.jsonl" for seed in (0, 1)]
        for seed, path in enumerate(files):
            write_synthetic(path, count=posts, seed=seed, start=start, rate=50)
        proc, url = _redis(folder)
        try:
            _pretend_gateway(url)
            one = _dataflow(files, url, 1)
            two = _dataflow(files, url, 2)
            total = 2 * posts
            print(f"dataflow 1 process: {total / one:,.0f} posts/s ({one:.1f} s)")
            print(f"dataflow 2 processes: {total / two:,.0f} posts/s ({two:.1f} s)")
            print(f"throughput ratio 2/1: {one / two:.2f}")
            redis.Redis.from_url(url).delete("senti:gw:bench", "senti:gateways")
            want = _matches(files)
            single = asyncio.run(_fanout(files, url, 1, clients, want))
            double = asyncio.run(_fanout(files, url, 2, clients, want))
            sent = clients * want
            print(f"fan-out 1 gateway: {sent / single:,.0f} messages/s ({single:.1f} s)")
            print(f"fan-out 2 gateways: {sent / double:,.0f} messages/s ({double:.1f} s)")
            print(f"fan-out ratio 2/1: {single / double:.2f}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _matches(files: list[Path]) -> int:
    """Posts matching ``python`` in ``files``, from the one-process ``senti replay``."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        argv = [*SENTI, "replay", *map(str, files), "--track", "python", "--out", out.name]
        subprocess.run(argv, check=True, stderr=subprocess.DEVNULL)
        lines = Path(out.name).read_text("utf-8").splitlines()
    return sum(1 for line in lines if json.loads(line)["type"] == "match")


if __name__ == "__main__":
    main()
