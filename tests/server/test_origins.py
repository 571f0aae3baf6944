"""The Origin allowlist, including regressions for the original server's check_origin bugs."""

from __future__ import annotations

import pytest

from server.origins import OriginPolicy

POLICY = OriginPolicy(
    [
        "https://app.example.com",
        "https://*.example.org",
        "*.example.net",
        "HTTPS://Admin.Example.COM:8443",
        "example.io",
        "https://staging.example.dev:*",
    ]
)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        # Exact origins: case and default ports are normalised.
        ("https://app.example.com", True),
        ("HTTPS://APP.EXAMPLE.COM", True),
        ("https://app.example.com:443", True),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://admin.example.com:8443", True),
        ("https://admin.example.com", False),
        ("https://www.app.example.com", False),
        ("https://example.com", False),
        # Wildcards: any depth of subdomain, never the bare domain or look-alikes.
        ("https://a.example.org", True),
        ("https://a.b.c.example.org", True),
        ("http://a.example.org", False),
        ("https://a.example.org:444", False),
        ("https://example.org", False),
        ("https://evil-example.org", False),
        ("https://xexample.org", False),
        ("https://example.org.evil.net", False),
        ("https://a.example.org.evil.net", False),
        ("https://a.example.orgx", False),
        # Scheme-less entries: http or https at the default port.
        ("http://shop.example.net", True),
        ("https://shop.example.net", True),
        ("https://shop.example.net:8080", False),
        ("ftp://shop.example.net", False),
        ("https://example.io", True),
        ("http://example.io:80", True),
        ("https://www.example.io", False),
        # Any port.
        ("https://staging.example.dev:3000", True),
        ("https://staging.example.dev", True),
        ("http://staging.example.dev:3000", False),
        # Not origins at all.
        ("", False),
        ("app.example.com", False),
        ("https://app.example.com/", False),
        ("https://app.example.com/path", False),
        ("https://user@app.example.com", False),
        ("https://app.example.com:99999", False),
        ("https://app.example.com:*", False),
        ("https://app.example.com.", False),
        ("https://app..example.com", False),
        ("https://*.example.org", False),
        ("https://\u212aa.example.org", False),
        ("https://app.example.com\\@evil.net", False),
        ("null", False),
        ("NULL", False),
    ],
)
def test_origin_table(origin: str, allowed: bool) -> None:
    """Each origin is allowed or refused exactly as its entry says."""
    assert POLICY.allows(origin) is allowed


# Regressions for the original Tornado check_origin


def test_original_bug_localhost_identity_comparison() -> None:
    """``hostname is 'localhost'`` never matched; allow_localhost admits localhost by value."""
    dev = OriginPolicy(allow_localhost=True)
    host = "".join(["local", "host"])  # an equal string that is not the same object
    assert dev.allows(f"http://{host}:3000")


def test_original_bug_first_label_dropped() -> None:
    """The original admitted every first-level subdomain of a listed domain; exact entries don't."""
    policy = OriginPolicy(["example.com"])
    assert policy.allows("https://example.com")
    assert not policy.allows("https://evil.example.com")
    assert not policy.allows("https://example.com.attacker.net")
    assert not policy.allows("https://evil.com.attacker.net")


def test_original_bug_scheme_and_port_ignored() -> None:
    """The original compared hosts only; an https entry refuses http and other ports."""
    policy = OriginPolicy(["https://app.example.com"])
    assert not policy.allows("http://app.example.com")
    assert not policy.allows("https://app.example.com:8080")


def test_original_bug_empty_setting_admitted_dotless_hosts() -> None:
    """The original split an empty setting to [""], admitting ``null``; here it admits none."""
    policy = OriginPolicy.from_setting("", dev=False)
    assert not policy.allows("null")
    assert not policy.allows("http://intranet")
    assert not policy.allows("http://localhost:3000")


def test_original_bug_bare_domain_rejected() -> None:
    """The original checked ``https://example.com`` as ``com``; a listed domain is allowed here."""
    assert OriginPolicy(["https://example.com"]).allows("https://example.com")


def test_original_bug_suffix_tricks() -> None:
    """Neither ``xexample.com`` nor ``example.com.evil.net`` passes a wildcard for example.com."""
    policy = OriginPolicy(["*.example.com"])
    assert policy.allows("https://www.example.com")
    assert not policy.allows("https://xexample.com")
    assert not policy.allows("https://www.xexample.com")
    assert not policy.allows("https://example.com.evil.net")
    assert not policy.allows("https://www.example.com.evil.net")
    assert not policy.allows("https://example.com")


# Localhost, null and missing origins


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "http://localhost:3000",
        "https://localhost:8443",
        "http://127.0.0.1:5173",
        "http://[::1]:8000",
        "http://[0:0:0:0:0:0:0:1]:8000",
    ],
)
def test_allow_localhost(origin: str) -> None:
    """allow_localhost admits loopback hosts on any port, over http or https."""
    assert OriginPolicy(allow_localhost=True).allows(origin)
    assert not OriginPolicy().allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost.evil.net",
        "http://evil-localhost",
        "http://127.0.0.2",
        "ws://localhost:3000",
        "file://localhost",
    ],
)
def test_allow_localhost_is_only_loopback(origin: str) -> None:
    """allow_localhost admits no look-alike hosts and no other schemes."""
    assert not OriginPolicy(allow_localhost=True).allows(origin)


def test_null_origin_only_when_listed() -> None:
    """The opaque ``null`` origin passes only an explicit ``null`` entry."""
    assert not OriginPolicy(["*"], allow_localhost=True).allows("null")
    assert OriginPolicy(["null"]).allows("null")


def test_missing_origin() -> None:
    """A handshake without Origin (not a browser) passes unless allow_missing is off."""
    assert OriginPolicy().allows(None)
    assert not OriginPolicy(allow_missing=False).allows(None)


def test_empty_policy_refuses_every_browser() -> None:
    """With no entries every browser origin is refused."""
    assert not OriginPolicy().allows("https://app.example.com")


def test_star_allows_any_well_formed_origin() -> None:
    """A ``*`` entry admits any well-formed origin but not garbage."""
    policy = OriginPolicy(["*"])
    assert policy.allows("https://anything.example")
    assert not policy.allows("not an origin")


def test_ipv6_and_international_entries() -> None:
    """IPv6 entries are compared compressed; international names in punycode."""
    assert OriginPolicy(["http://[0::1]:8080"]).allows("http://[::1]:8080")
    assert OriginPolicy(["https://bücher.example"]).allows("https://xn--bcher-kva.example")


def test_custom_scheme_entry() -> None:
    """An entry may name a non-web scheme without a port, such as a browser extension."""
    policy = OriginPolicy(["chrome-extension://abcdef"])
    assert policy.allows("chrome-extension://abcdef")
    assert not policy.allows("chrome-extension://other")


# Invalid entries


@pytest.mark.parametrize(
    "entry",
    [
        "https://",
        "https://exa mple.com",
        "https://example.com/path",
        "https://user@example.com",
        "https://ex*ample.com",
        "https://*example.com",
        "https://a.*.example.com",
        "https://*",
        "*.com",
        "https://example.com:65536",
        "https://example.com:http",
        "https://[::g]",
        "1https://example.com",
        "https://example..com",
        "https://-example.com",
    ],
)
def test_invalid_entries_raise(entry: str) -> None:
    """An invalid allowlist entry fails at construction, naming the entry."""
    with pytest.raises(ValueError, match="invalid allowed origin"):
        OriginPolicy([entry])


def test_one_string_is_not_a_list() -> None:
    """Passing a single string instead of a list is a TypeError, not a list of characters."""
    with pytest.raises(TypeError):
        OriginPolicy("https://app.example.com")


def test_trailing_slash_in_an_entry_is_tolerated() -> None:
    """An entry copied from the address bar with a trailing slash still works."""
    assert OriginPolicy(["https://app.example.com/"]).allows("https://app.example.com")


# Settings


def test_from_setting_splits_commas_and_ignores_blanks() -> None:
    """A comma-separated setting becomes one entry per item."""
    policy = OriginPolicy.from_setting(" https://app.example.com , ,*.example.org,", dev=False)
    assert policy.allows("https://app.example.com")
    assert policy.allows("https://x.example.org")
    assert not policy.allows("http://localhost:3000")


def test_from_setting_dev_allows_localhost() -> None:
    """dev=True adds the localhost allowance."""
    assert OriginPolicy.from_setting("", dev=True).allows("http://localhost:3000")
    assert not OriginPolicy.from_setting("", dev=False).allows("http://localhost:3000")


def test_from_setting_rejects_invalid_entries() -> None:
    """An invalid entry in the setting raises ValueError at startup."""
    with pytest.raises(ValueError, match=r"https://exa mple\.com"):
        OriginPolicy.from_setting("https://ok.example.com,https://exa mple.com", dev=False)
