"""Lanes: routing keys that Bytewax places one on each worker.

Bytewax sends every item of a stateful step to the worker that owns the item's
key, and picks that worker by hashing the key: ``SipHash-1-3`` (Rust's
``DefaultHasher``, keys zero) of the key's UTF-8 bytes followed by ``0xff``
(how Rust hashes a ``str``), modulo the number of workers. Measured on bytewax
0.21.1; ``tests/test_lanes.py`` runs a real dataflow to check it.

:func:`lane_keys` names ``n`` keys so that key ``i`` lands on worker ``i`` of
``n``. The dataflow (see :mod:`flows.dataflow`) spreads posts over these lanes
and keys every later step by the same lanes, so a post crosses between workers
at most once, as its raw line. Nothing depends on the placement for
correctness: were Bytewax to hash differently, lanes would still partition the
work, only less evenly and with more crossing.

:func:`local_lane` answers which lane is the current worker's own, once
:func:`record_worker` has been told on that worker's thread (the dataflow's
:class:`~flows.sources.workers.WorkerProbe` does it as Bytewax builds each
worker). A post read by that worker can then stay in its lane.

Pure: no I/O, no bytewax.
"""

from __future__ import annotations

import functools
import threading
from typing import Final

__all__ = ["lane_keys", "local_lane", "record_worker", "worker_of"]

_MASK: Final = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK


def _siphash13(data: bytes) -> int:
    """SipHash-1-3 with both keys zero, as Rust's ``DefaultHasher::new()``."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)

    size = len(data)
    whole = size - size % 8
    for start in range(0, whole, 8):
        word = int.from_bytes(data[start : start + 8], "little")
        v3 ^= word
        sip_round()
        v0 ^= word
    last = ((size & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return v0 ^ v1 ^ v2 ^ v3


def worker_of(key: str, workers: int) -> int:
    """The index of the worker Bytewax (0.21) routes the state key ``key`` to."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    return _siphash13(key.encode("utf-8", "surrogatepass") + b"\xff") % workers


@functools.cache
def lane_keys(lanes: int) -> tuple[str, ...]:
    """``lanes`` routing keys, key ``i`` owned by worker ``i`` when there are ``lanes`` workers.

    Key ``i`` is ``lane-i-of-n``, with the first suffix ``~k`` that places it
    (a few tries on average). The count is in the name: a run resumed with
    another number of lanes starts afresh instead of finding state filed under
    the old split.
    """
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    keys = []
    for lane in range(lanes):
        key, attempt = f"lane-{lane}-of-{lanes}", 0
        while worker_of(key, lanes) != lane:
            attempt += 1
            key = f"lane-{lane}-of-{lanes}~{attempt}"
        keys.append(key)
    return tuple(keys)


_workers: dict[int, tuple[int, int]] = {}
"""Worker index and count by thread identifier. Not a ``threading.local``: Bytewax's
worker threads are not started by Python, and each of its calls into Python may
get a fresh thread state, which would forget thread-local values."""


def record_worker(index: int, count: int) -> None:
    """Remember, for the calling thread, that it runs worker ``index`` of ``count``."""
    if not 0 <= index < count:
        raise ValueError(f"worker {index} is not one of {count}")
    _workers[threading.get_ident()] = (index, count)


def local_lane(lanes: int) -> str | None:
    """The key of the calling worker's own lane, or ``None`` if that is not known.

    Known once :func:`record_worker` ran on this thread for a cluster of
    ``lanes`` workers; a different count means the lanes are not one per worker.
    """
    placed = _workers.get(threading.get_ident())
    if placed is None or placed[1] != lanes:
        return None
    return lane_keys(lanes)[placed[0]]
