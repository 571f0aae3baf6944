"""The alert webhook (flows/sinks/webhook.py) against a real local HTTP server on port 0."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.alerts import Alert
from flows.dataflow import FlowSettings, build_flow
from flows.model import Line, WindowSummary
from flows.platforms.synthetic import _TOPICS, EVENT_EPOCH, generate_lines
from flows.routing.matching import parse_query
from flows.sinks.webhook import WebhookPoster, WebhookSink, check_webhook_url

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
QUERIES = [", ".join(f"#{tag}" for tag in topic.hashtags) for topic in _TOPICS]


@dataclass
class Hook:
    """What the local webhook received, and how it answers."""

    status: int = 204
    bodies: list[Any] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    requests: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A real HTTP server on 127.0.0.1, port 0, recording each POST."""
    state = Hook()
    state.gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.gate.wait(10)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests += 1
            state.content_types.append(self.headers.get("Content-Type", ""))
            if state.status < 300:
                state.bodies.append(json.loads(body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.gate.set()
    server.shutdown()
    server.server_close()


def _run(sink: WebhookSink) -> list[Any]:
    texts = generate_lines(2 * EVENT_EPOCH, seed=1, start=T0, rate=20)
    lines = [Line(text, f"synthetic:{n}") for n, text in enumerate(texts)]
    out: list[Any] = []
    settings = FlowSettings(
        queries=[parse_query(query) for query in QUERIES],
        window=timedelta(seconds=10),
        align_to=T0,
        wait=timedelta(hours=1),
        live=False,
    )
    run_main(build_flow(TestingSource(lines), None, [TestingSink(out), sink], settings=settings))
    return out


def _alert() -> Alert:
    return Alert("q", T0, T0 + timedelta(seconds=10), "negative", 0.8, 0.3, 5.0, 40, 50)


def test_every_alert_of_the_flow_is_posted_as_json(hook: Hook) -> None:
    """Each alert reaches the webhook once, as its documented JSON message."""
    sink = WebhookSink(hook.url, backoff=0.01)
    out = _run(sink)
    alerts = [item.message() for item in out if isinstance(item, Alert)]
    assert alerts
    assert hook.bodies == alerts
    assert set(hook.content_types) == {"application/json"}
    assert all(body["type"] == "alert" for body in hook.bodies)
    assert sink.posters[0].stats.sent == len(alerts)


def test_a_failing_webhook_is_retried_a_bounded_number_of_times(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a server answering 503, each alert is tried 1 + retries times, then counted as
    failed and logged without the URL's query; the flow still writes all its output."""
    hook.status = 503
    sink = WebhookSink(hook.url, retries=2, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="senti.webhook"):
        out = _run(sink)
    alerts = [item for item in out if isinstance(item, Alert)]
    assert alerts
    assert any(isinstance(item, WindowSummary) for item in out)
    stats = sink.posters[0].stats
    assert hook.requests == 3 * len(alerts)
    assert (stats.sent, stats.failed, stats.retries) == (0, len(alerts), 2 * len(alerts))
    assert "HTTP 503" in caplog.text
    assert "secret" not in caplog.text


def test_a_client_error_is_not_retried(hook: Hook) -> None:
    """A 400 answer will not change on retry: one POST, counted as failed."""
    hook.status = 400
    poster = WebhookPoster(hook.url, backoff=0.01)
    poster.offer(_alert().message())
    poster.close()
    assert hook.requests == 1
    assert poster.stats.failed == 1


def test_an_unreachable_webhook_never_stops_the_flow() -> None:
    """With nothing listening at the URL, the flow runs to its end and counts every failure."""
    sink = WebhookSink("http://127.0.0.1:9/hook", retries=1, backoff=0.01, timeout=1)
    out = _run(sink)
    alerts = [item for item in out if isinstance(item, Alert)]
    assert alerts
    assert sink.posters[0].stats.failed == len(alerts)


def test_a_full_queue_drops_alerts_instead_of_blocking(hook: Hook) -> None:
    """While the webhook hangs, offers beyond the queue's room return at once and are counted."""
    hook.gate.clear()
    poster = WebhookPoster(hook.url, queue_size=1, backoff=0.01)
    taken = [poster.offer(_alert().message()) for _ in range(5)]
    assert taken.count(False) >= 3
    assert poster.stats.dropped == taken.count(False)
    hook.gate.set()
    poster.close()
    assert poster.stats.sent == taken.count(True)
    assert poster.stats.sent + poster.stats.dropped == 5


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://", "example.com/hook"])
def test_only_http_urls_are_accepted(url: str) -> None:
    """A webhook that is not an http:// or https:// URL with a host is refused up front."""
    with pytest.raises(ValueError, match="http:// or https://"):
        check_webhook_url(url)
