"""Windows per lane and their merge (flows.windows), driven by hand, without a dataflow."""

from __future__ import annotations

import pickle
import random
from datetime import timedelta
from typing import Any

from flows.model import ALL_POSTS, Polarity, micros
from flows.steps import RETWEET, Counted, LaneTally, counted
from flows.windows import (
    ALWAYS,
    LANE_START,
    Closed,
    LaneWindows,
    WindowMerge,
    WindowSpec,
)
from tests.helpers.factories import T0, make_scored

MINUTE = 60_000_000
"""A window's length in microseconds."""


def spec(*, wait: float = 0, live: bool = False, clock: list[int] | None = None) -> WindowSpec:
    """One-minute windows from T0; ``clock[0]`` is the system time (µs) when live."""
    now = clock if clock is not None else [0]
    return WindowSpec(timedelta(minutes=1), T0, timedelta(seconds=wait), live, now=lambda: now[0])


def record(
    post_id: int, seconds: float, queries: tuple[str, ...] = ("python",), **kwargs: Any
) -> Counted:
    """The window record of a post ``seconds`` after T0, counted for ``queries`` and ``*``."""
    return counted(make_scored(post_id, created_at=seconds, **kwargs), (*queries, ALL_POSTS))


def closed(events: list[Any]) -> list[Closed]:
    return [event for event in events if isinstance(event, Closed)]


def late(events: list[Any]) -> list[tuple[int, str]]:
    """(window id, post id) of every late record among a lane's events."""
    return [(event[0], event[1][0]) for event in events if not isinstance(event, Closed)]


def counts(tally: LaneTally) -> dict[str, tuple[list[int], int, dict[str, int]]]:
    """A lane tally as plain values, to compare."""
    return {
        query: (list(t.counts), t.retweets, dict(t.hashtags))
        for query, t in sorted(tally.tallies.items())
    }


# One lane, replay (event time only)


def test_a_window_closes_when_the_watermark_passes_its_end() -> None:
    """Posts count in their minute; a post past the end closes it and reports how far."""
    lane = LaneWindows(spec())
    events, retain = lane.on_batch([record(1, 5), record(2, 30, polarity=Polarity.POSITIVE)])
    assert retain is LaneWindows.RETAIN
    [first] = closed(events)  # the first post starts the clock: nothing before it is open
    assert first.windows == {}
    events, _ = lane.on_batch([record(3, 61)])
    [report] = closed(events)
    assert report.through == 1
    assert list(report.windows) == [0]
    assert counts(report.windows[0])["python"] == ([1, 0, 1], 0, {})
    assert lane.state.open.keys() == {1}


def test_a_post_older_than_the_watermark_is_late_and_not_counted() -> None:
    """Late means older than the newest post minus the wait, as Bytewax's EventClock."""
    lane = LaneWindows(spec(wait=10))
    lane.on_batch([record(1, 100)])
    events, _ = lane.on_batch([record(2, 95), record(3, 85)])  # watermark 90
    assert late(events) == [(1, "3")]
    assert counts(LaneTally.count(lane.state.open[1]))[ALL_POSTS][0] == [0, 0, 2]


def test_retweets_count_as_retweets() -> None:
    """A retweet's record adds to the global window's retweets only."""
    lane = LaneWindows(spec())
    retweet: Counted = ("9", micros(T0) + 1, RETWEET, {}, (ALL_POSTS,), "")
    lane.on_batch([retweet, record(1, 2, hashtags={"py": 2})])
    [report] = closed(lane.on_eof()[0])
    assert counts(report.windows[0]) == {
        ALL_POSTS: ([0, 0, 1], 1, {"py": 2}),
        "python": ([0, 0, 1], 0, {"py": 2}),
    }


def test_the_end_of_input_closes_every_window() -> None:
    """At EOF a lane reports every open window, in window order, and that all are closed."""
    lane = LaneWindows(spec(wait=600))
    lane.on_batch([record(1, 200), record(2, 10), record(3, 130)])
    [report] = closed(lane.on_eof()[0])
    assert report.through == ALWAYS
    assert list(report.windows) == [0, 2, 3]
    assert lane.on_eof()[0] == []  # nothing more to report


def test_a_replay_lane_never_asks_to_be_woken() -> None:
    """Without a system clock only posts move the watermark."""
    lane = LaneWindows(spec())
    lane.on_batch([LANE_START, record(1, 5)])
    assert lane.notify_at() is None
    assert closed(lane.on_notify()[0]) == []


# One lane, live (the system clock moves the watermark too)


def test_a_live_lane_starts_its_clock_at_the_start_marker() -> None:
    """A lane with no posts still closes windows as system time passes."""
    now = [micros(T0) + 30_000_000]
    lane = LaneWindows(spec(wait=5, live=True, clock=now))
    [report] = closed(lane.on_batch([LANE_START])[0])
    assert report == Closed(0, {})  # watermark T0 + 25 s
    assert lane.notify_at() == T0 + timedelta(seconds=65)  # when the watermark reaches T0 + 60 s
    now[0] = micros(T0 + timedelta(seconds=65))
    [report] = closed(lane.on_notify()[0])
    assert report == Closed(1, {})


def test_a_live_watermark_follows_the_system_clock_from_the_newest_post() -> None:
    """Watermark = newest event time - wait + system time since that post, never backwards."""
    now = [micros(T0) + 100_000_000]
    lane = LaneWindows(spec(wait=5, live=True, clock=now))
    lane.on_batch([record(1, 50)])  # watermark T0 + 45 s at system T0 + 100 s
    assert lane.notify_at() == T0 + timedelta(seconds=115)
    now[0] += 20_000_000  # watermark T0 + 65 s
    [report] = closed(lane.on_notify()[0])
    assert (report.through, list(report.windows)) == (1, [0])
    now[0] -= 60_000_000  # the system clock steps back: the watermark holds
    events, _ = lane.on_batch([record(2, 62)])
    assert late(events) == [(1, "2")]


def test_a_snapshot_resumes_where_it_was_and_is_a_copy() -> None:
    """A lane rebuilt from its snapshot goes on as the original; the snapshot does not change."""
    lane = LaneWindows(spec(wait=10))
    lane.on_batch([record(1, 5), record(2, 30)])
    snapshot = lane.snapshot()
    frozen = pickle.dumps(snapshot)
    resumed = LaneWindows(spec(wait=10), pickle.loads(frozen))  # noqa: S301 - our own bytes
    rest = [record(3, 70), record(4, 15), record(5, 200)]
    assert repr(resumed.on_batch(rest)) == repr(lane.on_batch(rest))
    assert pickle.dumps(snapshot) == frozen


# The merge


def test_the_merge_waits_for_every_lane_then_lets_windows_out_in_order() -> None:
    """A window is out once every lane's report has passed it, with the lanes' tallies added."""
    merge = WindowMerge(["a", "b"])
    tally_a = LaneTally.count([record(1, 5)])
    tally_b = LaneTally.count([record(2, 10, polarity=Polarity.NEGATIVE)])
    out, _ = merge.on_batch([("a", Closed(2, {0: tally_a, 1: LaneTally.count([record(3, 70)])}))])
    assert out == []  # lane b has not closed window 0
    out, _ = merge.on_batch([("b", Closed(1, {0: tally_b}))])
    assert [window for window, _ in out] == [0]
    assert counts(out[0][1])["python"] == ([0, 1, 1], 0, {})
    out, _ = merge.on_eof()
    assert [window for window, _ in out] == [1]


def test_a_silent_lane_holds_the_merge_until_the_end() -> None:
    """A lane that never reports keeps every window in; the end of input lets them out."""
    merge = WindowMerge(["a", "b"])
    assert merge.on_batch([("a", Closed(5, {3: LaneTally.count([record(1, 200)])}))])[0] == []
    assert [window for window, _ in merge.on_eof()[0]] == [3]


def test_lanes_add_up_to_one_lane() -> None:
    """Posts spread over three lanes, each on its own clock, merge into one lane's windows."""
    rng = random.Random(7)
    records = [
        record(
            n,
            n * 3 + rng.uniform(-10, 10),
            tuple(rng.sample(["python", "tea", "coffee"], rng.randint(0, 2))),
            polarity=rng.choice(list(Polarity)),
            hashtags={rng.choice("abc"): 1},
        )
        for n in range(400)
    ]
    one = _merged({"a": records}, wait=30)
    spread: dict[str, list[Counted]] = {"a": [], "b": [], "c": []}
    for n, rec in enumerate(records):
        spread["abc"[rng.randrange(3) if n % 50 else 0]].append(rec)
    assert _merged(spread, wait=30) == one
    assert len(one) >= 20


def test_a_lane_ahead_does_not_make_another_lanes_posts_late() -> None:
    """Each lane keeps its own clock: one reading far ahead only delays the merge."""
    early = [record(n, n) for n in range(100)]
    ahead = [record(1000 + n, 600 + n) for n in range(100)]
    lane_a, lane_b = LaneWindows(spec()), LaneWindows(spec())
    events_a = lane_a.on_batch(ahead)[0] + lane_a.on_eof()[0]
    events_b = lane_b.on_batch(early)[0] + lane_b.on_eof()[0]
    assert late(events_a + events_b) == []
    merge = WindowMerge(["a", "b"])
    out = merge.on_batch([("a", c) for c in closed(events_a)])[0]
    assert out == []
    out = merge.on_batch([("b", c) for c in closed(events_b)])[0]
    assert [window for window, _ in out] == [0, 1, 10, 11]


def test_snapshots_change_no_window() -> None:
    """A snapshot counts the open windows' records early; the windows come out the same,
    and a lane resumed from any snapshot goes on to the same windows."""
    rng = random.Random(11)
    records = [
        record(n, n * 2 + rng.uniform(-5, 5), ("python",), hashtags={rng.choice("ab"): 1})
        for n in range(300)
    ]
    plain = _merged({"a": records}, wait=10)
    assert _merged({"a": records}, wait=10, snapshot_every=3) == plain
    assert _merged({"a": records}, wait=10, snapshot_every=1, resume=True) == plain


def _merged(
    lanes: dict[str, list[Counted]],
    *,
    wait: float,
    snapshot_every: int = 0,
    resume: bool = False,
) -> list[Any]:
    """Feed each lane its records in batches of 7, merge as the reports come, then EOF.

    ``snapshot_every`` n batches, snapshot each lane (and with ``resume``, go on
    from a new lane built from the pickled snapshot).
    """
    logics = {name: LaneWindows(spec(wait=wait)) for name in lanes}
    merge = WindowMerge(list(lanes))
    out: list[tuple[int, LaneTally]] = []
    for batch, start in enumerate(range(0, max(map(len, lanes.values())), 7), 1):
        if snapshot_every and batch % snapshot_every == 0:
            for name, logic in logics.items():
                state = pickle.loads(pickle.dumps(logic.snapshot()))  # noqa: S301 - our own
                if resume:
                    logics[name] = LaneWindows(spec(wait=wait), state)
        for name, records in lanes.items():
            events = logics[name].on_batch(records[start : start + 7])[0]
            assert late(events) == []
            out += merge.on_batch([(name, report) for report in closed(events)])[0]
    for name, logic in logics.items():
        out += merge.on_batch([(name, report) for report in closed(logic.on_eof()[0])])[0]
    out += merge.on_eof()[0]
    return [(window, counts(tally)) for window, tally in out]
