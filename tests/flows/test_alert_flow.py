"""Sentiment-shift alerts from the whole dataflow on the synthetic stream's seeded events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from flows.alerts import Alert, AlertSettings
from flows.dataflow import FlowSettings, build_flow
from flows.model import Line, WindowSummary
from flows.platforms.synthetic import (
    _TOPICS,
    EVENT_EPOCH,
    SyntheticEvent,
    event_schedule,
    generate_lines,
)
from flows.routing.matching import parse_query
from flows.sinks.store_sink import StoreSink
from flows.store import open_store

EntryPoint = Callable[[Dataflow], None]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RATE = 20
"""Posts per second of the stream (as ``make up``)."""
WINDOW = timedelta(seconds=10)
PER_WINDOW = RATE * 10
TOPIC_QUERIES = {topic.name: ", ".join(f"#{tag}" for tag in topic.hashtags) for topic in _TOPICS}
"""One query per synthetic topic: any of its hashtags."""


def _two_workers(flow: Dataflow) -> None:
    cluster_main(flow, [], 0, worker_count_per_proc=2)


def _lines(count: int, seed: int, *, events: bool = True) -> list[Line]:
    texts = generate_lines(count, seed=seed, start=T0, rate=RATE, events=events)
    return [Line(text, f"synthetic:{n}") for n, text in enumerate(texts)]


def _run(
    entry_point: EntryPoint,
    lines: Sequence[Line],
    queries: Sequence[str],
    *,
    lanes: int = 1,
    window: timedelta = WINDOW,
    sinks: Sequence[Any] = (),
    alerts: AlertSettings | None = None,
) -> list[Any]:
    out: list[Any] = []
    settings = FlowSettings(
        queries=[parse_query(query) for query in queries],
        window=window,
        align_to=T0,
        wait=timedelta(hours=1),  # every window closes at the end of input, none is late
        live=False,
        lanes=lanes,
        alerts=alerts or AlertSettings(),
    )
    flow = build_flow(TestingSource(lines), None, [TestingSink(out), *sinks], settings=settings)
    entry_point(flow)
    return out


def _alerts(out: Sequence[Any]) -> list[Alert]:
    return sorted(
        (item for item in out if isinstance(item, Alert)), key=lambda a: (a.start, a.query)
    )


def _window_of(alert: Alert) -> int:
    return int((alert.start - T0) / WINDOW)


def _key(topic: str) -> str:
    return parse_query(TOPIC_QUERIES[topic]).key


def _event_windows(event: SyntheticEvent) -> range:
    return range(event.first // PER_WINDOW, (event.end - 1) // PER_WINDOW + 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_injected_shift_is_found_within_two_windows_and_nothing_else(
    entry_point: EntryPoint, seed: int
) -> None:
    """Each seeded crisis or launch raises an alert of its polarity on its topic's query in the
    window it starts in or the next, and no alert falls outside an event on its topic."""
    count = 3 * EVENT_EPOCH
    out = _run(entry_point, _lines(count, seed), list(TOPIC_QUERIES.values()))
    alerts = _alerts(out)
    schedule = event_schedule(seed, until=count)
    for event in schedule:
        wanted = "negative" if event.kind == "crisis" else "positive"
        start = event.first // PER_WINDOW
        found = [
            _window_of(alert) - start
            for alert in alerts
            if alert.query == _key(event.topic) and alert.direction == wanted
        ]
        assert any(0 <= lag <= 1 for lag in found), (event, alerts)
    for alert in alerts:
        assert any(
            alert.query == _key(event.topic) and _window_of(alert) in _event_windows(event)
            for event in schedule
        ), alert


def test_a_steady_stream_raises_no_alert_in_1000_windows() -> None:
    """With the events left out, 1,000 windows of a query over every topic raise no alert."""
    every_tag = ", ".join(f"#{tag}" for topic in _TOPICS for tag in topic.hashtags[:2])
    window = timedelta(seconds=4)  # 80 posts a window, about a third of them matched
    out = _run(run_main, _lines(1_000 * 4 * RATE, 7, events=False), [every_tag], window=window)
    summaries = [s for s in out if isinstance(s, WindowSummary) and s.query != "*"]
    assert len(summaries) == 1_000
    assert min(s.positive + s.negative + s.neutral for s in summaries) >= 1
    assert sum(s.positive + s.negative + s.neutral >= 20 for s in summaries) > 500
    assert _alerts(out) == []


def test_two_workers_raise_the_same_alerts_as_one() -> None:
    """Split over two workers and two lanes, the flow raises exactly the alerts of one worker."""
    lines = _lines(2 * EVENT_EPOCH, 1)
    queries = list(TOPIC_QUERIES.values())
    one = _alerts(_run(run_main, lines, queries))
    two = _alerts(_run(_two_workers, lines, queries, lanes=2))
    assert one
    assert two == one


def test_alerts_are_written_to_the_store(tmp_path: Path) -> None:
    """The store sink keeps every alert of the flow, read back by query and time."""
    url = f"sqlite:///{tmp_path / 'senti.db'}"
    lines = _lines(2 * EVENT_EPOCH, 1)
    sink = StoreSink(url, background=False)
    out = _run(run_main, lines, list(TOPIC_QUERIES.values()), sinks=[sink])
    alerts = _alerts(out)
    assert alerts
    store = open_store(url)
    try:
        stored = store.alerts(since=T0, until=T0 + timedelta(days=1))
        assert sorted(stored, key=lambda a: (a.start, a.query)) == alerts
        first = alerts[0]
        assert store.alerts(first.query, since=T0, until=T0 + timedelta(days=1))[0] == first
    finally:
        store.close()


def test_alerts_off_raise_none() -> None:
    """``enabled=False`` (``SENTI_ALERTS=0``) keeps the flow from raising any alert."""
    lines = _lines(2 * EVENT_EPOCH, 1)
    out = _run(run_main, lines, list(TOPIC_QUERIES.values()), alerts=AlertSettings(enabled=False))
    assert _alerts(out) == []
    assert any(isinstance(item, WindowSummary) for item in out)
