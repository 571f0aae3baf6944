"""Shared fixtures: run every dataflow test under one worker and under two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import cluster_main, run_main

EntryPoint = Callable[[Dataflow], None]


def _two_workers(flow: Dataflow) -> None:
    cluster_main(flow, [], 0, worker_count_per_proc=2)


@pytest.fixture(params=["run_main", "cluster_main-2workers"])
def entry_point(request: Any) -> EntryPoint:
    """Run a flow in the current thread, or on two worker threads exchanging items."""
    return run_main if request.param == "run_main" else _two_workers
