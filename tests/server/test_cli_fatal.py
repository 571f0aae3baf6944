"""A source that cannot go on makes every ``senti`` command exit 1 with one line.

Each command runs as a real subprocess against the local fakes: Jetstream
refusing the handshake with HTTP 404 (tests/fakes/jetstream.py), X refusing a
wrong bearer token with HTTP 401 (tests/fakes/x_api.py), and a replay file
that cannot be read (``/proc/self/mem``: opening it works, reading its first
page fails with EIO, even for root). ``RUST_BACKTRACE=1`` is set, so a panic
unwinding through Bytewax's runtime would show as a long dump.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fakes.jetstream import FakeJetstream
from tests.helpers.fakes.x_api import FakeXApi

pytestmark = pytest.mark.slow

UNREADABLE = Path("/proc/self/mem")
WRONG_TOKEN = "wrong-token-0123456789"  # noqa: S105 - a fake credential
REFUSED_BLUESKY = (
    "senti: error: bluesky source: Jetstream refused the connection (HTTP 404 Not Found)"
)
REFUSED_X = "senti: error: x source: X refused the rules request (HTTP 401 Unauthorized)"
UNREADABLE_REPLAY = f"senti: error: replay source: cannot read {UNREADABLE}: Input/output error"


@pytest.fixture
def jetstream() -> Iterator[FakeJetstream]:
    """A fake Jetstream that refuses every handshake with HTTP 404."""
    with FakeJetstream() as fake:
        fake.refuse(*[404] * 50)
        yield fake


@pytest.fixture
def x_api() -> Iterator[FakeXApi]:
    """A fake X API whose token is not the one senti will send."""
    with FakeXApi() as fake:
        yield fake


def senti(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m server.cli ARGS`` with no ``SENTI_*`` from the outside but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTI_")}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
        env=clean | {"PYTHONUTF8": "1", "RUST_BACKTRACE": "1"} | (env or {}),
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def _is_log(line: str) -> bool:
    """Whether ``line`` is one of the server's JSON log records (not meant as a message)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "level" in record and "event" in record


def assert_one_line_failure(result: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit status 1, and stderr's only line besides JSON logs is ``expected``; no dump."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _is_log(line)]
    assert lines == [expected], result.stderr
    assert "panicked" not in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVE = ("serve", "--host", "127.0.0.1", "--port", "0")


def test_serve_bluesky_refused_for_good_exits_1(jetstream: FakeJetstream, tmp_path: Path) -> None:
    """Jetstream's final 404 ends ``serve --source bluesky`` with status 1 and one line."""
    env = {"SENTI_JETSTREAM_URL": jetstream.url}
    result = senti(*SERVE, "--source", "bluesky", cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_BLUESKY)
    assert jetstream.handshakes == 1  # not retried


def test_serve_bluesky_refused_with_a_store_flushes_and_exits_1(
    jetstream: FakeJetstream, tmp_path: Path
) -> None:
    """With a store (its writer process running) the failure is the same one line."""
    env = {"SENTI_JETSTREAM_URL": jetstream.url}
    store = f"sqlite:///{tmp_path / 's.db'}"
    result = senti(*SERVE, "--source", "bluesky", "--store", store, cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_BLUESKY)


def test_up_bluesky_refused_for_good_exits_1(jetstream: FakeJetstream, tmp_path: Path) -> None:
    """``senti up`` stops its dashboard and exits 1 with the same one line."""
    env = {"SENTI_JETSTREAM_URL": jetstream.url}
    args = ("up", "--host", "127.0.0.1", "--port", "0", "--dashboard-port", str(_free_port()))
    result = senti(*args, "--source", "bluesky", cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_BLUESKY)


def test_serve_x_with_a_wrong_token_exits_1_without_the_token(
    x_api: FakeXApi, tmp_path: Path
) -> None:
    """X's 401 for a wrong bearer token ends ``serve --source x``: one line, no token in it."""
    env = {"SENTI_X_API_BASE": x_api.base_url, "SENTI_X_BEARER_TOKEN": WRONG_TOKEN}
    result = senti(*SERVE, "--source", "x", cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_X)
    assert WRONG_TOKEN not in result.stderr + result.stdout


def test_replay_of_an_unreadable_file_exits_1(tmp_path: Path) -> None:
    """A replay file that fails to read ends ``senti replay`` with one line naming it."""
    result = senti("replay", UNREADABLE, "--track", "python", cwd=tmp_path)
    assert_one_line_failure(result, UNREADABLE_REPLAY)


def test_replay_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    """A missing replay file is refused before the flow starts, in one line."""
    result = senti("replay", tmp_path / "absent.jsonl", "--track", "python", cwd=tmp_path)
    assert_one_line_failure(result, f"senti: error: no such file: {tmp_path / 'absent.jsonl'}")


def test_serve_replay_of_an_unreadable_file_exits_1(tmp_path: Path) -> None:
    """In ``serve`` the replay runs in a child process; its failure is the server's one line."""
    result = senti(*SERVE, "--source", "replay", "--replay", UNREADABLE, cwd=tmp_path)
    assert_one_line_failure(result, UNREADABLE_REPLAY)


def test_capture_bluesky_refused_for_good_exits_1(jetstream: FakeJetstream, tmp_path: Path) -> None:
    """``capture --source bluesky`` against a refusing Jetstream: status 1, one line."""
    env = {"SENTI_JETSTREAM_URL": jetstream.url}
    out = tmp_path / "capture.jsonl"
    result = senti("capture", "--source", "bluesky", "--out", out, cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_BLUESKY)


def test_capture_x_with_a_wrong_token_exits_1(x_api: FakeXApi, tmp_path: Path) -> None:
    """``capture --source x`` with a wrong token: status 1, one line without the token."""
    env = {"SENTI_X_API_BASE": x_api.base_url, "SENTI_X_BEARER_TOKEN": WRONG_TOKEN}
    out = tmp_path / "capture.jsonl"
    result = senti("capture", "--source", "x", "--out", out, "--count", "1", cwd=tmp_path, env=env)
    assert_one_line_failure(result, REFUSED_X)
    assert WRONG_TOKEN not in result.stderr
