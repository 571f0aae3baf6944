"""A sink POSTing each sentiment-shift alert as JSON to a webhook (``SENTI_ALERT_WEBHOOK``).

The flow never waits for the webhook. Each worker's partition hands its
:class:`~flows.alerts.Alert` items to a :class:`WebhookPoster`: a bounded
queue drained by one background thread, which POSTs each alert's
:meth:`~flows.alerts.Alert.message` (``{"type": "alert", ...}``, docs/alerts.md)
with ``Content-Type: application/json``. A connection error, a timeout, a 429
or a 5xx answer is retried a bounded number of times with exponential backoff;
any other 4xx answer is not retried. An alert that finds the queue full is
dropped. Drops and failures are counted (:class:`WebhookStats`) and logged on
``senti.webhook`` as warnings; the URL is never logged with its query string
or credentials. Every other item of the flow's output is passed over::

    check_webhook_url(url)  # raises ValueError
    build_flow(source, None, [WebhookSink(url)])
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.alerts import Alert

__all__ = ["WebhookPoster", "WebhookSink", "WebhookStats", "check_webhook_url"]

logger = logging.getLogger("senti.webhook")

QUEUE_SIZE: Final = 1_000
"""Alerts a partition holds for the webhook before it drops new ones."""
RETRIES: Final = 3
"""Attempts after the first before an alert is given up."""
BACKOFF: Final = 0.5
"""Seconds before the first retry; each further retry waits twice as long."""
TIMEOUT: Final = 5.0
"""Seconds one POST may take."""
DRAIN: Final = 10.0
"""Seconds ``close`` waits for the queue to empty when the flow ends."""

_STOP: Final = object()


def check_webhook_url(url: str) -> str:
    """Return ``url`` if it is an ``http`` or ``https`` URL with a host, else raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"alert webhook must be an http:// or https:// URL, not {url!r}")
    return url


def _shown(url: str) -> str:
    """``url`` without credentials, path parameters or query (tokens often live there)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


@dataclass(slots=True)
class WebhookStats:
    """What a :class:`WebhookPoster` did (read after :meth:`WebhookPoster.close`)."""

    sent: int = 0
    """Alerts the webhook accepted (a 2xx answer)."""
    failed: int = 0
    """Alerts given up after the last retry, or refused with a 4xx."""
    dropped: int = 0
    """Alerts not queued because the queue was full (or the poster closed)."""
    retries: int = 0
    """POSTs repeated after a failed attempt."""


class WebhookPoster:
    """A bounded queue of JSON payloads and the thread that POSTs them to ``url``.

    :meth:`offer` never blocks. Options are keyword-only.
    """

    def __init__(
        self,
        url: str,
        *,
        # Limits
        queue_size: int = QUEUE_SIZE,
        retries: int = RETRIES,
        # Timeouts
        backoff: float = BACKOFF,
        timeout: float = TIMEOUT,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        if retries < 0:
            raise ValueError(f"retries must not be negative, not {retries}")
        self._url = check_webhook_url(url)
        self._shown = _shown(url)
        self._retries = retries
        self._backoff = backoff
        self._timeout = timeout
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self.stats = WebhookStats()
        self._thread = threading.Thread(target=self._run, name="senti-webhook", daemon=True)
        self._thread.start()

    def offer(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload`` for the webhook; ``False`` (and counted) if it was dropped."""
        if not self._closed.is_set():
            try:
                self._queue.put_nowait(payload)
                return True
            except queue.Full:
                pass
        with self._lock:
            self.stats.dropped += 1
            dropped = self.stats.dropped
        logger.warning(
            "alert webhook %s: queue full, alert dropped (%d so far)", self._shown, dropped
        )
        return False

    def close(self, *, drain: float = DRAIN) -> None:
        """Stop taking alerts and wait up to ``drain`` seconds for the queued ones to be sent."""
        self._closed.set()
        deadline = time.monotonic() + drain
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning("alert webhook %s: gave up waiting for queued alerts", self._shown)
        stats = self.stats
        if stats.failed or stats.dropped:
            logger.warning(
                "alert webhook %s: %d sent, %d failed, %d dropped",
                self._shown,
                stats.sent,
                stats.failed,
                stats.dropped,
            )

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is _STOP:
                return
            assert isinstance(payload, dict)  # noqa: S101 (only offer() and close() put)
            self._deliver(payload)

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        problem = ""
        for attempt in range(self._retries + 1):
            if attempt:
                with self._lock:
                    self.stats.retries += 1
                time.sleep(self._backoff * 2 ** (attempt - 1))
            retry, problem = self._post(body)
            if not problem:
                with self._lock:
                    self.stats.sent += 1
                return
            if not retry:
                break
        with self._lock:
            self.stats.failed += 1
            failed = self.stats.failed
        logger.warning(
            "alert webhook %s: alert not delivered (%s); %d failed so far",
            self._shown,
            problem,
            failed,
        )

    def _post(self, body: bytes) -> tuple[bool, str]:
        """POST once: ``(retry, problem)``, ``problem`` empty on success."""
        request = urllib.request.Request(  # noqa: S310 (scheme checked: http or https)
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "senti-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
                return False, ""
        except urllib.error.HTTPError as exc:
            exc.close()
            retry = exc.code == 429 or exc.code >= 500
            return retry, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return True, str(reason) or type(exc).__name__


class _WebhookPartition(StatelessSinkPartition[Any]):
    def __init__(self, poster: WebhookPoster) -> None:
        self._poster = poster

    @override
    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(item, Alert):
                self._poster.offer(item.message())

    @override
    def close(self) -> None:
        self._poster.close()


class WebhookSink(DynamicSink[Any]):
    """POST every :class:`~flows.alerts.Alert` of the flow's output to ``url``.

    Each worker's partition starts its own :class:`WebhookPoster` when bytewax
    builds it; :attr:`posters` lists them (their :attr:`~WebhookPoster.stats`).
    Options are passed on to :class:`WebhookPoster`.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = QUEUE_SIZE,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url = check_webhook_url(url)
        self._options: dict[str, Any] = {
            "queue_size": queue_size,
            "retries": retries,
            "backoff": backoff,
            "timeout": timeout,
        }
        self.posters: list[WebhookPoster] = []

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _WebhookPartition:
        poster = WebhookPoster(self.url, **self._options)
        self.posters.append(poster)
        return _WebhookPartition(poster)
