"""The sans-I/O protocol: decoding, session state, limits and encoders (no network, no loop)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.model import Polarity
from flows.routing.matching import MAX_QUERY_CHARS
from server.protocol import (
    MAX_ECHO_CHARS,
    SUBPROTOCOL_V2,
    CloseCode,
    Dialect,
    ErrorCode,
    Limits,
    Outcome,
    ProtocolError,
    ServerMessage,
    Session,
    V1PostMessage,
    decode_message,
    dialect_for,
    encode_error,
    encode_post,
    encode_window,
)
from tests.helpers.factories import make_match, make_window


def send(session: Session, message: Any, now: float = 0.0) -> Outcome:
    """Send ``message`` (JSON-encoded unless already text) to ``session``."""
    text = message if isinstance(message, str) else json.dumps(message)
    return session.receive_text(text, now)


def replies(outcome: Outcome) -> list[dict[str, Any]]:
    """The outcome's replies, decoded."""
    return [json.loads(reply) for reply in outcome.replies]


def only_error(outcome: Outcome) -> dict[str, Any]:
    """The outcome's single reply, which must be an error that changed nothing."""
    assert outcome.added == ()
    assert outcome.removed == ()
    [reply] = replies(outcome)
    assert reply["type"] == "error"
    assert set(reply) <= {"type", "code", "message", "id"}
    assert outcome.errors == (ErrorCode(reply["code"]),)
    return reply


def keys(outcome: Outcome) -> list[str]:
    """Canonical keys of the queries an outcome added."""
    return [query.key for query in outcome.added]


# Dialects


def test_no_subprotocol_is_v1() -> None:
    """A connection without a subprotocol speaks the original protocol."""
    assert dialect_for(None) is Dialect.V1


def test_v2_subprotocol_is_v2() -> None:
    """The senti.v2 subprotocol selects the typed dialect."""
    assert dialect_for(SUBPROTOCOL_V2) is Dialect.V2
    assert SUBPROTOCOL_V2 == "senti.v2"


def test_unknown_subprotocol_is_a_server_bug() -> None:
    """A subprotocol the module does not speak raises ValueError."""
    with pytest.raises(ValueError, match="unsupported subprotocol"):
        dialect_for("chat")


def test_close_codes_are_the_rfc_values() -> None:
    """Close codes have their registered numbers."""
    assert CloseCode.GOING_AWAY == 1001
    assert CloseCode.POLICY_VIOLATION == 1008
    assert CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.TRY_AGAIN_LATER == 1013


def test_error_codes_are_kebab_case() -> None:
    """Every error code is a lower-case, dash-separated string."""
    for code in ErrorCode:
        assert code.value == code.name.lower().replace("_", "-")


# Limits


@pytest.mark.parametrize(
    "field", ["max_message_bytes", "max_queries_per_connection", "max_track_changes_per_minute"]
)
@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_limits_reject_non_positive_integers(field: str, value: Any) -> None:
    """Every limit must be an integer of at least one."""
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


def test_limits_are_keyword_only() -> None:
    """Limits are spelled out at the call site."""
    with pytest.raises(TypeError):
        Limits(1024)  # type: ignore[misc]


# v1


def test_v1_track_starts_tracking_without_a_reply() -> None:
    """{"track": q} adds the query and sends nothing back: v1 has no acks."""
    session = Session(Dialect.V1)
    outcome = send(session, {"track": "Python"})
    assert outcome.replies == ()
    assert keys(outcome) == ["python"]
    assert outcome.removed == ()
    assert list(session.queries) == ["python"]


def test_v1_track_replaces_the_query() -> None:
    """A second {"track": q} replaces the connection's single query."""
    session = Session(Dialect.V1)
    send(session, {"track": "python"})
    outcome = send(session, {"track": "rust, go"})
    assert outcome.replies == ()
    assert keys(outcome) == ["go,rust"]
    assert outcome.removed == ("python",)
    assert list(session.queries) == ["go,rust"]


def test_v1_retrack_of_the_same_query_is_a_no_op() -> None:
    """Re-tracking any spelling of the current query neither removes nor adds it."""
    session = Session(Dialect.V1)
    send(session, {"track": "Python, #AI ml"})
    outcome = send(session, {"track": "#ai ML,python"})
    assert outcome == Outcome()
    assert list(session.queries) == ["#ai ml,python"]


def test_v1_track_null_stops_tracking_and_keeps_the_connection() -> None:
    """{"track": null} removes the query silently; a later track starts again."""
    session = Session(Dialect.V1)
    send(session, {"track": "python"})
    outcome = send(session, {"track": None})
    assert outcome == Outcome(removed=("python",))
    assert session.queries == {}
    assert keys(send(session, {"track": "rust"})) == ["rust"]


def test_v1_track_null_when_idle_does_nothing() -> None:
    """Stopping when nothing is tracked is a silent no-op."""
    assert send(Session(Dialect.V1), {"track": None}) == Outcome()


def test_v1_rejects_typed_messages() -> None:
    """A v2 message on a v1 connection is an invalid message that names the v1 form."""
    session = Session(Dialect.V1)
    error = only_error(send(session, {"type": "track", "query": "python"}))
    assert error["code"] == "invalid-message"
    assert '{"track": "query"}' in error["message"]
    assert "id" not in error


def test_v1_invalid_query_keeps_the_old_query() -> None:
    """An untrackable query is an error and the current query stays tracked."""
    session = Session(Dialect.V1)
    send(session, {"track": "python"})
    error = only_error(send(session, {"track": "#"}))
    assert error["code"] == "invalid-query"
    assert list(session.queries) == ["python"]


def test_v1_sends_no_acks_for_any_valid_message() -> None:
    """An original client reads polarityIndex from every message, so valid input gets no reply."""
    session = Session(Dialect.V1)
    for message in [{"track": "a"}, {"track": "b"}, {"track": "B"}, {"track": None}]:
        assert send(session, message).replies == ()


# v2


def test_v2_track_acknowledges_with_the_canonical_key() -> None:
    """A track is acknowledged with its canonical key, all keys, the echoed id and the
    spelling the client sent (spaces collapsed)."""
    session = Session(Dialect.V2)
    outcome = send(session, {"type": "track", "query": "Python, #AI  ml", "id": 7})
    assert keys(outcome) == ["#ai ml,python"]
    assert replies(outcome) == [
        {
            "type": "tracking",
            "query": "#ai ml,python",
            "queries": ["#ai ml,python"],
            "id": 7,
            "spelling": "Python, #AI ml",
        }
    ]
    assert outcome.added[0].shown == "Python, #AI ml"


def test_v2_ack_omits_a_missing_id() -> None:
    """Without an id the ack has no id field."""
    [ack] = replies(send(Session(Dialect.V2), {"type": "track", "query": "python"}))
    assert "id" not in ack


def test_v2_tracks_several_queries() -> None:
    """Each track adds a query; the ack lists them all in the order they were tracked."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "python"})
    outcome = send(session, {"type": "track", "query": "rust", "id": "r"})
    assert keys(outcome) == ["rust"]
    assert outcome.removed == ()
    assert replies(outcome)[0]["queries"] == ["python", "rust"]
    assert list(session.queries) == ["python", "rust"]


def test_v2_retrack_is_acknowledged_but_adds_nothing() -> None:
    """Tracking a query already tracked (in any spelling) is acknowledged without a change."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "python"})
    outcome = send(session, {"type": "track", "query": "PYTHON"})
    assert outcome.added == ()
    assert replies(outcome) == [
        {"type": "tracking", "query": "python", "queries": ["python"], "spelling": "PYTHON"}
    ]


def test_v2_errors_name_the_query_as_sent() -> None:
    """An untrack of a query not tracked names it as the client typed it, not its key."""
    outcome = send(Session(Dialect.V2), {"type": "untrack", "query": "Climate  Change"})
    (error,) = replies(outcome)
    assert error["message"] == "not tracking the query 'Climate Change'"


def test_v2_untrack_by_any_spelling() -> None:
    """Untrack canonicalises the query and removes it."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "Python, #AI ml"})
    send(session, {"type": "track", "query": "rust"})
    outcome = send(session, {"type": "untrack", "query": "#ai ML,python", "id": 3})
    assert outcome.removed == ("#ai ml,python",)
    assert outcome.added == ()
    assert replies(outcome) == [
        {"type": "untracked", "removed": ["#ai ml,python"], "queries": ["rust"], "id": 3}
    ]
    assert list(session.queries) == ["rust"]


def test_v2_untrack_of_an_unknown_query() -> None:
    """Untracking a query that is not tracked is an unknown-query error with the id."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "python"})
    error = only_error(send(session, {"type": "untrack", "query": "rust", "id": "x"}))
    assert error["code"] == "unknown-query"
    assert error["id"] == "x"
    assert list(session.queries) == ["python"]


def test_v2_untrack_all() -> None:
    """untrack_all removes every query and keeps the connection."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "python"})
    send(session, {"type": "track", "query": "rust"})
    outcome = send(session, {"type": "untrack_all"})
    assert outcome.removed == ("python", "rust")
    assert replies(outcome) == [{"type": "untracked", "removed": ["python", "rust"], "queries": []}]
    assert session.queries == {}
    assert keys(send(session, {"type": "track", "query": "go"})) == ["go"]


def test_v2_untrack_all_when_idle() -> None:
    """untrack_all with nothing tracked is acknowledged with nothing removed."""
    outcome = send(Session(Dialect.V2), {"type": "untrack_all", "id": 1})
    assert outcome.removed == ()
    assert replies(outcome) == [{"type": "untracked", "removed": [], "queries": [], "id": 1}]


def test_v2_ping() -> None:
    """ping is answered by pong with the echoed id."""
    outcome = send(Session(Dialect.V2), {"type": "ping", "id": "p1"})
    assert replies(outcome) == [{"type": "pong", "id": "p1"}]
    assert outcome.added == outcome.removed == ()


def test_v2_rejects_the_v1_form() -> None:
    """{"track": q} on a v2 connection is an invalid message that names the typed form."""
    error = only_error(send(Session(Dialect.V2), {"track": "python"}))
    assert error["code"] == "invalid-message"
    assert '"type"' in error["message"]


def test_v2_invalid_query_echoes_the_id() -> None:
    """An invalid query is reported with InvalidQuery's message and the request id."""
    error = only_error(send(Session(Dialect.V2), {"type": "track", "query": "  ,  ", "id": 9}))
    assert error["code"] == "invalid-query"
    assert error["id"] == 9
    assert "no words" in error["message"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "no words"),
        ("x" * (MAX_QUERY_CHARS + 1), "longer than"),
        (",".join(f"w{i}" for i in range(30)), "phrases"),
        (" ".join(f"w{i}" for i in range(11)), "terms"),
        ("#py-thon", "hashtag"),
        ("@", "mention"),
    ],
)
def test_query_limits_are_invalid_queries(query: str, fragment: str) -> None:
    """Empty, over-long, too broad or malformed queries are invalid-query errors."""
    session = Session(Dialect.V2, limits=Limits(max_message_bytes=4096))
    error = only_error(send(session, {"type": "track", "query": query}))
    assert error["code"] == "invalid-query"
    assert fragment in error["message"]
    assert session.queries == {}


# Limits


def test_too_many_queries() -> None:
    """A track beyond the per-connection limit is refused; untracking makes room."""
    session = Session(Dialect.V2, limits=Limits(max_queries_per_connection=2))
    send(session, {"type": "track", "query": "a"})
    send(session, {"type": "track", "query": "b"})
    error = only_error(send(session, {"type": "track", "query": "c", "id": 3}))
    assert error["code"] == "too-many-queries"
    assert error["id"] == 3
    assert list(session.queries) == ["a", "b"]
    assert replies(send(session, {"type": "track", "query": "B"}))[0]["type"] == "tracking"
    send(session, {"type": "untrack", "query": "a"})
    assert keys(send(session, {"type": "track", "query": "c"})) == ["c"]


def test_rate_limit_allows_a_burst_then_refills_evenly() -> None:
    """With 3 changes per minute: 3 at once, then one more every 20 seconds."""
    session = Session(Dialect.V2, limits=Limits(max_track_changes_per_minute=3))
    for i, word in enumerate(["a", "b", "c"]):
        assert keys(send(session, {"type": "track", "query": word}, now=100.0 + i)) == [word]
    error = only_error(send(session, {"type": "track", "query": "d"}, now=103.0))
    assert error["code"] == "rate-limited"
    assert "retry in" in error["message"]
    assert list(session.queries) == ["a", "b", "c"]
    # One token accrues 20 s after the first three were spent (refill starts at t=100).
    assert keys(send(session, {"type": "track", "query": "d"}, now=120.0)) == ["d"]
    assert only_error(send(session, {"type": "track", "query": "e"}, now=121.0))["code"] == (
        "rate-limited"
    )
    assert keys(send(session, {"type": "track", "query": "e"}, now=140.0)) == ["e"]


def test_rate_limit_bucket_is_capped() -> None:
    """An idle hour does not bank more than one burst."""
    session = Session(Dialect.V1, limits=Limits(max_track_changes_per_minute=2))
    send(session, {"track": "a"}, now=0.0)
    for i, word in enumerate(["b", "c"]):
        assert keys(send(session, {"track": word}, now=3600.0 + i / 10)) == [word]
    error = only_error(send(session, {"track": "d"}, now=3600.5))
    assert error["code"] == "rate-limited"
    assert list(session.queries) == ["c"]


def test_no_ops_and_untracks_do_not_spend_tokens() -> None:
    """Only starting a query costs a token: re-tracks, untracks and pings are free."""
    session = Session(Dialect.V2, limits=Limits(max_track_changes_per_minute=1))
    send(session, {"type": "track", "query": "a"})
    for message in [
        {"type": "track", "query": "A"},
        {"type": "ping"},
        {"type": "untrack", "query": "a"},
        {"type": "untrack_all"},
    ]:
        assert not send(session, message).errors
    assert only_error(send(session, {"type": "track", "query": "b"}))["code"] == "rate-limited"


def test_rate_limit_survives_a_clock_going_backwards() -> None:
    """A smaller ``now`` than before refills nothing and does not raise."""
    session = Session(Dialect.V2, limits=Limits(max_track_changes_per_minute=1))
    send(session, {"type": "track", "query": "a"}, now=50.0)
    assert only_error(send(session, {"type": "track", "query": "b"}, now=10.0))["code"] == (
        "rate-limited"
    )
    assert keys(send(session, {"type": "track", "query": "b"}, now=110.0)) == ["b"]


def test_over_long_message() -> None:
    """A message over max_message_bytes (counted in UTF-8) is refused before parsing."""
    session = Session(Dialect.V2, limits=Limits(max_message_bytes=64))
    fits = json.dumps({"type": "track", "query": "é" * 10}, ensure_ascii=False)
    assert len(fits.encode()) <= 64
    assert keys(send(session, fits)) == ["é" * 10]
    over = json.dumps({"type": "track", "query": "é" * 20}, ensure_ascii=False)
    assert len(over) <= 64 < len(over.encode())
    assert only_error(send(session, over))["code"] == "message-too-big"
    assert only_error(send(session, "x" * 10_000))["code"] == "message-too-big"


# Malformed input

MALFORMED = [
    pytest.param("{", "invalid-json", id="truncated"),
    pytest.param("", "invalid-json", id="empty-text"),
    pytest.param("nul", "invalid-json", id="bad-literal"),
    pytest.param("{'track': 'x'}", "invalid-json", id="single-quotes"),
    pytest.param('{"track": "x"} {}', "invalid-json", id="trailing-data"),
    pytest.param("[1, 2", "invalid-json", id="truncated-array"),
    pytest.param('{"track": "\\ud800"}', "invalid-json", id="escaped-lone-surrogate"),
    pytest.param('{"track": "\ud800"}', "invalid-json", id="lone-surrogate-text"),
    pytest.param('{"track": 5}', "invalid-message", id="wrong-type"),
    pytest.param('{"track": ["x"]}', "invalid-message", id="array-value"),
    pytest.param('["track", "x"]', "invalid-message", id="array"),
    pytest.param('"track"', "invalid-message", id="string"),
    pytest.param("null", "invalid-message", id="null"),
    pytest.param("{}", "invalid-message", id="empty-object"),
    pytest.param('{"track": "x", "extra": 1}', "invalid-message", id="unknown-field"),
    pytest.param('{"track": 1e999}', "invalid-message", id="huge-float"),
    pytest.param('{"track": ' + "9" * 400 + "}", "invalid-message", id="huge-int"),
]

MALFORMED_V2 = [
    pytest.param('{"type": "subscribe", "query": "x"}', "invalid-message", id="unknown-type"),
    pytest.param('{"query": "x"}', "invalid-message", id="missing-type"),
    pytest.param('{"type": 1, "query": "x"}', "invalid-message", id="type-not-string"),
    pytest.param('{"type": "track"}', "invalid-message", id="missing-query"),
    pytest.param('{"type": "track", "query": null}', "invalid-message", id="null-query"),
    pytest.param('{"type": "track", "query": "x", "all": true}', "invalid-message", id="extra"),
    pytest.param('{"type": "untrack", "all": true}', "invalid-message", id="untrack-all-field"),
    pytest.param('{"type": "ping", "id": 1.5}', "invalid-message", id="float-id"),
    pytest.param('{"type": "ping", "id": true}', "invalid-message", id="bool-id"),
    pytest.param('{"type": "ping", "id": 9007199254740992}', "invalid-message", id="unsafe-id"),
    pytest.param('{"type": "ping", "id": "' + "i" * 129 + '"}', "invalid-message", id="long-id"),
    pytest.param('{"type": "ping", "id": {"a": 1}}', "invalid-message", id="object-id"),
]


def _tracking(dialect: Dialect) -> Session:
    session = Session(dialect, limits=Limits(max_message_bytes=1_000_000))
    message = {"track": "python"} if dialect is Dialect.V1 else {"type": "track", "query": "python"}
    assert not send(session, message).errors
    return session


@pytest.mark.parametrize(("text", "code"), MALFORMED)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_malformed_input_is_an_error_that_changes_nothing(
    dialect: Dialect, text: str, code: str
) -> None:
    """Each class of bad input gets its error code and leaves the session as it was."""
    session = _tracking(dialect)
    assert only_error(send(session, text))["code"] == code
    assert list(session.queries) == ["python"]


@pytest.mark.parametrize(("text", "code"), MALFORMED_V2)
def test_malformed_v2_input_is_an_error_that_changes_nothing(text: str, code: str) -> None:
    """Bad typed messages get their error code and leave the session as it was."""
    session = _tracking(Dialect.V2)
    assert only_error(send(session, text))["code"] == code
    assert list(session.queries) == ["python"]


DEPTH = 100_000

DEEP = [
    pytest.param("[" * DEPTH + "]" * DEPTH, id="array"),
    pytest.param('{"a":' * DEPTH + "1" + "}" * DEPTH, id="object"),
    pytest.param('{"track": ' + "[" * DEPTH + "]" * DEPTH + "}", id="v1-field"),
    pytest.param('{"x": ' + "[" * DEPTH + "]" * DEPTH + ', "type": "ping"}', id="before-tag"),
    pytest.param('{"type": "ping", "x": ' + "[" * DEPTH + "]" * DEPTH + "}", id="after-tag"),
    pytest.param('{"x": ' + "[" * DEPTH + ', "type": "ping"}', id="deep-and-truncated"),
]


@pytest.mark.parametrize("text", DEEP)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_deep_nesting_is_refused_without_recursion_error(dialect: Dialect, text: str) -> None:
    """100k levels of nesting are an error reply, never a RecursionError."""
    session = _tracking(dialect)
    error = only_error(send(session, text))
    assert error["code"] in {"invalid-message", "invalid-json"}
    assert list(session.queries) == ["python"]


@pytest.mark.parametrize("dialect", list(Dialect))
def test_binary_frames_are_not_supported(dialect: Dialect) -> None:
    """A binary frame, even one holding invalid UTF-8, is refused and the connection kept."""
    session = _tracking(dialect)
    for data in [b'{"track": "rust"}', b"\xff\xfe\x00", b""]:
        error = only_error(session.receive_bytes(data, 0.0))
        assert error["code"] == "binary-not-supported"
    assert list(session.queries) == ["python"]


def test_errors_do_not_echo_huge_input() -> None:
    """Error messages quoting the input are capped."""
    session = Session(Dialect.V2, limits=Limits(max_message_bytes=1_000_000))
    field = "f" * 50_000
    error = only_error(send(session, {"type": "ping", field: 1}))
    assert error["code"] == "invalid-message"
    assert len(error["message"]) <= MAX_ECHO_CHARS
    tag = "#" + "a" * 500
    error = only_error(send(session, {"type": "track", "query": f"x {tag}-"}))
    assert error["code"] == "invalid-query"
    assert len(error["message"]) <= MAX_ECHO_CHARS


def test_decode_message_raises_protocol_error() -> None:
    """decode_message raises ProtocolError with the code and a readable message."""
    with pytest.raises(ProtocolError) as caught:
        decode_message('{"track": 5}', Dialect.V1)
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    assert "$.track" in caught.value.message


# Closing


def test_close_returns_the_keys_and_ignores_later_frames() -> None:
    """close() hands back every tracked key once; frames after it change nothing."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "python"})
    send(session, {"type": "track", "query": "rust"})
    assert session.close() == ["python", "rust"]
    assert session.closed
    assert session.close() == []
    assert send(session, {"type": "track", "query": "go"}) == Outcome()
    assert session.receive_bytes(b"x", 0.0) == Outcome()
    assert session.queries == {}


def test_queries_is_read_only() -> None:
    """The queries mapping cannot be changed from outside."""
    session = Session(Dialect.V1)
    send(session, {"track": "python"})
    with pytest.raises(TypeError):
        session.queries["rust"] = session.queries["python"]  # type: ignore[index]


# Encoders


def test_v1_post_is_exactly_the_original_message() -> None:
    """A v1 post is the two documented fields, in order, as compact JSON."""
    match = make_match(
        "python", 42, compound=0.61, polarity=Polarity.POSITIVE, hashtags={"ai": 2, "ml": 1}
    )
    assert encode_post(match, Dialect.V1) == '{"polarityIndex":0,"hashtags":{"ai":2,"ml":1}}'


def test_v1_post_without_hashtags() -> None:
    """A post without hashtags still carries an empty hashtags object."""
    match = make_match(polarity=Polarity.NEUTRAL)
    assert encode_post(match, Dialect.V1) == '{"polarityIndex":2,"hashtags":{}}'


def test_v2_post_shape() -> None:
    """A v2 post adds its type, query, id, time, compound score and declared language."""
    match = make_match(
        "#ai ml,python",
        42,
        created_at=1.5,
        compound=-0.4,
        polarity=Polarity.NEGATIVE,
        hashtags={"ai": 1},
        lang="en-GB",
    )
    text = encode_post(match, Dialect.V2)
    assert json.loads(text) == {
        "type": "post",
        "query": "#ai ml,python",
        "id": "42",
        "created_at": "2024-05-01T12:00:01.500Z",
        "compound": -0.4,
        "polarityIndex": 1,
        "hashtags": {"ai": 1},
        "lang": "en-GB",
    }
    assert list(json.loads(text)) == [
        "type",
        "query",
        "id",
        "created_at",
        "compound",
        "polarityIndex",
        "hashtags",
        "lang",
    ]
    assert ": " not in text
    assert ", " not in text


def test_v2_post_of_a_post_without_a_language_says_null() -> None:
    """A post that declares no language has ``"lang": null``, present rather than omitted."""
    text = encode_post(make_match(lang=None), Dialect.V2)
    assert '"lang":null' in text
    assert json.loads(text)["lang"] is None


def test_v2_unscored_post_says_so_with_nulls_and_keeps_its_hashtags() -> None:
    """An unscored post's v2 message has null compound and polarityIndex, its hashtags and
    its language."""
    match = make_match("#ai", 5, polarity=None, hashtags={"ai": 2}, lang="pt-BR")
    message = json.loads(encode_post(match, Dialect.V2))
    assert message == {
        "type": "post",
        "query": "#ai",
        "id": "5",
        "created_at": "2024-05-01T12:00:00.000Z",
        "compound": None,
        "polarityIndex": None,
        "hashtags": {"ai": 2},
        "lang": "pt-BR",
    }


def test_v1_clients_get_no_message_for_an_unscored_post() -> None:
    """v1 clients read every message as positive, negative or neutral: an unscored post
    has no v1 message (documented in docs/protocol.md)."""
    match = make_match(polarity=None, hashtags={"ai": 1}, lang="pt")
    assert encode_post(match, Dialect.V1) is None
    assert encode_post(make_match(polarity=Polarity.NEUTRAL, lang="pt"), Dialect.V1) == (
        '{"polarityIndex":2,"hashtags":{}}'
    )


def test_v2_post_language_with_a_lone_surrogate_still_encodes() -> None:
    """A declared language UTF-8 cannot carry is scrubbed like the other strings."""
    message = json.loads(encode_post(make_match(lang="e\ud800n"), Dialect.V2))
    assert message["lang"] == "e?n"


def test_v2_post_agrees_with_match_message() -> None:
    """The v2 post carries the same values as Match.message(), plus its type."""
    match = make_match("python", 7, compound=0.2, polarity=Polarity.POSITIVE, hashtags={"a": 3})
    assert json.loads(encode_post(match, Dialect.V2)) == {"type": "post", **match.message()}


def test_post_with_lone_surrogate_hashtag_still_encodes() -> None:
    """A hashtag that UTF-8 cannot carry is replaced rather than breaking the broadcast."""
    match = make_match(hashtags={"bad\ud800": 1})
    for dialect in Dialect:
        text = encode_post(match, dialect)
        assert text is not None
        assert json.loads(text)["hashtags"] == {"bad?": 1}


def test_window_shape() -> None:
    """A window summary is a typed v2 message with ISO times, tag/count pairs, its unscored
    posts and its posts by language."""
    summary = make_window(
        "python",
        0.0,
        posts=5,
        unscored=2,
        top_hashtags=(("ai", 3), ("ml", 1)),
        langs=(("en", 3), ("pt", 1), ("other", 1)),
    )
    message = json.loads(encode_window(summary))
    assert message == {
        "type": "window",
        "query": "python",
        "start": "2024-05-01T12:00:00.000Z",
        "end": "2024-05-01T12:01:00.000Z",
        "posts": 5,
        "positive": 1,
        "negative": 1,
        "neutral": 1,
        "unscored": 2,
        "retweets": 0,
        "top_hashtags": [["ai", 3], ["ml", 1]],
        "langs": {"en": 3, "pt": 1, "other": 1},
    }
    assert list(message["langs"]) == ["en", "pt", "other"], "most frequent first, other last"
    assert message == summary.message()


def test_error_shape() -> None:
    """An error carries its type, code and message, and an id only when given."""
    assert json.loads(encode_error(ErrorCode.INVALID_JSON, "bad")) == {
        "type": "error",
        "code": "invalid-json",
        "message": "bad",
    }
    assert json.loads(encode_error(ErrorCode.UNKNOWN_QUERY, "no", request_id=5))["id"] == 5
    long = json.loads(encode_error(ErrorCode.INVALID_QUERY, "x" * 10_000))
    assert len(long["message"]) <= MAX_ECHO_CHARS


def test_encoded_messages_decode_with_the_protocol_schemas() -> None:
    """Every encoder's output round-trips through the published message Structs."""
    v2_texts = [
        encode_post(make_match(hashtags={"a": 1}), Dialect.V2),
        encode_window(make_window()),
        encode_error(ErrorCode.RATE_LIMITED, "slow down", request_id="r"),
        *send(Session(Dialect.V2), {"type": "track", "query": "x", "id": 1}).replies,
        *send(Session(Dialect.V2), {"type": "ping"}).replies,
        *send(Session(Dialect.V2), {"type": "untrack_all"}).replies,
    ]
    for text in v2_texts:
        decoded = msgspec.json.decode(text, type=ServerMessage)
        assert msgspec.json.encode(decoded).decode() == text
    v1_text = encode_post(make_match(hashtags={"a": 1}), Dialect.V1)
    assert msgspec.json.encode(msgspec.json.decode(v1_text, type=V1PostMessage)).decode() == v1_text


# Properties

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

MESSAGES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"track": st.none() | st.text(max_size=40) | JSON_VALUES}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["track", "untrack", "untrack_all", "ping", "nope"]),
            "query": st.text(max_size=40) | JSON_VALUES,
        },
        optional={"id": st.integers() | st.text(max_size=5) | JSON_VALUES},
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["untrack_all", "ping"])}),
)

REPLY_TYPES = {"tracking", "untracked", "pong", "error"}


def _check_invariants(session: Session, outcome: Outcome, before: list[str]) -> None:
    for reply in outcome.replies:
        message = json.loads(reply)
        assert message["type"] in REPLY_TYPES
        msgspec.json.decode(reply, type=ServerMessage)
        if session.dialect is Dialect.V1:
            assert message["type"] == "error"
    after = list(session.queries)
    assert not set(outcome.removed) & {query.key for query in outcome.added}
    expected = [key for key in before if key not in outcome.removed]
    expected += [query.key for query in outcome.added]
    assert after == expected
    assert len(after) <= session.limits.max_queries_per_connection
    if session.dialect is Dialect.V1:
        assert len(after) <= 1


@given(dialect=st.sampled_from(list(Dialect)), texts=st.lists(st.text(), max_size=5))
def test_arbitrary_text_never_raises(dialect: Dialect, texts: list[str]) -> None:
    """Any text at all gets parseable JSON replies and consistent state, never an exception."""
    session = Session(dialect)
    for now, text in enumerate(texts):
        before = list(session.queries)
        _check_invariants(session, session.receive_text(text, float(now)), before)


@settings(max_examples=300)
@given(
    dialect=st.sampled_from(list(Dialect)),
    messages=st.lists(MESSAGES, max_size=12),
    max_queries=st.integers(1, 3),
    per_minute=st.integers(1, 4),
)
def test_arbitrary_json_never_raises(
    dialect: Dialect, messages: list[Any], max_queries: int, per_minute: int
) -> None:
    """Any JSON value gets parseable JSON replies; added/removed always match the state change."""
    limits = Limits(max_queries_per_connection=max_queries, max_track_changes_per_minute=per_minute)
    session = Session(dialect, limits=limits)
    for now, message in enumerate(messages):
        before = list(session.queries)
        outcome = session.receive_text(json.dumps(message), now * 7.0)
        _check_invariants(session, outcome, before)
    tracked = list(session.queries)
    assert session.close() == tracked


def test_refused_queries_are_untracked_and_answered_with_query_rejected() -> None:
    """A query the source refuses is dropped from the session and the ack becomes an error."""
    session = Session(Dialect.V2)
    send(session, {"type": "track", "query": "coffee"})
    outcome = send(session, {"type": "track", "query": "forbidden"})
    refused = session.refuse(outcome, {"forbidden": "X said no"})
    [error] = replies(refused)
    assert (error["type"], error["code"]) == ("error", "query-rejected")
    assert "X said no" in error["message"]
    assert (refused.added, refused.errors) == ((), (ErrorCode.QUERY_REJECTED,))
    assert list(session.queries) == ["coffee"]


def test_refusing_a_v1_replacement_still_stops_the_old_query() -> None:
    """When a v1 client's new query is refused, its previous one stays stopped."""
    session = Session(Dialect.V1)
    send(session, {"track": "coffee"})
    outcome = send(session, {"track": "forbidden"})
    refused = session.refuse(outcome, {"forbidden": "no"})
    assert refused.removed == ("coffee",)
    assert dict(session.queries) == {}
    assert session.refuse(outcome, {}) is outcome
