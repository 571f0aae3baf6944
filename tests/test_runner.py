"""Running flows on a thread (flows.runner)."""

from __future__ import annotations

import gc
import threading
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource

from flows.runner import GC_YOUNG_THRESHOLD, FlowThread, run_until_stopped, settled_heap


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
