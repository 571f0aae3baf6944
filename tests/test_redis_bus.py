"""The Redis bus's message format (flows.redis_bus), without a Redis: what the gateways decode."""

from __future__ import annotations

import pytest
from factories import make_match, make_window

from flows.model import Match, Polarity, WindowSummary
from flows.redis_bus import decode_message, encode_message
from server.protocol import Dialect, encode_post, encode_window


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
