"""Record the live X stream to a file the replay source reads (``senti capture``).

The file holds the envelope lines exactly as X sent them (keep-alives and
duplicate posts left out), one per line, UTF-8 with ``\\n`` line ends: the
format of :class:`flows.sources.replay.ReplaySource`. Queries given with
``--track`` get a rule for the capture, deleted again when it ends unless the
rule was already there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from flows.errors import SentiError
from flows.platforms.x_rules import RuleError
from flows.routing.matching import Query
from flows.runtime.runner import stop_on_signals
from flows.sources.live import capture as record
from flows.sources.live import read_settings
from flows.sources.x import XSettings, XSourceError, XStream

__all__ = ["CaptureError", "capture", "run_capture"]


class CaptureError(SentiError):
    """The capture could not start or went wrong; the message is for the user."""


def capture(
    stream: XStream,
    out: Path,
    *,
    queries: Sequence[Query] = (),
    count: int | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Write up to ``count`` lines, for up to ``seconds``, or until ``stop``; lines written.

    Tracks ``queries`` first, then records as every live source does
    (:func:`flows.sources.live.capture`), and untracks the queries it added
    when done; always stops ``stream``. Raises :class:`~flows.sources.x.XSourceError` and
    :class:`~flows.platforms.x_rules.RuleError` from the stream, :class:`OSError` from
    the file.
    """
    before = {rule.key for rule in stream.rules() if rule.key is not None}
    added: list[str] = []
    try:
        for query in queries:
            stream.track(query)
            if query.key not in before:
                added.append(query.key)
        return record(stream, out, count=count, seconds=seconds, stop=stop, clock=clock)
    finally:
        for key in added:
            with contextlib.suppress(XSourceError):
                stream.untrack(key)
        stream.stop()


def run_capture(
    out: Path,
    *,
    queries: Sequence[Query] = (),
    count: int | None = None,
    seconds: float | None = None,
) -> int:
    """:func:`capture` with settings from ``SENTI_X_*``; Ctrl-C/SIGTERM end it cleanly.

    Raises :class:`CaptureError` for every problem the user can fix, in one line
    (``x source: ...`` when X or its settings are the problem).
    """
    try:
        stream = XStream(read_settings(XSettings, XSourceError))
    except XSourceError as exc:
        raise CaptureError(f"x source: {exc}") from None
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            return capture(stream, out, queries=queries, count=count, seconds=seconds, stop=stop)
    except (XSourceError, RuleError) as exc:
        raise CaptureError(f"x source: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise CaptureError(f"cannot write {out}: {exc.strerror or exc}") from None
