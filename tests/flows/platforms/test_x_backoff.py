"""X's documented reconnect back-off: linear for network errors, exponential for HTTP and 429."""

from __future__ import annotations

import pytest

from flows.platforms.x_backoff import Backoff, BackoffPolicy, Failure


def _waits(backoff: Backoff, failure: Failure, count: int) -> list[float]:
    return [backoff.next_wait(failure) for _ in range(count)]


def test_network_errors_back_off_linearly_by_250ms_up_to_16s() -> None:
    """Consecutive network errors wait 0.25 s more each time, never more than 16 s."""
    waits = _waits(Backoff(), Failure.NETWORK, 70)
    assert waits[:4] == [0.25, 0.5, 0.75, 1.0]
    assert waits[63] == 16.0
    assert max(waits) == 16.0
    assert waits == sorted(waits)


def test_http_errors_back_off_exponentially_from_5s_to_320s() -> None:
    """Consecutive HTTP errors wait 5 s, doubling each time, capped at 320 s."""
    assert _waits(Backoff(), Failure.HTTP, 9) == [5, 10, 20, 40, 80, 160, 320, 320, 320]


def test_rate_limits_back_off_exponentially_from_one_minute() -> None:
    """Consecutive HTTP 429s wait 60 s, doubling each time, capped at 960 s."""
    assert _waits(Backoff(), Failure.RATE_LIMIT, 6) == [60, 120, 240, 480, 960, 960]


def test_each_kind_counts_its_own_failures() -> None:
    """A 429 in a run of 503s neither resets nor advances the 503 sequence."""
    backoff = Backoff()
    waits = [
        backoff.next_wait(Failure.HTTP),
        backoff.next_wait(Failure.RATE_LIMIT),
        backoff.next_wait(Failure.HTTP),
        backoff.next_wait(Failure.NETWORK),
    ]
    assert waits == [5, 60, 10, 0.25]
    assert backoff.attempts(Failure.HTTP) == 2


def test_reset_after_a_successful_connection_starts_every_kind_over() -> None:
    """After reset the next failure of any kind gets the first wait again."""
    backoff = Backoff()
    _waits(backoff, Failure.HTTP, 3)
    _waits(backoff, Failure.NETWORK, 3)
    backoff.reset()
    assert backoff.next_wait(Failure.HTTP) == 5
    assert backoff.next_wait(Failure.NETWORK) == 0.25


def test_a_very_long_outage_stays_at_the_ceiling() -> None:
    """The millionth consecutive failure still waits the ceiling, without overflow."""
    policy = BackoffPolicy()
    assert policy.wait(Failure.HTTP, 1_000_000) == 320
    assert policy.wait(Failure.NETWORK, 1_000_000) == 16


def test_custom_policy_waits_are_used() -> None:
    """A policy with other numbers (e.g. for tests) replaces the documented ones."""
    backoff = Backoff(BackoffPolicy(http_start=0.01, http_max=0.04))
    assert _waits(backoff, Failure.HTTP, 4) == [0.01, 0.02, 0.04, 0.04]


@pytest.mark.parametrize("name", ["network_step", "http_start", "rate_limit_max"])
def test_negative_or_infinite_waits_are_refused(name: str) -> None:
    """A policy with a negative or infinite wait raises ValueError naming the field."""
    with pytest.raises(ValueError, match=name):
        BackoffPolicy(**{name: -1.0})
    with pytest.raises(ValueError, match=name):
        BackoffPolicy(**{name: float("inf")})


def test_attempts_count_from_one() -> None:
    """Asking for attempt 0 is a programming error."""
    with pytest.raises(ValueError, match="from 1"):
        BackoffPolicy().wait(Failure.NETWORK, 0)
