"""End to end: shutting ``senti serve`` down closes clients with 1001 and flushes the store.

One test closes an in-process ``SentiServer``; the other starts the real
``senti serve`` command as a subprocess (synthetic source, SQLite store, client
token from the environment) and sends it SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from flows.store import open_store

TOKEN = "shutdown-test-token-9f2c"  # noqa: S105 -- a test token, not a secret
FIRST_LINE = re.compile(r"senti: websocket (ws://127\.0\.0\.1:(\d+)/track) ")


async def test_close_sends_1001_and_flushes_windows_to_the_store(
    serve: Any, tmp_path: Path
) -> None:
    """``SentiServer.close()`` closes clients with 1001, then the dataflow flushes every window."""
    store = f"sqlite:///{tmp_path / 'senti.db'}"
    async with serve(store=store) as senti, senti.connect(v2=True) as ws:
        await ws.send(json.dumps({"type": "track", "query": "python"}))
        assert (await senti.receive(ws))["type"] == "tracking"
        await senti.until_tracking(ws, "python")
        tags = [senti.unique("m") for _ in range(3)]
        for tag in tags:
            senti.post(f"python #{tag}")
        for _ in tags:
            await senti.receive(ws)

        await senti.server.close()
        async for _ in ws:  # probes still in flight; ends at a 1000 or 1001 close
            pass
        assert ws.close_code == 1001
        assert not senti.server.flow_running

    with open_store(store, readonly=True) as reader:
        counts = reader.counts()
        windows = reader.windows("python")  # day-long: open until the input ended
    assert counts.matches >= len(tags)
    assert windows
    assert sum(window.posts for window in windows) == counts.matches


async def start_senti_serve(
    tmp_path: Path, store: str, *, new_session: bool = False
) -> asyncio.subprocess.Process:
    """``senti serve`` on 127.0.0.1, any free port, a synthetic source and a client token
    (in a process group of its own with ``new_session``)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SENTI_")}
    env["SENTI_CLIENT_TOKEN"] = TOKEN
    # The options of the command line; see ``senti serve --help``.
    options = ["--port", "0", "--host", "127.0.0.1", "--rate", "200", "--window", "1"]
    return await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "server.cli", "serve", *options, "--store", store],
        cwd=tmp_path,  # no .env from the developer's checkout
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=new_session,
    )


@contextlib.asynccontextmanager
async def killed_on_failure(process: asyncio.subprocess.Process) -> AsyncIterator[None]:
    """Kill the process if the test leaves this block while it still runs."""
    try:
        yield
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def exit_output(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """Stdout and stderr once the process exited, which must be with 0 within 10 s."""
    async with asyncio.timeout(10):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode("utf-8", "replace")
    return stdout.decode("utf-8"), stderr.decode("utf-8")


def log_events(logs: str) -> list[str]:
    """The ``event`` of every JSON log line."""
    return [json.loads(line)["event"] for line in logs.splitlines() if line.startswith("{")]


def assert_flushed(store: str) -> None:
    """The store holds matches and closed windows for ``python``, the query a client tracked."""
    with open_store(store, readonly=True) as reader:
        counts = reader.counts()
        python_windows = reader.windows("python")
        keys = {query.key for query in reader.queries()}
    assert counts.posts > 0
    assert counts.matches > 0
    assert counts.windows > 0
    assert python_windows
    assert sum(window.posts for window in python_windows) > 0
    assert "python" in keys


@pytest.mark.async_timeout(40)
async def test_sigterm_closes_clients_with_1001_flushes_the_store_and_exits_0(
    tmp_path: Path,
) -> None:
    """On SIGTERM ``senti serve`` closes clients with 1001, flushes its store and exits 0."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    process = await start_senti_serve(tmp_path, store)
    async with killed_on_failure(process):
        assert process.stdout is not None
        first_line = (await process.stdout.readline()).decode("utf-8")
        match = FIRST_LINE.match(first_line)
        assert match, f"unexpected first line {first_line!r}"
        url = match.group(1)
        assert int(match.group(2)) != 0

        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, open_timeout=5):
                pass
        assert refused.value.response.status_code == 401
        async with connect(f"{url}?token={TOKEN}", open_timeout=5) as ws:
            await ws.send(json.dumps({"track": "climate"}))
            await ws.recv()

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with connect(url, additional_headers=bearer, open_timeout=5) as ws:
            await ws.send(json.dumps({"track": "python"}))
            message = json.loads(await ws.recv())
            assert set(message) == {"polarityIndex", "hashtags"}

            process.send_signal(signal.SIGTERM)
            async for _ in ws:  # posts still in flight; ends at a 1000 or 1001 close
                pass
            assert ws.close_code == 1001

        stdout, logs = await exit_output(process)

    events = log_events(logs)
    assert "listening" in events
    assert "stopped" in events
    assert TOKEN not in logs
    assert TOKEN not in first_line + stdout
    assert_flushed(store)


@pytest.mark.async_timeout(40)
async def test_ctrl_c_to_the_whole_process_group_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C signals every process of the group: the server, its dataflow process and the
    store writer. The dataflow leaves the stop to the server, so nothing fails and the
    store is flushed."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    process = await start_senti_serve(tmp_path, store, new_session=True)
    async with killed_on_failure(process):
        assert process.stdout is not None
        match = FIRST_LINE.match((await process.stdout.readline()).decode("utf-8"))
        assert match
        async with connect(f"{match.group(1)}?token={TOKEN}", open_timeout=5) as ws:
            await ws.send(json.dumps({"track": "python"}))
            await ws.recv()
            os.killpg(process.pid, signal.SIGINT)
            async for _ in ws:
                pass
            assert ws.close_code == 1001
        _, logs = await exit_output(process)
    events = log_events(logs)
    assert "dataflow failed" not in events, logs
    assert "panicked" not in logs
    assert "stopped" in events
    assert_flushed(store)
