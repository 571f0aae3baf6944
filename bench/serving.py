"""Start ``senti serve`` and client processes for the websocket benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, progress, raise_nofile

SENTI = Path(sys.executable).with_name("senti")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``senti serve`` on 127.0.0.1 with a live synthetic source, as a subprocess."""

    def __init__(self, *, rate: float, max_connections: int = 20_000) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "SENTI_MAX_CONNECTIONS": str(max_connections),
            "SENTI_MAX_CONNECTIONS_PER_IP": str(max_connections),
            "SENTI_LOG_LEVEL": "WARNING",
        }
        command = [str(SENTI), "serve", "--source", "synthetic", "--rate", str(rate)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.url = f"ws://127.0.0.1:{self.port}/track"
        self._wait_healthy()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"senti serve exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    progress(f"senti serve up on port {self.port} (pid {self.pid})")
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("senti serve did not become healthy")

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus metrics by name (labels kept); ``{}`` if it does not answer."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError as exc:  # an overloaded event loop answers late or never
            progress(f"/metrics did not answer: {exc}")
            return {}
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 30 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def served(*, rate: float, queries: list[str]) -> Iterator[tuple[Server, Path]]:
    """A running server and a file of ``queries`` for the client processes; stops both."""
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="senti-bench-") as tmp:
        queries_file = Path(tmp) / "queries.json"
        queries_file.write_text(json.dumps(queries))
        server = Server(rate=rate)
        try:
            yield server, queries_file
        finally:
            server.stop()


class ClientProcess:
    """One ``bench/clients.py`` process."""

    def __init__(self, url: str, count: int, queries_file: Path | None) -> None:
        command = [sys.executable, "-m", "bench.clients", "--url", url, "--count", str(count)]
        if queries_file is not None:
            command += ["--queries-file", str(queries_file)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def expect(self, event: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for the next JSON line and check it is ``event``."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.process.kill()
            raise RuntimeError(f"client process gave no {event!r} within {timeout:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process exited with {self.process.wait()}")
        record: dict[str, Any] = json.loads(line)
        if record["event"] != event:
            raise RuntimeError(f"expected {event}, got {record}")
        return record

    def send(self, command: str) -> None:
        """Send one command line."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """``report``, then wait for the process to exit."""
        self.send("report")
        record = self.expect("report")
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return record
