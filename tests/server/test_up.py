"""``senti up``: the server and the dashboard start together and stop together."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows.store import open_store
from server.up import DashboardFailed, _wait_listening

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, *, timeout: float = 30.0) -> tuple[int, str]:
    """GET ``url``, retrying while the service starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_up_serves_websocket_and_dashboard_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    """One command runs the server and the dashboard over one store; SIGTERM ends both cleanly."""
    store = f"sqlite:///{tmp_path / 'up.db'}"
    dashboard_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "up", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-port", str(dashboard_port), "--rate", "100", "--window", "1",
         "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"ws://127\.0\.0\.1:(\d+)/track .* dashboard (http://\S+)/", banner)
        assert found, banner
        server = f"http://127.0.0.1:{found.group(1)}"
        assert _get(f"{server}/healthz") == (200, "ok\n")
        status, body = _get(f"{found.group(2)}/_stcore/health")
        assert (status, body) == (200, "ok")
        status, page = _get(f"{found.group(2)}/")
        assert status == 200
        assert "streamlit" in page.lower()
        _, metrics = _get(f"{server}/metrics")
        assert "senti_dataflow_up 1" in metrics
        deadline = time.monotonic() + 30
        while "senti_posts_total 0\n" in metrics:  # the dataflow has closed a window
            assert time.monotonic() < deadline, metrics
            time.sleep(0.2)
            _, metrics = _get(f"{server}/metrics")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    _, stderr = process.communicate()
    assert '"event": "stopped"' in stderr
    with open_store(store, readonly=True) as reader:
        assert reader.counts().windows > 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=2)


def _senti_up(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``senti up ARGS`` to its end, with no ``SENTI_*`` from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "up", "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def _messages(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not JSON log records."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def test_up_with_the_dashboard_port_taken_exits_1_with_one_line(tmp_path: Path) -> None:
    """A dashboard port held by another program stops ``senti up`` before it serves anything."""
    store = f"sqlite:///{tmp_path / 'up.db'}"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _senti_up("--dashboard-port", str(port), "--store", store, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert _messages(result.stderr) == [
        f"senti: error: cannot start the dashboard on 127.0.0.1:{port}: Address already in use"
        " (choose another with --dashboard-port)"
    ], result.stderr
    assert "dashboard http" not in result.stdout  # no URL printed for another program's port
    assert "Traceback" not in result.stderr


def test_a_dashboard_that_exits_at_start_is_dashboard_failed() -> None:
    """A dashboard process that exits before listening is reported with its status, in one line."""
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    port = _free_port()
    with pytest.raises(DashboardFailed) as failed:
        asyncio.run(_wait_listening(process, "127.0.0.1", port))
    assert str(failed.value) == (
        f"the dashboard (Streamlit) exited at start with status 3 on 127.0.0.1:{port}"
    )
