"""The Mastodon source against a local fake instance: streams, reconnects, resume, hostility."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from flows.model import Line, Post, RejectCode, Rejected
from flows.platforms.x import parse_line
from flows.sources.live import Received
from flows.sources.mastodon import (
    MastodonError,
    MastodonRefused,
    MastodonSettings,
    MastodonSource,
    MastodonStream,
    mastodon_key,
    settings_from_env,
)
from tests.helpers.fakes.mastodon import FakeMastodon, status

TIMEOUT = 10.0


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    """A fake Mastodon instance on 127.0.0.1."""
    with FakeMastodon() as server:
        yield server


def _stream(fake: FakeMastodon, **options: Any) -> MastodonStream:
    settings = MastodonSettings(url=fake.url, _env_file=None, **options)  # type: ignore[call-arg]
    return MastodonStream(settings, sleep=lambda _: None)


def _collect(fake: FakeMastodon, stream: MastodonStream, count: int) -> list[Received]:
    items: list[Received] = []

    def enough() -> bool:
        items.extend(stream.take(count - len(items)))
        return len(items) >= count

    fake.wait(enough, TIMEOUT)
    return items


def _posts(items: list[Received]) -> list[Post]:
    posts = [parse_line(item.line) for item in items]
    return [p for p in posts if isinstance(p, Post)]


def test_updates_become_posts_and_boosts_and_deletes_are_skipped(fake: FakeMastodon) -> None:
    """Statuses arrive as parsed posts (text, tags, language, author); boosts, deletes skipped."""
    stream = _stream(fake)
    stream.start()
    try:
        fake.wait(lambda: stream.stats().connected, TIMEOUT)
        fake.publish(
            status(
                1, "<p>I love <a href='x'>#senti</a> &amp; more<br>line two</p>", tags=["Senti"]
            ),
            status(2, reblog=status(1)),
        )
        fake.delete("100000001")
        fake.publish(status(3, "<p>third</p>", language="pt"))
        items = _collect(fake, stream, 2)
        fake.wait(lambda: stream.stats().skipped == 2, TIMEOUT)
    finally:
        stream.stop()
    first, third = _posts(items)
    assert first.text == "I love #senti & more\nline two"
    assert first.hashtags == ("senti",)
    assert first.lang == "en"
    assert first.author == "alice"
    assert third.text == "third"
    assert third.lang == "pt"
    assert dict(stream.stats().skipped_by_reason) == {"boost": 1, "delete": 1}


def test_hostile_events_are_rejected_with_a_reason_and_the_stream_goes_on(
    fake: FakeMastodon,
) -> None:
    """Malformed statuses are passed on as rejected lines with a reason; later posts arrive."""
    stream = _stream(fake)
    stream.start()
    try:
        fake.wait(lambda: stream.stats().connected, TIMEOUT)
        fake.send_raw(b"event: update\ndata: {not json\n\n")
        fake.send_raw(
            b"event: update\ndata: " + json.dumps({**status(5), "content": 7}).encode() + b"\n\n"
        )
        fake.send_raw(b"event: update\ndata: []\n\n")
        fake.send_raw(b"event: whatever\ndata: x\n\n")
        fake.publish(status(6, "<p>still here</p>"))
        items = _collect(fake, stream, 4)
    finally:
        stream.stop()
    results = [parse_line(item.line) for item in items]
    codes = [r.code for r in results if isinstance(r, Rejected)]
    assert codes == [RejectCode.INVALID_JSON, RejectCode.WRONG_TYPE, RejectCode.NOT_AN_OBJECT]
    assert [p.text for p in results if isinstance(p, Post)] == ["still here"]
    assert stream.stats().rejected == 3


def test_a_reconnect_backfills_with_since_id_without_loss_or_duplicates(fake: FakeMastodon) -> None:
    """Statuses published while the stream was cut come back from the timeline, each once."""
    stream = _stream(fake)
    stream.start()
    try:
        fake.wait(lambda: stream.stats().connected, TIMEOUT)
        fake.publish(status(1), status(2))
        items = _collect(fake, stream, 2)
        fake.refuse(503, times=2)  # the next reconnects fail: the posts below are missed live
        fake.drop()
        fake.publish(*(status(n) for n in range(3, 50)))
        fake.wait(lambda: fake.streams_opened >= 2, TIMEOUT)
        fake.publish(status(50))
        items += _collect(fake, stream, 48)
    finally:
        stream.stop()
    ids = [post.id.rsplit("/", 1)[1] for post in _posts(items)]
    assert sorted(ids) == [str(100_000_000 + n) for n in range(1, 51)]
    assert len(set(ids)) == len(ids)
    assert any("since_id=100000002" in path for path in fake.requests)
    assert stream.stats().reconnects >= 1


def test_a_resumed_source_starts_from_the_stored_id(fake: FakeMastodon) -> None:
    """Resuming after an id backfills what came after it and nothing before."""
    fake.publish(*(status(n) for n in range(1, 6)))
    source = MastodonSource(_stream(fake), resume_after=100_000_003)
    part = source.build_part("in", "mastodon", None)
    lines: list[Line] = []

    def two() -> bool:
        lines.extend(part.next_batch())
        return len(lines) >= 2

    try:
        fake.wait(two, TIMEOUT)
    finally:
        part.close()
    assert [line.origin for line in lines] == ["mastodon:100000004", "mastodon:100000005"]
    assert part.snapshot() == 100_000_005
    assert source.cursor_key == mastodon_key(fake.url, "public")


def test_hashtag_timeline_and_token(fake: FakeMastodon) -> None:
    """A hashtag timeline streams that tag only, and a token is sent as a bearer token."""
    stream = _stream(fake, timeline="hashtag:#Senti", token="s3cret")  # noqa: S106 - a test token
    stream.start()
    try:
        fake.wait(lambda: stream.stats().connected, TIMEOUT)
        fake.publish(status(1, "<p>no tag</p>"), status(2, "<p>#senti</p>", tags=["senti"]))
        items = _collect(fake, stream, 1)
    finally:
        stream.stop()
    assert [p.text for p in _posts(items)] == ["#senti"]
    assert fake.requests[0] == "/api/v1/streaming/hashtag?tag=Senti"
    assert fake.authorizations[0] == "Bearer s3cret"


def test_a_refused_connection_fails_the_source_in_one_line(fake: FakeMastodon) -> None:
    """HTTP 401 ends the source; its partition raises MastodonRefused naming the status."""
    fake.refuse(401)
    source = MastodonSource(_stream(fake))
    part = source.build_part("in", "mastodon", None)
    try:
        fake.wait(lambda: source.stream.error is not None, TIMEOUT)
        with pytest.raises(MastodonRefused, match="HTTP 401"):
            part.next_batch()
    finally:
        part.close()


def test_bad_settings_name_the_variable() -> None:
    """An invalid timeline is an error naming SENTI_MASTODON_TIMELINE and what was typed."""
    with pytest.raises(MastodonError, match=r"SENTI_MASTODON_TIMELINE.*'home'"):
        settings_from_env(_env_file=None, timeline="home")
