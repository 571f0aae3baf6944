"""The dashboard in headless Chromium over a store a running replay is writing.

Debian's ``/usr/bin/chromium`` is driven through Playwright's ``executable_path``;
no browser is downloaded. The screenshot lands in ``tmp_path/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_stores import APP, url_of

from dashboard.charts import ALERT_COLORS
from dashboard.figures import ALERT_DIRECTIONS
from flows.sources.synthetic import write_synthetic
from flows.store import open_store
from tests.helpers.factories import T0

CHROMIUM = Path("/usr/bin/chromium")
SENTI = Path(sys.executable).with_name("senti")
STREAMLIT = Path(sys.executable).with_name("streamlit")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing (Debian's chromium; `make test-deps` installs it)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll Streamlit's health endpoint until it answers ok."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local http)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("streamlit did not become healthy")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses started by the test, killed whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def test_total_posts_grow_while_replay_writes(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Charts render and the visible total-posts figure rises as the replay writes windows."""
    lines = tmp_path / "posts.jsonl"
    write_synthetic(lines, count=4000, seed=3, start=T0, rate=10.0)  # 400 s at 10 posts/s
    url = url_of(tmp_path / "live.db")
    log = (tmp_path / "replay.log").open("wb")
    replay = [str(SENTI), "replay", str(lines), "--track", "python", "--store", url]
    options = ["--speed", "20", "--window", "5", "--wait", "2"]
    processes.append(subprocess.Popen([*replay, *options], stdout=log, stderr=log))
    port = free_port()
    env = os.environ | {"SENTI_STORE": url, "SENTI_REFRESH_SECONDS": "2"}
    streamlit = [
        str(STREAMLIT),
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    app_log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(streamlit, env=env, cwd=tmp_path, stdout=app_log, stderr=app_log)
    processes.append(server)
    wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, time.monotonic() + 30)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            total = (
                page.locator('[data-testid="stMetric"]')
                .filter(has_text="Total posts")
                .locator('[data-testid="stMetricValue"]')
            )
            total.wait_for(timeout=20_000)
            page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(timeout=20_000)
            first = int(total.inner_text().replace(",", ""))
            deadline = time.monotonic() + 20
            latest = first
            while latest <= first and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                latest = int(total.inner_text().replace(",", ""))
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert latest > first, f"total posts stayed at {first}"
            assert not page.locator('[data-testid="stException"]').count()
        finally:
            browser.close()


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SCREENSHOT_ENV = "SENTI_SCREENSHOT"
"""Set to a path (e.g. ``docs/img/overview.png``) to keep the overview screenshot there, and
the per-query page's with its alerts beside it as :data:`QUERY_SHOT`."""
QUERY_SHOT = "query-alerts.png"
ALERT_STROKES = dict(zip(ALERT_DIRECTIONS, ALERT_COLORS, strict=True))
"""The colour of each direction's alert marks, as the SVG spells them."""


def start_dashboard(url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> int:
    """Serve the dashboard over the store at ``url``; its port once it is healthy."""
    port = free_port()
    env = os.environ | {"SENTI_STORE": url, "SENTI_REFRESH_SECONDS": "0"}
    command = [
        str(STREAMLIT),
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
    processes.append(server)
    wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, time.monotonic() + 30)
    return port


def keep_screenshot(request: pytest.FixtureRequest, shot: Path, *, overview: bool) -> None:
    """Copy ``shot`` to :data:`SCREENSHOT_ENV`'s path if it is set (relative to where pytest
    was started, not the test's working directory), or beside it as :data:`QUERY_SHOT`."""
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        target = request.config.invocation_params.dir / keep
        shutil.copyfile(shot, target if overview else target.with_name(QUERY_SHOT))


def grid_rows(page: Any, header: str) -> list[list[str]]:
    """The cells of the data grid with a column ``header``, row by row, as its accessible
    table (the grid itself is drawn on a canvas) gives them."""
    grid = page.locator('table[role="grid"]').filter(
        has=page.locator('th[role="columnheader"]', has_text=header)
    )
    rows = grid.locator('tbody tr[role="row"]')
    rows.first.wait_for(state="attached", timeout=20_000)
    return [
        [str(cell.text_content()) for cell in row.locator('td[role="gridcell"]').all()]
        for row in rows.all()
    ]


def alert_marks(chart: Any) -> dict[str, list[float]]:
    """Per direction, the x of each alert rule drawn in the SVG ``chart`` (its left edge on
    the page), left to right."""
    found: dict[str, list[float]] = {}
    for direction, stroke in ALERT_STROKES.items():
        boxes = [line.bounding_box() for line in chart.locator(f'line[stroke="{stroke}"]').all()]
        found[direction] = sorted(box["x"] for box in boxes if box is not None)
    return found


def test_overview_with_a_gap_in_chromium(
    gap_store: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    request: pytest.FixtureRequest,
) -> None:
    """The overview over a store with downtime and two alerts renders its charts (no Vega
    error or warning in the console) with the partial-window note, draws each alert as a
    rule of its direction's colour (the crisis left of the launch) with a legend, lists
    both alerts newest first with the query as typed, and asks no host but its own for
    anything (the page icon ships with the dashboard)."""
    port = start_dashboard(gap_store, tmp_path, processes)
    requested: list[str] = []
    problems: list[str] = []  # console errors and warnings: Vega reports bad specs there
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.on("request", lambda request: requested.append(request.url))
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text) if message.type in {"error", "warning"} else None
                ),
            )
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.get_by_text("Polarity share per window").wait_for(timeout=30_000)
            charts: Any = page.locator(".vega-embed canvas, .vega-embed svg")
            charts.nth(1).wait_for(timeout=20_000)
            page.get_by_text("Windows at a start or stop are marked as partial").wait_for()
            page.get_by_text("Only posts that match a tracked query are stored").wait_for()
            page.get_by_text("Recent alerts").wait_for()
            page.wait_for_load_state("networkidle")
            shot = tmp_path / "overview.png"
            page.screenshot(path=str(shot), full_page=True)
            body = page.locator("body").inner_text()
            share_chart = page.locator(".vega-embed svg").first
            legend = share_chart.locator("text").all_text_contents()
            marks = alert_marks(share_chart)
            tips = [
                str(mark.get_attribute("aria-label"))
                for mark in share_chart.locator(f'line[stroke="{ALERT_STROKES["negative"]}"]').all()
            ]
            listed = grid_rows(page, "share")
            icon = page.locator('link[rel~="icon"]').first.get_attribute("href") or ""
        finally:
            browser.close()
    assert "Polarity share per window" in body
    assert not problems, problems
    assert {"alert", "negative shift", "positive shift"} <= set(legend), legend
    assert len(marks["negative"]) == len(marks["positive"]) == 1, marks
    assert marks["negative"][0] < marks["positive"][0]
    assert any("alert on: Climate Change" in tip and "32.0% → 66.7%" in tip for tip in tips)
    assert [row[:4] for row in listed] == [
        ["2024-05-01 12:13:00+00:00", "Climate Change", "positive", "30.0% → 70.0%"],
        ["2024-05-01 12:01:00+00:00", "Climate Change", "negative", "32.0% → 66.7%"],
    ]
    assert "How many of the newest alerts" not in body  # no stray docstring on the page
    assert not page_exceptions(body)
    assert urllib.parse.urlsplit(icon).hostname in {None, *LOCAL_HOSTS}, icon
    foreign = {
        urllib.parse.urlsplit(address).hostname
        for address in requested
        if urllib.parse.urlsplit(address).scheme in {"http", "https", "ws", "wss"}
    } - LOCAL_HOSTS
    assert not foreign, sorted(str(host) for host in foreign)
    assert shot.stat().st_size > 10_000
    keep_screenshot(request, shot, overview=True)


def test_query_page_alerts_in_chromium(
    alert_store: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    request: pytest.FixtureRequest,
) -> None:
    """On the per-query page of a query the real flow alerted on, its polarity chart shows the
    alert's rule in the direction's colour and the alert list shows it, with no console
    error or warning."""
    with open_store(alert_store, readonly=True) as store:
        alert = store.alerts()[0]
        spelling = next(q.shown for q in store.queries() if q.key == alert.query)
    port = start_dashboard(alert_store, tmp_path, processes)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text) if message.type in {"error", "warning"} else None
                ),
            )
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.get_by_role("link", name="Per query").click()
            picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Query")
            picker.wait_for(timeout=30_000)
            picker.click()
            page.get_by_role("option", name=spelling, exact=True).click()
            page.get_by_text("marked on the chart above").wait_for(timeout=20_000)
            page.wait_for_load_state("networkidle")
            chart = page.locator(".vega-embed svg").first
            chart.wait_for()
            marks = alert_marks(chart)
            listed = grid_rows(page, "share")
            shot = tmp_path / QUERY_SHOT
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    assert len(marks[alert.direction]) == 1, marks
    assert [row[1:3] for row in listed] == [
        [alert.direction, f"{alert.baseline:.1%} → {alert.share:.1%}"]
    ]
    keep_screenshot(request, shot, overview=False)


def page_exceptions(body: str) -> list[str]:
    """Lines of a Streamlit traceback in the page text."""
    return [line for line in body.splitlines() if line.startswith("Traceback")]
