"""Run a dataflow on a background thread and stop it gracefully.

Bytewax runs a flow until every input reaches its end. Wrapping the inputs in
:class:`~flows.sources.control.Stoppable` sharing one :class:`threading.Event`
turns "stop" into "end of input": windows close, sinks flush, and the runtime
returns normally. :func:`run_until_stopped` adds SIGINT/SIGTERM handling for the
command line.

A source that cannot go on ends its input the same way and leaves its error in
the shared :class:`~flows.sources.control.FlowStop`; once the flow has
returned (its sinks flushed), the runner reports it as
:class:`~flows.sources.control.SourceFailed`.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from bytewax.dataflow import Dataflow
from bytewax.run import cli_main

from flows.runtime.recovery import Recovery, is_interruption
from flows.sources.control import FlowStop, SourceFailed

__all__ = ["FlowThread", "paused_gc", "run_until_stopped", "settled_heap", "stop_on_signals"]

GC_YOUNG_THRESHOLD = 10_000
"""Allocations between collections of the youngest generation (Python's default: 700)."""


@contextmanager
def settled_heap() -> Iterator[None]:
    """While the block runs, keep the garbage collector off what exists at its start.

    Everything alive when a flow starts (modules, VADER's lexicon, the query index)
    lives as long as the flow, yet every full collection would walk it again;
    frozen, it is not scanned. The flow then allocates a few objects per post,
    almost all freed by reference counting, so the youngest generation is
    collected every 10,000 allocations instead of 700. Together about 4% of a
    replay's time. Both are undone when the block ends.

    It does not collect first: a full collection walks every object, the tracked
    queries too (a quarter of a second for 100,000 of them), while what start-up
    leaves as garbage is little; it is collected once the block ends.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def paused_gc() -> Iterator[None]:
    """While the block runs, no garbage collection (as it was before when the block ends).

    For building many long-lived objects at once, such as the tracked queries of
    a run: each full collection walks every object made so far, so building
    100,000 queries with the collector on cost twice as much as without. When
    the block ends, what exists is frozen (``gc.freeze``), as :func:`settled_heap`
    does: else the first collection after it walks all the block made (0.13 s
    for 100,000 queries). :func:`settled_heap` unfreezes it when the flow ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # what the block built is long-lived: no collection walks it (as settled_heap)
        if enabled:
            gc.enable()


class FlowThread(threading.Thread):
    """A dataflow executing on its own thread; :attr:`error` holds what it raised.

    ``stop`` is the flow's :class:`~flows.sources.control.FlowStop`, if it has
    one: when a source failed, :attr:`error` is a
    :class:`~flows.sources.control.SourceFailed` carrying the source's error.
    """

    def __init__(
        self,
        flow: Dataflow,
        *,
        workers: int = 1,
        recovery: Recovery | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(name=f"{flow.flow_id}-dataflow", daemon=True)
        self.flow = flow
        self.workers = workers
        self.recovery = recovery
        """Snapshot to and resume from here (see :mod:`flows.runtime.recovery`)."""
        self.stop = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        """Execute the flow until its inputs end."""
        recovery = self.recovery
        try:
            with settled_heap():
                # bytewax's runtime entry point has no type annotations.
                cli_main(  # type: ignore[no-untyped-call]
                    self.flow,
                    workers_per_process=self.workers,
                    epoch_interval=recovery.snapshot_interval if recovery else None,
                    recovery_config=recovery.config() if recovery else None,
                )
        except BaseException as exc:  # reported to the owner thread
            if recovery is None or not is_interruption(exc):  # a stop is not a failure
                self.error = exc
        if isinstance(self.stop, FlowStop) and self.stop.failure is not None:
            self.error = SourceFailed(self.stop.failure)  # the cause of whatever followed


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while the block runs.

    Only the main thread can handle signals; elsewhere (a test running a command
    on a thread) the block runs without handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_until_stopped(
    flow: Dataflow, stop: threading.Event, *, workers: int = 1, recovery: Recovery | None = None
) -> bool:
    """Run ``flow`` until its inputs end or a signal sets ``stop``.

    Returns whether it was stopped by a signal. Re-raises what the flow raised:
    :class:`~flows.sources.control.SourceFailed` if a source failed (``stop``
    being a :class:`~flows.sources.control.FlowStop`).
    """
    runner = FlowThread(flow, workers=workers, recovery=recovery, stop=stop)
    with stop_on_signals(stop):
        runner.start()
        while runner.is_alive():
            runner.join(timeout=0.2)
    if runner.error is not None:
        raise runner.error
    return stop.is_set()
