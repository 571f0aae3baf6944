"""Fan-out of the dataflow's output to the connections tracking each query.

The hub runs on the server's event loop thread (the dataflow hands it batches
with ``loop.call_soon_threadsafe``). Each message is encoded once per dialect
and written with :func:`websockets.asyncio.server.broadcast`, which never waits
for a client. A client whose unsent data exceeds ``send_buffer_bytes`` is
skipped (the message is dropped for it and counted) until it catches up, so a
slow or stalled client costs a bounded amount of memory and delays no one;
keepalive pings close it if it stops reading altogether.

Several connections may track one query; the dataflow is told to track a query
when its first connection arrives and to drop it when its last one leaves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

from flows.alerts import Alert
from flows.model import ALL_POSTS, Match, PostMatches, RejectCode, Rejected, WindowSummary
from flows.routing.matching import Query, Subscription
from server.flowproc import EncodedAlert, EncodedPost, EncodedWindow
from server.metrics import Metrics
from server.protocol import Dialect, Outcome, encode_alert, encode_post, encode_window

__all__ = ["Hub", "SubscriptionSink"]

_CODES = frozenset(RejectCode)


class SubscriptionSink(Protocol):
    """Where the hub sends tracked-query changes: the local dataflow's
    :class:`~flows.sources.control.SubscriptionSource`, or a gateway's Redis bus."""

    def push(self, item: Subscription) -> None:
        """Queue a change; thread-safe, never blocks."""


class Hub:
    """Who tracks what, and delivery of posts and windows to them."""

    def __init__(
        self,
        subscriptions: SubscriptionSink,
        metrics: Metrics,
        *,
        send_buffer_bytes: int,
        on_drop: Callable[[Query], None] | None = None,
    ) -> None:
        self._subscriptions = subscriptions
        self._on_drop = on_drop
        self._metrics = metrics
        self._send_buffer_bytes = send_buffer_bytes
        self._dialects: dict[ServerConnection, Dialect] = {}
        self._by_query: dict[str, dict[ServerConnection, None]] = {}
        self._queries: dict[str, Query] = {}
        self._per_ip: Counter[str] = Counter()
        self._keep = False

    # Connections

    @property
    def connections(self) -> int:
        """Open connections."""
        return len(self._dialects)

    @property
    def queries(self) -> int:
        """Distinct queries tracked by at least one connection."""
        return len(self._by_query)

    def clients_from(self, ip: str) -> int:
        """Open connections from one address."""
        return self._per_ip[ip]

    def tracked(self) -> dict[str, int]:
        """Each tracked query's canonical key and its number of connections."""
        return {key: len(conns) for key, conns in self._by_query.items()}

    def register(self, conn: ServerConnection, dialect: Dialect) -> None:
        """A connection completed its handshake."""
        self._dialects[conn] = dialect
        self._per_ip[_ip(conn)] += 1

    def unregister(self, conn: ServerConnection, keys: Iterable[str]) -> None:
        """A connection closed; drop its queries."""
        for key in keys:
            self._leave(conn, key)
        self._dialects.pop(conn, None)
        ip = _ip(conn)
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]

    def apply(self, conn: ServerConnection, outcome: Outcome) -> None:
        """Apply a session's changes of tracked queries."""
        for key in outcome.removed:
            self._leave(conn, key)
            self._metrics.track_changes += 1
        for query in outcome.added:
            self._join(conn, query)
            self._metrics.track_changes += 1

    def _join(self, conn: ServerConnection, query: Query) -> None:
        members = self._by_query.get(query.key)
        if members is None:
            members = self._by_query[query.key] = {}
            self._queries[query.key] = query
            self._subscriptions.push(Subscription(query, active=True))
        members[conn] = None

    def keep_queries(self) -> None:
        """From now on, a query whose last connection leaves stays tracked by the dataflow.

        For a stopping server whose next run resumes from the store: its
        clients leaving because it stops is not them untracking.
        """
        self._keep = True

    def _leave(self, conn: ServerConnection, key: str) -> None:
        members = self._by_query.get(key)
        if members is None or conn not in members:
            return
        del members[conn]
        if not members:
            del self._by_query[key]
            query = self._queries.pop(key)
            if self._keep:
                return
            self._subscriptions.push(Subscription(query, active=False))
            if self._on_drop is not None:
                self._on_drop(query)

    def is_tracked(self, key: str) -> bool:
        """Whether some connection tracks the query ``key``."""
        return key in self._by_query

    # Delivery

    def publish(self, items: Sequence[Any]) -> None:
        """Deliver a batch of dataflow output (on the event loop thread).

        Items are records (:class:`~flows.model.PostMatches`, :class:`~flows.model.Match`,
        :class:`~flows.model.WindowSummary`, :class:`~flows.alerts.Alert`) or the same
        already encoded by a dataflow process (:mod:`server.flowproc`);
        :class:`~flows.model.Rejected` records are counted by code. Anything else
        (late posts, subscription changes) is not for clients and is left out.
        """
        for item in items:
            if isinstance(item, EncodedPost):
                self._metrics.matches += 1
                self._deliver_encoded(item)
            elif isinstance(item, PostMatches):
                self._metrics.matches += len(item.queries)
                self._deliver_post(item)
            elif isinstance(item, Match):
                self._metrics.matches += 1
                self._deliver_post(PostMatches(item.scored, (item.query,)))
            elif isinstance(item, Rejected):
                # Codes outside the vocabulary count as "other": the label set stays fixed.
                code = item.code if item.code in _CODES else RejectCode.OTHER
                self._metrics.source_rejected[code] += 1
            elif isinstance(item, EncodedWindow | WindowSummary):
                summary, text = (
                    (item.summary, item.v2) if isinstance(item, EncodedWindow) else (item, None)
                )
                if summary.query == ALL_POSTS:
                    self._count_posts(summary)
                else:
                    self._deliver_window(summary, text)
            elif isinstance(item, EncodedAlert | Alert):
                text = item.v2 if isinstance(item, EncodedAlert) else encode_alert(item)
                self._deliver_v2(item.query, text)

    def _count_posts(self, summary: WindowSummary) -> None:
        read = summary.posts + summary.retweets
        self._metrics.posts += read
        self._metrics.posts_per_second = read / (summary.end - summary.start).total_seconds()

    def _deliver_encoded(self, post: EncodedPost) -> None:
        members = self._by_query.get(post.query)
        if not members:
            return
        for dialect, conns in self._split(members).items():
            text = post.v1 if dialect is Dialect.V1 else post.v2
            if text is not None:  # v1 clients get no unscored posts
                self._send(conns, text)

    def _deliver_post(self, item: PostMatches) -> None:
        v1: str | None = None  # the same for every query: encoded once
        unscored = item.scored.unscored  # not sent to v1 clients (docs/protocol.md)
        for match in item.matches():
            members = self._by_query.get(match.query)
            if not members:
                continue
            for dialect, conns in self._split(members).items():
                if dialect is Dialect.V2:
                    self._send(conns, encode_post(match, Dialect.V2))
                elif not unscored:
                    v1 = v1 or encode_post(match, Dialect.V1)
                    if v1 is not None:
                        self._send(conns, v1)

    def _deliver_window(self, summary: WindowSummary, text: str | None = None) -> None:
        members = self._by_query.get(summary.query)
        if not members:
            return
        conns = self._split(members).get(Dialect.V2)
        if conns:
            self._send(conns, text or encode_window(summary))

    def _deliver_v2(self, key: str, text: str) -> None:
        """Send ``text`` to the v2 clients tracking ``key`` (v1 clients get no alerts)."""
        members = self._by_query.get(key)
        if not members:
            return
        conns = self._split(members).get(Dialect.V2)
        if conns:
            self._send(conns, text)

    def _split(self, members: Iterable[ServerConnection]) -> dict[Dialect, list[ServerConnection]]:
        split: dict[Dialect, list[ServerConnection]] = {}
        for conn in members:
            split.setdefault(self._dialects[conn], []).append(conn)
        return split

    def _send(self, conns: list[ServerConnection], text: str) -> None:
        open_conns = [conn for conn in conns if conn.state is State.OPEN]
        ready = [conn for conn in open_conns if _buffered(conn) <= self._send_buffer_bytes]
        self._metrics.messages_dropped += len(open_conns) - len(ready)
        self._metrics.messages_sent += len(ready)
        broadcast(ready, text)


def _buffered(conn: ServerConnection) -> int:
    transport = conn.transport
    return 0 if transport is None else int(transport.get_write_buffer_size())


def _ip(conn: ServerConnection) -> str:
    address = conn.remote_address
    return str(address[0]) if address else "?"
