"""A sink writing each output item as one JSON line (``senti replay --out``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.model import Match, per_query
from flows.routing.matching import Subscription

__all__ = ["JsonLinesSink", "record"]


def record(item: Any) -> dict[str, Any]:
    """The JSON line for one output item; every line has a ``"type"`` (docs/output.md).

    ``match`` for a post delivered to a query, ``subscription`` for a change to
    the tracked queries; window, late and rejected records carry their own.
    """
    if isinstance(item, Match):
        return {"type": "match", **item.message()}
    if isinstance(item, Subscription):
        return {"type": "subscription", "query": item.key, "active": item.active}
    message: dict[str, Any] = item.message()
    return message if "type" in message else {"type": type(item).__name__.lower(), **message}


class _JsonLinesPartition(StatelessSinkPartition[Any]):
    def __init__(self, path: Path) -> None:
        # O_APPEND makes each write land whole at the end of the file, so the
        # partitions of several workers can share it without tearing lines.
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @override
    def write_batch(self, items: list[Any]) -> None:
        lines = [
            json.dumps(record(item), ensure_ascii=False, separators=(",", ":")) + "\n"
            for item in per_query(items)
        ]
        if lines:
            os.write(self._fd, "".join(lines).encode("utf-8"))

    @override
    def close(self) -> None:
        os.close(self._fd)


class JsonLinesSink(DynamicSink[Any]):
    """Append per-post messages, window summaries, late and rejected records to ``path``.

    Every line has a ``"type"``: ``match`` (the per-post message plus ``query``,
    ``id``, ``created_at`` and ``compound``), ``window``, ``late``, ``rejected``
    or ``subscription`` (see :func:`record` and docs/output.md).
    The file is opened when a worker builds its partition, not before.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _JsonLinesPartition:
        return _JsonLinesPartition(self.path)
