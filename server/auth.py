"""Shared-token authentication of WebSocket handshakes: pure helpers.

A client presents the token in one of two places:

* the ``Authorization: Bearer <token>`` header, for clients that can set
  headers (servers, scripts, command-line tools);
* the ``token`` query parameter, ``ws://host:8000/track?token=<token>``,
  because browsers cannot set headers on a WebSocket handshake.

The header wins when both are present. Query strings end up in access logs
and proxy logs, so the token should be a revocable, per-deployment secret sent
over ``wss://`` only; it is compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qs, urlsplit

__all__ = ["TOKEN_PARAMETER", "token_from_request", "token_matches"]

TOKEN_PARAMETER: Final = "token"  # noqa: S105 -- a parameter name, not a secret
"""The query parameter that may carry the token."""

_BEARER: Final = "bearer"


def token_matches(presented: str | None, expected: str | None) -> bool:
    """Whether ``presented`` is the ``expected`` token; ``expected=None`` requires none.

    The comparison takes the same time wherever the strings first differ
    (:func:`hmac.compare_digest`). A missing or empty presented token never
    matches, so an empty expected token locks everyone out rather than in.
    """
    if expected is None:
        return True
    if not presented:
        return False
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def token_from_request(path: str, headers: Mapping[str, str]) -> str | None:
    """The token a handshake presents, or ``None`` if it presents none.

    ``path`` is the request target (``/track?token=...``); ``headers`` may be a
    plain dict (looked up case-insensitively) or ``websockets``' ``Headers``.
    An ``Authorization`` header with a scheme other than ``Bearer`` is ignored.
    A ``token`` parameter given more than once is ambiguous and yields ``None``.
    """
    header = _header(headers, "authorization")
    if header is not None:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == _BEARER and credentials.strip():
            return credentials.strip()
    query = urlsplit(path).query
    if not query:
        return None
    values = parse_qs(query, keep_blank_values=True).get(TOKEN_PARAMETER, [])
    if len(values) != 1 or not values[0]:
        return None
    return values[0]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The one value of header ``name``; ``None`` if it is absent or repeated."""
    try:
        value = headers.get(name)
    except LookupError:  # websockets' Headers raises MultipleValuesError when repeated
        return None
    if value is not None:
        return value
    # A plain dict is case-sensitive: look for other spellings of the name.
    found = [headers[key] for key in headers if key.lower() == name]
    return found[0] if len(found) == 1 else None


def _bytes(text: str) -> bytes:
    # compare_digest accepts only ASCII str; bytes work for any token.
    return text.encode("utf-8", "surrogatepass")
