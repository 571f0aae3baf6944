"""senti's side of X's rules endpoint, and the tweepy plumbing the X source shares.

* :class:`XRules` keeps senti's rules on the filtered stream: it lists, adds
  (after a dry run) and deletes them through tweepy's
  :class:`~tweepy.StreamingClient` rule calls, and remembers which are
  senti's (tagged ``senti:``, see :mod:`flows.platforms.x_rules`), so that tracking a
  query twice sends nothing. Other rules are never touched.
* :class:`Session` sends tweepy's requests to the configured API base.
* :func:`redact` registers the bearer token with a filter on tweepy's loggers
  (whose debug output prints request headers); :func:`scrub` takes it out of
  any message senti builds.
* The errors of the X source: :class:`XSourceError` and its subclasses.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import requests
import tweepy
from typing_extensions import override

from flows.platforms.x_rules import Rule, RuleLimits, check_room, reconcile, rule_for
from flows.platforms.x_wire import add_errors, messages, rejection, rules_failure
from flows.routing.matching import Query
from flows.sources.control import SourceError

__all__ = [
    "RuleRejected",
    "Session",
    "XApiError",
    "XRules",
    "XSourceError",
    "XStreamFailed",
    "redact",
    "scrub",
]

logger = logging.getLogger("senti.x")

_TWEEPY_HOST: Final = "https://api.twitter.com"
"""The host tweepy 4 writes into every URL; :class:`Session` swaps it."""
_REDACTED: Final = "[redacted]"


# Errors


class XSourceError(SourceError):
    """Root of the errors of the X source. Messages never contain the bearer token."""


class RuleRejected(XSourceError):
    """X refused a rule (invalid syntax, an operator the access level lacks...).

    Raised by :meth:`XStream.track` and :meth:`XStream.reconcile`;
    :attr:`message` is X's own explanation, :attr:`errors` its error objects.
    """

    def __init__(self, message: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


class XApiError(XSourceError):
    """A rules request failed: X unreachable, an HTTP error, or the rate limit."""


class XStreamFailed(XSourceError):
    """X refused the stream connection in a way no reconnect fixes (HTTP 401, 403...)."""


# tweepy's plumbing


class _Redact(logging.Filter):
    """Replaces registered secrets in the records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._installed = False

    def add(self, secret: str) -> None:
        """Redact ``secret`` from now on (the filter is installed on first use)."""
        with self._lock:
            self._secrets.add(secret)
            if not self._installed:
                for name in _TWEEPY_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret replaced."""
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


_TWEEPY_LOGGERS: Final = ("tweepy.client", "tweepy.streaming")
"""tweepy's loggers; ``tweepy.client`` logs request headers at DEBUG."""
_REDACTOR: Final = _Redact()
redact = _REDACTOR.add
scrub = _REDACTOR.scrub


class Session(requests.Session):
    """A session sending tweepy's requests to ``base`` instead of api.twitter.com.

    tweepy 4 builds each URL from a hard-coded host (``BaseClient.request``);
    rewriting the prepared request is the one override that keeps tweepy's own
    request, error and response handling. For the stream connection it also
    sets senti's ``timeout`` (tweepy's is a fixed 21 s) and keeps the
    response, so that :meth:`abort` can wake a read blocked on it.
    """

    def __init__(self, base: str, *, timeout: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.base = base
        self.timeout = timeout
        self.response: requests.Response | None = None
        self._lock = threading.Lock()

    @override
    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        url = prepared.url or ""
        if self.base != _TWEEPY_HOST and url.startswith(_TWEEPY_HOST + "/"):
            prepared.url = self.base + url[len(_TWEEPY_HOST) :]
        return prepared

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        with self._lock:
            self.response = response
        return response

    def abort(self) -> None:
        """Shut down the open response's socket, waking a blocked read (any thread)."""
        with self._lock:
            response = self.response
        connection = getattr(getattr(response, "raw", None), "connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


# Rules


class XRules:
    """senti's rules on the X filtered stream; each change counted by ``changed(n)``.

    Methods block on HTTP, are thread-safe and serialised.
    """

    def __init__(
        self,
        token: str,
        api_base: str,
        *,
        lang: str | None,
        limits: RuleLimits,
        changed: Callable[[int], object],
    ) -> None:
        redact(token)
        self._api_base = api_base
        self._lang = lang
        self.limits = limits
        self._changed = changed
        self._rules_lock = threading.Lock()
        self._rules_client = tweepy.StreamingClient(token, return_type=tweepy.Response)
        self._rules_client.session = Session(api_base)
        self._ours: dict[str, Rule] = {}
        """senti's rules by query key; ``id=None`` when another rule has the same value."""
        self._rule_count: int | None = None
        """Rules on the stream (everyone's), once loaded."""

    def rules(self) -> list[Rule]:
        """Every rule on the stream (senti's and others'), as X lists them."""
        with self._rules_lock:
            return self._get_rules()

    def reconcile(self, queries: Iterable[Query]) -> None:
        """Make senti's rules exactly one per query: delete stale ``senti:`` rules, add missing.

        Rules without a ``senti:`` tag are left alone. Raises
        :class:`~flows.platforms.x_rules.RuleError` if the queries do not fit X's limits,
        :class:`RuleRejected` if X refuses a rule (checked with a dry run
        before any is added), :class:`XApiError` if a request fails.
        """
        wanted = list(queries)
        with self._rules_lock:
            self._rule_count = None  # unknown until this succeeds
            existing = self._get_rules()
            sync = reconcile(existing, wanted, lang=self._lang, limits=self.limits)
            if sync.to_delete:  # stale whatever happens next
                self._delete(sync.to_delete)
            added: dict[str, Rule] = {}
            if sync.to_add:
                self._add(sync.to_add, dry_run=True)
                added = self._add(sync.to_add)
            gone = set(sync.to_delete)
            kept = [rule for rule in existing if rule.id not in gone]
            self._ours = {rule.key: rule for rule in kept if rule.key is not None}
            self._ours.update(added)
            self._rule_count = len(kept) + sum(1 for rule in added.values() if rule.id)
        logger.info(
            "X rules reconciled",
            extra={"deleted": len(sync.to_delete), "added": len(sync.to_add)},
        )

    def track(self, query: Query) -> None:
        """Add the rule for ``query`` unless senti has it already; the stream stays connected.

        The rule is checked with a dry run first. Raises
        :class:`~flows.platforms.x_rules.RuleError` when X's limits leave no room or the
        rule is too long, :class:`RuleRejected` (with X's message) when X
        refuses it, :class:`XApiError` when a request fails.
        """
        rule = rule_for(query, lang=self._lang, limits=self.limits)
        with self._rules_lock:
            if query.key in self._ours:
                return
            if self._rule_count is None:
                self._load()
                if query.key in self._ours:
                    return
            check_room(self._rule_count or 0, limits=self.limits)
            self._add([rule], dry_run=True)
            added = self._add([rule])
            self._ours.update(added)
            self._rule_count = (self._rule_count or 0) + sum(1 for r in added.values() if r.id)
        logger.info("X rule added", extra={"query": query.key})

    def untrack(self, key: str) -> None:
        """Delete the rule for the query with canonical key ``key``, if senti added one.

        Raises :class:`XApiError` when the request fails (the rule is kept).
        """
        with self._rules_lock:
            rule = self._ours.get(key)
            if rule is None:
                return
            if rule.id is not None:
                self._delete([rule.id])
                self._rule_count = max((self._rule_count or 1) - 1, 0)
            del self._ours[key]
        logger.info("X rule deleted", extra={"query": key})

    def _load(self) -> None:
        existing = self._get_rules()
        self._ours = {rule.key: rule for rule in existing if rule.key is not None}
        self._rule_count = len(existing)

    def _get_rules(self) -> list[Rule]:
        rules: list[Rule] = []
        params: dict[str, Any] = {}
        while True:
            response = self._call(self._rules_client.get_rules, **params)
            rules += [
                Rule(value=rule.value, tag=rule.tag, id=str(rule.id))
                for rule in response.data or ()
            ]
            token = (response.meta or {}).get("next_token")
            if not token:
                return rules
            params = {"pagination_token": token}

    def _add(self, rules: Sequence[Rule], *, dry_run: bool = False) -> dict[str, Rule]:
        """Add ``rules``; the added ones by query key (``id=None`` for a duplicate of another's)."""
        stream_rules = [tweepy.StreamRule(value=rule.value, tag=rule.tag) for rule in rules]
        extra = {"dry_run": "true"} if dry_run else {}
        response = self._call(self._rules_client.add_rules, stream_rules, **extra)
        duplicates, problems = add_errors(response.errors or ())
        if problems:
            raise RuleRejected(scrub(rejection(problems)), problems)
        if dry_run:
            return {}
        added: dict[str, Rule] = {}
        for rule in response.data or ():
            stored = Rule(value=rule.value, tag=rule.tag, id=str(rule.id))
            if stored.key is not None:
                added[stored.key] = stored
                self._changed(1)
        for rule in rules:
            if rule.key is not None and rule.key not in added and rule.value in duplicates:
                # Another rule has this exact value: its posts arrive anyway.
                added[rule.key] = Rule(value=rule.value, tag=rule.tag, id=None)
        return added

    def _delete(self, ids: Sequence[str]) -> None:
        response = self._call(self._rules_client.delete_rules, list(ids))
        missing = [error for error in response.errors or () if isinstance(error, dict)]
        if missing:  # already gone is fine: that is what was wanted
            logger.info("X rules already deleted: %s", scrub("; ".join(messages(missing))))
        summary = (response.meta or {}).get("summary") or {}
        self._changed(int(summary.get("deleted", len(ids) - len(missing))))

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A tweepy rules request, its failures turned into senti's errors (token scrubbed)."""
        try:
            return method(*args, **kwargs)
        except tweepy.BadRequest as exc:
            problems = exc.api_messages or messages(exc.api_errors) or [str(exc)]
            raise RuleRejected(scrub("; ".join(problems)), exc.api_errors) from None
        except tweepy.HTTPException as exc:
            status = getattr(exc.response, "status_code", 0)
            reason = getattr(exc.response, "reason", None)
            failure = rules_failure(status, reason, exc.api_messages)
            raise XApiError(scrub(failure)) from None
        except requests.RequestException as exc:
            raise XApiError(
                scrub(f"cannot reach X at {self._api_base}: {type(exc).__name__}")
            ) from None
