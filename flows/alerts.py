"""Sentiment-shift alerts: when a query's window departs from its own recent baseline.

Pure: no I/O, no bytewax. :class:`ShiftDetector` is the mapper of a keyed
``stateful_map`` step: its state is one query's :class:`Baseline`, and for each
closed :class:`~flows.model.WindowSummary` of that query it returns the new
state and an :class:`Alert` or ``None``.

The rule, for each polarity ``p`` in (negative, positive) and each window with
``n`` scored posts (positive + negative + neutral) of which ``x`` are ``p``:

* the baseline is an exponentially weighted sum of the query's earlier
  windows: ``N <- (1 - a) * N + n`` and ``X <- (1 - a) * X + x`` with
  ``a = alpha``, so its share is ``p0 = X / N`` and its weight ``N`` (about
  ``1 / a`` windows of posts); it is updated after the window is tested;
* the window's share ``p1 = x / n`` is compared with ``p0`` by a
  two-proportion z-test with continuity correction, pooled share
  ``p = (x + X) / (n + N)``::

      z = (p1 - p0 - (1/n + 1/N) / 2) / sqrt(p * (1 - p) * (1/n + 1/N))

* an alert is raised when the query has at least ``warmup`` earlier windows,
  ``n >= min_posts``, ``p1 - p0 >= min_shift`` and ``z >= z``: only rises are
  alerted (a crisis raises the negative share, a launch the positive one);
* one alert per episode: after an alert the polarity is disarmed until a
  window's ``z`` is below ``rearm_z`` again. While an episode is open, or
  when a window is suspect (``z >= hold_z`` for either polarity, alerted or
  not), the window feeds the baseline with weight ``w = min(1, a * N / n) / 4`` (``N <-
  (1 - a * w) * N + w * n``, likewise ``X``): a quarter of the weight, and no
  more posts than an ordinary window, however much the topic trends. A short
  shift does not become the baseline, and no rebound alert follows its end; a
  lasting one becomes the baseline, slowly. A shift that builds up over two
  windows (the first one too small or too short of ``z`` to alert) is thus
  tested against the baseline from before it, not one it already dragged along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from flows.model import ALL_POSTS, WindowSummary, format_time

__all__ = ["Alert", "AlertSettings", "Baseline", "Direction", "ShiftDetector", "shift_z"]

Direction = Literal["negative", "positive"]
"""Which share rose: ``negative`` (e.g. a crisis) or ``positive`` (e.g. a launch)."""

_DIRECTIONS: tuple[Direction, ...] = ("negative", "positive")
_EPISODE_SLOWDOWN = 4
"""How much more slowly an open episode's windows feed the baseline."""


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Thresholds of the shift rule (``SENTI_ALERT_*`` settings, see docs/alerts.md)."""

    z: float = 4.0
    """z-score a window must reach: 4 keeps a steady stream silent for thousands of windows."""
    min_posts: int = 20
    """Scored posts a window needs before it can raise an alert."""
    min_shift: float = 0.10
    """Smallest rise of the share over its baseline worth an alert (0.10 = 10 points)."""
    warmup: int = 5
    """Windows a query must have seen before its baseline is trusted."""
    alpha: float = 0.1
    """Weight of the newest window in the baseline (half-life of about 6.6 windows)."""
    rearm_z: float = 1.0
    """An episode ends (and the polarity re-arms) when a window's z falls below this."""
    hold_z: float = 2.0
    """A window with a z at least this feeds the baseline slowly, as in an episode."""
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.z > 0:
            raise ValueError(f"alert z must be positive, not {self.z}")
        if self.min_posts < 1:
            raise ValueError(f"alert min_posts must be at least 1, not {self.min_posts}")
        if not 0 <= self.min_shift < 1:
            raise ValueError(f"alert min_shift must be in [0, 1), not {self.min_shift}")
        if self.warmup < 1:
            raise ValueError(f"alert warmup must be at least 1, not {self.warmup}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alert alpha must be in (0, 1], not {self.alpha}")
        if self.rearm_z > self.z:
            raise ValueError(f"alert rearm_z ({self.rearm_z}) must not exceed z ({self.z})")
        if not 0 < self.hold_z <= self.z:
            raise ValueError(f"alert hold_z must be in (0, z], not {self.hold_z}")


@dataclass(frozen=True, slots=True)
class Alert:
    """A window whose negative or positive share rose above the query's baseline."""

    query: str
    """Canonical query key."""
    start: datetime
    end: datetime
    direction: Direction
    share: float
    """The window's share of ``direction`` among its scored posts."""
    baseline: float
    """The baseline share it is compared with."""
    z: float
    count: int
    """Posts of ``direction`` in the window."""
    scored: int
    """Scored posts in the window (positive + negative + neutral)."""
    label: str | None = None
    """What the user typed for the query, when known."""

    def message(self) -> dict[str, Any]:
        """JSON-ready form, tagged ``"type": "alert"`` (docs/protocol.md)."""
        return {
            "type": "alert",
            "query": self.query,
            "label": self.label if self.label is not None else self.query,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "direction": self.direction,
            "share": round(self.share, 4),
            "baseline": round(self.baseline, 4),
            "z": round(self.z, 2),
            "count": self.count,
            "scored": self.scored,
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """One query's exponentially weighted baseline and episode state."""

    windows: int = 0
    """Windows seen so far."""
    scored: float = 0.0
    """Weighted sum of scored posts ``N``."""
    counts: tuple[float, float] = (0.0, 0.0)
    """Weighted sums ``X`` of negative and positive posts."""
    armed: tuple[bool, bool] = (True, True)
    """Whether negative and positive may alert (no open episode)."""


def shift_z(count: int, scored: int, base_count: float, base_scored: float) -> float:
    """The continuity-corrected two-proportion z of ``count / scored`` over the baseline.

    Positive when the window's share is above the baseline's by more than the
    correction; 0 when either side is empty or the pooled share is 0 or 1.
    """
    if scored <= 0 or base_scored <= 0:
        return 0.0
    spread = 1 / scored + 1 / base_scored
    pooled = (count + base_count) / (scored + base_scored)
    variance = pooled * (1 - pooled) * spread
    if variance <= 0:
        return 0.0
    rise = count / scored - base_count / base_scored
    corrected = math.copysign(max(abs(rise) - spread / 2, 0.0), rise)
    return corrected / math.sqrt(variance)


@dataclass(frozen=True, slots=True)
class ShiftDetector:
    """Mapper of the ``detect_shifts`` step: ``(state, WindowSummary) -> (state, Alert | None)``.

    At most one alert per window (the larger z if both polarities qualify).
    The :data:`~flows.model.ALL_POSTS` window is not a query and is passed over.
    """

    settings: AlertSettings = field(default_factory=AlertSettings)

    def __call__(
        self, state: Baseline | None, summary: WindowSummary
    ) -> tuple[Baseline | None, Alert | None]:
        if summary.query == ALL_POSTS or not self.settings.enabled:
            return state, None
        base = state or Baseline()
        rules = self.settings
        scored = summary.positive + summary.negative + summary.neutral
        counts = (summary.negative, summary.positive)
        best: Alert | None = None
        armed = list(base.armed)
        zs = [shift_z(counts[i], scored, base.counts[i], base.scored) for i in range(2)]
        for index, direction in enumerate(_DIRECTIONS):
            z = zs[index]
            if not armed[index]:
                armed[index] = z < rules.rearm_z
                continue
            if base.windows < rules.warmup or scored < rules.min_posts:
                continue
            share = counts[index] / scored
            baseline = base.counts[index] / base.scored
            if share - baseline < rules.min_shift or z < rules.z:
                continue
            armed[index] = False
            if best is None or z > best.z:
                best = Alert(
                    query=summary.query,
                    start=summary.start,
                    end=summary.end,
                    direction=direction,
                    share=share,
                    baseline=baseline,
                    z=z,
                    count=counts[index],
                    scored=scored,
                )
        weight = 1.0
        if scored and (not all(armed) or max(zs) >= rules.hold_z):
            usual = rules.alpha * base.scored  # about one ordinary window's posts
            weight = min(1.0, usual / scored) / _EPISODE_SLOWDOWN
        keep = 1 - rules.alpha * weight
        new = replace(
            base,
            windows=base.windows + 1,
            scored=keep * base.scored + weight * scored,
            counts=(
                keep * base.counts[0] + weight * counts[0],
                keep * base.counts[1] + weight * counts[1],
            ),
            armed=(armed[0], armed[1]),
        )
        return new, best
