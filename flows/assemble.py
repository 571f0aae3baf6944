"""The one place a runnable flow is put together from its settings.

:func:`assemble_flow` takes the post source, the subscriptions (if queries
change while it runs), the output sinks and :class:`~flows.dataflow.FlowSettings`,
and adds what every runner needs: the source ends when ``stop`` is set (by abort
with recovery, so the last snapshot stays the resume point), and with a store
URL the :class:`~flows.sinks.store_sink.StoreSink` writes the flow's output and the
sources' positions. ``senti replay``/``run``, ``senti serve`` (thread or child
process) and each process of ``senti dataflow`` all call it::

    flow = assemble_flow(source, settings=FlowSettings(), stop=stop, sinks=[sink])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, Source
from bytewax.outputs import Sink

from flows.dataflow import FlowSettings, build_flow
from flows.model import Line, Rejected
from flows.routing.matching import Subscription
from flows.runtime.cursors import Positions
from flows.runtime.recovery import Recovery, stoppable
from flows.sinks.store_sink import StoreSink
from flows.sinks.webhook import WebhookSink

__all__ = ["assemble_flow"]


def assemble_flow(
    source: FixedPartitionedSource[Line, Any],
    *,
    settings: FlowSettings,
    stop: threading.Event,
    subscriptions: Source[Subscription] | Source[Subscription | Rejected] | None = None,
    sinks: Iterable[Sink[Any]] = (),
    store: str | None = None,
    positions: Positions | None = None,
    recovery: Recovery | None = None,
    webhook: str | None = None,
    store_queries: bool = False,
) -> Dataflow:
    """The dataflow over ``source`` writing every sink, ending when ``stop`` is set.

    With ``store``, a :class:`StoreSink` is added last; it carries
    ``positions`` (the source's, see :mod:`flows.runtime.cursors`) and, with
    ``recovery``, writes on the worker's thread so a snapshot never runs ahead
    of the rows; with ``store_queries`` it writes ``settings.queries`` as tracked
    before anything else. With ``webhook``, a :class:`~flows.sinks.webhook.WebhookSink`
    POSTs each alert there (docs/alerts.md). Raises what the source raises while listing its parts
    (an :class:`OSError` for a replay file gone since it was checked).
    """
    outputs: list[Sink[Any]] = list(sinks)
    if store is not None:
        queries = settings.queries if store_queries else ()
        outputs.append(
            StoreSink(store, background=recovery is None, positions=positions, queries=queries)
        )
    if webhook is not None:
        outputs.append(WebhookSink(webhook))
    return build_flow(
        stoppable(source, stop, recovery=recovery), subscriptions, outputs, settings=settings
    )
