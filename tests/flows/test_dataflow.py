"""The dataflow end to end on TestingSource/TestingSink, under one and two workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, TestingSource

from flows.analysis.languages import parse_scored_languages
from flows.dataflow import FlowSettings, build_flow
from flows.model import (
    ALL_POSTS,
    LatePost,
    Line,
    Match,
    Polarity,
    RejectCode,
    Rejected,
    WindowSummary,
    per_query,
)
from flows.routing.matching import Subscription, parse_query
from flows.sources.replay import ReplaySource
from tests.helpers.xlines import T0, x_envelope, x_line


def run(
    entry_point: Callable[[Any], None],
    lines: Sequence[Line],
    queries: Sequence[str],
    *,
    subscriptions: Any = None,
    post_source: Any = None,
    out: list[Any] | None = None,
    **settings: Any,
) -> list[Any]:
    """Run the flow over ``lines`` tracking ``queries``; return every output item."""
    out = [] if out is None else out
    options: dict[str, Any] = {"live": False, "wait": timedelta(0)} | settings
    flow = build_flow(
        post_source or TestingSource(lines),
        subscriptions,
        [TestingSink(out)],
        settings=FlowSettings(queries=[parse_query(q) for q in queries], **options),
    )
    entry_point(flow)
    return out


def matched(out: Iterable[Any]) -> set[tuple[str, str]]:
    """(query, post id) of every per-post message."""
    return {(item.query, item.scored.post.id) for item in per_query(out) if isinstance(item, Match)}


def windows(out: Iterable[Any], query: str) -> list[WindowSummary]:
    """Window summaries of one query in time order."""
    found = [item for item in out if isinstance(item, WindowSummary) and item.query == query]
    return sorted(found, key=lambda summary: summary.start)


def test_routes_posts_by_track_semantics(entry_point: Any) -> None:
    """Posts reach exactly the queries whose phrases they satisfy (OR of ANDs, #tag-only)."""
    lines = [
        x_line(1, "I love Python!"),
        x_line(2, "A pythonista writes code"),
        x_line(3, "Climate change is real #climate"),
        x_line(4, "the change of climate"),
        x_line(5, "#Python tips", hashtags=["Python"]),
        x_line(6, "python snakes are not #ai", hashtags=["ai"]),
    ]
    out = run(entry_point, lines, ["python", "climate change", "#python", "#ai, love"])
    assert matched(out) == {
        ("python", "1"),
        ("python", "5"),
        ("python", "6"),
        ("change climate", "3"),
        ("change climate", "4"),
        ("#python", "5"),
        ("#ai,love", "1"),
        ("#ai,love", "6"),
    }


def test_post_matching_several_phrases_is_delivered_once(entry_point: Any) -> None:
    """A post satisfying three phrases of one query yields one message for that query."""
    out = run(entry_point, [x_line(1, "coffee and tea with milk")], ["coffee, tea, milk"])
    messages = [item for item in per_query(out) if isinstance(item, Match)]
    assert [(m.query, m.scored.post.id) for m in messages] == [("coffee,milk,tea", "1")]


def test_messages_carry_documented_fields(entry_point: Any) -> None:
    """A per-post message has polarityIndex and this post's hashtag counts, plus id and query."""
    out = run(entry_point, [x_line(7, "I LOVE this #Coffee #coffee :)", at=3)], ["coffee"])
    (message,) = [item.message() for item in per_query(out) if isinstance(item, Match)]
    assert message["polarityIndex"] == Polarity.POSITIVE
    assert message["hashtags"] == {"coffee": 2}
    assert message["query"] == "coffee"
    assert message["id"] == "7"
    assert message["created_at"] == "2024-05-01T12:00:03.000Z"
    assert message["compound"] > 0.5


def test_retweets_are_dropped_and_counted(entry_point: Any) -> None:
    """Retweets never reach a query but are counted in the global window."""
    lines = [
        x_line(1, "python rocks"),
        x_line(2, "RT @ada: python rocks"),
        x_line(3, "python is great", retweet=True),
    ]
    out = run(entry_point, lines, ["python"])
    assert matched(out) == {("python", "1")}
    (overall,) = windows(out, ALL_POSTS)
    assert (overall.posts, overall.retweets) == (1, 2)


def test_malformed_lines_are_rejected_without_stopping_the_flow(entry_point: Any) -> None:
    """Bad lines come out as Rejected records with a reason; good ones still flow."""
    lines = [
        Line('{"data": {"id": "1"', "f:0"),
        Line('{"data": {"id": "2", "text": "python"}}', "f:20"),
        x_line(3, "python"),
        Line("[1, 2]", "f:60"),
    ]
    out = run(entry_point, lines, ["python"])
    rejected = sorted((item for item in out if isinstance(item, Rejected)), key=lambda r: r.origin)
    assert [(r.origin, r.reason.split(":")[0]) for r in rejected] == [
        ("f:0", "invalid JSON"),
        ("f:20", "missing data.created_at"),
        ("f:60", "line is not a JSON object"),
    ]
    assert matched(out) == {("python", "3")}


def test_windows_count_polarity_and_top_hashtags_per_query(entry_point: Any) -> None:
    """Tumbling event-time windows summarise each query's posts, aligned to a fixed time."""
    lines = [
        x_line(1, "I love python #py #fun", at=1),
        x_line(2, "python is terrible and I hate it #py", at=20),
        x_line(3, "python release scheduled #py #news", at=59),
        x_line(4, "python is wonderful #fun", at=61),
    ]
    out = run(entry_point, lines, ["python"], top_n=1)
    first, second = windows(out, "python")
    assert (first.start, first.end) == (T0, T0 + timedelta(seconds=60))
    assert (first.posts, first.positive, first.negative, first.neutral) == (3, 1, 1, 1)
    assert first.top_hashtags == (("py", 3),)
    assert (second.start, second.posts, second.positive) == (T0 + timedelta(seconds=60), 1, 1)
    assert second.top_hashtags == (("fun", 1),)


def test_window_length_is_a_setting(entry_point: Any) -> None:
    """Ten-second windows split posts that a minute window would group."""
    lines = [x_line(n, "python", at=n * 5) for n in range(6)]
    out = run(entry_point, lines, ["python"], window=timedelta(seconds=10))
    assert [summary.posts for summary in windows(out, "python")] == [2, 2, 2]


def test_late_posts_are_recorded_not_dropped(entry_point: Any) -> None:
    """A post older than a closed window is still delivered and is recorded as late."""
    lines = [
        x_line(1, "python one", at=10),
        x_line(2, "python two", at=130),
        x_line(3, "python late", at=20),
    ]
    out = run(entry_point, lines, ["python"])
    assert ("python", "3") in matched(out)
    lates = {(item.query, item.post_id) for item in out if isinstance(item, LatePost)}
    assert (ALL_POSTS, "3") in lates
    assert [summary.posts for summary in windows(out, ALL_POSTS)] == [1, 1]


# Subscriptions changing while the flow runs. The sources below wait for what the
# flow has already produced, so the order of events is causal, not timed.


@dataclass(frozen=True)
class Emit:
    """Emit these items."""

    items: Sequence[Any]


@dataclass(frozen=True)
class Probe:
    """Emit ``make(n)`` for n = 0, 1, ... until ``done(output)`` holds."""

    make: Callable[[int], Any]
    done: Callable[[list[Any]], bool]


@dataclass(frozen=True)
class WaitFor:
    """Emit nothing until ``done(output)`` holds."""

    done: Callable[[list[Any]], bool]


class _ScriptPartition(StatefulSourcePartition[Any, None]):
    def __init__(self, steps: Sequence[Any], out: list[Any]) -> None:
        self._steps = list(steps)
        self._out = out
        self._probes = 0
        self._awake: datetime | None = None

    def next_batch(self) -> list[Any]:
        self._awake = None
        while self._steps:
            step = self._steps[0]
            if isinstance(step, Emit):
                self._steps.pop(0)
                return list(step.items)
            if step.done(list(self._out)):
                self._steps.pop(0)
                continue
            self._awake = datetime.now(UTC) + timedelta(milliseconds=5)
            if isinstance(step, Probe):
                self._probes += 1
                return [step.make(self._probes)]
            return []
        raise StopIteration

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> None:
        return None


class ScriptSource(FixedPartitionedSource[Any, None]):
    """A test source that follows a script of emits and causal waits."""

    def __init__(self, steps: Sequence[Any], out: list[Any]) -> None:
        self.steps = steps
        self.out = out

    def list_parts(self) -> list[str]:
        return ["script"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ScriptPartition:
        return _ScriptPartition(self.steps, self.out)


def _probe_matched(out: list[Any], query: str, *, without: str | None = None) -> bool:
    probes = [
        m for m in per_query(out) if isinstance(m, Match) and m.scored.post.id.startswith("probe")
    ]
    ids_for = {m.scored.post.id for m in probes if m.query == query}
    ids_without = {m.scored.post.id for m in probes if m.query == without}
    return bool(ids_for - ids_without)


def test_subscriptions_change_while_the_flow_runs(entry_point: Any) -> None:
    """Adding and removing queries mid-stream changes which later posts they receive."""
    out: list[Any] = []
    lock = threading.Lock()
    tea, coffee = parse_query("tea"), parse_query("coffee")

    def seen(pred: Callable[[list[Any]], bool]) -> Callable[[list[Any]], bool]:
        def check(items: list[Any]) -> bool:
            with lock:
                return pred(items)

        return check

    first_done = seen(lambda items: ("tea", "1") in matched(items))
    switched = seen(lambda items: _probe_matched(items, "coffee", without="tea"))
    posts = ScriptSource(
        [
            Emit([x_line(1, "tea and coffee", at=1)]),
            WaitFor(first_done),
            Probe(lambda n: x_line(f"probe{n}", "tea coffee probe", at=2), switched),
            Emit([x_line(2, "coffee and tea again", at=3)]),
        ],
        out,
    )
    subscriptions = ScriptSource(
        [WaitFor(first_done), Emit([Subscription(coffee), Subscription(tea, active=False)])],
        out,
    )
    run(entry_point, [], ["tea"], subscriptions=subscriptions, post_source=posts, out=out)
    real = {pair for pair in matched(out) if not pair[1].startswith("probe")}
    assert real == {("tea", "1"), ("coffee", "2")}
    assert {item.key for item in out if isinstance(item, Subscription)} == {"coffee", "tea"}


def test_rejected_subscription_events_go_to_the_sinks(entry_point: Any) -> None:
    """A subscription source's Rejected records (malformed bus events) reach every sink with
    the rejected lines, and never the matcher; its changes go on to the sinks too."""
    bad = Rejected(
        "senti:subscriptions:1-0", "op 'part'", '{"op": "part"}', RejectCode.UNKNOWN_KIND
    )
    subscriptions = TestingSource([bad, Subscription(parse_query("tea"))])
    out = run(entry_point, [x_line(1, "tea time", at=1)], [], subscriptions=subscriptions)
    assert [item for item in out if isinstance(item, Rejected)] == [bad]
    assert Subscription(parse_query("tea")) in out


def test_invalid_settings_window_must_be_positive() -> None:
    """A zero-length window is refused when the flow is built."""
    with pytest.raises(ValueError, match="window"):
        build_flow(TestingSource([]), None, [], settings=FlowSettings(window=timedelta(0)))


@pytest.mark.parametrize("lanes", [1, 2, 3, 16])
def test_routing_is_the_same_for_any_number_of_lanes(entry_point: Any, lanes: int) -> None:
    """How the work is split into lanes changes where matching runs, never what matches."""
    lines = [
        x_line(1, "coffee and tea with milk #morning", hashtags=["morning"]),
        x_line(2, "climate change talks"),
        x_line(3, "python and coffee"),
    ]
    queries = ["coffee, tea, milk", "climate change", "#morning", "python coffee"]
    out = run(entry_point, lines, queries, lanes=lanes)
    assert matched(out) == {
        ("coffee,milk,tea", "1"),
        ("coffee,milk,tea", "3"),
        ("change climate", "2"),
        ("#morning", "1"),
        ("coffee python", "3"),
    }


@pytest.mark.parametrize("lanes", [2, 3])
def test_windows_are_the_same_for_any_number_of_lanes(entry_point: Any, lanes: int) -> None:
    """Per-query windows split over lanes, and the global one, add up as on one lane."""
    lines = [
        x_line(n, text, at=7 * n, hashtags=tags, retweet=text.startswith("RT"))
        for n, (text, tags) in enumerate(
            [
                ("good coffee #morning", ["morning"]),
                ("bad tea", []),
                ("python and coffee", []),
                ("RT @a: coffee", []),
                ("climate change #morning #climate", ["morning", "climate"]),
                ("tea, coffee and python", []),
                ("nothing tracked here", []),
            ]
            * 6,
        )
    ]
    queries = ["coffee", "tea", "python", "climate change", "#morning"]

    def summaries(out: list[Any]) -> set[WindowSummary]:
        return {item for item in out if isinstance(item, WindowSummary)}

    one = summaries(run(entry_point, lines, queries, lanes=1, wait=timedelta(hours=1)))
    assert {summary.query for summary in one} == {ALL_POSTS, *map(_key, queries)}
    assert summaries(run(entry_point, lines, queries, lanes=lanes, wait=timedelta(hours=1))) == one


def _key(query: str) -> str:
    return parse_query(query).key


# Languages

MULTILINGUAL = [
    # (id, text, lang, hashtags); None: no declared language
    (1, "I love #coffee in the morning", "en", ["coffee"]),
    (2, "Que dia horrível, sem #coffee", "pt-BR", ["coffee"]),
    (3, "Odio el café frío #coffee", "es", ["coffee"]),
    (4, "terrible coffee again", "en-US", []),
    (5, "coffee is fine", None, []),
    (6, "コーヒーが好き #coffee", "ja", ["coffee"]),
    (7, "Bom dia com café", "PT", []),
    (8, "tea time", "und", []),
]


def _multilingual_replay(tmp_path: Path) -> Path:
    """A replay file of X lines in several languages, one of them declaring none."""
    path = tmp_path / "multilingual.jsonl"
    lines = []
    for post_id, text, lang, tags in MULTILINGUAL:
        envelope = x_envelope(post_id, text, at=post_id, hashtags=tags, lang=lang or "")
        if lang is None:
            del envelope["data"]["lang"]
        lines.append(json.dumps(envelope, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_multilingual_replay_counts_other_languages_as_unscored(
    entry_point: Any, tmp_path: Path
) -> None:
    """Posts in languages senti does not score are delivered with their hashtags but no
    polarity, and windows count them as unscored and every post by language."""
    source = ReplaySource([_multilingual_replay(tmp_path)])
    out = run(entry_point, [], ["coffee"], post_source=source, wait=timedelta(minutes=5))
    delivered = {m.scored.post.id: m.scored for m in per_query(out) if isinstance(m, Match)}
    assert set(delivered) == {"1", "2", "3", "4", "5", "6"}
    assert {key for key, scored in delivered.items() if scored.unscored} == {"2", "3", "6"}
    assert delivered["2"].hashtags == {"coffee": 1}
    assert delivered["2"].compound is None
    assert delivered["4"].polarity is Polarity.NEGATIVE
    (overall,) = windows(out, ALL_POSTS)
    assert (overall.posts, overall.unscored) == (8, 4)
    assert overall.positive + overall.negative + overall.neutral == 4
    assert overall.langs == (("en", 2), ("pt", 2), ("und", 2), ("es", 1), ("ja", 1))
    (coffee,) = windows(out, "coffee")
    assert (coffee.posts, coffee.unscored) == (6, 3)
    assert dict(coffee.langs) == {"en": 2, "pt": 1, "es": 1, "ja": 1, "und": 1}
    assert dict(coffee.top_hashtags) == {"coffee": 4}


def test_the_scored_languages_are_a_flow_setting(entry_point: Any, tmp_path: Path) -> None:
    """With every language scored nothing is unscored; with Portuguese added, only the others."""
    path = _multilingual_replay(tmp_path)
    every = run(
        entry_point, [], ["coffee"], post_source=ReplaySource([path]),
        languages=parse_scored_languages("*"),
    )  # fmt: skip
    (overall,) = windows(every, ALL_POSTS)
    assert (overall.posts, overall.unscored) == (8, 0)
    assert not any(m.scored.unscored for m in per_query(every) if isinstance(m, Match))
    with_pt = run(
        entry_point, [], ["coffee"], post_source=ReplaySource([path]),
        languages=parse_scored_languages("en,pt,und"),
    )  # fmt: skip
    (overall,) = windows(with_pt, ALL_POSTS)
    assert overall.unscored == 2
    assert dict(overall.langs) == {"en": 2, "pt": 2, "und": 2, "es": 1, "ja": 1}
