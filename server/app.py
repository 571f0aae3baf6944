"""The websocket server and the one-process system (``senti serve``).

The only asyncio code of senti. It runs the dataflow in a child process
(:mod:`server.flowproc`, self-contained sources such as synthetic and replay) or
on a background thread (:class:`~flows.runtime.runner.FlowThread`: sources holding a
connection, injected sources, or ``SENTI_DATAFLOW=thread``), feeds it the
queries clients track through a :class:`~flows.sources.control.SubscriptionSource`,
and receives its output
through a :class:`~flows.sinks.callback.CallbackSink` that hands each batch to
the event loop with ``call_soon_threadsafe``; the :class:`~server.hub.Hub` fans
it out. Protocol decisions live in :mod:`server.protocol` (sans-I/O). Sources
come from :func:`flows.sources.registry.open_source`; what a platform needs
beyond posts (X's rules following the tracked queries, its own ``/metrics``
series) goes through the source's :class:`~flows.sources.registry.SourceHooks`.

HTTP routes, answered in ``process_request`` before any websocket handshake:

* ``/track``: the websocket endpoint (Origin allowlist, optional client token,
  connection limits; refusals are plain HTTP 401/403/429/503).
* ``/healthz``: 200 ``ok`` while the dataflow runs and its source can deliver, else 503
  with ``{"status": "down", "reason": ...}``: the dataflow failed or stopped, or a
  source whose input should not end (all but replay) ended.
* ``/metrics``: Prometheus text format.
* ``/``: the demo page.

Shutdown (SIGTERM, SIGINT or :meth:`SentiServer.close`): stop accepting, close
clients with 1001 (going away), end the dataflow's inputs so its windows close
and its sinks (the store) flush, and wait for it.

With a store, the resumable sources (Bluesky, replay) resume where the store's cursors
say (:mod:`flows.runtime.cursors`): the previous run's positions, and the queries it
tracked when it stopped, kept in its dataflow for ``resume_grace`` seconds
for their clients to come back. A stopping server leaves those queries
tracked in the store rather than untracking them as its clients go.

A source that cannot go on (a platform refusing for good, an unreadable
replay file, a bug) ends the dataflow the same way, and :func:`run_server`
then raises :class:`DataflowFailed`, whose one-line message names the source
and the reason (``senti serve`` prints it and exits 1).

About 550 lines on purpose: it is the server's only asyncio code (connections,
handshake, HTTP routes, the backend's lifecycle), kept in one place so the
rest stays sans-I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import importlib.resources
import json
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from bytewax.inputs import FixedPartitionedSource
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from flows.errors import SentiError
from flows.model import Line
from flows.routing.matching import Query, Subscription
from flows.runtime.cursors import Positions
from flows.runtime.recovery import Recovery
from flows.runtime.runner import FlowThread
from flows.sinks.callback import CallbackSink
from flows.sources.control import FlowStop, SourceError, SourceFailed, SubscriptionSource
from flows.sources.registry import (
    OpenedSource,
    QueryRefused,
    SourceHooks,
    kind_for_options,
    open_source,
    source_kind,
)
from server.auth import token_from_request, token_matches
from server.backend import Backend
from server.flowproc import (
    ProcessBackend,
    build_server_flow,
    server_recovery,
    write_positions,
)
from server.hub import Hub
from server.metrics import Metrics, ReadCount
from server.origins import OriginPolicy
from server.protocol import SUBPROTOCOL_V2, Limits, Session, dialect_for
from server.settings import ServerSettings

__all__ = ["DataflowFailed", "SentiServer", "run_server"]

logger = logging.getLogger("senti.server")

TRACK_PATH = "/track"


class DataflowFailed(SentiError):
    """The server's dataflow ended because of an error; the message is one line for the user
    (``bluesky source: Jetstream refused the connection (HTTP 404 Not Found)``)."""


class SentiServer:
    """The websocket server with its dataflow. Use :meth:`start` then :meth:`close`.

    ``post_source`` replaces the source chosen by ``settings`` (tests feed posts
    through a :class:`~flows.sources.control.QueueSource`); ``source_options``
    go to the source's opener (:func:`~flows.sources.registry.open_source`),
    such as a prepared stream. The server knows sources only through
    :class:`~flows.sources.registry.SourceHooks`.
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        post_source: FixedPartitionedSource[Line, Any] | None = None,
        backend: Backend | None = None,
        **source_options: Any,
    ) -> None:
        self.settings = settings
        self.stop = FlowStop()
        self.metrics = Metrics(source=settings.source)
        kind = kind_for_options(source_options) or settings.source
        if (
            backend is None
            and post_source is None
            and not source_options
            and source_kind(kind).self_contained
            and settings.dataflow == "process"
        ):
            backend = ProcessBackend(settings)
        self.subscriptions = SubscriptionSource(self.stop)
        self.backend = backend  # the dataflow runs elsewhere (a gateway, server/gateway.py)
        # Lines read from the source, when this server runs the dataflow (/metrics, /healthz).
        self.read_count: ReadCount | None = (
            backend.read_count
            if isinstance(backend, ProcessBackend)
            else ReadCount()
            if backend is None
            else None
        )
        self.metrics.read = self.read_count
        self._finite = post_source is None and source_kind(kind).finite
        self.hub = Hub(
            self.subscriptions if backend is None else backend,
            self.metrics,
            send_buffer_bytes=settings.send_buffer_bytes,
            on_drop=self._query_dropped,
        )
        # The resumable sources start where the store says (only when this server
        # runs the dataflow: in its thread or its child process).
        owns_flow = backend is None or isinstance(backend, ProcessBackend)
        self.positions = Positions() if settings.store is not None and owns_flow else None
        self.source: OpenedSource = (
            open_source(kind, settings, positions=self.positions, **source_options)
            if post_source is None
            else OpenedSource(settings.source, post_source)
        )
        self.hooks: SourceHooks = self.source.hooks
        self._resume = self.source.resume
        self._resumable = self.source.resumable
        self._rules = asyncio.Lock()  # rule changes reach X in the order clients made them
        self._pending: set[asyncio.Task[None]] = set()
        self.origins = OriginPolicy.from_setting(settings.origins, dev=settings.dev)
        self.limits = Limits(
            max_message_bytes=settings.max_message_bytes,
            max_queries_per_connection=settings.max_queries_per_connection,
            max_track_changes_per_minute=settings.track_changes_per_minute,
        )
        self._post_source = self.source.posts
        self._recovery: Recovery | None = None
        self._grace: asyncio.Task[None] | None = None
        self._token = settings.client_token.get_secret_value() if settings.client_token else None
        self._flow: FlowThread | None = None
        self._server: Server | None = None
        self._page = _demo_page()

    # Lifecycle

    async def start(self) -> None:
        """Start the dataflow thread (or the backend) and listen."""
        if self._resume.queries:
            self._grace = asyncio.get_running_loop().create_task(self._end_grace())
        if self.backend is not None:
            await self.backend.start(self.hub.publish)
            await self._listen()
            return
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.hooks.start)

        def deliver(items: list[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(self.hub.publish, items)

        recovery = self._recovery = server_recovery(self.settings)
        flow = build_server_flow(
            self.settings,
            self._post_source,
            self.subscriptions,
            [CallbackSink(deliver)],
            stop=self.stop,
            recovery=recovery,
            positions=self.positions,
            queries=self._resume.queries,
            read_count=self.read_count,
        )
        self._flow = FlowThread(
            flow, workers=self.settings.workers, recovery=recovery, stop=self.stop
        )
        self._flow.start()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            process_request=self._process_request,
            subprotocols=[Subprotocol(SUBPROTOCOL_V2)],
            select_subprotocol=_select_subprotocol,
            # Compression off: ~14 KiB per idle connection instead of ~64 KiB,
            # and no decompression bombs.
            compression=None,
            max_size=self.settings.max_message_bytes,
            max_queue=4,
            open_timeout=self.settings.open_timeout,
            ping_interval=self.settings.ping_interval,
            ping_timeout=self.settings.ping_timeout,
            ssl=_ssl_context(self.settings),
            logger=logging.getLogger("senti.websockets"),
        )
        logger.info(
            "listening",
            extra={"url": self.url, "source": self.settings.source, "store": self.settings.store},
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """The websocket endpoint's URL."""
        return f"{self.settings.scheme}://{self.settings.host}:{self.port}{TRACK_PATH}"

    @property
    def source_name(self) -> str:
        """The post source's name, as errors call it (``bluesky``, ``x``, ``replay``...)."""
        return self.source.name

    @property
    def failure(self) -> str | None:
        """Why the dataflow ended, in one line, if it failed (known once it has ended)."""
        if self._flow is not None and self._flow.error is not None:
            error = self._flow.error
            if isinstance(error, SourceFailed):
                return f"{self.source_name} source: {error}"
            return f"dataflow failed: {_one_line(error)}"
        backend_error = getattr(self.backend, "error", None)
        return str(backend_error) if backend_error else None

    @property
    def flow_running(self) -> bool:
        """Whether the dataflow thread is alive (or the backend delivers)."""
        if self.backend is not None:
            return self.backend.running
        return self._flow is not None and self._flow.is_alive()

    @property
    def health_problem(self) -> str | None:
        """Why ``/healthz`` fails, in one line, or ``None`` when healthy."""
        if not self.flow_running:
            return self.failure or "the dataflow has stopped"
        count = self.read_count
        if count is not None and count.finished and not self._finite and not self.stop.is_set():
            return f"{self.source_name} source: its input has ended; no more posts will arrive"
        return None

    async def _end_grace(self) -> None:
        """Untrack the queries taken over from the previous run that no client tracks again."""
        await asyncio.sleep(self.settings.resume_grace)
        target = self.subscriptions if self.backend is None else self.backend
        for query in self._resume.queries:
            if not self.hub.is_tracked(query.key):
                target.push(Subscription(query, active=False))
        logger.info("resume grace over", extra={"queries": len(self._resume.queries)})

    async def close(self) -> None:
        """Close clients with 1001, end the dataflow's inputs and wait for it to flush."""
        if self._grace is not None:
            self._grace.cancel()
        if self._resumable:  # the next run resumes these queries from the store
            self.hub.keep_queries()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self.stop.set()
        if self.backend is not None:
            await self.backend.close()
        if self._flow is not None:
            await asyncio.to_thread(self._flow.join)
            error = self._flow.error
            if error is not None:
                logger.error("dataflow failed", extra={"error": self.failure})
                logger.debug("dataflow failure", exc_info=error)
            ended = error is None or isinstance(error, SourceFailed)  # its sinks have closed
            if self.settings.store and self.positions and self._recovery is None and ended:
                await asyncio.to_thread(write_positions, self.settings.store, self.positions)
        await asyncio.to_thread(self.hooks.stop)
        logger.info("stopped", extra={"posts": self.metrics.posts_read()})

    async def wait_stopped(self) -> None:
        """Return on SIGTERM/SIGINT, or if the dataflow dies."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            while not stopping.is_set() and self.flow_running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=0.5)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    # HTTP

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == TRACK_PATH:
            return self._admit(conn, request)
        if path == "/healthz":
            problem = self.health_problem
            if problem is None:
                return conn.respond(http.HTTPStatus.OK, "ok\n")
            body = json.dumps({"status": "down", "reason": problem}) + "\n"
            return _response(http.HTTPStatus.SERVICE_UNAVAILABLE, body, "application/json")
        if path == "/metrics":
            body = self.metrics.render(
                connections=self.hub.connections,
                queries=self.hub.queries,
                flow_running=self.flow_running,
                clients=self.hub.tracked(),
                source=self._source_metrics(),
            )
            return _response(http.HTTPStatus.OK, body, "text/plain; version=0.0.4")
        if path == "/":
            return _response(http.HTTPStatus.OK, self._page, "text/html; charset=utf-8")
        return self._refuse(conn, http.HTTPStatus.NOT_FOUND, "path", "not found\n")

    def _admit(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse a websocket handshake that fails a security or capacity check."""
        ip = _ip(conn)
        checks: list[tuple[Callable[[], bool], http.HTTPStatus, str, str]] = [
            (
                lambda: self.origins.allows(request.headers.get("Origin")),
                http.HTTPStatus.FORBIDDEN,
                "origin",
                "origin not allowed\n",
            ),
            (
                lambda: token_matches(
                    token_from_request(request.path, request.headers), self._token
                ),
                http.HTTPStatus.UNAUTHORIZED,
                "token",
                "missing or wrong client token\n",
            ),
            (
                lambda: self.hub.connections < self.settings.max_connections,
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                "full",
                "server full, retry later\n",
            ),
            (
                lambda: self.hub.clients_from(ip) < self.settings.max_connections_per_ip,
                http.HTTPStatus.TOO_MANY_REQUESTS,
                "per-ip",
                "too many connections from your address\n",
            ),
        ]
        for passes, status, reason, text in checks:
            if not passes():
                return self._refuse(conn, status, reason, text)
        return None

    def _refuse(
        self, conn: ServerConnection, status: http.HTTPStatus, reason: str, text: str
    ) -> Response:
        self.metrics.rejected[reason] += 1
        logger.info("handshake refused", extra={"reason": reason, "ip": _ip(conn)})
        return conn.respond(status, text)

    # Websocket

    async def _handle(self, conn: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        session = Session(dialect_for(conn.subprotocol), limits=self.limits)
        self.hub.register(conn, session.dialect)
        logger.debug("connected", extra={"ip": _ip(conn), "dialect": session.dialect.name})
        try:
            async for message in conn:
                if isinstance(message, str):
                    outcome = session.receive_text(message, loop.time())
                else:
                    outcome = session.receive_bytes(message, loop.time())
                if outcome.added and self.hooks.follows_queries:
                    outcome = session.refuse(outcome, await self._follow(outcome.added))
                self.hub.apply(conn, outcome)
                self.metrics.protocol_errors += len(outcome.errors)
                for reply in outcome.replies:
                    await conn.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self.hub.unregister(conn, session.close())
            logger.debug("disconnected", extra={"ip": _ip(conn), "code": conn.close_code})

    # Queries the source's platform follows (X's rules)

    async def _follow(self, queries: Sequence[Query]) -> dict[str, str]:
        """Tell the platform of queries no one tracked yet; the reasons it refused some."""
        refused: dict[str, str] = {}
        for query in queries:
            if self.hub.is_tracked(query.key):
                continue
            async with self._rules:
                try:
                    await asyncio.to_thread(self.hooks.track, query)
                except QueryRefused as exc:
                    refused[query.key] = str(exc)
                    logger.info(
                        "rule refused",
                        extra={"query": query.shown, "key": query.key, "reason": str(exc)},
                    )
        return refused

    def _query_dropped(self, query: Query) -> None:
        """The last client left ``query``: tell the platform, off the loop."""
        if not self.hooks.follows_queries:
            return
        task = asyncio.get_running_loop().create_task(self._unfollow(query.key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _unfollow(self, key: str) -> None:
        async with self._rules:
            if self.hub.is_tracked(key):  # someone tracked it again meanwhile
                return
            await asyncio.to_thread(self.hooks.untrack, key)

    def _source_metrics(self) -> dict[str, int]:
        """The source's own ``/metrics`` series."""
        return self.hooks.metrics()


def _select_subprotocol(
    conn: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # senti.v2 when offered; otherwise the original protocol, whatever else was offered.
    return Subprotocol(SUBPROTOCOL_V2) if SUBPROTOCOL_V2 in offered else None


def _response(status: http.HTTPStatus, body: str, content_type: str) -> Response:
    data = body.encode("utf-8")
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status.value, status.phrase, headers, data)


def _ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    if settings.certfile is None or settings.keyfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.certfile, settings.keyfile)
    return context


def _demo_page() -> str:
    return importlib.resources.files("server").joinpath("static/index.html").read_text("utf-8")


def _ip(conn: ServerConnection) -> str:
    address = conn.remote_address
    return str(address[0]) if address else "?"


def apply_switch_interval(settings: ServerSettings) -> None:
    """Let the event loop take the GIL from the dataflow thread sooner (process-wide).

    The dataflow thread and the event loop share one GIL; with Python's default
    5 ms switch interval, messages wait behind analysis. At 2,000 posts/s to
    1,000 clients, 0.5 ms cut the p99 latency from seconds to tens of
    milliseconds (docs/benchmarks.md).
    """
    sys.setswitchinterval(settings.switch_interval)


def _one_line(error: BaseException) -> str:
    """``Type: message`` of the innermost cause of ``error``, on one line."""
    seen: set[int] = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    return " ".join(f"{type(error).__name__}: {error}".split())


async def start_server(server: SentiServer) -> None:
    """:meth:`SentiServer.start`; a source refusing at once (X rules) is :class:`DataflowFailed`."""
    try:
        await server.start()
    except SourceError as exc:
        await server.close()
        raise DataflowFailed(f"{server.source_name} source: {' '.join(str(exc).split())}") from None


def raise_failure(server: SentiServer) -> None:
    """Raise :class:`DataflowFailed` if the closed ``server``'s dataflow failed."""
    failure = server.failure
    if failure is not None:
        raise DataflowFailed(failure)


async def run_server(settings: ServerSettings) -> None:
    """``senti serve``: start, print the URLs, run until a signal, shut down cleanly.

    Raises :class:`DataflowFailed` when the dataflow ends because of an error.
    """
    apply_switch_interval(settings)
    server = SentiServer(settings)
    await start_server(server)
    page = f"{'https' if settings.certfile else 'http'}://{settings.host}:{server.port}/"
    print(f"senti: websocket {server.url}  demo {page}  metrics {page}metrics", flush=True)
    try:
        await server.wait_stopped()
    finally:
        await server.close()
    raise_failure(server)
