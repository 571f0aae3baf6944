"""The server's dataflow: how it is built, and how it runs in a child process.

``senti serve`` runs the dataflow either on a thread of the server process or,
for the self-contained sources (synthetic and replay), in a child process
(``SENTI_DATAFLOW=process``, the default). In one process the dataflow and the
event loop's fan-out share one GIL; in two, each gets a core.

The child talks to the server over one duplex pipe:

* server -> child: ``("track", Subscription)`` changes and ``("stop", None)``;
* child -> server: batches of :class:`Encoded` items, the per-post and window
  messages already encoded for both dialects, so the event loop only writes
  them to sockets, and the rejected lines without their raw text, for
  ``/metrics``; ``("read", (lines, finished))`` about every
  :data:`READ_REPORT_INTERVAL` s while it changes, the posts read and whether the source ended
  (:class:`~server.metrics.ReadCount`); then ``("done", error or None)`` when the flow has ended,
  the error one line for the user (``replay source: ...``).

A full pipe blocks the child's sink: a server that cannot keep up slows the
dataflow instead of buffering without bound.

With a store, the resumable sources (Bluesky, replay) start where the store's
cursors say (:mod:`flows.runtime.cursors`), with the queries that were tracked when
the previous run stopped (:func:`flows.runtime.resume.stored_resume`), and their final
positions are written once the flow has ended (:func:`flows.runtime.resume.write_positions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.alerts import Alert
from flows.analysis.sentiment import load_thresholds
from flows.assemble import assemble_flow
from flows.dataflow import FlowSettings
from flows.model import ALL_POSTS, Line, PostMatches, Rejected, WindowSummary
from flows.routing.matching import Query, Subscription
from flows.runtime.cursors import Positions
from flows.runtime.recovery import Recovery, prepare_recovery_dir
from flows.runtime.resume import StoredResume, stored_resume, write_positions
from flows.runtime.runner import FlowThread
from flows.sources.control import FlowStop, SourceFailed, SubscriptionSource
from flows.sources.registry import open_source
from server.backend import Deliver
from server.metrics import ReadCount
from server.protocol import Dialect, encode_alert, encode_post, encode_window
from server.settings import ServerSettings

__all__ = [
    "Encoded",
    "EncodedAlert",
    "EncodedPost",
    "EncodedWindow",
    "ProcessBackend",
    "ReadCounting",
    "StoredResume",
    "build_server_flow",
    "stored_resume",
    "write_positions",
]

logger = logging.getLogger("senti.dataflow")

READ_REPORT_INTERVAL = 0.25
"""Seconds between a dataflow process's reports of the lines it has read."""


@dataclass(frozen=True, slots=True)
class EncodedPost:
    """A per-post message for one query, in both dialects (``v1`` is ``None`` for an
    unscored post, which v1 clients do not receive)."""

    query: str
    v1: str | None
    v2: str


@dataclass(frozen=True, slots=True)
class EncodedAlert:
    """A sentiment-shift alert of one query, as its v2 message."""

    query: str
    v2: str


@dataclass(frozen=True, slots=True)
class EncodedWindow:
    """A closed window: the v2 message of a query, or the global counts (``*``)."""

    summary: WindowSummary
    v2: str


Encoded = EncodedPost | EncodedWindow | EncodedAlert | Rejected
"""What the child sends the server of each output item."""


def encode_items(items: Sequence[Any]) -> list[Encoded]:
    """What the server needs of a batch of dataflow output, encoded once."""
    encoded: list[Encoded] = []
    for item in items:
        if isinstance(item, PostMatches):
            matches = item.matches()
            v1 = encode_post(matches[0], Dialect.V1)  # the same for every query
            encoded += [EncodedPost(m.query, v1, encode_post(m, Dialect.V2)) for m in matches]
        elif isinstance(item, WindowSummary):
            v2 = "" if item.query == ALL_POSTS else encode_window(item)
            encoded.append(EncodedWindow(item, v2))
        elif isinstance(item, Alert):
            encoded.append(EncodedAlert(item.query, encode_alert(item)))
        elif isinstance(item, Rejected):  # counted by the server; the store keeps the raw text
            encoded.append(Rejected(item.origin, item.reason[:200], "", item.code))
    return encoded


class _CountingPartition(StatefulSourcePartition[Line, Any]):
    """A partition of the post source, telling its count when it ends."""

    def __init__(self, inner: StatefulSourcePartition[Line, Any], count: ReadCount) -> None:
        self._inner = inner
        self._count = count
        count.opened()

    @override
    def next_batch(self) -> list[Line]:
        try:
            return list(self._inner.next_batch())
        except StopIteration:
            self._count.ended()
            raise

    @override
    def next_awake(self) -> Any:
        return self._inner.next_awake()

    @override
    def snapshot(self) -> Any:
        return self._inner.snapshot()

    @override
    def close(self) -> None:
        self._inner.close()


class ReadCounting(FixedPartitionedSource[Line, Any]):
    """The server's post source, telling ``count`` when its partitions end (``/healthz``)."""

    def __init__(self, source: FixedPartitionedSource[Line, Any], count: ReadCount) -> None:
        self.source = source
        self.count = count

    @override
    def list_parts(self) -> list[str]:
        return self.source.list_parts()

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _CountingPartition:
        return _CountingPartition(
            self.source.build_part(step_id, for_part, resume_state), self.count
        )


def server_recovery(settings: ServerSettings) -> Recovery | None:
    """The recovery configuration, the directory prepared (0700), or ``None``."""
    if settings.recovery_dir is None:
        return None
    prepare_recovery_dir(settings.recovery_dir)
    interval = timedelta(seconds=settings.snapshot_interval)
    return Recovery(settings.recovery_dir, snapshot_interval=interval)


def build_server_flow(
    settings: ServerSettings,
    post_source: FixedPartitionedSource[Line, Any],
    subscriptions: SubscriptionSource,
    sinks: list[Any],
    *,
    stop: threading.Event,
    recovery: Recovery | None,
    positions: Positions | None = None,
    queries: Sequence[Query] = (),
    read_count: ReadCount | None = None,
) -> Any:
    """The dataflow of ``senti serve``, with the store sink when a store is set.

    ``positions`` go to the store with its batches; ``queries`` are tracked
    from the first post (those a resumed run takes over from the last one);
    ``read_count`` counts the posts read, and whether ``post_source`` has ended.
    """
    if read_count is not None:
        post_source = ReadCounting(post_source, read_count)
    return assemble_flow(
        post_source,
        subscriptions=subscriptions,
        sinks=sinks,
        store=settings.store,
        positions=positions,
        recovery=recovery,
        stop=stop,
        settings=FlowSettings(
            thresholds=load_thresholds(settings.thresholds),
            languages=settings.languages,
            window=timedelta(seconds=settings.window),
            wait=timedelta(seconds=settings.wait),
            live=True,
            lanes=settings.workers,
            queries=tuple(queries),
            on_posts=None if read_count is None else read_count.add,
            alerts=settings.alert_settings,
        ),
        webhook=settings.alert_webhook,
    )


# The child


class _PipePartition(StatelessSinkPartition[Any]):
    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    @override
    def write_batch(self, items: list[Any]) -> None:
        encoded = encode_items(items)
        if encoded:
            with self._lock:
                self._conn.send(("batch", encoded))


class _PipeSink(DynamicSink[Any]):
    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PipePartition:
        return _PipePartition(self._conn, self._lock)


class _ReadReporter:
    """Sends the child's :class:`~server.metrics.ReadCount` to the server while it changes."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self.count = ReadCount()
        self._conn = conn
        self._lock = lock
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="senti-read-count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sent: tuple[int, bool] | None = None
        while True:
            closing = self._closing.wait(READ_REPORT_INTERVAL)
            state = self.count.state()
            if state != sent:
                with self._lock, contextlib.suppress(OSError):
                    self._conn.send(("read", state))
                sent = state
            if closing:
                return

    def close(self) -> None:
        """Send the last count and stop."""
        self._closing.set()
        self._thread.join()


def _child(settings: ServerSettings, conn: Connection) -> None:
    """The child process: run the flow, take subscriptions from the pipe, send output."""
    # Ctrl-C in a terminal, and a service manager stopping a control group, signal
    # every process of the group. The server stops this flow through the pipe (or
    # the pipe's end, if the server died), so windows close and the store is
    # flushed; a signal here would abort the flow mid-batch instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop = FlowStop()
    subscriptions = SubscriptionSource(stop)
    send_lock = threading.Lock()

    def listen() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                kind, value = conn.recv()
                if kind == "track":
                    subscriptions.push(value)
                elif kind == "stop":
                    break
        stop.set()  # a stop request, or the server went away

    threading.Thread(target=listen, name="senti-pipe", daemon=True).start()
    reporter = _ReadReporter(conn, send_lock)
    read_count = reporter.count
    error: str | None = None
    try:
        recovery = server_recovery(settings)
        sinks = [_PipeSink(conn, send_lock)]
        positions = Positions() if settings.store is not None else None
        opened = open_source(settings.source, settings, positions=positions)
        resume = opened.resume
        flow = build_server_flow(
            settings,
            opened.posts,
            subscriptions,
            sinks,
            stop=stop,
            recovery=recovery,
            positions=positions,
            queries=resume.queries,
            read_count=read_count,
        )
        runner = FlowThread(flow, workers=settings.workers, recovery=recovery, stop=stop)
        runner.run()  # on this thread: the child has nothing else to do
        ended = runner.error is None or isinstance(runner.error, SourceFailed)
        if settings.store is not None and positions is not None and recovery is None and ended:
            write_positions(settings.store, positions)
        if isinstance(runner.error, SourceFailed):
            error = f"{settings.source} source: {runner.error}"
        elif runner.error is not None:
            error = f"dataflow failed: {type(runner.error).__name__}: {runner.error}"
    except Exception as exc:  # building the flow failed; reported to the server
        error = f"dataflow failed: {type(exc).__name__}: {exc}"
    if error is not None:
        error = " ".join(error.split())  # the server prints it as one line
    reporter.close()  # the final count goes before "done"
    with send_lock, contextlib.suppress(OSError):
        conn.send(("done", error))


class ProcessBackend:
    """The dataflow in a child process, as a :class:`~server.backend.Backend`."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._deliver: Deliver | None = None
        self._done = asyncio.Event()
        self.error: str | None = None
        self.read_count = ReadCount()
        """The lines the child has read, as it last reported them."""

    def push(self, item: Subscription) -> None:
        """Send a tracked-query change to the child (a few hundred bytes: never blocks)."""
        if self._conn is not None and not self._done.is_set():
            with contextlib.suppress(OSError):
                self._conn.send(("track", item))

    async def start(self, deliver: Deliver) -> None:
        """Spawn the child and read its output on the event loop."""
        self._deliver = deliver
        ours, theirs = multiprocessing.Pipe(duplex=True)
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=_child, args=(self.settings, theirs), name="senti-dataflow", daemon=True
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._conn is not None  # noqa: S101 - set before the reader is added
        try:
            while self._conn.poll():
                kind, value = self._conn.recv()
                if kind == "batch" and self._deliver is not None:
                    self._deliver(value)
                elif kind == "read":
                    lines, finished = value
                    self.read_count.set_state(lines, finished=finished)
                elif kind == "done":
                    self.error = value
                    self._finish()
                    return
        except (EOFError, OSError):
            self.error = self.error or "the dataflow process ended unexpectedly"
            self._finish()

    def _finish(self) -> None:
        if self._conn is not None and not self._done.is_set():
            asyncio.get_running_loop().remove_reader(self._conn.fileno())
        self._done.set()

    @property
    def running(self) -> bool:
        """Whether the child still runs the dataflow."""
        return self._process is not None and self._process.is_alive() and not self._done.is_set()

    async def close(self) -> None:
        """Ask the child to stop, keep reading until its flow has flushed, and reap it."""
        if self._conn is not None and not self._done.is_set():
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), timeout=30)
        if self._process is not None:
            await asyncio.to_thread(self._process.join, 10)
            if self._process.is_alive():
                self._process.kill()
        if self._conn is not None:
            self._finish()
            self._conn.close()
        if self.error:
            logger.error("dataflow failed", extra={"error": self.error})
