"""Secrets never leak: a real ``senti serve`` with an X bearer token and a client token.

The X source talks to the local fake X API (``tests/fakes/x_api.py``), so
tweepy really sends the bearer token. The test connects with and without the
client token, tracks a query, receives a post, sends bad input, reads
``/metrics`` and the demo page, then stops the server with SIGTERM, and
searches everything the process wrote, and every HTTP answer, for both secrets.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.helpers.fakes.x_api import FakeXApi
from tests.helpers.xlines import x_envelope

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

X_TOKEN = "xbearer-TOPSECRET-0123456789abcdef"  # noqa: S105 - the secret we hunt for
CLIENT_TOKEN = "client-TOPSECRET-fedcba9876543210"  # noqa: S105 - the secret we hunt for
SECRETS = (X_TOKEN, CLIENT_TOKEN)
URL_LINE = re.compile(r"senti: websocket ws://127\.0\.0\.1:(\d+)/track")
TIMEOUT = 20.0


def _variants(secret: str) -> set[str]:
    """How a secret could appear: as is, URL-quoted, or its distinctive middle part."""
    return {secret, quote(secret), secret.rsplit("-", maxsplit=1)[-1]}


@pytest.fixture
def fake_x() -> Iterator[FakeXApi]:
    """The fake X API, accepting only :data:`X_TOKEN`."""
    with FakeXApi(token=X_TOKEN) as api:
        yield api


def _http_get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        head = "\n".join(f"{k}: {v}" for k, v in response.getheaders())
        return f"{response.status}\n{head}\n{response.read().decode('utf-8', 'replace')}"
    finally:
        connection.close()


def _wait_for_port(out: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = URL_LINE.search(out.read_text("utf-8", "replace"))
        if found:
            return int(found.group(1))
        assert process.poll() is None, "senti serve exited during start-up"
        time.sleep(0.05)  # polling the output file for the start-up line
    raise AssertionError("senti serve did not print its URL")


def _exercise(port: int, fake_x: FakeXApi) -> list[str]:
    """Use the server as clients good and bad would; return every answer it gave."""
    answers: list[str] = []
    url = f"ws://127.0.0.1:{port}/track"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=TIMEOUT).close()
        assert refused.value.response.status_code == 401
        answers.append(repr(refused.value.response.body))
    auth = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    with connect(url, additional_headers=auth, open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"track": "python"}))
        ws.send("{not json")
        ws.send(b"\x00binary")
        answers += [str(ws.recv(timeout=TIMEOUT)) for _ in range(2)]
        ws.send(json.dumps({"track": "x" * 5000}))  # too big: closed with 1009
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        answers.append(str(closed.value))
    with connect(f"{url}?token={CLIENT_TOKEN}", open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"track": "python"}))
        fake_x.wait(lambda: bool(fake_x.rules))
        deadline = time.monotonic() + TIMEOUT
        for number in itertools.count(77):  # the query may reach the dataflow a moment later
            fake_x.push(x_envelope(number, "python rocks", at=datetime.now(UTC)))
            try:
                answers.append(str(ws.recv(timeout=0.5)))
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "no post arrived"
    for path in ("/metrics", "/healthz", "/", f"/track?token={CLIENT_TOKEN}", "/nope"):
        answers.append(_http_get(port, path))
    return answers


def test_serve_never_prints_or_serves_its_secrets(fake_x: FakeXApi, tmp_path: Path) -> None:
    """Logs, errors, /metrics, pages and close reasons hold neither the bearer nor client token."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    recovery = tmp_path / "recovery"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")} | {
        "PYTHONUTF8": "1",
        "SENTI_CLIENT_TOKEN": CLIENT_TOKEN,
        "SENTI_X_BEARER_TOKEN": X_TOKEN,
        "SENTI_X_API_BASE": fake_x.base_url,
    }
    command = [
        sys.executable, "-m", "server.cli", "serve", "--source", "x", "--host", "127.0.0.1",
        "--port", "0", "--store", f"sqlite:///{tmp_path / 'senti.db'}",
        "--recovery-dir", str(recovery), "--window", "60",
    ]  # fmt: skip
    answers: list[str] = []
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=tmp_path)
        try:
            port = _wait_for_port(out, process)
            answers = _exercise(port, fake_x)
            assert stat.S_IMODE(recovery.stat().st_mode) == 0o700
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=TIMEOUT)
            finally:
                if process.poll() is None:
                    process.kill()
    assert process.returncode == 0, err.read_text("utf-8", "replace")[-3000:]
    assert fake_x.connections >= 1  # tweepy really used the bearer token
    written = out.read_text("utf-8", "replace") + err.read_text("utf-8", "replace")
    assert "senti_connections" in "".join(answers)  # /metrics was read
    assert "listening" in written  # the logs were captured
    for secret in SECRETS:
        for variant in _variants(secret):
            assert variant not in written, f"a secret appeared in the output: {variant!r}"
            for answer in answers:
                assert variant not in answer, f"a secret appeared in an answer: {variant!r}"
