"""Fixture stores for the dashboard tests, written through flows.store in tmp paths."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bytewax.testing import run_main
from dashboard_stores import SMALL_COMPOUNDS, url_of

from flows.dataflow import FlowSettings, build_flow
from flows.model import ALL_POSTS, Polarity
from flows.platforms.synthetic import _TOPICS, EVENT_EPOCH
from flows.routing.matching import Subscription, parse_query
from flows.sinks.store_sink import StoreSink
from flows.sources.replay import ReplaySource
from flows.sources.synthetic import write_synthetic
from flows.store import open_store
from tests.helpers.factories import (
    T0,
    make_alert,
    make_match,
    make_subscription,
    make_window,
)

TOPIC_QUERIES = tuple(", ".join(f"#{tag}" for tag in topic.hashtags) for topic in _TOPICS)
"""One query per synthetic topic, spelled with mixed-case hashtags: any of the topic's tags."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read the developer's store, secrets or metrics endpoint; run from tmp_path."""
    monkeypatch.delenv("SENTI_STORE", raising=False)
    monkeypatch.delenv("SENTI_METRICS_URL", raising=False)
    monkeypatch.delenv("SENTI_REFRESH_SECONDS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    """A senti store with its schema and nothing else."""
    path = tmp_path / "empty.db"
    open_store(url_of(path)).close()
    return url_of(path)


@pytest.fixture
def small_store(tmp_path: Path) -> str:
    """Three global windows, two queries (one inactive), eight ``python`` posts."""
    path = tmp_path / "small.db"
    polarity = {True: Polarity.POSITIVE, False: Polarity.NEGATIVE}
    items: list[object] = [
        make_subscription("python"),
        make_subscription("Climate Change"),
        make_subscription("climate CHANGE", active=False),
        make_window(ALL_POSTS, 0, posts=10, positive=5, negative=3, neutral=2, retweets=4),
        make_window(ALL_POSTS, 60, posts=20, positive=8, negative=8, neutral=4, retweets=1),
        make_window(ALL_POSTS, 120, posts=10, positive=1, negative=2, neutral=7, retweets=0),
        make_window(
            "python",
            0,
            posts=4,
            positive=2,
            negative=1,
            neutral=1,
            top_hashtags=(("python", 3), ("ai", 1)),
        ),
        make_window(
            "python",
            60,
            posts=4,
            positive=1,
            negative=2,
            neutral=1,
            top_hashtags=(("ai", 2), ("python", 1), ("rust", 1)),
        ),
    ]
    for number, compound in enumerate(SMALL_COMPOUNDS):
        cls = Polarity.NEUTRAL if abs(compound) < 0.05 else polarity[compound > 0]
        items.append(
            make_match(
                "python",
                number,
                f"python post {number} {'great' if compound > 0 else 'meh'}",
                created_at=number * 15,
                compound=compound,
                polarity=cls,
            )
        )
    with open_store(url_of(path)) as store:
        store.write(items)
    return url_of(path)


@pytest.fixture
def multilingual_store(tmp_path: Path) -> str:
    """Two global windows and one ``python`` window with unscored posts and languages; three
    ``python`` posts, one of them unscored (Portuguese)."""
    path = tmp_path / "multilingual.db"
    items: list[object] = [
        make_subscription("python"),
        make_window(
            ALL_POSTS, 0, posts=10, positive=3, negative=2, neutral=1, unscored=4,
            langs=(("en", 6), ("pt", 3), ("ja", 1)),
        ),
        make_window(
            ALL_POSTS, 60, posts=10, positive=4, negative=1, neutral=1, unscored=4,
            langs=(("en", 5), ("pt", 2), ("es", 2), ("other", 1)),
        ),
        make_window(
            "python", 0, posts=3, positive=1, negative=1, neutral=0, unscored=1,
            langs=(("en", 2), ("pt", 1)),
        ),
        make_match("python", 1, "python is great", created_at=1, compound=0.6,
                   polarity=Polarity.POSITIVE),
        make_match("python", 2, "python is awful", created_at=2, compound=-0.5,
                   polarity=Polarity.NEGATIVE),
        make_match("python", 3, "Que dia horrível, python", created_at=3, polarity=None,
                   lang="pt-BR"),
    ]  # fmt: skip
    with open_store(url_of(path)) as store:
        store.write(items)
    return url_of(path)


@pytest.fixture(scope="session")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """3,000 synthetic posts run through the real dataflow into a store."""
    folder = tmp_path_factory.mktemp("large")
    lines = folder / "posts.jsonl"
    write_synthetic(lines, count=3000, seed=7, start=T0, rate=10.0)
    url = url_of(folder / "large.db")
    queries = [parse_query(text) for text in ("python", "climate change", "coffee")]
    with open_store(url) as store:
        store.write([Subscription(query) for query in queries])
    settings = FlowSettings(
        queries=queries, live=False, wait=timedelta(seconds=30), window=timedelta(seconds=30)
    )
    run_main(build_flow(ReplaySource([lines]), None, [StoreSink(url)], settings=settings))
    return url


@pytest.fixture(scope="session")
def alert_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Ten minutes of the synthetic stream at 20 posts/s (with its seeded crisis and launch)
    run through the real dataflow, 10 s windows, one query per topic: the flow's alerts."""
    folder = tmp_path_factory.mktemp("alerts")
    lines = folder / "posts.jsonl"
    write_synthetic(lines, count=2 * EVENT_EPOCH, seed=1, start=T0, rate=20.0)
    url = url_of(folder / "alerts.db")
    queries = [parse_query(text) for text in TOPIC_QUERIES]
    with open_store(url) as store:
        store.write([Subscription(query) for query in queries])
    settings = FlowSettings(
        queries=queries,
        live=False,
        wait=timedelta(hours=1),  # every window closes at the end of the input
        window=timedelta(seconds=10),
        align_to=T0,
    )
    run_main(build_flow(ReplaySource([lines]), None, [StoreSink(url)], settings=settings))
    return url


@pytest.fixture
def gap_store(tmp_path: Path) -> str:
    """Global windows 12:00-12:03 and, after nine minutes of downtime, 12:12-12:15; the
    edges of the runs hold fewer posts, as a start and a stop inside a window leave them.
    Two alerts on ``Climate Change``, one in each run: a crisis at 12:01, a launch at 12:13."""
    path = tmp_path / "gap.db"
    posts = {0: 3, 60: 30, 120: 4, 720: 5, 780: 30, 840: 30}
    items: list[object] = [
        make_subscription("Climate Change"),
        make_alert("change climate", 60, length=timedelta(minutes=1), count=20, scored=30),
        make_alert(
            "change climate",
            780,
            length=timedelta(minutes=1),
            direction="positive",
            count=21,
            scored=30,
            baseline=0.3,
            z=4.4,
        ),
    ]
    for second, count in posts.items():
        third = count // 3
        items.append(
            make_window(
                ALL_POSTS,
                second,
                posts=count,
                positive=third,
                negative=third,
                neutral=count - 2 * third,
            )
        )
    with open_store(url_of(path)) as store:
        store.write(items)
    return url_of(path)
