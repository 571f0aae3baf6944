"""An input that produces nothing and tells :mod:`flows.lanes` which worker each thread runs.

Bytewax builds a :class:`~bytewax.inputs.DynamicSource` once per worker, on
that worker's thread, and with its index; every later step of an item read on
that worker runs on the same thread until the item is keyed elsewhere. The
dataflow adds :class:`WorkerProbe` so that :class:`~flows.steps.Lanes` can
keep a post in the lane of the worker that read it.
"""

from __future__ import annotations

from typing import Any

from bytewax.inputs import DynamicSource, StatelessSourcePartition
from typing_extensions import override

from flows.lanes import record_worker

__all__ = ["WorkerProbe"]


class _Nothing(StatelessSourcePartition[Any]):
    @override
    def next_batch(self) -> list[Any]:
        raise StopIteration


class WorkerProbe(DynamicSource[Any]):
    """Records each worker's index on its thread (:func:`flows.lanes.record_worker`); no items."""

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Nothing:
        record_worker(worker_index, worker_count)
        return _Nothing()
