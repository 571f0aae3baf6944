"""The pure side of the Redis bus (flows.runtime.redis_bus): events and messages others may write,
and the message format the gateways decode."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import Match, Polarity, RejectCode, WindowSummary
from flows.runtime.redis_bus import BusEvent, decode_message, encode_message, event_raw, parse_event
from server.protocol import Dialect, encode_post, encode_window
from tests.helpers.factories import make_match, make_window
from tests.helpers.mutations import DrawChooser, encoded, mutate

GOOD = {b"gw": b"gw-1", b"op": b"join", b"key": b"python, #rust"}


def test_a_join_entry_is_an_event() -> None:
    """The three fields of a gateway's join, as Redis returns them (bytes), make an event."""
    assert parse_event(GOOD) == BusEvent("gw-1", "join", "python, #rust")
    assert parse_event({**GOOD, b"extra": b"ignored"}) == BusEvent("gw-1", "join", "python, #rust")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        pytest.param(["gw", "op"], RejectCode.NOT_AN_OBJECT, id="not-a-mapping"),
        pytest.param({b"gw": b"g", b"op": b"join"}, RejectCode.MISSING_FIELD, id="no-key"),
        pytest.param({**GOOD, b"gw": b""}, RejectCode.MISSING_FIELD, id="empty-gateway"),
        pytest.param({**GOOD, b"op": b"rejoin"}, RejectCode.UNKNOWN_KIND, id="unknown-op"),
        pytest.param({**GOOD, b"op": 5}, RejectCode.WRONG_TYPE, id="number-op"),
        pytest.param({**GOOD, b"key": b"caf\xe9"}, RejectCode.BAD_ENCODING, id="latin-1"),
        pytest.param({**GOOD, b"key": b"x" * 513}, RejectCode.TOO_LARGE, id="huge-key"),
        pytest.param({**GOOD, b"gw": b"g" * 201}, RejectCode.TOO_LARGE, id="huge-gateway"),
        pytest.param({**GOOD, b"key": b"#"}, RejectCode.INVALID_QUERY, id="not-a-query"),
        pytest.param({**GOOD, b"key": b"   "}, RejectCode.INVALID_QUERY, id="blank-query"),
    ],
)
def test_a_malformed_entry_is_rejected_with_a_code(fields: Any, code: RejectCode) -> None:
    """An entry someone else wrote, with a field missing, mistyped, undecodable, overlong,
    unknown or not a query, is rejected with a code and a reason."""
    result = parse_event(fields)
    assert isinstance(result, tuple)
    assert not isinstance(result, BusEvent)
    assert result[0] is code
    assert result[1]


def test_a_rejected_entry_is_kept_as_json_text() -> None:
    """event_raw shows an entry's fields as JSON, undecodable bytes as escapes, bounded."""
    assert json.loads(event_raw({b"op": b"j\xff"})) == {"op": "j\\xff"}
    assert len(event_raw({b"key": b"x" * 50_000})) == 10_000


def _as_redis(value: Any, choose: DrawChooser) -> Any:
    """A mutated entry as Redis would hand it over: text fields as bytes, maybe broken."""
    if not isinstance(value, dict):
        return value
    entry: dict[Any, Any] = {}
    for name, field in value.items():
        key = name.encode() if isinstance(name, str) else name
        entry[key] = field
        if isinstance(field, str):
            raw = field.encode("utf-8", "surrogatepass")
            if choose.pick((False, False, True)):
                raw = raw[: choose.number(0, len(raw))] + b"\xc3"
            entry[key] = raw
    return entry


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_mutated_entry_is_an_event_or_a_rejection(data: st.DataObject) -> None:
    """Whatever is wrong with an events-stream entry, parse_event never raises: a checked
    event, or a known code (never internal) and a reason."""
    choose = DrawChooser(data.draw)
    fields = mutate(
        {"gw": "gw-1", "op": "join", "key": "python"}, choose, unknown_kinds={"op": ["part"]}
    )
    result = parse_event(_as_redis(fields, choose))
    if isinstance(result, BusEvent):
        assert result.op in ("join", "leave")
        assert result.gateway
    else:
        code, reason = result
        assert code in set(RejectCode) - {RejectCode.INTERNAL, RejectCode.OTHER}
        assert reason
    event_raw(fields)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([make_match("python"), make_window("python")]).flatmap(
        lambda item: encoded(json.loads(encode_message(item)))
    )
)
def test_a_mutated_bus_message_decodes_or_raises_value_error(raw: str | bytes) -> None:
    """A gateway reading a message someone else wrote gets the item or ValueError, nothing
    else (a huge number or deep nesting escaped as another exception)."""
    with contextlib.suppress(ValueError):
        decode_message(raw)


def test_a_match_crosses_the_bus_with_what_the_protocol_sends() -> None:
    """A decoded match encodes to the same v1 and v2 messages as the dataflow's."""
    match = make_match("python", 7, compound=0.4, polarity=Polarity.POSITIVE, hashtags={"a": 2})
    decoded = decode_message(encode_message(match))
    assert isinstance(decoded, Match)
    for dialect in Dialect:
        assert encode_post(decoded, dialect) == encode_post(match, dialect)


def test_an_unscored_match_crosses_the_bus_unscored() -> None:
    """An unscored post stays unscored (no v1 message, nulls in v2) and keeps its language."""
    match = make_match("python", 8, polarity=None, hashtags={"a": 1}, lang="pt-BR")
    decoded = decode_message(encode_message(match))
    assert isinstance(decoded, Match)
    assert decoded.scored.unscored
    assert decoded.scored.post.lang == "pt-BR"
    assert encode_post(decoded, Dialect.V1) is None
    assert encode_post(decoded, Dialect.V2) == encode_post(match, Dialect.V2)


def test_a_window_crosses_the_bus_with_its_unscored_posts_and_languages() -> None:
    """A decoded window keeps its unscored count and its languages in order."""
    window = make_window(
        "python", 0, posts=7, unscored=3, langs=(("en", 4), ("ja", 2), ("other", 1))
    )
    decoded = decode_message(encode_message(window))
    assert decoded == window
    assert isinstance(decoded, WindowSummary)
    assert encode_window(decoded) == encode_window(window)


def test_a_window_from_an_older_dataflow_has_no_languages() -> None:
    """A window message written before languages were counted decodes with none."""
    text = encode_message(make_window("python", 0)).replace(',"unscored":0', "")
    text = text.replace(',"langs":{}', "")
    assert "langs" not in text
    decoded = decode_message(text)
    assert isinstance(decoded, WindowSummary)
    assert (decoded.unscored, decoded.langs) == (0, ())


@pytest.mark.parametrize("text", ['{"type": "window"}', '{"id": "1"}', '{"polarityIndex": "x"}'])
def test_what_is_not_a_senti_message_is_a_value_error(text: str) -> None:
    """A bus entry that is not a senti message raises ValueError for the gateway to log."""
    with pytest.raises(ValueError, match="not a senti message"):
        decode_message(text)
