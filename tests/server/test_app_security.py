"""End to end: what ``SentiServer`` lets in, over real sockets.

Origin allowlist, client token, connection limits (refused with plain HTTP
statuses before the handshake), the HTTP routes (``/healthz``, ``/metrics``,
404) and TLS with a self-signed certificate made by the ``openssl`` CLI.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from flows.model import Line

ALLOWED = "https://app.example.com,https://*.example.org"
TOKEN = "s3cret-token"  # noqa: S105 -- a test token, not a secret


async def ping(ws: ClientConnection) -> None:
    """A v2 ``ping``/``pong`` round trip: the server has registered ``ws`` and serves it."""
    await ws.send(json.dumps({"type": "ping", "id": "p"}))
    assert json.loads(await ws.recv()) == {"type": "pong", "id": "p"}


async def refused_status(senti: Any, **options: Any) -> int:
    """The HTTP status with which the server refuses a handshake made with ``options``."""
    with pytest.raises(InvalidStatus) as refused:
        async with senti.connect(v2=True, **options):
            pass
    status: int = refused.value.response.status_code
    return status


def http_get(port: int, path: str) -> tuple[int, str, str]:
    """``GET path`` on 127.0.0.1: status, Content-Type and body (blocking)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return response.status, response.getheader("Content-Type", ""), body
    finally:
        connection.close()


# Origins


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://example.org",
        "https://app.example.com.evil.net",
        "https://evil-example.org",
        "null",
    ],
)
async def test_disallowed_origin_is_refused_with_403(serve: Any, origin: str) -> None:
    """A handshake whose Origin is not on the allowlist is refused with HTTP 403."""
    async with serve(origins=ALLOWED) as senti:
        assert await refused_status(senti, origin=origin) == 403
        assert senti.server.metrics.rejected == {"origin": 1}
        assert senti.server.hub.connections == 0


async def test_allowed_exact_and_wildcard_origins_connect(serve: Any) -> None:
    """Origins matching an exact or a wildcard entry, or no Origin at all, are accepted."""
    async with serve(origins=ALLOWED) as senti:
        for origin in (
            "https://app.example.com",
            "HTTPS://App.Example.com:443",
            "https://shop.example.org",
            "https://a.b.example.org",
            None,
        ):
            async with senti.connect(v2=True, origin=origin) as ws:
                await ping(ws)
        assert not senti.server.metrics.rejected


async def test_dev_mode_allows_localhost_pages(serve: Any) -> None:
    """With ``dev`` on, pages served from localhost on any port may connect; without, not."""
    localhost_pages = ("http://localhost:5173", "http://127.0.0.1:8080", "https://[::1]:3000")
    async with serve(origins=ALLOWED, dev=True) as senti:
        for origin in localhost_pages:
            async with senti.connect(v2=True, origin=origin) as ws:
                await ping(ws)
        assert await refused_status(senti, origin="https://evil.example.com") == 403
    async with serve(origins=ALLOWED) as senti:
        for origin in localhost_pages:
            assert await refused_status(senti, origin=origin) == 403


# Token


async def test_client_token_is_required_in_header_or_query(serve: Any) -> None:
    """With a client token set, only handshakes presenting it (header or ``?token=``) pass."""
    async with serve(client_token=TOKEN) as senti:
        assert await refused_status(senti) == 401
        assert await refused_status(senti, path="/track?token=wrong") == 401
        wrong_header = {"Authorization": "Bearer wrong"}
        assert await refused_status(senti, additional_headers=wrong_header) == 401
        basic = {"Authorization": f"Basic {TOKEN}"}
        assert await refused_status(senti, additional_headers=basic) == 401
        twice = f"/track?token={TOKEN}&token={TOKEN}"
        assert await refused_status(senti, path=twice) == 401
        assert senti.server.metrics.rejected == {"token": 5}

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with senti.connect(v2=True, additional_headers=bearer) as ws:
            await ping(ws)
        async with senti.connect(v2=True, path=f"/track?token={TOKEN}") as ws:
            await ping(ws)


# Capacity


async def test_connection_limit_refuses_with_503_when_full(serve: Any) -> None:
    """With ``max_connections=2``, a third simultaneous client is refused with HTTP 503."""
    async with (
        serve(max_connections=2) as senti,
        senti.connect(v2=True) as first,
        senti.connect(v2=True) as second,
    ):
        for ws in (first, second):
            await ping(ws)
        assert await refused_status(senti) == 503
        assert senti.server.metrics.rejected == {"full": 1}
        await ping(first)


async def test_connection_limit_holds_for_simultaneous_handshakes(serve: Any) -> None:
    """Six handshakes sent before any answer is read still open only ``max_connections``."""
    loop = asyncio.get_running_loop()
    async with serve(max_connections=2) as senti:
        sockets = [await senti.open_raw() for _ in range(6)]
        try:
            for raw in sockets:
                await loop.sock_sendall(raw, senti.upgrade_request())
            statuses = [await senti.read_status_line(raw) for raw in sockets]
        finally:
            for raw in sockets:
                raw.close()
    assert sorted(status.split(" ", 2)[1] for status in statuses) == ["101"] * 2 + ["503"] * 4
    assert senti.server.metrics.rejected == {"full": 4}


async def test_per_address_limit_refuses_with_429(serve: Any) -> None:
    """With ``max_connections_per_ip=1``, a second client from 127.0.0.1 is refused with 429."""
    async with serve(max_connections_per_ip=1) as senti, senti.connect(v2=True) as first:
        await ping(first)
        assert await refused_status(senti) == 429
        assert senti.server.metrics.rejected == {"per-ip": 1}
        assert senti.server.hub.clients_from("127.0.0.1") == 1


# HTTP routes


async def test_health_metrics_and_unknown_path_over_http(serve: Any) -> None:
    """``/healthz`` says ok, ``/metrics`` counts open clients, and other paths are 404."""
    async with serve() as senti, senti.connect(v2=True) as first, senti.connect() as second:
        port = senti.server.port
        await ping(first)
        await second.send(json.dumps({"track": "python"}))
        await senti.until_tracking(second, "python")

        assert await asyncio.to_thread(http_get, port, "/healthz") == (
            200,
            "text/plain; charset=utf-8",
            "ok\n",
        )
        status, content_type, body = await asyncio.to_thread(http_get, port, "/metrics")
        assert (status, content_type) == (200, "text/plain; version=0.0.4")
        samples = dict(
            line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#")
        )
        assert samples["senti_connections"] == "2"
        assert samples["senti_queries"] == "1"
        assert samples["senti_dataflow_up"] == "1"
        assert int(samples["senti_matches_total"]) >= 1
        assert "# TYPE senti_connections gauge" in body

        status, _, body = await asyncio.to_thread(http_get, port, "/nowhere")
        assert (status, body) == (404, "not found\n")
        assert senti.server.metrics.rejected == {"path": 1}


class BrokenSource(FixedPartitionedSource[Line, None]):
    """A post source whose only partition fails to open, so the dataflow dies at start."""

    def list_parts(self) -> list[str]:
        return ["broken"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> StatefulSourcePartition[Line, None]:
        raise RuntimeError("the post source cannot be opened")


async def test_health_check_fails_when_the_dataflow_dies(serve: Any) -> None:
    """If the dataflow stops, ``/healthz`` answers 503 with the reason in JSON and
    ``senti_dataflow_up`` is 0."""
    async with serve(post_source=BrokenSource()) as senti:
        port = senti.server.port
        await senti.server.wait_stopped()  # returns when the dataflow thread has ended
        assert not senti.server.flow_running
        status, _, body = await asyncio.to_thread(http_get, port, "/healthz")
        assert (status, json.loads(body)) == (
            503,
            {
                "status": "down",
                "reason": "synthetic source: unexpected error: RuntimeError: "
                "the post source cannot be opened",
            },
        )
        _, _, metrics = await asyncio.to_thread(http_get, port, "/metrics")
        assert "\nsenti_dataflow_up 0\n" in metrics


# TLS


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key, made by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-days",
            "1",
            "-keyout",
            str(keyfile),
            "-out",
            str(certfile),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return certfile, keyfile


async def test_tls_clients_connect_with_wss_and_receive_posts(
    serve: Any, certificate: tuple[Path, Path]
) -> None:
    """With a certificate, the server speaks ``wss://`` and trusted clients receive posts."""
    certfile, keyfile = certificate
    trusting = ssl.create_default_context(cafile=certfile)
    async with serve(certfile=certfile, keyfile=keyfile) as senti:
        assert senti.server.url == f"wss://127.0.0.1:{senti.server.port}/track"
        async with senti.connect(ssl=trusting) as ws:
            await ws.send(json.dumps({"track": "python"}))
            await senti.until_tracking(ws, "python")
            tag = senti.unique("secure")
            senti.post(f"python over tls #{tag}")
            assert (await senti.receive(ws))["hashtags"] == {tag: 1}

        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            async with senti.connect(ssl=untrusting):
                pass
