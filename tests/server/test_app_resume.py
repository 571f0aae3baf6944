"""``senti serve --source bluesky --store`` restarted on the same store resumes from it.

Real ``senti serve`` subprocesses against the local fake Jetstream
(tests/fakes/jetstream.py), stopped with SIGTERM while the fake publishes, and
started again on the same SQLite store with no recovery directory: the store
ends holding every post the fake sent, once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import IO

import pytest
from websockets.asyncio.client import connect

from flows.runtime.cursors import jetstream_key
from server.protocol import SUBPROTOCOL_V2
from tests.helpers.fakes.jetstream import FakeJetstream, post_event

pytestmark = pytest.mark.slow

TIMEOUT = 60.0
MARGIN_US = 5_000_000
"""The default cursor margin (SENTI_JETSTREAM_CURSOR_MARGIN, 5 s) in microseconds."""


def _serve(store: Path, fake: FakeJetstream, log: IO[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``senti serve --source bluesky`` on ``store``; the process and its websocket URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")}
    env |= {"SENTI_JETSTREAM_URL": fake.url, "PYTHONUTF8": "1", "RUST_BACKTRACE": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--source", "bluesky", "--host",
         "127.0.0.1", "--port", "0", "--store", f"sqlite:///{store}"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert banner.startswith("senti: websocket "), banner
    return process, banner.split()[2]


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0


def _select(store: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _stored_ids(store: Path) -> list[str]:
    if not store.exists():
        return []
    return [str(row[0]) for row in _select(store, "SELECT id FROM posts WHERE text LIKE 'post %'")]


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class _Publisher(threading.Thread):
    """Publishes ``post N bluesky`` events with rising ``time_us`` until told to stop."""

    def __init__(self, fake: FakeJetstream, start_us: int) -> None:
        super().__init__(daemon=True)
        self.fake = fake
        self.start_us = start_us
        self.sent: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            rkey = f"t{n:05d}"
            self.fake.publish(post_event(rkey, f"post {n} bluesky", time_us=self.start_us + n))
            self.sent.append(f"at://did:plc:alice/app.bsky.feed.post/{rkey}")
            n += 1
            time.sleep(0.002)


async def _first_run(
    server: subprocess.Popen[str], url: str, fake: FakeJetstream, store: Path, start_us: int
) -> _Publisher:
    """Track ``bluesky`` (probe posts until one comes back: the query is live), publish,
    and keep the client connected until the server stops with SIGTERM mid-stream."""
    async with connect(url, open_timeout=10, subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "track", "query": "bluesky"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "tracking"
        for n in range(500):
            fake.publish(post_event(f"probe{n}", "probe bluesky", time_us=start_us + n))
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
            except TimeoutError:
                continue
            if "probe" in message.get("id", ""):
                break
        else:
            raise AssertionError("the query never matched")
        publisher = _Publisher(fake, start_us + 1_000_000)
        publisher.start()
        await asyncio.to_thread(_wait, lambda: len(_stored_ids(store)) >= 100, "posts stored")
        await asyncio.to_thread(_stop, server)
        return publisher


def test_a_restart_on_the_same_store_resumes_bluesky_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    """SIGTERM mid-stream, posts published while down, restart: the store has each post once."""
    store = tmp_path / "senti.db"
    now_us = time.time_ns() // 1000
    with FakeJetstream() as fake, (tmp_path / "serve.log").open("w") as log:
        first, url = _serve(store, fake, log)
        try:
            publisher = asyncio.run(_first_run(first, url, fake, store, now_us))
        finally:
            first.kill()
        published_at_stop = len(publisher.sent)
        [(cursor,)] = _select(
            store, f"SELECT position FROM source_cursors WHERE source = '{jetstream_key(fake.url)}'"
        )
        assert _select(store, "SELECT key, active FROM queries") == [("bluesky", 1)]
        _wait(lambda: len(publisher.sent) >= published_at_stop + 100, "posts sent while down")
        handshakes = len(fake.requests)
        second, _ = _serve(store, fake, log)
        try:
            _wait(lambda: len(fake.requests) > handshakes, "the second run connects")
            time.sleep(0.5)  # a few more posts live
            publisher.halt.set()
            publisher.join(TIMEOUT)
            _wait(lambda: len(_stored_ids(store)) >= len(publisher.sent), "the restart catches up")
            _stop(second)
        finally:
            second.kill()
    stored = _stored_ids(store)
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(publisher.sent)  # nothing lost, nothing twice
    assert int(fake.requests[handshakes]["cursor"][0]) == int(str(cursor)) - MARGIN_US
    assert int(str(cursor)) < publisher.start_us + len(publisher.sent)  # posts came after it
    log_text = (tmp_path / "serve.log").read_text()
    assert "panicked" not in log_text
    assert "Traceback" not in log_text
    assert all(line.startswith("{") for line in log_text.splitlines() if line.strip())
