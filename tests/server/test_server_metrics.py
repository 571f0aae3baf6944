"""The Prometheus exposition of server/metrics.py (pure: no server, no network)."""

from __future__ import annotations

from collections import Counter

from server.metrics import Metrics


def _render(metrics: Metrics) -> str:
    return metrics.render(connections=0, queries=0, flow_running=True)


def test_rejected_source_input_is_one_counter_by_source_and_reason() -> None:
    """senti_source_rejected_total has a series per reason, labelled with the source."""
    metrics = Metrics(source="bluesky", source_rejected=Counter({"wrong-type": 2, "bad-time": 1}))
    lines = _render(metrics).splitlines()
    assert "# TYPE senti_source_rejected_total counter" in lines
    assert [line for line in lines if line.startswith("senti_source_rejected_total")] == [
        'senti_source_rejected_total{source="bluesky",reason="bad-time"} 1',
        'senti_source_rejected_total{source="bluesky",reason="wrong-type"} 2',
    ]


def test_nothing_rejected_means_no_series_but_the_counter_is_declared() -> None:
    """Before any rejection the counter is declared (HELP, TYPE) with no sample."""
    text = _render(Metrics(source="x"))
    assert "# HELP senti_source_rejected_total" in text
    assert "senti_source_rejected_total{" not in text
