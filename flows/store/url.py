"""Store URLs: parsing, checking and redacting ``sqlite:///`` and ``postgresql://`` addresses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from flows.errors import SentiError

if TYPE_CHECKING:
    pass

__all__ = ["SUPPORTED_URLS", "StoreError", "StoreURL", "parse_store_url"]


SUPPORTED_URLS: Final = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, a plain file path, "
    "or postgresql://user:password@host:port/database (postgres:// too)"
)


"""The store URL forms :func:`parse_store_url` accepts, for error messages."""


_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


_POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})


_REDACTED: Final = "***"


class StoreError(SentiError):
    """Raised when a store URL is unusable or a store cannot be opened, read or written.

    The message names the store (password redacted) and says what is wrong;
    the underlying database error, if any, is chained as ``__cause__``.
    """


# Records
@dataclass(frozen=True, slots=True, repr=False)
class StoreURL:
    """A parsed store URL: the backend ``scheme`` and where the data lives.

    ``str()`` and ``repr()`` redact a PostgreSQL password as ``***``.
    """

    scheme: str
    """Backend name: ``"sqlite"`` or ``"postgresql"`` (``postgres://`` included)."""
    path: Path | None = None
    """The SQLite database file, as given (relative paths stay relative); ``None`` otherwise."""
    conninfo: str = ""
    """The PostgreSQL connection URI for libpq, password included; empty for SQLite.

    Pass it to the driver, never to a log: print the URL itself instead.
    """

    def __str__(self) -> str:
        if self.scheme == "sqlite":
            return f"{self.scheme}:///{self.path}"
        return _redact_url(self.conninfo)

    def __repr__(self) -> str:
        return f"StoreURL({str(self)!r})"

    @property
    def password(self) -> str | None:
        """The PostgreSQL password given in the URL (user info or ``?password=``), if any."""
        if self.scheme == "sqlite":
            return None
        split = urlsplit(self.conninfo)
        if split.password:
            return unquote(split.password)
        found = re.search(r"(?:^|&)password=([^&]*)", split.query)
        return unquote(found.group(1)) if found and found.group(1) else None

    @property
    def database(self) -> str | None:
        """The PostgreSQL database name; ``None`` for SQLite."""
        if self.scheme == "sqlite":
            return None
        split = urlsplit(self.conninfo)
        name = unquote(split.path.lstrip("/"))
        if not name:
            found = re.search(r"(?:^|&)dbname=([^&]*)", split.query)
            name = unquote(found.group(1)) if found else ""
        return name


# URLs
def parse_store_url(url: str) -> StoreURL:
    """Parse a store URL (see the module docstring for the accepted forms).

    Raises :class:`StoreError` for an empty URL, a scheme other than ``sqlite``
    and ``postgresql``/``postgres``, a ``sqlite:`` URL without a path (in-memory
    databases included: the dashboard could not see them), or a PostgreSQL URL
    that is malformed or names no database.
    """
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"empty store URL; use {SUPPORTED_URLS}")
    scheme = _SCHEME.match(url)
    if scheme is None:
        return StoreURL("sqlite", Path(url).expanduser())
    name = scheme.group(1).lower()
    if name in _POSTGRES_SCHEMES:
        return _parse_postgres_url(url, url[scheme.end() :])
    if name != "sqlite":
        raise StoreError(
            f"unsupported store URL scheme {name!r} in {_redact_url(url)!r}; "
            f"supported: {SUPPORTED_URLS}"
        )
    prefix = url[: scheme.end()] + "///"
    if not url.startswith(prefix):
        raise StoreError(f"malformed SQLite URL {url!r}; use {SUPPORTED_URLS}")
    path = url[len(prefix) :]
    if not path or path == ":memory:" or "?" in path:
        raise StoreError(
            f"SQLite URL {url!r} names no database file "
            f"(in-memory databases and query parameters are not supported); use {SUPPORTED_URLS}"
        )
    return StoreURL("sqlite", Path(path))


def _parse_postgres_url(url: str, rest: str) -> StoreURL:
    conninfo = f"postgresql:{rest}"  # libpq knows both spellings; keep one
    shown = _redact_url(conninfo)
    if not rest.startswith("//"):
        raise StoreError(f"malformed PostgreSQL URL {shown!r}; use {SUPPORTED_URLS}")
    split = urlsplit(conninfo)
    if split.fragment:
        raise StoreError(f"malformed PostgreSQL URL {shown!r}: unexpected '#' fragment")
    if "," not in split.netloc:  # libpq also takes a host list; it checks those ports itself
        try:
            split.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            raise StoreError(f"malformed PostgreSQL URL {shown!r}: bad port") from None
    location = StoreURL("postgresql", None, conninfo)
    if not location.database:
        raise StoreError(
            f"PostgreSQL URL {shown!r} names no database; use "
            "postgresql://user:password@host:port/database"
        )
    return location


def _redact_url(url: str) -> str:
    """``url`` with the password of its user info and of a ``password=`` parameter as ``***``."""
    try:
        split = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^/:@]*:)[^/@]*@", rf"\1{_REDACTED}@", url)
    userinfo, at, hosts = split.netloc.rpartition("@")
    netloc = split.netloc
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{_REDACTED}@{hosts}"
    query = re.sub(r"(^|&)(password=)[^&]*", rf"\1\2{_REDACTED}", split.query)
    redacted = url.replace(f"//{split.netloc}", f"//{netloc}", 1)
    return redacted.replace(f"?{split.query}", f"?{query}", 1) if split.query else redacted
