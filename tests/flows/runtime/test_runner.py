"""Running flows on a thread (flows.runtime.runner)."""

from __future__ import annotations

import gc
import threading
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, TestingSource

from flows.runtime.runner import (
    GC_YOUNG_THRESHOLD,
    FlowThread,
    paused_gc,
    run_until_stopped,
    settled_heap,
)
from flows.sources.bluesky import JetstreamRefused
from flows.sources.control import FlowStop, SourceFailed, Stoppable


def test_settled_heap_freezes_and_restores_the_collector() -> None:
    """Inside, what existed is frozen and young collections are rarer; after, all is undone."""
    before = gc.get_threshold()
    survivor = [object() for _ in range(10)]
    with settled_heap():
        assert gc.get_freeze_count() >= len(survivor)
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_settled_heap_restores_on_error() -> None:
    """A block that raises still leaves the collector as it found it."""
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), settled_heap():
        raise RuntimeError("boom")
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)


def test_paused_gc_turns_the_collector_off_and_back_to_how_it_was() -> None:
    """Inside, no collection runs; after, the collector is on again, or still off if it was,
    and what the block built is frozen out of later collections."""
    try:
        with paused_gc():
            assert not gc.isenabled()
            built = [[n] for n in range(1_000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
        gc.disable()
        with pytest.raises(RuntimeError), paused_gc():
            raise RuntimeError("boom")
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def _flow(items: list[Any], out: list[Any], mapper: Any = str) -> Dataflow:
    flow = Dataflow("runner-test")
    op.output(
        "out", op.map("map", op.input("in", flow, TestingSource(items)), mapper), TestingSink(out)
    )
    return flow


@pytest.mark.parametrize("workers", [1, 2])
def test_flow_thread_runs_a_flow_to_its_end(workers: int) -> None:
    """The flow's output is complete when the thread ends, on one worker or two."""
    out: list[Any] = []
    runner = FlowThread(_flow([1, 2, 3], out), workers=workers)
    runner.start()
    runner.join(timeout=60)
    assert (runner.error, sorted(out)) == (None, ["1", "2", "3"])
    assert gc.get_freeze_count() == 0


def test_run_until_stopped_reraises_what_the_flow_raised() -> None:
    """An error in a step reaches the caller, and the flow was not stopped by a signal."""

    def fail(item: int) -> int:
        raise ValueError(f"bad item {item}")

    with pytest.raises(Exception, match=r"runner-test\.map") as raised:
        run_until_stopped(_flow([1], [], fail), threading.Event())
    causes = []
    error: BaseException | None = raised.value
    while error is not None:
        causes.append(error)
        error = error.__cause__
    assert any(isinstance(cause, ValueError) and "bad item 1" in str(cause) for cause in causes)


class _Failing(FixedPartitionedSource[int, None]):
    """Emits ``items`` in one batch, then raises ``error`` (or raises it when built)."""

    def __init__(self, items: list[int], error: Exception, *, when: str = "next_batch") -> None:
        self.items = items
        self.error = error
        self.when = when

    def list_parts(self) -> list[str]:
        return ["only"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _FailingPart:
        if self.when == "build_part":
            raise self.error
        return _FailingPart(self.items, self.error)


class _FailingPart(StatefulSourcePartition[int, None]):
    def __init__(self, items: list[int], error: Exception) -> None:
        self._items: list[int] | None = items
        self._error = error

    def next_batch(self) -> list[int]:
        if self._items is None:
            raise self._error
        items, self._items = self._items, None
        return items

    def snapshot(self) -> None:
        return None


def _stoppable_flow(source: _Failing, stop: threading.Event, out: list[Any]) -> Dataflow:
    flow = Dataflow("failing-source")
    items = op.input("in", flow, Stoppable(source, stop))
    op.output("out", op.map("map", items, str), TestingSink(out))
    return flow


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_source_ends_the_flow_and_is_reraised_without_a_panic(
    workers: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """What the source emitted is output, then SourceFailed carries its error; no panic shows."""
    out: list[Any] = []
    error = JetstreamRefused("Jetstream refused the connection (HTTP 404 Not Found)")
    stop = FlowStop()
    with pytest.raises(SourceFailed) as raised:
        run_until_stopped(
            _stoppable_flow(_Failing([1, 2], error), stop, out), stop, workers=workers
        )
    assert raised.value.error is error
    assert str(raised.value) == "Jetstream refused the connection (HTTP 404 Not Found)"
    assert sorted(out) == ["1", "2"]
    assert stop.is_set()
    assert stop.failure is error
    assert "panicked" not in capfd.readouterr().err


def test_a_source_that_cannot_be_built_is_a_source_failure() -> None:
    """An error building the partition ends the flow at once and is reported the same way."""
    stop = FlowStop()
    source = _Failing([1], FileNotFoundError(2, "No such file or directory", "gone.jsonl"))
    source.when = "build_part"
    with pytest.raises(SourceFailed, match=r"^cannot read gone.jsonl: No such file or directory$"):
        run_until_stopped(_stoppable_flow(source, stop, []), stop)


def test_a_bug_in_a_source_is_reported_as_unexpected_on_one_line() -> None:
    """Any other exception is named by type and message, folded onto one line."""
    stop = FlowStop()
    source = _Failing([], RuntimeError("no time_us\nin the event"))
    with pytest.raises(
        SourceFailed, match=r"^unexpected error: RuntimeError: no time_us in the event$"
    ):
        run_until_stopped(_stoppable_flow(source, stop, []), stop)


def test_with_a_plain_event_a_source_error_propagates_as_before() -> None:
    """A Stoppable given a plain threading.Event lets its source's error through."""
    stop = threading.Event()
    with pytest.raises(Exception, match=r"failing-source") as raised:
        run_until_stopped(_stoppable_flow(_Failing([], ValueError("boom")), stop, []), stop)
    assert not isinstance(raised.value, SourceFailed)
