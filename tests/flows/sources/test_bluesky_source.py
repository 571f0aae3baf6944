"""The Bluesky source against a fake Jetstream over real websockets, with the real client.

Reconnect waits are recorded by an injected sleep (which returns at once, or
waits for the test to open a gate), so the whole module runs in seconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink
from hypothesis import given, settings

from flows.dataflow import FlowSettings, build_flow
from flows.model import ALL_POSTS, Line, Match, Post, RejectCode, Rejected, WindowSummary, per_query
from flows.platforms.x import parse_line
from flows.routing.matching import parse_query
from flows.sources.bluesky import (
    DEFAULT_URL,
    JetstreamError,
    JetstreamRefused,
    JetstreamSettings,
    JetstreamSource,
    JetstreamStream,
    Received,
    capture,
    run_capture,
    settings_from_env,
)
from flows.sources.replay import ReplaySource
from tests.helpers.fakes.jetstream import (
    T0_US,
    FakeJetstream,
    account_event,
    delete_event,
    identity_event,
    post_event,
    repost_event,
    tag_facet,
    update_event,
)
from tests.helpers.mutations import check_parsed, encoded

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 5.0
SECOND = 1_000_000
"""One second in Jetstream's microseconds."""

EntryPoint = Callable[[Dataflow], None]


@pytest.fixture(autouse=True)
def _no_jetstream_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no SENTI_JETSTREAM_* variables, no developer .env."""
    for name in list(os.environ):
        if name.startswith("SENTI_JETSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeJetstream]:
    """A fake Jetstream on 127.0.0.1 honouring wantedCollections."""
    with FakeJetstream() as server:
        yield server


class Streams:
    """Makes JetstreamStreams pointed at a fake, recording their reconnect waits; stops them all."""

    def __init__(self, fake: FakeJetstream) -> None:
        self.fake = fake
        self.waits: list[float] = []
        self.gate: threading.Event | None = None
        """When set to an event, each reconnect wait also blocks until it is set."""
        self.made: list[JetstreamStream] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.gate is not None:
            self.gate.wait(TIMEOUT)

    def __call__(self, **options: Any) -> JetstreamStream:
        settings = JetstreamSettings(url=self.fake.url, _env_file=None, **options)  # type: ignore[call-arg]
        stream = JetstreamStream(settings, sleep=self.sleep)
        self.made.append(stream)
        return stream

    def stop_all(self) -> None:
        for stream in self.made:
            stream.stop()


@pytest.fixture
def streams(fake: FakeJetstream) -> Iterator[Streams]:
    """A factory of JetstreamStreams for the fake."""
    made = Streams(fake)
    yield made
    made.stop_all()


def _started(streams: Streams, **options: Any) -> JetstreamStream:
    stream = streams(**options)
    stream.start()
    streams.fake.wait(lambda: streams.fake.open_connections == 1, TIMEOUT)
    return stream


def _collect(stream: JetstreamStream, count: int, timeout: float = TIMEOUT) -> list[Received]:
    """Posts from the stream until ``count`` arrived (fails after ``timeout``)."""
    items: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(items) < count:
        assert time.monotonic() < deadline, f"got {len(items)} of {count} posts"
        items += stream.take(count - len(items), timeout=0.05)
    return items


def _ids(items: list[Received] | list[Line]) -> list[str]:
    lines = [item.line if isinstance(item, Received) else item for item in items]
    return [json.loads(line.text)["data"]["id"] for line in lines]


def _uri(rkey: str, did: str = "did:plc:alice") -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


def _posts(first: int, last: int) -> list[dict[str, Any]]:
    """Posts p<first>..p<last>, one second apart from T0."""
    return [
        post_event(f"p{n}", f"post {n}", time_us=T0_US + n * SECOND) for n in range(first, last + 1)
    ]


def _failure(poll: Callable[[], object]) -> BaseException:
    """What ``poll()`` raises within the timeout (it is called every 10 ms)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            poll()
        except Exception as exc:  # the thing under test
            return exc
        time.sleep(0.01)
    raise AssertionError("nothing was raised")


def _replay(path: Path) -> list[Line]:
    part = ReplaySource([path]).build_part("replay", str(path), None)
    lines: list[Line] = []
    try:
        while True:
            lines += part.next_batch()
    except StopIteration:
        return lines
    finally:
        part.close()


# Subscribing


def test_a_fresh_start_subscribes_to_posts_live(fake: FakeJetstream, streams: Streams) -> None:
    """The first connection asks for app.bsky.feed.post, the size limit and no cursor."""
    _started(streams, wanted_dids="did:plc:alice, did:plc:bob", max_message_bytes=65536)
    [query] = fake.requests
    assert query == {
        "wantedCollections": ["app.bsky.feed.post"],
        "wantedDids": ["did:plc:alice", "did:plc:bob"],
        "maxMessageSizeBytes": ["65536"],
    }


def test_posts_arrive_as_envelope_lines_and_the_rest_is_counted(
    fake: FakeJetstream, streams: Streams
) -> None:
    """Created posts are queued as X envelopes; identity, account, update and delete are skipped."""
    stream = _started(streams)
    fake.publish(
        post_event(
            "a", "first #bsky", time_us=T0_US + 1, facets=[tag_facet("first #bsky", "#bsky")]
        ),
        identity_event(time_us=T0_US + 2),
        account_event(time_us=T0_US + 3),
        update_event("a", "first, edited", time_us=T0_US + 4),
        delete_event("a", time_us=T0_US + 5),
        post_event("b", "second", time_us=T0_US + 6),
    )
    items = _collect(stream, 2)
    assert _ids(items) == [_uri("a"), _uri("b")]
    assert [item.line.origin for item in items] == [f"bluesky:{T0_US + 1}", f"bluesky:{T0_US + 6}"]
    post = parse_line(items[0].line)
    assert isinstance(post, Post)
    assert post.hashtags == ("bsky",)
    fake.wait(lambda: stream.stats().events == 6, TIMEOUT)
    stats = stream.stats()
    assert (stats.posts, stats.skipped, stats.cursor) == (2, 4, T0_US + 6)
    assert stats.skipped_by_reason == (
        ("account", 1),
        ("delete", 1),
        ("identity", 1),
        ("update", 1),
    )
    assert stats.connected


def test_the_language_setting_keeps_only_those_posts(fake: FakeJetstream, streams: Streams) -> None:
    """SENTI_JETSTREAM_LANGS=en,pt keeps en-GB and pt posts and skips ja."""
    stream = _started(streams, langs="en,pt")
    fake.publish(
        post_event("a", "hello", time_us=T0_US + 1, langs=["en-GB"]),
        post_event("b", "こんにちは", time_us=T0_US + 2, langs=["ja"]),
        post_event("c", "olá", time_us=T0_US + 3, langs=["pt"]),
    )
    assert _ids(_collect(stream, 2)) == [_uri("a"), _uri("c")]
    fake.wait(lambda: stream.stats().skipped == 1, TIMEOUT)
    assert stream.stats().skipped_by_reason == (("language", 1),)


# Reconnects: cursor, duplicates, back-off


def test_a_dropped_connection_resumes_by_cursor_without_loss_or_duplicates(
    fake: FakeJetstream, streams: Streams
) -> None:
    """After a drop, the reconnect rewinds the margin by cursor: every post once, none lost."""
    streams.gate = threading.Event()
    stream = _started(streams, cursor_margin=3.0)
    fake.publish(*_posts(1, 5))
    before = _collect(stream, 5)
    fake.drop()
    fake.wait(lambda: streams.waits == [0.25], TIMEOUT)  # disconnected, waiting to reconnect
    fake.publish(*_posts(6, 10))  # published while nobody is connected
    streams.gate.set()
    after = _collect(stream, 5)
    ids = _ids(before + after)
    assert ids == [_uri(f"p{n}") for n in range(1, 11)]
    assert len(fake.requests) == 2
    assert fake.requests[1]["cursor"] == [str(T0_US + 5 * SECOND - 3 * SECOND)]
    fake.wait(lambda: stream.stats().events == 14, TIMEOUT)  # 5, then p2-p5 again and 5 new
    stats = stream.stats()
    assert (stats.duplicates, stats.reconnects, stats.connections) == (4, 1, 2)
    assert stream.take(10) == []


def test_http_refusals_back_off_exponentially(fake: FakeJetstream, streams: Streams) -> None:
    """503, 503 and 429 handshakes wait 5 s, 10 s and 60 s before the connection succeeds."""
    fake.refuse(503, 503, 429)
    stream = streams()
    stream.start()
    fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
    assert streams.waits == [5.0, 10.0, 60.0]
    assert fake.handshakes == 4
    assert stream.stats().reconnects == 3


def test_waits_start_over_once_a_connection_delivers(fake: FakeJetstream, streams: Streams) -> None:
    """After a connection that delivered a message, the next drop waits the first step again."""
    fake.refuse(503)
    stream = streams()
    stream.start()
    fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
    fake.publish(*_posts(1, 1))
    _collect(stream, 1)
    fake.drop()
    fake.wait(lambda: len(fake.requests) == 2 and fake.open_connections == 1, TIMEOUT)
    assert streams.waits == [5.0, 0.25]


def test_a_bad_request_fails_the_source_without_retrying(
    fake: FakeJetstream, streams: Streams
) -> None:
    """An HTTP 400 handshake is final: the partition raises JetstreamRefused, nothing retries."""
    fake.refuse(400)
    source = JetstreamSource(streams())
    part = source.build_part("read_lines", "bluesky", None)
    error = _failure(part.next_batch)
    part.close()
    assert isinstance(error, JetstreamRefused)
    assert "HTTP 400" in str(error)
    assert fake.handshakes == 1
    assert streams.waits == []


# Backpressure and shutdown


def test_a_full_queue_drops_the_oldest_posts(fake: FakeJetstream, streams: Streams) -> None:
    """With room for two posts, four unread ones leave the newest two and count two dropped."""
    stream = _started(streams, queue_size=2)
    fake.publish(*_posts(1, 4))
    fake.wait(lambda: stream.stats().posts == 4, TIMEOUT)
    assert _ids(stream.take(10)) == [_uri("p3"), _uri("p4")]
    assert stream.stats().dropped == 2


def test_stop_closes_the_websocket_cleanly_and_joins_the_thread(
    fake: FakeJetstream, streams: Streams
) -> None:
    """stop() sends a normal close the server sees, and the reader thread is gone."""
    stream = _started(streams)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 2.0
    assert not stream.running
    fake.wait(lambda: fake.client_closes == [1000], TIMEOUT)
    assert stream.stopped
    assert not stream.stats().connected


def test_stop_interrupts_a_reconnect_wait(fake: FakeJetstream) -> None:
    """With the default sleep, stop() ends a 5 s back-off wait at once."""
    fake.refuse(503)
    settings = JetstreamSettings(url=fake.url, _env_file=None)  # type: ignore[call-arg]
    stream = JetstreamStream(settings)
    stream.start()
    fake.wait(lambda: fake.handshakes == 1, TIMEOUT)
    time.sleep(0.05)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 1.0
    assert not stream.running
    assert fake.handshakes == 1


# The bytewax source


def test_the_partition_resumes_after_its_snapshot(fake: FakeJetstream, streams: Streams) -> None:
    """A partition built from a snapshot rewinds by cursor and drops what it had emitted."""
    fake.publish(*_posts(1, 6))  # history the cursor replays
    source = JetstreamSource(streams(cursor_margin=2.0))
    part = source.build_part("read_lines", "bluesky", T0_US + 4 * SECOND)
    try:
        fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
        assert fake.requests[0]["cursor"] == [str(T0_US + 2 * SECOND)]
        lines: list[Line] = []
        deadline = time.monotonic() + TIMEOUT
        while len(lines) < 2:
            assert time.monotonic() < deadline
            lines += part.next_batch()
        assert _ids(lines) == [_uri("p5"), _uri("p6")]
        assert part.snapshot() == T0_US + 6 * SECOND
        assert source.stream.stats().duplicates == 3  # p2, p3, p4
    finally:
        part.close()
    assert not source.stream.running


def test_an_idle_partition_never_blocks_and_asks_to_be_woken(
    fake: FakeJetstream, streams: Streams
) -> None:
    """next_batch on an empty queue returns at once with a next_awake shortly after."""
    source = JetstreamSource(streams())
    part = source.build_part("read_lines", "bluesky", None)
    try:
        started = time.monotonic()
        assert part.next_batch() == []
        assert time.monotonic() - started < 0.1
        assert part.next_awake() is not None
        assert part.snapshot() is None
    finally:
        part.close()


def _run_in_thread(
    entry_point: EntryPoint, flow: Dataflow
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            entry_point(flow)
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_posts_flow_through_the_real_dataflow_and_the_rest_never_does(
    entry_point: EntryPoint,
) -> None:
    """Only created posts reach queries and windows; reposts, deletes and identity never do."""
    with FakeJetstream(filter_collections=False) as fake:  # even if reposts are sent
        settings = JetstreamSettings(url=fake.url, _env_file=None)  # type: ignore[call-arg]
        stream = JetstreamStream(settings, sleep=lambda _: None)
        out: list[Any] = []
        flow = build_flow(
            JetstreamSource(stream),
            None,
            [TestingSink(out)],
            settings=FlowSettings(queries=[parse_query("python")], live=False),
        )
        thread, errors = _run_in_thread(entry_point, flow)
        fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
        text = "I love #python 🐍"
        fake.publish(
            post_event("a", text, time_us=T0_US + 1, facets=[tag_facet(text, "#python")]),
            repost_event("r", _uri("a"), time_us=T0_US + 2),
            update_event("a", "python is awful", time_us=T0_US + 3),
            delete_event("a", time_us=T0_US + 4),
            identity_event(time_us=T0_US + 5),
            account_event(time_us=T0_US + 6),
            post_event("b", "nothing to see", time_us=T0_US + 7),
        )
        fake.wait(lambda: stream.stats().events == 7, TIMEOUT)
        stream.stop()  # the source still emits what was queued, then ends
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert not errors
    matches = [item for item in per_query(out) if isinstance(item, Match)]
    assert [match.scored.post.id for match in matches] == [_uri("a")]
    assert matches[0].scored.hashtags == {"python": 1}
    assert matches[0].message()["polarityIndex"] == 0
    overall = [s for s in out if isinstance(s, WindowSummary) and s.query == ALL_POSTS]
    assert sum(s.posts for s in overall) == 2
    assert sum(s.retweets for s in overall) == 0
    assert stream.stats().skipped == 5


# Settings and capture


def test_the_endpoint_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTI_JETSTREAM_URL picks the instance; the default is a public Bluesky one."""
    assert JetstreamSettings(_env_file=None).url == DEFAULT_URL  # type: ignore[call-arg]
    monkeypatch.setenv("SENTI_JETSTREAM_URL", "wss://jetstream1.us-west.bsky.network/subscribe")
    settings = JetstreamSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.url.startswith("wss://jetstream1.us-west")


def test_the_subscribe_url_keeps_other_parameters_and_sets_senti_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parameters senti controls are replaced; others in the configured URL are kept."""
    settings = JetstreamSettings(  # type: ignore[call-arg]
        url="wss://js.example/subscribe?wantedCollections=app.bsky.feed.like&x=1",
        _env_file=None,
    )
    assert settings.subscribe_url(42) == (
        "wss://js.example/subscribe?x=1&wantedCollections=app.bsky.feed.post"
        "&maxMessageSizeBytes=1048576&cursor=42"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("URL", "https://jetstream2.us-east.bsky.network/subscribe", "ws://"),
        ("COMPRESS", "true", "zstandard"),
        ("WANTED_DIDS", "alice.bsky.social", "not a DID"),
        ("QUEUE_SIZE", "0", "greater than or equal"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """An invalid SENTI_JETSTREAM_* value is a JetstreamError naming the variable and the fix."""
    monkeypatch.setenv(f"SENTI_JETSTREAM_{name}", value)
    with pytest.raises(JetstreamError, match=message) as info:
        settings_from_env(_env_file=None)
    assert f"SENTI_JETSTREAM_{name}" in str(info.value)


def test_capture_writes_envelopes_replay_reads(fake: FakeJetstream, tmp_path: Path) -> None:
    """capture --count 2 writes two envelope lines ReplaySource and parse_line read, then closes."""
    out = tmp_path / "bluesky.jsonl"
    settings = JetstreamSettings(url=fake.url, _env_file=None)  # type: ignore[call-arg]
    written: list[int] = []
    thread = threading.Thread(
        target=lambda: written.append(capture(JetstreamStream(settings), out, count=2)),
        daemon=True,
    )
    thread.start()
    fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
    fake.publish(identity_event(time_us=T0_US), *_posts(1, 3))
    thread.join(TIMEOUT)
    assert written == [2]
    posts = [parse_line(line) for line in _replay(out)]
    assert [post.id for post in posts if isinstance(post, Post)] == [_uri("p1"), _uri("p2")]
    fake.wait(lambda: fake.client_closes == [1000], TIMEOUT)


def test_run_capture_reads_the_environment(
    fake: FakeJetstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """run_capture connects to SENTI_JETSTREAM_URL and stops after --seconds."""
    monkeypatch.setenv("SENTI_JETSTREAM_URL", fake.url)
    out = tmp_path / "bluesky.jsonl"
    assert run_capture(out, seconds=0.3) == 0
    assert out.read_text(encoding="utf-8") == ""
    assert len(fake.requests) == 1


def test_run_capture_reports_an_unwritable_file(
    fake: FakeJetstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be written is a JetstreamError naming it."""
    monkeypatch.setenv("SENTI_JETSTREAM_URL", fake.url)
    out = tmp_path / "missing" / "bluesky.jsonl"
    with pytest.raises(JetstreamError, match="cannot write"):
        run_capture(out, count=1)


# Hostile events


_JETSTREAM_KINDS = {"kind": ["sync", ""], "operation": ["merge"], "collection": ["x.y.z"]}


def _until_origin(stream: JetstreamStream, origin: str) -> list[Received]:
    """Items from the stream up to the one from ``origin`` (fails after the timeout)."""
    items: list[Received] = []
    deadline = time.monotonic() + TIMEOUT
    while not items or items[-1].line.origin != origin:
        assert time.monotonic() < deadline, f"{origin} did not arrive; got {items}"
        items += stream.take(1, timeout=0.05)
    return items


def test_a_post_with_langs_a_number_is_rejected_and_the_stream_goes_on(
    fake: FakeJetstream, streams: Streams
) -> None:
    """The reported event ("langs": 1) killed the reader thread: it is now queued as a
    rejected line (wrong-type, the raw event kept) and the next post arrives."""
    stream = _started(streams)
    bad = post_event("bad", "hello", time_us=T0_US + 1, langs=None)
    bad["commit"]["record"]["langs"] = 1
    fake.publish(bad, post_event("good", "hello", time_us=T0_US + 2))
    first, second = _collect(stream, 2)
    assert first.line.origin == f"bluesky:{T0_US + 1}"
    rejected = parse_line(first.line)
    assert isinstance(rejected, Rejected)
    assert rejected.code is RejectCode.WRONG_TYPE
    assert json.loads(rejected.raw) == bad
    assert _ids([second]) == [_uri("good")]
    assert stream.running
    stats = stream.stats()
    assert (stats.posts, stats.rejected, stats.skipped, stats.cursor) == (1, 1, 0, T0_US + 2)


def test_a_replayed_rejected_event_is_not_passed_on_twice(
    fake: FakeJetstream, streams: Streams
) -> None:
    """What a reconnect's margin replays of malformed events is dropped like duplicate posts;
    one without a usable time_us is recognised by its content."""
    streams.gate = threading.Event()
    stream = _started(streams, cursor_margin=3.0)
    fake.publish_raw('{"time_us": "soon", "kind": "commit"}', time_us=T0_US + SECOND)
    fake.publish({**post_event("x", "hi", time_us=T0_US + 2 * SECOND), "kind": "sync"})
    fake.publish(*_posts(3, 3))
    assert len(_collect(stream, 3)) == 3
    fake.drop()
    fake.wait(lambda: streams.waits == [0.25], TIMEOUT)
    streams.gate.set()
    fake.wait(lambda: len(fake.requests) == 2, TIMEOUT)
    fake.publish_raw('{"time_us": "soon", "kind": "commit"}', time_us=T0_US + 4 * SECOND)
    fake.publish(*_posts(5, 5))
    [last] = _collect(stream, 1)
    assert _ids([last]) == [_uri("p5")]
    assert stream.stats().rejected == 2


def test_mutated_events_never_stop_the_stream(fake: FakeJetstream, streams: Streams) -> None:
    """After each hostile message (wrong types, missing fields, unknown kinds, broken
    encoding, binary frames) a good post still arrives on the same connection, and every
    item before it is a post or a rejection with a known code."""
    stream = _started(streams)
    numbers = itertools.count(1)
    template = post_event(
        "m", "hostile #python", time_us=T0_US, facets=[tag_facet("hostile #python", "#python")]
    )

    @settings(max_examples=80, deadline=None)
    @given(raw=encoded(template, _JETSTREAM_KINDS))
    def hostile_then_good(raw: str | bytes) -> None:
        number = next(numbers)
        if isinstance(raw, str):  # a text frame is UTF-8: a lone surrogate goes as bytes
            raw = raw.encode("utf-8", "surrogatepass")
        fake.publish_raw(raw)
        good_us = T0_US + number * SECOND
        fake.publish(post_event(f"good{number}", "fine", time_us=good_us))
        items = _until_origin(stream, f"bluesky:{good_us}")
        assert isinstance(parse_line(items[-1].line), Post)
        for item in items[:-1]:
            check_parsed(parse_line(item.line))
        assert stream.running

    hostile_then_good()
    assert stream.stats().connections == 1
    assert stream.error is None


# Saying why it retries


class RetryLog(logging.Handler):
    """The ``senti.jetstream`` records, kept in order (attached to that logger itself)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == level]


@pytest.fixture
def retry_log() -> Iterator[RetryLog]:
    """The Jetstream stream's log records at every level."""
    handler = RetryLog()
    logger = logging.getLogger("senti.jetstream")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_offline_jetstream_warns_why_first_then_periodically(retry_log: RetryLog) -> None:
    """Against an endpoint that refuses connections, the first failure is a warning naming the
    URL, the reason and the next wait; later attempts are debug, with a warning again every
    ``warn_every`` seconds (on the stream's clock), never an info line per attempt."""
    url = f"ws://127.0.0.1:{_closed_port()}/subscribe"
    now = [0.0]
    attempts = 30
    stream: JetstreamStream | None = None

    def sleep(seconds: float) -> None:  # the fake clock moves by each back-off wait
        now[0] += seconds
        if len(retry_log.records) >= attempts and stream is not None:
            stream.stop()

    settings = JetstreamSettings(url=url, _env_file=None)  # type: ignore[call-arg]
    stream = JetstreamStream(settings, sleep=sleep, clock=lambda: now[0])
    stream.start()
    deadline = time.monotonic() + TIMEOUT
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.running

    warnings, debug = retry_log.at(logging.WARNING), retry_log.at(logging.DEBUG)
    assert retry_log.at(logging.INFO) == []
    first = warnings[0].getMessage()
    assert first.startswith(f"jetstream ({url}) connection failed: ")
    assert "refused" in first.lower()
    assert first.endswith("retrying in 0.25 s")
    assert warnings[0].__dict__["retry_in"] == 0.25
    # Waits grow 0.25 s per attempt: the 23rd failure is the first 60 s after the first.
    assert [w.__dict__["attempts"] for w in warnings] == [1, 23]
    assert (
        warnings[1]
        .getMessage()
        .startswith(f"jetstream ({url}) still cannot connect after 23 attempts over 63 s: ")
    )
    assert len(warnings) + len(debug) == len(retry_log.records)


def test_refused_handshakes_say_the_status_and_a_connection_ends_the_run(
    fake: FakeJetstream, streams: Streams, retry_log: RetryLog
) -> None:
    """Two HTTP 503 handshakes: a warning with the status and the 5 s wait, a debug line for
    the second, and once connected an info line counting the failed attempts."""
    fake.refuse(503, 503)
    stream = streams()
    stream.start()
    fake.wait(lambda: fake.open_connections == 1, TIMEOUT)
    fake.wait(lambda: bool(retry_log.at(logging.INFO)), TIMEOUT)
    (warning,) = retry_log.at(logging.WARNING)
    assert "Jetstream refused the connection (HTTP 503 Service Unavailable)" in (
        warning.getMessage()
    )
    assert warning.getMessage().endswith("retrying in 5.00 s")
    assert [r.__dict__["attempts"] for r in retry_log.at(logging.DEBUG)] == [2]
    (info,) = retry_log.at(logging.INFO)
    assert info.getMessage().startswith("jetstream connected after 2 failed attempts over ")
