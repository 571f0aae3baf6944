"""Fan-out capacity: concurrent clients one ``senti serve`` holds, and memory per connection.

``senti serve`` runs on 127.0.0.1 with the live synthetic source at ``--rate``
posts/s. ``--processes`` client processes (``bench/clients.py``) open
``--clients`` connections in all. Memory per idle connection is the growth of
the server's ``VmRSS`` (``/proc/<pid>/status``) between before the first
connection and after the last one (idle: connected, tracking nothing), divided
by the number of connections. Then every client tracks one of ``--queries``
queries and messages flow for ``--seconds``; the figure is how many
connections are still open and received messages.

    .venv/bin/python -m bench.fanout [--clients 10000] [--processes 4] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import figure, progress, rss_kib, write_result
from bench.latency import live_queries
from bench.serving import ClientProcess, served

TARGET_CLIENTS = 10_000
TARGET_KIB = 20.0


def measure(
    clients: int, processes: int, queries: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Connect, measure RSS, track, let messages flow, count survivors."""
    tracked = live_queries(queries)
    with served(rate=rate, queries=tracked) as (server, queries_file):
        time.sleep(3)  # let the dataflow and the allocator settle
        rss_before = rss_kib(server.pid)
        started = time.perf_counter()
        share = [clients // processes + (i < clients % processes) for i in range(processes)]
        group = [ClientProcess(server.url, n, queries_file) for n in share]
        connected = [client.expect("connected") for client in group]
        connect_seconds = time.perf_counter() - started
        ok = sum(record["ok"] for record in connected)
        failed = sum(record["failed"] for record in connected)
        progress(f"{ok:,} idle connections ({failed} failed) in {connect_seconds:.1f} s")
        time.sleep(2)
        rss_idle = rss_kib(server.pid)
        per_conn = (rss_idle - rss_before) / ok if ok else float("nan")
        progress(f"RSS {rss_before:,} -> {rss_idle:,} KiB: {per_conn:.1f} KiB/connection")
        for client in group:
            client.send("track")
        for client in group:
            client.expect("tracking")
            client.send("measure")
            client.expect("measuring")
        progress(f"all tracking {len(tracked)} queries; messages flow for {seconds:.0f} s")
        time.sleep(seconds)
        metrics = server.metrics()
        rss_flowing = rss_kib(server.pid)
        reports = [client.finish() for client in group]
    still_open = sum(report["open"] for report in reports)
    messages = sum(report["messages"] for report in reports)
    return {
        "clients": clients,
        "processes": processes,
        "rate": rate,
        "queries": len(tracked),
        "connected": ok,
        "failed": failed,
        "connect_seconds": connect_seconds,
        "open_after_flow": still_open,
        "server_connections_metric": metrics.get("senti_connections", 0),
        "messages": messages,
        "messages_per_s": messages / seconds,
        "messages_dropped": metrics.get("senti_messages_dropped_total", 0),
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "rss_flowing_kib": rss_flowing,
        "kib_per_idle_connection": per_conn,
        "targets": {
            "clients held with messages flowing": {
                "value": still_open,
                "target": f">= {TARGET_CLIENTS:,}",
                "met": still_open >= TARGET_CLIENTS,
            },
            "KiB per idle connection": {
                "value": per_conn,
                "target": f"<= {TARGET_KIB:.0f}",
                "met": per_conn <= TARGET_KIB,
            },
        },
    }


def main() -> None:
    """Measure, print the figures, write ``bench/results/fanout.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.processes, args.queries, args.seconds = 40, 2, 5, 2
    result = measure(args.clients, args.processes, args.queries, args.rate, args.seconds)
    figure("connections opened", result["connected"])
    figure("connections failed", result["failed"])
    figure("open after messages flowed", result["open_after_flow"])
    figure("messages received", result["messages_per_s"], "msgs/s")
    figure("server RSS idle growth", result["kib_per_idle_connection"], "KiB/connection")
    write_result("fanout", result, quick=args.quick)


if __name__ == "__main__":
    main()
