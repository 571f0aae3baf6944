"""Which browser origins may open a WebSocket: a pure allowlist check.

Browsers send an ``Origin`` header with every WebSocket handshake and let any
page connect to any server, so without this check a page on any site could
use a visitor's browser (and its network position) to talk to senti. Clients
that are not browsers usually send no ``Origin``; they are governed by
``allow_missing`` and by the token (see :mod:`server.auth`), not by this list.

Allowlist entries (also the comma-separated ``SENTI_ORIGINS`` setting):

``https://app.example.com`` / ``https://app.example.com:8443``
    Exactly that origin. Scheme and host are compared case-insensitively and a
    default port (80 for http, 443 for https) may be written or left out.
``app.example.com``
    That host over http or https, at the default port.
``https://*.example.com`` / ``*.example.com``
    Any subdomain of ``example.com``, at any depth (``a.b.example.com``), but
    not ``example.com`` itself (list it too if wanted), nor ``evil-example.com``,
    nor ``example.com.evil.net``.
``https://app.example.com:*``
    That scheme and host on any port.
``null``
    The opaque origin of sandboxed iframes and ``file://`` pages; rejected
    unless listed, because any site can produce it.
``*``
    Any well-formed origin except ``null``; for public demos only.

``allow_localhost`` (on with ``dev=True``) adds ``localhost``, ``127.0.0.1`` and
``[::1]`` over http or https on any port.

The original Tornado server compared ``hostname is 'localhost'`` (identity,
not equality, so it never matched) and dropped the first label of the host
before looking it up, so ``https://www.evil.example.com`` passed a list
holding ``evil.example.com``, while ``https://example.com`` was checked as
``com``. Here origins are parsed strictly and compared as whole hosts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["OriginPolicy"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEMES: Final = ("http", "https")
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})
_ANY_PORT: Final = -1
_NULL: Final = "null"

_LABEL: Final = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*", re.ASCII)
_ORIGIN: Final = re.compile(
    r"(?:(?P<scheme>[^:/?#@\s]+)://)?(?P<host>\[[^\]\s]*\]|[^:/?#@\[\]\s]*)(?::(?P<port>[^/?#@\s]*))?"
)


@dataclass(frozen=True, slots=True)
class _Origin:
    """A parsed origin: lower-case scheme and host, port with defaults filled in."""

    scheme: str
    host: str
    port: int | None


@dataclass(frozen=True, slots=True)
class _Rule:
    """One allowlist entry: schemes, then an exact host or a ``*.domain`` suffix, and a port."""

    schemes: tuple[str, ...]
    host: str
    subdomains: bool
    port: int | None
    """``None``: the scheme's default port; :data:`_ANY_PORT`: any."""

    def allows(self, origin: _Origin) -> bool:
        if origin.scheme not in self.schemes:
            return False
        if self.subdomains:
            if not origin.host.endswith("." + self.host):
                return False
        elif origin.host != self.host:
            return False
        if self.port == _ANY_PORT:
            return True
        expected = _DEFAULT_PORTS.get(origin.scheme) if self.port is None else self.port
        return origin.port == expected


class OriginPolicy:
    """An allowlist of browser origins; see the module docstring for the entry syntax.

    Raises :class:`ValueError` at construction for an entry that is not a valid
    origin, host or wildcard, naming the entry and what is wrong with it.
    """

    def __init__(
        self,
        allowed: Sequence[str] = (),
        *,
        allow_localhost: bool = False,
        allow_missing: bool = True,
    ) -> None:
        if isinstance(allowed, str):
            raise TypeError("allowed must be a sequence of entries, not one string")
        self._rules: list[_Rule] = []
        self._allow_null = False
        self._allow_any = False
        for entry in allowed:
            self._add(entry)
        if allow_localhost:
            self._rules.extend(_Rule(_WEB_SCHEMES, host, False, _ANY_PORT) for host in _LOCAL_HOSTS)
        self._allow_missing = allow_missing
        self._entries = tuple(allowed)
        self._allow_localhost = allow_localhost

    @classmethod
    def from_setting(cls, text: str, *, dev: bool) -> OriginPolicy:
        """A policy from a comma-separated setting such as ``SENTI_ORIGINS``.

        Blank entries are ignored; ``dev`` turns on ``allow_localhost``.
        Raises :class:`ValueError` for an invalid entry.
        """
        entries = [entry.strip() for entry in text.split(",")]
        return cls([entry for entry in entries if entry], allow_localhost=dev)

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header value (``None``: absent) may proceed."""
        if origin is None:
            return self._allow_missing
        if origin.strip().lower() == _NULL:
            return self._allow_null
        parsed = _parse_origin(origin)
        if parsed is None:
            return False
        return self._allow_any or any(rule.allows(parsed) for rule in self._rules)

    def __repr__(self) -> str:
        return (
            f"OriginPolicy({list(self._entries)!r}, allow_localhost={self._allow_localhost},"
            f" allow_missing={self._allow_missing})"
        )

    def _add(self, entry: str) -> None:
        text = entry.strip().lower()
        if text == _NULL:
            self._allow_null = True
            return
        if text == "*":
            self._allow_any = True
            return
        try:
            self._rules.append(_parse_rule(text))
        except ValueError as exc:
            raise ValueError(f"invalid allowed origin {entry!r}: {exc}") from None


def _parse_rule(text: str) -> _Rule:
    match = _ORIGIN.fullmatch(text.removesuffix("/"))
    if match is None:
        raise ValueError("expected scheme://host[:port], host or *.domain, with no path")
    scheme, host, port_text = match.group("scheme", "host", "port")
    if scheme is not None and not _SCHEME.fullmatch(scheme):
        raise ValueError(f"bad scheme {scheme!r}")
    subdomains = host.startswith("*.")
    if subdomains:
        host = host[2:]
        if "." not in host:
            raise ValueError("a wildcard must name a domain with at least two labels")
    host = _normalise_host(host, idna=True)
    port: int | None
    if port_text == "*":
        port = _ANY_PORT
    elif port_text is None:
        port = None
    else:
        port = _parse_port(port_text)
    schemes = _WEB_SCHEMES if scheme is None else (scheme,)
    return _Rule(schemes, host, subdomains, port)


def _parse_origin(text: str) -> _Origin | None:
    """Parse a serialised origin (``scheme://host[:port]``), or ``None`` if it is not one."""
    if not text.isascii():  # browsers send host names in punycode
        return None
    match = _ORIGIN.fullmatch(text.strip().lower())
    if match is None:
        return None
    scheme, host, port_text = match.group("scheme", "host", "port")
    if scheme is None or not _SCHEME.fullmatch(scheme) or port_text == "*":
        return None
    try:
        host = _normalise_host(host, idna=False)
        port = _DEFAULT_PORTS.get(scheme) if port_text is None else _parse_port(port_text)
    except ValueError:
        return None
    return _Origin(scheme, host, port)


def _normalise_host(host: str, *, idna: bool) -> str:
    """A lower-case host: a DNS name, a dotted IPv4 address or a bracketed IPv6 address."""
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"bad IPv6 address {host!r}") from None
        return f"[{address.compressed}]"
    if idna and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"bad international host name {host!r}") from None
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise ValueError(f"bad host name {host!r}")
    return host


def _parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ValueError(f"bad port {text!r}")
    return int(text)
