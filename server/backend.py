"""What feeds a :class:`~server.app.SentiServer` when the dataflow runs elsewhere.

By default the server runs the dataflow on a thread of its own process. Given a
:class:`Backend` instead (a gateway's Redis bus, :mod:`server.gateway`), it
starts that, sends it the tracked-query changes (:meth:`Backend.push`, the
hub's :class:`~server.hub.SubscriptionSink`) and gets the dataflow's output
through the ``deliver`` callback, on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from flows.routing.matching import Subscription

__all__ = ["Backend", "Deliver"]

Deliver = Callable[[Sequence[Any]], None]
"""Hands a batch of dataflow output (:class:`~flows.model.Match`,
:class:`~flows.model.WindowSummary`) to the hub; called on the event loop."""


class Backend(Protocol):
    """A remote dataflow: receives subscription changes, delivers its output."""

    def push(self, item: Subscription) -> None:
        """Queue a tracked-query change; never blocks."""

    async def start(self, deliver: Deliver) -> None:
        """Connect and start delivering; raise if the backend is unreachable."""

    @property
    def running(self) -> bool:
        """Whether output can flow (the ``/healthz`` answer)."""

    async def close(self) -> None:
        """Withdraw this server's subscriptions and disconnect."""
