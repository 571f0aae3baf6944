"""Tumbling windows counted in the lane that read their posts, merged once every lane closed them.

Each lane (one per worker, :mod:`flows.routing.lanes`) counts the posts it analysed in
its own windows: a post's :data:`~flows.steps.Counted` record never leaves its
worker. :class:`LaneWindows` is that count, a Bytewax stateful-batch logic
keyed by lane; :class:`WindowMerge`, keyed by one key, adds up the lanes'
partial tallies of a window and lets it out once every lane has closed it.

The clock
---------
A lane's clock is Bytewax's ``EventClock`` on ``created_at``, in integer
microseconds: its *watermark* is the newest event time seen minus ``wait``,
and in live mode it also advances with the system clock from the moment that
newest post was seen. A post older than its lane's watermark is *late*: it is
not counted, and is reported instead (:class:`~flows.model.LatePost`). A
window closes when the watermark reaches its end.

Since each lane keeps its own clock, a worker that reads ahead of another
does not make the other's posts late (a single-clock design would); the merge
waits for the slower lane instead.

Records until a snapshot
------------------------
A lane keeps the records of its open windows and counts them
(:meth:`~flows.steps.LaneTally.count`) when a window closes, or when Bytewax
takes a snapshot: it does at the end of every epoch (10 s by default), with or
without recovery, so a lane holds at most about an epoch of records, and a
snapshot copies tallies, bounded by the queries and hashtags.

When every lane closed a window
-------------------------------
A lane reports how far it has closed, :attr:`Closed.through` (every window
with a lower id), each time that advances, with the partial tallies of the
windows it just closed, even when it has none. :class:`WindowMerge` lets a
window out when every lane's report has passed it, and all at the end of the
input. In live mode a lane's clock starts at its first item: the dataflow
sends each lane a start marker (:data:`LANE_START`) as it begins, counted as
a post at the current system time, so a lane that has no posts still closes
its windows as time passes. A replay (not live) has no system time: a lane
without posts holds the merge until the end of its input.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from bytewax.operators import StatefulBatchLogic
from typing_extensions import override

from flows.model import from_micros, micros
from flows.steps import Counted, LaneTally

__all__ = [
    "LANE_START",
    "Closed",
    "LaneState",
    "LaneWindows",
    "Late",
    "MergeState",
    "WindowMerge",
    "WindowSpec",
]

LANE_START: Final = None
"""The marker that starts a lane's clock (an item of the windows' input)."""

NEVER: Final = -(2**63)
"""Before any event time: the watermark of a lane that has seen nothing."""

ALWAYS: Final = 2**63
"""After any window: how far a lane has closed at the end of its input."""

Late = tuple[int, Counted]
"""A late post: ``(window_id, record)``, the window it was too late for."""


@dataclass(frozen=True, slots=True)
class Closed:
    """A lane's report: every window below ``through`` is closed; these are its tallies."""

    through: int
    windows: dict[int, LaneTally]


def _system_micros() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Tumbling windows of ``length`` aligned to ``align_to``, waiting ``wait`` for stragglers.

    Window ``i`` spans ``[align_to + i * length, align_to + (i + 1) * length)``,
    Bytewax's window ids. ``live`` also advances the clock with the system time.
    """

    length: timedelta
    align_to: datetime
    wait: timedelta
    live: bool
    now: Callable[[], int] = field(default=_system_micros, compare=False)
    """System time in microseconds since the epoch (live mode only)."""

    def __post_init__(self) -> None:
        if self.length <= timedelta(0):
            raise ValueError(f"window length must be positive, not {self.length}")
        if self.wait < timedelta(0):
            raise ValueError(f"wait must not be negative, not {self.wait}")


@dataclass(slots=True)
class LaneState:
    """What a lane's windows keep between batches (and in a recovery snapshot)."""

    watermark_base: int = NEVER
    """Newest event time minus the wait (µs)."""
    system_at_max: int = 0
    """System time when :attr:`watermark_base` last advanced (µs; live mode)."""
    through: int = NEVER
    """Every window with a lower id is closed."""
    open: dict[int, list[Counted]] = field(default_factory=dict)
    """The records of each open window not yet counted: they are counted
    (:meth:`LaneTally.count`) when the window closes or a snapshot is taken."""
    counted: dict[int, LaneTally] = field(default_factory=dict)
    """The tallies of records an open window had at the last snapshot."""


class LaneWindows(StatefulBatchLogic[Counted | None, Late | Closed, LaneState]):
    """One lane's windows: counts its posts, reports late ones and what it closed."""

    def __init__(self, spec: WindowSpec, state: LaneState | None = None) -> None:
        self.spec = spec
        self.state = state if state is not None else LaneState()
        self._align = micros(spec.align_to)
        self._length = spec.length // timedelta(microseconds=1)
        self._wait = spec.wait // timedelta(microseconds=1)
        self._now = spec.now() if spec.live else 0

    @override
    def on_batch(self, values: list[Counted | None]) -> tuple[list[Late | Closed], bool]:
        now = self._tick()
        state, wait, align, length = self.state, self._wait, self._align, self._length
        watermark = self._watermark(now)
        opened = state.open
        events: list[Late | Closed] = []
        for value in values:
            # The clock, as Bytewax's EventClock: it only moves forward.
            created = (now if self.spec.live else NEVER) if value is None else value[1]
            if created - wait > watermark:
                state.watermark_base = watermark = created - wait
                state.system_at_max = now
            if value is None:
                continue
            window = (created - align) // length
            if created < watermark:
                events.append((window, value))
                continue
            found = opened.get(window)
            if found is None:
                opened[window] = [value]
            else:
                found.append(value)
        self._close(watermark, events)
        return events, self.RETAIN

    @override
    def on_notify(self) -> tuple[list[Late | Closed], bool]:
        events: list[Late | Closed] = []
        self._close(self._watermark(self._tick()), events)
        return events, self.RETAIN

    @override
    def on_eof(self) -> tuple[list[Late | Closed], bool]:
        events: list[Late | Closed] = []
        self._close(ALWAYS, events)
        return events, self.RETAIN

    @override
    def notify_at(self) -> datetime | None:
        """In live mode, when the watermark reaches the end of the next window."""
        state = self.state
        if not self.spec.live or state.watermark_base == NEVER or state.through >= ALWAYS:
            return None
        next_end = self._align + (state.through + 1) * self._length
        return from_micros(state.system_at_max + next_end - state.watermark_base)

    @override
    def snapshot(self) -> LaneState:
        """The state, its open windows' records counted first: a copy of tallies, whose
        size is bounded by the queries and hashtags, rather than of every record."""
        state = self.state
        for window, records in state.open.items():
            tally = LaneTally.count(records)
            earlier = state.counted.get(window)
            state.counted[window] = tally if earlier is None else earlier.merge(tally)
        state.open.clear()
        return copy.deepcopy(state)

    def _tick(self) -> int:
        """The system time now, never earlier than at the last batch (µs; 0 if not live)."""
        if self.spec.live:
            self._now = max(self._now, self.spec.now())
        return self._now

    def _watermark(self, now: int) -> int:
        state = self.state
        if state.watermark_base == NEVER:
            return NEVER
        return state.watermark_base + (now - state.system_at_max)

    def _close(self, watermark: int, events: list[Late | Closed]) -> None:
        """Close the windows that end at or before ``watermark``, and report how far."""
        state = self.state
        if watermark == NEVER:
            return
        through = ALWAYS if watermark >= ALWAYS else (watermark - self._align) // self._length
        if through <= state.through:
            return
        opened, counted = state.open, state.counted
        ended = sorted(window for window in opened.keys() | counted.keys() if window < through)
        closed = {}
        for window in ended:
            tally = LaneTally.count(opened.pop(window, ()))
            earlier = counted.pop(window, None)
            closed[window] = tally if earlier is None else earlier.merge(tally)
        state.through = through
        events.append(Closed(through, closed))


@dataclass(slots=True)
class MergeState:
    """What :class:`WindowMerge` keeps: each lane's report, and windows not yet out."""

    through: dict[str, int] = field(default_factory=dict)
    pending: dict[int, LaneTally] = field(default_factory=dict)


class WindowMerge(StatefulBatchLogic[tuple[str, Closed], tuple[int, LaneTally], MergeState]):
    """Adds up the lanes' tallies of each window; lets a window out once every lane closed it."""

    def __init__(self, lanes: Sequence[str], state: MergeState | None = None) -> None:
        self.lanes = tuple(lanes)
        self.state = state if state is not None else MergeState()

    @override
    def on_batch(
        self, values: list[tuple[str, Closed]]
    ) -> tuple[list[tuple[int, LaneTally]], bool]:
        state = self.state
        for lane, closed in values:
            state.through[lane] = max(state.through.get(lane, NEVER), closed.through)
            for window, tally in closed.windows.items():
                mine = state.pending.get(window)
                state.pending[window] = tally if mine is None else mine.merge(tally)
        ready = min(state.through.get(lane, NEVER) for lane in self.lanes)
        return self._out(ready), self.RETAIN

    @override
    def on_eof(self) -> tuple[list[tuple[int, LaneTally]], bool]:
        return self._out(ALWAYS), self.RETAIN

    @override
    def snapshot(self) -> MergeState:
        return copy.deepcopy(self.state)

    def _out(self, ready: int) -> list[tuple[int, LaneTally]]:
        pending = self.state.pending
        return [(window, pending.pop(window)) for window in sorted(pending) if window < ready]
