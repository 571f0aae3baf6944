"""How long to wait before reconnecting to the X filtered stream (pure).

X documents three reconnect back-offs for its streams, one per kind of failure:

* **Network errors** (TCP/TLS errors, a dropped connection, a stall): back off
  *linearly*, 250 ms more each attempt, up to 16 s.
* **HTTP errors** (a non-200 status such as 503): back off *exponentially*,
  starting at 5 s and doubling each attempt, up to 320 s.
* **HTTP 429** (rate limited, or too many connections): back off
  *exponentially*, starting at 1 minute and doubling each attempt.

Each kind keeps its own count of consecutive failures, so a 429 in the middle
of a run of 503s does not shorten the 503 waits, and :meth:`Backoff.reset`
(called once a connection is established) starts every kind over.

No clock, no sleeping: :meth:`Backoff.next_wait` only says how long to wait;
the caller sleeps (which makes the waits injectable in tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["Backoff", "BackoffPolicy", "Failure"]


class Failure(Enum):
    """Why a stream connection failed, which decides the back-off."""

    NETWORK = "network"
    """A TCP/TLS error, a connection dropped by the server, or a stall."""
    HTTP = "http"
    """An HTTP error status other than 429."""
    RATE_LIMIT = "rate-limit"
    """HTTP 429 Too Many Requests (X also uses it for too many connections)."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """The waits, in seconds; the defaults are the ones X documents."""

    # Network errors: linear
    network_step: float = 0.25
    network_max: float = 16.0

    # HTTP errors: exponential
    http_start: float = 5.0
    http_max: float = 320.0

    # HTTP 429: exponential
    rate_limit_start: float = 60.0
    rate_limit_max: float = 960.0
    """X gives no ceiling for 429; four doublings (16 min) outlast its 15-minute windows."""

    def __post_init__(self) -> None:
        for name in (
            "network_step",
            "network_max",
            "http_start",
            "http_max",
            "rate_limit_start",
            "rate_limit_max",
        ):
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value}")

    def wait(self, failure: Failure, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th consecutive ``failure`` (from 1)."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, not {attempt}")
        if failure is Failure.NETWORK:
            return min(self.network_step * attempt, self.network_max)
        if failure is Failure.HTTP:
            return _doubling(self.http_start, attempt, self.http_max)
        return _doubling(self.rate_limit_start, attempt, self.rate_limit_max)


def _doubling(start: float, attempt: int, ceiling: float) -> float:
    # Stop doubling once past the ceiling: no overflow however long the outage.
    wait = start
    for _ in range(attempt - 1):
        if wait >= ceiling:
            break
        wait *= 2
    return min(wait, ceiling)


class Backoff:
    """Counts consecutive failures of each kind and says how long to wait next.

    Not thread-safe: one stream connection loop owns it.
    """

    def __init__(self, policy: BackoffPolicy | None = None) -> None:
        self.policy = policy or BackoffPolicy()
        self._attempts = dict.fromkeys(Failure, 0)

    def next_wait(self, failure: Failure) -> float:
        """Record one more ``failure`` and return the seconds to wait before reconnecting."""
        self._attempts[failure] += 1
        return self.policy.wait(failure, self._attempts[failure])

    def reset(self) -> None:
        """A connection succeeded: the next failure of any kind starts from the first wait."""
        self._attempts = dict.fromkeys(Failure, 0)

    def attempts(self, failure: Failure) -> int:
        """Consecutive failures of this kind since the last :meth:`reset`."""
        return self._attempts[failure]
