"""The shift rule: z-test, warm-up, volume, episodes, and its error rates on synthetic counts."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.alerts import Alert, AlertSettings, Baseline, ShiftDetector, shift_z
from flows.model import ALL_POSTS, WindowSummary
from flows.platforms.synthetic import (
    _EVENT_WEIGHT,
    EVENT_EPOCH,
    TOPICS,
    event_at,
    event_schedule,
    mood_shares,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)
PER_WINDOW = 200
"""Posts of the whole stream per window (20 posts/s, 10 s windows, as ``make up``)."""


def _window(
    index: int, positive: int, negative: int, neutral: int, query: str = "q"
) -> WindowSummary:
    start = T0 + index * WINDOW
    posts = positive + negative + neutral
    return WindowSummary(query, start, start + WINDOW, posts, positive, negative, neutral, ())


def _feed(
    detector: ShiftDetector, windows: list[WindowSummary], state: Baseline | None = None
) -> tuple[Baseline | None, list[tuple[int, Alert]]]:
    alerts = []
    for index, window in enumerate(windows):
        state, alert = detector(state, window)
        if alert is not None:
            alerts.append((index, alert))
    return state, alerts


def _simulated(
    seed: int, topic: str, volume: int, windows: int, *, events: bool
) -> list[WindowSummary]:
    """Windows of one topic's query drawn post by post as :mod:`flows.platforms.synthetic` does.

    Post ``n`` is about the topic with chance ``volume / PER_WINDOW`` (times the
    trending weight during the topic's events, shared out as the generator
    does) and then positive, negative or neutral with
    :func:`~flows.platforms.synthetic.mood_shares` of ``n``.
    """
    rng = random.Random(f"{seed}:{topic}:{volume}")
    usual = volume / PER_WINDOW
    out = []
    for index in range(windows):
        counts = [0, 0, 0]
        for n in range(index * PER_WINDOW, (index + 1) * PER_WINDOW):
            event = event_at(n, seed=seed) if events else None
            chance = usual
            if event is not None:
                weight = _EVENT_WEIGHT if event.topic == topic else 1
                chance = usual * len(TOPICS) * weight / (len(TOPICS) - 1 + _EVENT_WEIGHT)
            if rng.random() >= chance:
                continue
            shares = mood_shares(n, seed=seed, topic=topic, events=events)
            draw = rng.random()
            counts[0 if draw < shares[0] else 1 if draw < shares[0] + shares[1] else 2] += 1
        out.append(_window(index, counts[0], counts[1], counts[2], query=topic))
    return out


def test_z_is_zero_for_equal_shares_and_grows_with_the_rise() -> None:
    """A window at the baseline share scores 0; a larger rise or more posts score higher."""
    assert shift_z(10, 30, 100.0, 300.0) == 0.0
    assert shift_z(20, 30, 100.0, 300.0) > shift_z(15, 30, 100.0, 300.0) > 0
    assert shift_z(40, 60, 100.0, 300.0) > shift_z(20, 30, 100.0, 300.0)
    assert shift_z(2, 30, 100.0, 300.0) < 0
    assert shift_z(5, 0, 100.0, 300.0) == 0.0
    assert shift_z(0, 30, 0.0, 300.0) == 0.0  # pooled share 0: no variance


def test_z_applies_the_continuity_correction() -> None:
    """A rise smaller than the correction (1/n + 1/N) / 2 scores 0, not a small z."""
    # 1/10 + 1/100 = 0.11, half is 0.055: a rise of 0.05 is inside it.
    assert shift_z(4, 10, 35.0, 100.0) == 0.0
    uncorrected = (0.6 - 0.35) / (0.3727 * 0.6273 * 0.11) ** 0.5
    assert 0 < shift_z(6, 10, 35.0, 100.0) < uncorrected


def test_a_clear_rise_alerts_once_per_episode_and_re_arms() -> None:
    """After warm-up a negative jump raises one alert; another jump after a calm spell one more."""
    detector = ShiftDetector()
    calm = [_window(i, 10, 10, 10) for i in range(10)]
    crisis = [_window(10 + i, 2, 24, 4) for i in range(3)]
    after = [_window(13 + i, 10, 10, 10) for i in range(5)]
    again = [_window(18, 2, 24, 4)]
    _, alerts = _feed(detector, calm + crisis + after + again)
    assert [index for index, _ in alerts] == [10, 18]
    alert = alerts[0][1]
    assert alert.direction == "negative"
    assert alert.query == "q"
    assert (alert.start, alert.end) == (T0 + 10 * WINDOW, T0 + 11 * WINDOW)
    assert (alert.count, alert.scored) == (24, 30)
    assert alert.share == pytest.approx(0.8)
    assert alert.baseline == pytest.approx(1 / 3)
    assert alert.z >= 4
    message = alert.message()
    assert message["type"] == "alert"
    assert message["label"] == "q"
    assert message["start"] == "2024-05-01T12:01:40.000Z"
    assert message["direction"] == "negative"


def test_a_launch_raises_a_positive_alert() -> None:
    """A jump of the positive share is reported with direction positive."""
    windows = [_window(i, 10, 10, 10) for i in range(8)] + [_window(8, 25, 1, 4)]
    _, alerts = _feed(ShiftDetector(), windows)
    assert [(index, alert.direction) for index, alert in alerts] == [(8, "positive")]


def test_warm_up_volume_and_minimum_shift_hold_alerts_back() -> None:
    """No alert before warm-up, in a window below min_posts, or for a rise below min_shift."""
    detector = ShiftDetector(AlertSettings(warmup=5, min_posts=20, min_shift=0.10))
    early = [_window(i, 10, 10, 10) for i in range(3)] + [_window(3, 1, 28, 1)]
    assert _feed(detector, early)[1] == []
    state, _ = _feed(detector, [_window(i, 10, 10, 10) for i in range(10)])
    assert _feed(detector, [_window(10, 1, 15, 1)], state)[1] == []  # 17 posts
    big = ShiftDetector(AlertSettings(min_shift=0.10, z=2.0))
    state, _ = _feed(big, [_window(i, 1000, 1000, 1000) for i in range(10)])
    assert _feed(big, [_window(10, 950, 1250, 1000)], state)[1] == []  # +5.7 points, z > 5
    assert _feed(big, [_window(10, 800, 1500, 700)], state)[1] != []


def test_all_posts_and_disabled_settings_raise_nothing() -> None:
    """The all-posts window is not a query, and enabled=False turns alerts off."""
    windows = [_window(i, 10, 10, 10, query=ALL_POSTS) for i in range(8)]
    windows.append(_window(8, 1, 28, 1, query=ALL_POSTS))
    state, alerts = _feed(ShiftDetector(), windows)
    assert (state, alerts) == (None, [])
    off = ShiftDetector(AlertSettings(enabled=False))
    assert _feed(off, [_window(i, 10, 10, 10) for i in range(8)] + [_window(8, 1, 28, 1)])[1] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("z", 0.0),
        ("min_posts", 0),
        ("min_shift", 1.0),
        ("warmup", 0),
        ("alpha", 0.0),
        ("rearm_z", 9.0),
    ],
)
def test_bad_settings_are_refused(field: str, value: float) -> None:
    """Each threshold out of range raises ValueError naming it."""
    with pytest.raises(ValueError, match=field):
        replace(AlertSettings(), **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("volume", [15, 40, 150])
def test_a_steady_stream_raises_no_alert_in_1000_windows(volume: int) -> None:
    """With the events left out, 1,000 windows of a drifting topic raise no alert."""
    windows = _simulated(11, "python", volume, 1_000, events=False)
    assert _feed(ShiftDetector(), windows)[1] == []


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("volume", [15, 40])
def test_every_injected_event_is_found_within_two_windows(seed: int, volume: int) -> None:
    """Each crisis or launch of the schedule raises an alert of its polarity on its topic in
    the window it starts in or the next one."""
    windows = 5 * EVENT_EPOCH // PER_WINDOW
    schedule = event_schedule(seed, until=5 * EVENT_EPOCH)
    for topic in {event.topic for event in schedule}:
        _, alerts = _feed(ShiftDetector(), _simulated(seed, topic, volume, windows, events=True))
        found = {(index, alert.direction) for index, alert in alerts}
        for event in (event for event in schedule if event.topic == topic):
            wanted = "negative" if event.kind == "crisis" else "positive"
            start = event.first // PER_WINDOW
            assert found & {(start, wanted), (start + 1, wanted)}, (event, alerts)
