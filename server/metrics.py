"""Server counters and their Prometheus text exposition (no I/O)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Metrics", "ReadCount"]


class ReadCount:
    """Posts the dataflow has read, counted as it parses them, and whether every partition
    of its post source has ended. Thread-safe: the dataflow's workers add, the event loop
    reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines = 0
        self._open = 0
        self._built = 0

    def opened(self) -> None:
        """A partition of the source was built."""
        with self._lock:
            self._open += 1
            self._built += 1

    def add(self, posts: int) -> None:
        """The dataflow parsed ``posts`` more posts."""
        with self._lock:
            self._lines += posts

    def ended(self) -> None:
        """A partition has no more lines."""
        with self._lock:
            self._open -= 1

    @property
    def posts(self) -> int:
        """Posts read so far."""
        with self._lock:
            return self._lines

    @property
    def finished(self) -> bool:
        """Whether the source had partitions and all of them have ended."""
        with self._lock:
            return self._built > 0 and self._open <= 0

    def state(self) -> tuple[int, bool]:
        """``(posts, finished)``, as a dataflow process reports them."""
        with self._lock:
            return self._lines, self._built > 0 and self._open <= 0

    def set_state(self, posts: int, *, finished: bool) -> None:
        """Take the state a dataflow process reported (:meth:`state`)."""
        with self._lock:
            self._lines = max(self._lines, posts)
            self._built = 1
            self._open = 0 if finished else 1


@dataclass
class Metrics:
    """What ``/metrics`` reports. Gauges are read from the hub when rendering."""

    posts: int = 0
    """Posts counted in closed global windows: ``senti_posts_total`` when the dataflow
    runs elsewhere (a gateway) and :attr:`read` is ``None``."""
    read: ReadCount | None = None
    """Posts the server's own dataflow has read, counted as read (:meth:`posts_read`)."""
    posts_per_second: float = 0.0
    """Rate over the newest closed global window."""
    matches: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    track_changes: int = 0
    protocol_errors: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Refused handshakes by reason (origin, token, full, per-ip, path)."""
    source: str = ""
    """The post source's name, the ``source`` label of :attr:`source_rejected`."""
    source_rejected: Counter[str] = field(default_factory=Counter)
    """Rejected input (lines, events) by :class:`~flows.model.RejectCode`."""

    def posts_read(self) -> int:
        """``senti_posts_total``: posts (retweets included, rejected lines not) the dataflow
        has read: with :attr:`read`, counted as they are parsed, whatever the windows;
        without it (a gateway), :attr:`posts`."""
        return self.posts if self.read is None else self.read.posts

    def render(
        self,
        *,
        connections: int,
        queries: int,
        flow_running: bool,
        clients: Mapping[str, int] | None = None,
        source: Mapping[str, int] | None = None,
    ) -> str:
        """Prometheus text format 0.0.4.

        ``clients`` maps query keys to their connections; ``source`` adds the
        post source's own metrics (name to value, ``_total`` names are counters).
        """
        lines = [
            _metric("senti_connections", "gauge", "Open websocket connections.", connections),
            _metric("senti_queries", "gauge", "Distinct tracked queries.", queries),
            _metric("senti_dataflow_up", "gauge", "1 while the dataflow runs.", int(flow_running)),
            _metric(
                "senti_posts_total", "counter", "Posts read by the dataflow.", self.posts_read()
            ),
            "# HELP senti_posts_per_second Posts/s in the newest closed window.\n"
            "# TYPE senti_posts_per_second gauge\n"
            f"senti_posts_per_second {self.posts_per_second:.3f}",
            _metric("senti_matches_total", "counter", "Posts routed to a query.", self.matches),
            _metric("senti_messages_sent_total", "counter", "Messages sent.", self.messages_sent),
            _metric(
                "senti_messages_dropped_total",
                "counter",
                "Messages dropped for clients over their send buffer.",
                self.messages_dropped,
            ),
            _metric(
                "senti_track_changes_total",
                "counter",
                "Track/untrack requests.",
                self.track_changes,
            ),
            _metric(
                "senti_protocol_errors_total", "counter", "Error replies.", self.protocol_errors
            ),
            "# HELP senti_handshakes_rejected_total Refused connection attempts by reason.",
            "# TYPE senti_handshakes_rejected_total counter",
        ]
        lines += [
            f'senti_handshakes_rejected_total{{reason="{reason}"}} {count}'
            for reason, count in sorted(self.rejected.items())
        ]
        lines += [
            "# HELP senti_source_rejected_total Source input rejected as unusable, by reason.",
            "# TYPE senti_source_rejected_total counter",
        ]
        name = _label(self.source)
        lines += [
            f'senti_source_rejected_total{{source="{name}",reason="{_label(code)}"}} {count}'
            for code, count in sorted(self.source_rejected.items())
        ]
        lines += [
            "# HELP senti_query_clients Connections tracking each query.",
            "# TYPE senti_query_clients gauge",
        ]
        lines += [
            f'senti_query_clients{{query="{_label(key)}"}} {count}'
            for key, count in sorted((clients or {}).items())
        ]
        for name, value in (source or {}).items():
            kind = "gauge" if not name.endswith("_total") else "counter"
            lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(name: str, kind: str, help_text: str, value: int) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} {value}"
