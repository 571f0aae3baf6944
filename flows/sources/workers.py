"""An input telling :mod:`flows.routing.lanes` which worker each thread runs; starts the lanes.

Bytewax builds a :class:`~bytewax.inputs.DynamicSource` once per worker, on
that worker's thread, and with its index; every later step of an item read on
that worker runs on the same thread until the item is keyed elsewhere. The
dataflow adds :class:`WorkerProbe` so that :class:`~flows.steps.Lanes` can
keep a post in the lane of the worker that read it. The first worker also emits
the items it is given, once: the dataflow gives it every lane's key, which
starts each lane's windows (:mod:`flows.windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from bytewax.inputs import DynamicSource, StatelessSourcePartition
from typing_extensions import override

from flows.routing.lanes import record_worker

__all__ = ["WorkerProbe"]


X = TypeVar("X")


class _Once(StatelessSourcePartition[X], Generic[X]):
    def __init__(self, items: list[X]) -> None:
        self._items: list[X] | None = items

    @override
    def next_batch(self) -> list[X]:
        items, self._items = self._items, None
        if items is None:
            raise StopIteration
        return items


class WorkerProbe(DynamicSource[X], Generic[X]):
    """Records each worker's index on its thread (:func:`flows.routing.lanes.record_worker`).

    The first worker emits ``announce`` once; the others emit nothing.
    """

    def __init__(self, announce: Sequence[X] = ()) -> None:
        self.announce = tuple(announce)

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Once[X]:
        record_worker(worker_index, worker_count)
        return _Once(list(self.announce) if worker_index == 0 else [])
