"""The demo page in a real headless Chromium, against a real ``SentiServer``.

Debian's ``/usr/bin/chromium`` is driven through Playwright's ``executable_path``
(``make test-deps`` installs it; ``playwright install`` is never needed). The
server runs on its own event loop in a background thread, on 127.0.0.1, with a
fast synthetic source and one-second windows, and allows only its own origin.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from server.app import SentiServer
from server.settings import ServerSettings

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing (Debian's chromium; `make test-deps` installs it)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# The machine may have no internet: nothing in the browser may try to reach it.
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # the servers are local; ignore any proxy in the environment
]
TIMEOUT_MS = 15_000
HOST = "127.0.0.1"
QUERY = "python"  # one of the synthetic topics (flows/platforms/synthetic.py)
ORIGIN_REJECTED = re.compile(r'^senti_handshakes_rejected_total\{reason="origin"\} (\d+)$', re.M)

# A page served from another origin that only tries to open the websocket.
FOREIGN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>elsewhere</title></head>
<body><ol id="events"></ol>
<script>
"use strict";
const log = (text) => {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("events").append(item);
};
const socket = new WebSocket("ws://127.0.0.1:PORT/track", ["senti.v2"]);
socket.onopen = () => log("open");
socket.onerror = () => log("error");
socket.onclose = (event) => log(`closed ${event.code}`);
</script>
</body></html>
"""


def free_port() -> int:
    """A TCP port on ``HOST`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running(server: SentiServer) -> Iterator[SentiServer]:
    """Run ``server`` on its own event loop in a background thread until the block ends."""
    started = threading.Event()
    failure: list[BaseException] = []
    loop_and_stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop = asyncio.Event()
        try:
            await server.start()
        except BaseException as exc:
            failure.append(exc)
            await server.close()  # the dataflow may have started
            raise
        finally:
            loop_and_stop.append((asyncio.get_running_loop(), stop))
            started.set()
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="senti-server")
    thread.start()
    started.wait(timeout=30)
    if failure or not loop_and_stop:
        thread.join(timeout=30)
        raise RuntimeError("the server did not start") from (failure[0] if failure else None)
    try:
        yield server
    finally:
        loop, stop = loop_and_stop[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the server did not shut down"


def metrics(port: int) -> str:
    """The server's ``/metrics`` text, fetched directly (no proxy)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode("utf-8")
    finally:
        conn.close()


def origin_rejections(port: int) -> int:
    """``senti_handshakes_rejected_total{reason="origin"}``, 0 when not reported."""
    match = ORIGIN_REJECTED.search(metrics(port))
    return int(match.group(1)) if match else 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def senti(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentiServer]:
    """A running server that allows its own origin only, not localhost pages in general."""
    for name in os.environ:
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)
    port = free_port()
    settings = ServerSettings(
        _env_file=None,  # type: ignore[call-arg]
        host=HOST,
        port=port,
        origins=f"http://{HOST}:{port}",
        dev=False,
        client_token=None,
        source="synthetic",
        rate=200.0,
        window=1.0,
        wait=0.5,
    )
    with running(SentiServer(settings)) as server:
        yield server


@pytest.fixture
def foreign_origin(tmp_path: Path, senti: SentiServer) -> Iterator[str]:
    """The URL of a page on another origin (another port) that tries to connect to ``senti``."""
    root = tmp_path / "elsewhere"
    root.mkdir()
    (root / "index.html").write_text(
        FOREIGN_PAGE.replace("PORT", str(senti.port)), encoding="utf-8"
    )
    handler = partial(_QuietHandler, directory=str(root))
    with http.server.ThreadingHTTPServer((HOST, 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, name="foreign-origin")
        thread.start()
        try:
            yield f"http://{HOST}:{httpd.server_address[1]}/"
        finally:
            httpd.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, launched once for the module."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own browser context, failing the test on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_demo_page_from_allowed_origin_shows_live_posts(
    senti: SentiServer, page: Any, tmp_path: Path
) -> None:
    """The served demo page tracks a query and shows live posts, counts and top hashtags;
    it names the query as typed, with the canonical key on hover, and asks no other host
    for anything (it works offline)."""
    hosts: set[str | None] = set()
    page.on("request", lambda request: hosts.add(urllib.parse.urlsplit(request.url).hostname))
    page.goto(f"http://{HOST}:{senti.port}/")
    expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)

    page.locator("#query").fill(QUERY.capitalize())
    page.locator("#track").click()

    tracking = page.locator("#tracking")
    expect(tracking).to_have_text(f"“{QUERY.capitalize()}”", timeout=TIMEOUT_MS)
    expect(tracking).to_have_attribute("title", f"canonical key: {QUERY}")
    assert hosts == {HOST}, hosts
    page.wait_for_function(
        """() => ["positive", "negative", "neutral"]
            .map((id) => Number(document.getElementById(id).textContent))
            .reduce((a, b) => a + b) > 0""",
        timeout=TIMEOUT_MS,
    )
    expect(page.locator("#posts li").first).to_have_text(
        re.compile(r"^(positive|negative|neutral) -?\d\.\d\d( #\S+)*$"), timeout=TIMEOUT_MS
    )
    expect(page.locator("#hashtags li").first).to_have_text(
        re.compile(r"^#\S+ \(\d+\)$"), timeout=TIMEOUT_MS
    )
    expect(page.locator("#window")).to_have_text(
        re.compile(r"^\d\d:\d\d:\d\d\u2013\d\d:\d\d:\d\d UTC$"), timeout=TIMEOUT_MS
    )
    expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
    assert origin_rejections(senti.port) == 0

    screenshot = tmp_path / "demo.png"
    page.screenshot(path=screenshot, full_page=True)
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


def test_demo_page_shows_unscored_posts_apart(senti: SentiServer, page: Any) -> None:
    """Posts in languages senti does not score are listed as unscored with their language and
    counted apart, without a script error (the synthetic stream has Spanish and Portuguese
    #café posts)."""
    page.goto(f"http://{HOST}:{senti.port}/")
    expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
    page.locator("#query").fill("#café")
    page.locator("#track").click()
    expect(page.locator("#posts li.uns").first).to_have_text(
        re.compile(r"^unscored (es|pt) #café$"), timeout=TIMEOUT_MS
    )
    page.wait_for_function(
        """() => Number(document.getElementById("unscored").textContent) > 0""",
        timeout=TIMEOUT_MS,
    )


def test_page_from_disallowed_origin_cannot_connect(
    senti: SentiServer, foreign_origin: str, page: Any
) -> None:
    """A page from an origin off the allowlist gets a failed websocket (1006), never an open one."""
    page.goto(foreign_origin)

    events = page.locator("#events li")
    expect(events.last).to_have_text("closed 1006", timeout=TIMEOUT_MS)
    assert events.all_text_contents() == ["error", "closed 1006"]
    assert origin_rejections(senti.port) >= 1
