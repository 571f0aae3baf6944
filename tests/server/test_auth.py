"""Client token checks and extraction from the handshake request."""

from __future__ import annotations

import hmac

import pytest

from server.auth import token_from_request, token_matches


def test_no_expected_token_means_no_auth() -> None:
    """Without a configured token every handshake passes."""
    assert token_matches(None, None)
    assert token_matches("anything", None)


def test_matching_token() -> None:
    """The configured token matches itself."""
    assert token_matches("s3cret", "s3cret")


@pytest.mark.parametrize("presented", [None, "", "s3cre", "s3cret ", "S3CRET", "s3cret2"])
def test_wrong_or_missing_token(presented: str | None) -> None:
    """Any other token, or none, fails."""
    assert not token_matches(presented, "s3cret")


def test_empty_expected_token_fails_closed() -> None:
    """An empty configured token admits nobody, not everybody."""
    assert not token_matches("", "")
    assert not token_matches(None, "")


def test_non_ascii_tokens_compare() -> None:
    """Tokens outside ASCII compare without raising (compare_digest refuses such str)."""
    assert token_matches("clé", "clé")
    assert not token_matches("cle", "clé")
    assert not token_matches("\ud800", "clé")


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert token_matches("abc", "abc")
    assert calls == [(b"abc", b"abc")]


def test_bearer_header() -> None:
    """A Bearer Authorization header yields its token, whatever the case of name and scheme."""
    assert token_from_request("/track", {"Authorization": "Bearer abc"}) == "abc"
    assert token_from_request("/track", {"authorization": "bearer  abc "}) == "abc"
    assert token_from_request("/track", {"AUTHORIZATION": "BEARER abc"}) == "abc"


def test_other_auth_schemes_are_ignored() -> None:
    """Basic or malformed Authorization headers present no token."""
    assert token_from_request("/track", {"Authorization": "Basic YTpi"}) is None
    assert token_from_request("/track", {"Authorization": "Bearer"}) is None
    assert token_from_request("/track", {"Authorization": "Bearer   "}) is None


def test_query_parameter() -> None:
    """Browsers pass the token as the token query parameter, percent-decoded."""
    assert token_from_request("/track?token=abc", {}) == "abc"
    assert token_from_request("/track?x=1&token=a%2Bb%3D", {}) == "a+b="
    assert token_from_request("/track?token=", {}) is None
    assert token_from_request("/track?tok=abc", {}) is None
    assert token_from_request("/track", {}) is None


def test_repeated_query_parameter_is_ambiguous() -> None:
    """A token given twice in the query presents none."""
    assert token_from_request("/track?token=a&token=b", {}) is None


def test_header_wins_over_query() -> None:
    """When both carry a token, the header's is used."""
    headers = {"Authorization": "Bearer from-header"}
    assert token_from_request("/track?token=from-query", headers) == "from-header"


def test_non_bearer_header_falls_back_to_query() -> None:
    """A non-Bearer header does not hide a query token."""
    assert token_from_request("/track?token=q", {"Authorization": "Basic x"}) == "q"


def test_websockets_headers() -> None:
    """The websockets Headers type works, including when an unrelated header is repeated."""
    from websockets.datastructures import Headers

    headers = Headers()
    headers["Cookie"] = "a=1"
    headers["Cookie"] = "b=2"
    assert token_from_request("/track?token=q", headers) == "q"
    headers["authorization"] = "Bearer h"
    assert token_from_request("/track?token=q", headers) == "h"
    headers["Authorization"] = "Bearer other"
    # Two Authorization headers are ambiguous: only the query token counts.
    assert token_from_request("/track?token=q", headers) == "q"
