"""docs/asyncapi.yaml agrees with the protocol: examples go through the real parser and Structs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from flows.routing.matching import parse_query
from server.protocol import (
    SUBPROTOCOL_V2,
    Dialect,
    ErrorCode,
    ErrorMessage,
    ServerMessage,
    Session,
    V1PostMessage,
    encode_alert,
    encode_error,
    encode_post,
    encode_window,
)
from tests.helpers.factories import make_alert, make_match, make_window

yaml = pytest.importorskip("yaml")
try:
    import jsonschema
except ImportError:  # optional: without it, examples are still checked against the Structs
    jsonschema = None

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEC: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))


def resolve(ref: str) -> Any:
    """The node a local ``#/...`` reference points to."""
    assert ref.startswith("#/"), ref
    node: Any = SPEC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(node: Any) -> Any:
    """Follow ``$ref`` links until a real node."""
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(node["$ref"])
    return node


def channel_dialect(channel: dict[str, Any]) -> Dialect:
    """v2 if the channel's handshake requires the senti.v2 subprotocol, else v1."""
    headers = channel.get("bindings", {}).get("ws", {}).get("headers", {})
    protocol = headers.get("properties", {}).get("Sec-WebSocket-Protocol")
    if protocol is None:
        return Dialect.V1
    assert protocol["const"] == SUBPROTOCOL_V2
    return Dialect.V2


def examples(action: str) -> Iterator[Any]:
    """(dialect, message name, example payload) for every example of every ``action`` operation."""
    for op_name, operation in SPEC["operations"].items():
        if operation["action"] != action:
            continue
        dialect = channel_dialect(deref(operation["channel"]))
        for ref in operation["messages"]:
            message = deref(ref)
            assert message.get("examples"), f"{op_name}: message {message['name']} has no examples"
            for example in message["examples"]:
                yield pytest.param(
                    dialect,
                    message,
                    example["payload"],
                    id=f"{dialect}-{message['name']}-{example['name']}",
                )


def validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema (draft 7, as AsyncAPI uses) validator resolving refs into the spec."""
    if jsonschema is None:
        pytest.skip("jsonschema is not installed")
    root = {"components": SPEC["components"], **schema}
    return jsonschema.Draft7Validator(root)


def check_schema(message: dict[str, Any], payload: Any) -> None:
    """``payload`` satisfies the message's payload schema (when jsonschema is installed)."""
    if jsonschema is not None:
        validator(message["payload"]).validate(payload)


def test_document_is_asyncapi_3() -> None:
    """The document declares AsyncAPI 3 and describes /track in both dialects."""
    assert SPEC["asyncapi"].startswith("3.")
    dialects = {channel_dialect(channel) for channel in SPEC["channels"].values()}
    assert dialects == set(Dialect)
    assert {channel["address"] for channel in SPEC["channels"].values()} == {"/track"}


def test_operation_messages_belong_to_their_channel() -> None:
    """Each operation lists only messages of its own channel, as AsyncAPI 3 requires."""
    for operation in SPEC["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(channel_ref + "/messages/")


def test_error_codes_match_the_protocol() -> None:
    """The documented error codes are exactly the protocol's."""
    assert set(resolve("#/components/schemas/ErrorCode")["enum"]) == set(ErrorCode)


def test_error_codes_are_documented_in_protocol_md() -> None:
    """docs/protocol.md has a row for every error code."""
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", text, flags=re.MULTILINE))
    assert set(ErrorCode) <= documented


@pytest.mark.parametrize(("dialect", "message", "payload"), list(examples("receive")))
def test_client_examples_are_accepted(
    dialect: Dialect, message: dict[str, Any], payload: Any
) -> None:
    """Every client message example passes the real Session parser without an error."""
    check_schema(message, payload)
    session = Session(dialect)
    if isinstance(payload, dict) and payload.get("type") == "untrack":
        session.receive_text(json.dumps({"type": "track", "query": payload["query"]}), 0.0)
    outcome = session.receive_text(json.dumps(payload), 1.0)
    assert outcome.errors == ()
    for reply in outcome.replies:
        assert json.loads(reply)["type"] != "error"


@pytest.mark.parametrize(("dialect", "message", "payload"), list(examples("send")))
def test_server_examples_match_the_structs(
    dialect: Dialect, message: dict[str, Any], payload: Any
) -> None:
    """Every server message example decodes with the protocol's Structs and re-encodes as shown."""
    check_schema(message, payload)
    text = json.dumps(payload)
    decoded: msgspec.Struct
    if dialect is Dialect.V2:
        decoded = msgspec.json.decode(text, type=ServerMessage)
    elif "type" in payload:
        decoded = msgspec.json.decode(text, type=ErrorMessage)
    else:
        decoded = msgspec.json.decode(text, type=V1PostMessage)
    reencoded = json.loads(msgspec.json.encode(decoded))
    assert reencoded == payload
    assert list(reencoded) == list(payload), "keys in the order the server sends them"
    for key in [payload.get("query"), *payload.get("queries", []), *payload.get("removed", [])]:
        if key is not None:
            assert parse_query(key).key == key, f"{key!r} is not a canonical key"


def _message_schema(name: str) -> dict[str, Any]:
    return dict(resolve(f"#/components/messages/{name}")["payload"])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("V1Post", encode_post(make_match(hashtags={"ai": 2}), Dialect.V1)),
        ("Post", encode_post(make_match(compound=0.5, hashtags={"ai": 2}), Dialect.V2)),
        ("Window", encode_window(make_window(top_hashtags=(("ai", 3),)))),
        ("Alert", encode_alert(make_alert())),
        ("Alert", encode_alert(make_alert(label="Python, #AI"))),
        ("Error", encode_error(ErrorCode.UNKNOWN_QUERY, "not tracking", request_id="x")),
        (
            "Tracking",
            Session(Dialect.V2)
            .receive_text('{"type": "track", "query": "a", "id": 1}', 0)
            .replies[0],
        ),
        ("Untracked", Session(Dialect.V2).receive_text('{"type": "untrack_all"}', 0).replies[0]),
        ("Pong", Session(Dialect.V2).receive_text('{"type": "ping", "id": "p"}', 0).replies[0]),
    ],
)
def test_encoder_output_satisfies_the_schemas(name: str, text: str) -> None:
    """What the server really sends satisfies the documented schema."""
    validator(_message_schema(name)).validate(json.loads(text))
