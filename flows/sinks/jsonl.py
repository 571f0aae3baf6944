"""A sink writing each output item as one JSON line (``senti replay --out``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from typing_extensions import override

from flows.matching import Subscription
from flows.model import per_query

__all__ = ["JsonLinesSink"]


class _JsonLinesPartition(StatelessSinkPartition[Any]):
    def __init__(self, path: Path) -> None:
        # O_APPEND makes each write land whole at the end of the file, so the
        # partitions of several workers can share it without tearing lines.
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @override
    def write_batch(self, items: list[Any]) -> None:
        lines = [
            json.dumps(item.message(), ensure_ascii=False, separators=(",", ":")) + "\n"
            for item in per_query(items)
            if not isinstance(item, Subscription)
        ]
        if lines:
            os.write(self._fd, "".join(lines).encode("utf-8"))

    @override
    def close(self) -> None:
        os.close(self._fd)


class JsonLinesSink(DynamicSink[Any]):
    """Append per-post messages, window summaries, late and rejected records to ``path``.

    Per-post messages are the documented message plus ``query``, ``id``,
    ``created_at`` and ``compound``; the other records carry a ``"type"``
    (``window``, ``late``, ``rejected``). Subscription changes are not written.
    The file is opened when a worker builds its partition, not before.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _JsonLinesPartition:
        return _JsonLinesPartition(self.path)
