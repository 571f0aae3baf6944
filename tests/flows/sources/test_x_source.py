"""The X source against a fake X API over real HTTP, with the real tweepy client.

Reconnect waits are recorded by an injected sleep (which returns at once) and
stalls use a sub-second timeout, so the whole module runs in seconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
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
from flows.model import ALL_POSTS, Line, Match, Post, WindowSummary, per_query
from flows.platforms.x import parse_line
from flows.platforms.x_rules import RuleError
from flows.routing.matching import parse_query
from flows.sources.replay import ReplaySource
from flows.sources.x import (
    DEFAULT_API_BASE,
    RuleRejected,
    XApiError,
    XSettings,
    XSource,
    XSourceError,
    XStream,
    XStreamFailed,
)
from server.cli import main
from tests.helpers.fakes.x_api import FakeXApi, RuleOp
from tests.helpers.mutations import check_parsed, encoded
from tests.helpers.xlines import x_envelope

pytestmark = pytest.mark.timeout(30)

TOKEN = "AAAA-test-bearer-7f3c9e1d2b"  # noqa: S105 - the fake's credential
TIMEOUT = 5.0

EntryPoint = Callable[[Dataflow], None]
"""``run_main`` or a two-worker ``cluster_main`` (the ``entry_point`` fixture)."""


@pytest.fixture(autouse=True)
def _no_x_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no SENTI_X_* variables, no developer .env."""
    for name in list(os.environ):
        if name.startswith("SENTI_X_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeXApi]:
    """A fake X API on 127.0.0.1 with a fast keep-alive."""
    with FakeXApi(token=TOKEN) as api:
        yield api


class Streams:
    """Makes XStreams pointed at the fake, recording their reconnect waits; stops them all."""

    def __init__(self, fake: FakeXApi) -> None:
        self.fake = fake
        self.waits: list[float] = []
        self.made: list[XStream] = []

    def __call__(self, **options: Any) -> XStream:
        settings = XSettings(
            bearer_token=options.pop("token", TOKEN),
            api_base=self.fake.base_url,
            stall_timeout=options.pop("stall_timeout", 2.0),
            tier=options.pop("tier", "basic"),
            _env_file=None,  # type: ignore[call-arg]
            **options,
        )
        stream = XStream(settings, sleep=self.waits.append)
        self.made.append(stream)
        return stream

    def stop_all(self) -> None:
        for stream in self.made:
            stream.stop()


@pytest.fixture
def streams(fake: FakeXApi) -> Iterator[Streams]:
    """A factory of XStreams for the fake."""
    made = Streams(fake)
    yield made
    made.stop_all()


def _connected(fake: FakeXApi, count: int = 1) -> None:
    fake.wait(lambda: fake.connections >= count, TIMEOUT)


def _collect(stream: XStream, count: int, timeout: float = TIMEOUT) -> list[Line]:
    """Lines from the stream until ``count`` arrived (fails after ``timeout``)."""
    lines: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        assert time.monotonic() < deadline, f"got {len(lines)} of {count} lines"
        lines += stream.take(count - len(lines), timeout=0.05)
    return lines


def _ids(lines: list[Line]) -> list[str]:
    return [json.loads(line.text)["data"]["id"] for line in lines]


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


def _started(streams: Streams, fake: FakeXApi, **options: Any) -> XStream:
    stream = streams(**options)
    stream.start()
    _connected(fake)
    return stream


# Rules while connected


def test_tracking_adds_a_rule_and_posts_flow_on_the_same_connection(
    fake: FakeXApi, streams: Streams
) -> None:
    """track() dry-runs then adds a senti: rule; matching posts arrive without reconnecting."""
    stream = _started(streams, fake)
    stream.track(parse_query("Python"))
    assert list(fake.rules.values()) == [("python -is:retweet", "senti:python")]
    adds = [op for op in fake.rule_ops if op.kind == "add"]
    assert [op.dry_run for op in adds] == [True, False]

    assert fake.push(x_envelope(1, "I love python")) == ["senti:python"]
    assert fake.push(x_envelope(2, "nothing relevant")) == []
    (line,) = _collect(stream, 1)
    assert line.origin == "x:1"
    post = parse_line(line)
    assert isinstance(post, Post)
    assert post.rule_tags == ("senti:python",)
    assert post.author == "ada"
    assert fake.attempts == fake.connections == 1
    assert stream.stats().rule_changes == 1


def test_the_stream_asks_for_every_field_the_parser_reads(fake: FakeXApi, streams: Streams) -> None:
    """The connection requests created_at, lang, entities, referenced_tweets, author_id, users."""
    _started(streams, fake)
    (params,) = fake.stream_params
    assert set(params["tweet.fields"].split(",")) == {
        "created_at",
        "lang",
        "entities",
        "referenced_tweets",
        "author_id",
    }
    assert params["expansions"] == "author_id"
    assert params["user.fields"] == "username"


def test_tracking_twice_adds_one_rule(fake: FakeXApi, streams: Streams) -> None:
    """A second track() of the same query (any spelling) sends nothing."""
    stream = streams()
    stream.track(parse_query("python, rust"))
    operations = len(fake.rule_ops)
    stream.track(parse_query("Rust,PYTHON"))
    assert len(fake.rule_ops) == operations
    assert len(fake.rules) == 1


def test_untracking_deletes_the_rule_and_only_it(fake: FakeXApi, streams: Streams) -> None:
    """untrack(key) deletes senti's rule by id; unknown keys and foreign rules are untouched."""
    foreign = fake.add_rule("cats", tag="marketing")
    stream = _started(streams, fake)
    stream.track(parse_query("python"))
    stream.untrack("python")
    stream.untrack("never-tracked")
    assert list(fake.rules) == [foreign]
    deletes = [op for op in fake.rule_ops if op.kind == "delete"]
    assert len(deletes) == 1
    assert deletes[0].id != foreign
    assert stream.stats().rule_changes == 2
    assert fake.connections == 1


def test_reconcile_at_start_deletes_stale_senti_rules_and_leaves_others(
    fake: FakeXApi, streams: Streams
) -> None:
    """Stale senti: rules are deleted, missing ones added, foreign ones left as they were."""
    stale = fake.add_rule("old -is:retweet", tag="senti:old")
    current = fake.add_rule("python -is:retweet", tag="senti:python")
    foreign = fake.add_rule("cats", tag="marketing")
    untagged = fake.add_rule("dogs")
    stream = streams()
    stream.reconcile([parse_query("python"), parse_query("rust")])
    assert stale not in fake.rules
    assert fake.rules[current] == ("python -is:retweet", "senti:python")
    assert fake.rules[foreign] == ("cats", "marketing")
    assert fake.rules[untagged] == ("dogs", None)
    assert ("rust -is:retweet", "senti:rust") in fake.rules.values()
    assert RuleOp("delete", id=stale) in fake.rule_ops

    stream.untrack("rust")  # state after reconcile is known without another listing
    assert ("rust -is:retweet", "senti:rust") not in fake.rules.values()


def test_a_rule_x_rejects_raises_rule_rejected_with_xs_message(
    fake: FakeXApi, streams: Streams
) -> None:
    """When X's dry run refuses a rule, RuleRejected carries X's detail; nothing is added."""
    fake.reject = lambda value: (
        "Reference to invalid operator 'sample'" if "sample" in value else None
    )
    stream = streams()
    with pytest.raises(RuleRejected, match="invalid operator 'sample'") as info:
        stream.track(parse_query("sample"))
    assert info.value.errors[0]["title"] == "UnprocessableEntity"
    assert fake.rules == {}
    assert [op.dry_run for op in fake.rule_ops if op.kind == "add"] == [True]


def test_no_room_for_another_rule_raises_rule_error_before_asking_x(
    fake: FakeXApi, streams: Streams
) -> None:
    """On the Essential tier a 6th rule raises RuleError(max_rules) without a POST."""
    for n in range(5):
        fake.add_rule(f"topic{n}", tag="theirs")
    stream = streams(tier="essential")
    with pytest.raises(RuleError, match="max_rules"):
        stream.track(parse_query("python"))
    assert all(op.kind == "get" for op in fake.rule_ops)


def test_a_rule_equal_to_someone_elses_is_not_added_nor_deleted(
    fake: FakeXApi, streams: Streams
) -> None:
    """X's DuplicateRule means the posts arrive anyway: track succeeds, untrack leaves it."""
    theirs = fake.add_rule("python -is:retweet", tag="theirs")
    stream = streams()
    stream.track(parse_query("python"))
    stream.untrack("python")
    assert fake.rules == {theirs: ("python -is:retweet", "theirs")}


# Reconnects


def test_a_dropped_connection_reconnects_after_250ms(fake: FakeXApi, streams: Streams) -> None:
    """A cut stream is a network error: reconnect after X's first linear wait, 0.25 s."""
    stream = _started(streams, fake)
    fake.drop()
    _connected(fake, 2)
    assert streams.waits == [0.25]
    assert stream.stats().reconnects == 1


@pytest.mark.parametrize(
    ("statuses", "waits"),
    [
        ([503], [5.0]),
        ([429], [60.0]),
        ([503, 503, 429, 503], [5.0, 10.0, 60.0, 20.0]),
    ],
)
def test_http_errors_reconnect_with_xs_exponential_waits(
    fake: FakeXApi, streams: Streams, statuses: list[int], waits: list[float]
) -> None:
    """HTTP 503 waits 5 s doubling, 429 waits 60 s doubling, before each new attempt."""
    fake.fail_next(*statuses)
    stream = _started(streams, fake)
    assert streams.waits == waits
    assert fake.attempts == len(statuses) + 1
    assert stream.stats().reconnects == len(statuses)


def test_waits_start_over_after_a_successful_connection(fake: FakeXApi, streams: Streams) -> None:
    """After a 503 and a good connection, the next 503 waits 5 s again."""
    fake.fail_next(503)
    _started(streams, fake)
    fake.fail_next(503)
    fake.drop()
    _connected(fake, 2)
    assert streams.waits == [5.0, 0.25, 5.0]


def test_a_silent_stream_is_a_stall_and_reconnects(fake: FakeXApi, streams: Streams) -> None:
    """No data or keep-alive for stall_timeout drops the connection and makes a new one."""
    stream = _started(streams, fake, stall_timeout=0.3)
    fake.go_silent()
    _connected(fake, 2)
    fake.wait(lambda: fake.client_disconnects >= 1, TIMEOUT)
    assert stream.stats().stalls == 1
    assert streams.waits == [0.25]


def test_keep_alives_keep_a_quiet_stream_open(fake: FakeXApi, streams: Streams) -> None:
    """Keep-alives more frequent than the stall timeout are not a stall."""
    stream = _started(streams, fake, stall_timeout=0.3)
    time.sleep(0.8)  # several stall timeouts, fed by 0.05 s keep-alives
    assert stream.stats().stalls == 0
    assert fake.connections == 1


def test_no_post_is_delivered_twice_across_a_reconnect(streams: Streams) -> None:
    """Posts X resends after a reconnect are dropped and counted as duplicates."""
    with FakeXApi(token=TOKEN, resend_on_reconnect=2) as fake:
        streams.fake = fake
        stream = _started(streams, fake)
        stream.track(parse_query("python"))
        for n in range(1, 4):
            fake.push(x_envelope(n, f"python {n}"))
        assert _ids(_collect(stream, 3)) == ["1", "2", "3"]
        fake.drop()
        _connected(fake, 2)
        fake.push(x_envelope(4, "python 4"))
        fake.wait(lambda: len(fake.delivered) == 6, TIMEOUT)  # 3 + 2 resent + 1
        assert _ids(_collect(stream, 1)) == ["4"]
        assert stream.take(10, timeout=0.1) == []
        assert stream.stats().duplicates == 2
        stream.stop()


def test_a_full_queue_drops_the_oldest_lines(fake: FakeXApi, streams: Streams) -> None:
    """With queue_size 2, a third unread line pushes out the first, and is counted."""
    stream = _started(streams, fake, queue_size=2)
    stream.track(parse_query("python"))
    for n in range(1, 4):
        fake.push(x_envelope(n, "python"))
    fake.wait(lambda: stream.stats().received == 3, TIMEOUT)
    assert _ids(stream.take(10)) == ["2", "3"]
    assert stream.stats().dropped == 1


def test_error_messages_on_the_stream_are_counted_not_passed_on(
    fake: FakeXApi, streams: Streams
) -> None:
    """An X error object on the stream (no post) is logged and counted, not queued."""
    stream = _started(streams, fake)
    fake.push_raw(
        json.dumps({"errors": [{"title": "operational-disconnect", "detail": "upstream"}]})
    )
    fake.push_raw("not json at all")
    (line,) = _collect(stream, 1)
    assert line.text == "not json at all"  # the dataflow rejects and counts it
    assert stream.stats().stream_errors == 1


# Shutdown, failures, secrets


def test_stop_closes_the_stream_connection(fake: FakeXApi, streams: Streams) -> None:
    """stop() disconnects at once: the thread ends and the fake sees the client go."""
    stream = _started(streams, fake)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 2.0
    assert not stream.running
    fake.wait(lambda: fake.client_disconnects == 1, TIMEOUT)
    assert not stream.stats().connected


def test_an_unauthorised_stream_fails_the_source_without_retrying(
    fake: FakeXApi, streams: Streams
) -> None:
    """HTTP 401 is final: no reconnect, and the XSource partition raises XStreamFailed."""
    stream = streams(token="wrong-token-0000")  # noqa: S106 - deliberately wrong
    part = XSource(stream).build_part("x", "x", None)
    error = _failure(part.next_batch)
    assert isinstance(error, XStreamFailed)
    assert "HTTP 401" in str(error)
    assert fake.attempts == 1
    assert streams.waits == []
    part.close()


def test_the_bearer_token_never_appears_in_logs_or_errors(
    fake: FakeXApi, streams: Streams, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG (where tweepy prints request headers) the token is redacted, and no error has it."""
    caplog.set_level(logging.DEBUG)
    fake.reject = lambda value: "nope" if "bad" in value else None
    stream = _started(streams, fake)
    stream.track(parse_query("python"))
    with pytest.raises(RuleRejected) as rejected:
        stream.track(parse_query("bad"))
    wrong = "wrong-secret-token-123456"
    bad = streams(token=wrong)
    with pytest.raises(XApiError) as unauthorised:
        bad.track(parse_query("rust"))
    bad.start()
    fake.wait(lambda: fake.attempts == 2, TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while bad.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bad.error is not None
    messages = [str(rejected.value), str(unauthorised.value), str(bad.error)]
    assert "[redacted]" in caplog.text  # tweepy's header dump was there, scrubbed
    for secret in (TOKEN, wrong):
        assert secret not in caplog.text
        assert all(secret not in message for message in messages)


def test_a_missing_token_is_refused_before_any_request() -> None:
    """Without SENTI_X_BEARER_TOKEN, XStream raises an error naming the variable."""
    with pytest.raises(XSourceError, match="SENTI_X_BEARER_TOKEN"):
        XStream(XSettings(_env_file=None))  # type: ignore[call-arg]


def test_api_base_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTI_X_API_BASE points the client elsewhere; the default is X's host."""
    assert XSettings(_env_file=None).api_base == DEFAULT_API_BASE  # type: ignore[call-arg]
    monkeypatch.setenv("SENTI_X_API_BASE", "http://127.0.0.1:9/")
    assert XSettings(_env_file=None).api_base == "http://127.0.0.1:9"  # type: ignore[call-arg]
    monkeypatch.setenv("SENTI_X_API_BASE", "ftp://example.com")
    with pytest.raises(ValueError, match="http"):
        XSettings(_env_file=None)  # type: ignore[call-arg]


# The dataflow and the capture command


def _run_in_thread(
    entry_point: EntryPoint, flow: Any
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


def test_retweets_never_reach_downstream(
    fake: FakeXApi, streams: Streams, entry_point: EntryPoint
) -> None:
    """Through the real dataflow only the original matches; a retweet X sent anyway is dropped."""
    stream = streams()
    stream.reconcile([parse_query("python")])
    out: list[Any] = []
    flow = build_flow(
        XSource(stream),
        None,
        [TestingSink(out)],
        settings=FlowSettings(queries=[parse_query("python")], live=False),
    )
    thread, errors = _run_in_thread(entry_point, flow)
    _connected(fake)
    assert fake.push(x_envelope(1, "python is great")) == ["senti:python"]
    assert fake.push(x_envelope(2, "RT @x: python is great", retweet=True)) == []  # X filters it
    fake.push(x_envelope(3, "RT @x: python rules", retweet=True), force=True)  # ... or not
    fake.wait(lambda: stream.stats().received == 2, TIMEOUT)
    stream.stop()  # the source still emits what was queued, then ends
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert not errors
    matches = [item for item in per_query(out) if isinstance(item, Match)]
    assert [match.scored.post.id for match in matches] == ["1"]
    overall = [s for s in out if isinstance(s, WindowSummary) and s.query == ALL_POSTS]
    assert sum(s.retweets for s in overall) == 1
    assert fake.connections == 1


def test_capture_records_the_raw_lines_replay_reads(
    fake: FakeXApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """senti capture --track --count N writes the envelopes as sent and removes its rule."""
    monkeypatch.setenv("SENTI_X_BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("SENTI_X_API_BASE", fake.base_url)
    out = tmp_path / "capture.jsonl"
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            main(["capture", "--out", str(out), "--track", "python", "--count", "2"])
        ),
        daemon=True,
    )
    thread.start()
    _connected(fake)
    fake.wait(lambda: len(fake.rules) == 1, TIMEOUT)
    for n in range(1, 4):
        fake.push(x_envelope(n, f"python {n} ü"))
    thread.join(TIMEOUT)
    assert codes == [0]
    sent = fake.delivered[:2]
    assert out.read_text(encoding="utf-8").splitlines() == sent
    lines = _replay(out)
    assert [parse_line(line).id for line in lines] == ["1", "2"]  # type: ignore[union-attr]
    assert fake.rules == {}
    fake.wait(lambda: fake.client_disconnects == 1, TIMEOUT)


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


def test_capture_without_a_token_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """senti capture with no token exits 1 with senti: error naming the variable."""
    assert main(["capture", "--out", str(tmp_path / "x.jsonl"), "--seconds", "1"]) == 1
    assert "SENTI_X_BEARER_TOKEN" in capsys.readouterr().err


# Hostile lines


_X_KINDS = {"type": ["liked", ""], "tag": [""]}


def _until_line(stream: XStream, origin: str) -> list[Line]:
    """Lines from the stream up to the one from ``origin`` (fails after the timeout)."""
    lines: list[Line] = []
    deadline = time.monotonic() + TIMEOUT
    while not lines or lines[-1].origin != origin:
        assert time.monotonic() < deadline, f"{origin} did not arrive; got {lines}"
        lines += stream.take(1, timeout=0.05)
    return lines


def test_mutated_lines_never_stop_the_stream(fake: FakeXApi, streams: Streams) -> None:
    """After each hostile line (wrong types, missing fields, broken encoding) a good post
    still arrives on the same connection, and every line before it parses to a post or a
    rejection with a known code."""
    stream = _started(streams, fake)
    numbers = itertools.count(1)

    @settings(max_examples=60, deadline=None)
    @given(raw=encoded(x_envelope(7, "python rocks", hashtags=["py"]), _X_KINDS))
    def hostile_then_good(raw: str | bytes) -> None:
        number = next(numbers)
        fake.push_raw(raw)
        fake.push(x_envelope(f"good-{number}", "a good post"), force=True)
        lines = _until_line(stream, f"x:good-{number}")
        assert isinstance(parse_line(lines[-1]), Post)
        for line in lines[:-1]:
            check_parsed(parse_line(line))
        assert stream.running

    hostile_then_good()
    assert fake.connections == 1
    assert stream.error is None
