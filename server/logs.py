"""Structured logs: one JSON object per line on stderr, extra fields included.

The websockets library logs through an adapter that attaches its connection
object (``extra={"websocket": conn}``); a record carrying one gets a ``peer``
field instead, the client's ``host:port`` (``[::1]:52100`` for IPv6), so
``connection open`` and ``connection closed`` say who.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "peer_address"]

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "event", ...extra}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD:
                continue
            if key == "websocket":
                entry["peer"] = peer_address(value)
            else:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def peer_address(conn: object) -> str:
    """``host:port`` of a websockets connection's other end, ``?`` when unknown."""
    try:
        address = getattr(conn, "remote_address", None)
    except Exception:  # a closed transport may refuse
        address = None
    if (
        not isinstance(address, tuple) or len(address) < 2
    ):  # (host, port) or (host, port, flow, scope)
        return "?"
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def configure_logging(level: int = logging.INFO) -> None:
    """Send senti's logs to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("senti")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
