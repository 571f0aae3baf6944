"""A sink handing each batch of output items to a callable (the server's hub)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

__all__ = ["CallbackSink"]


class _CallbackPartition(StatelessSinkPartition[Any]):
    def __init__(self, deliver: Callable[[list[Any]], None]) -> None:
        self._deliver = deliver

    @override
    def write_batch(self, items: list[Any]) -> None:
        self._deliver(items)


class CallbackSink(DynamicSink[Any]):
    """Calls ``deliver(items)`` once per batch, on the worker's thread.

    ``deliver`` must be quick and thread-safe: the websocket server passes a
    function that schedules the batch on its event loop with
    ``loop.call_soon_threadsafe`` and returns at once.
    """

    def __init__(self, deliver: Callable[[list[Any]], None]) -> None:
        self.deliver = deliver

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CallbackPartition:
        return _CallbackPartition(self.deliver)
