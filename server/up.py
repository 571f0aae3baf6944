"""``senti up``: the websocket server with its dataflow, plus the Streamlit dashboard.

The server runs in this process; the dashboard is a child process reading the
same store (``SENTI_STORE``) and the server's ``/metrics`` for client counts
(``SENTI_METRICS_URL``). SIGINT or SIGTERM stops both: the server closes its
clients and flushes the store, the dashboard gets SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import subprocess
import sys

from server.app import SentiServer, apply_switch_interval, raise_failure, start_server
from server.settings import ServerSettings

__all__ = ["dashboard_command", "run_up"]

logger = logging.getLogger("senti.up")


def dashboard_command(*, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line for the dashboard."""
    app = importlib.resources.files("dashboard").joinpath("app.py")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


async def run_up(settings: ServerSettings, *, dashboard_port: int = 8501) -> None:
    """Serve and show the dashboard until a signal; stop both cleanly.

    Raises :class:`~server.app.DataflowFailed` when the dataflow ends because of an error.
    """
    if settings.store is None:
        raise ValueError("senti up needs a store (--store or SENTI_STORE) for the dashboard")
    apply_switch_interval(settings)
    server = SentiServer(settings)
    await start_server(server)
    web = "https" if settings.certfile else "http"
    base = f"{web}://{settings.host}:{server.port}"
    env = os.environ | {"SENTI_STORE": settings.store, "SENTI_METRICS_URL": f"{base}/metrics"}
    dashboard = subprocess.Popen(  # noqa: S603 - our own interpreter and app
        dashboard_command(host=settings.host, port=dashboard_port), env=env
    )
    print(
        f"senti: websocket {server.url}  demo {base}/  "
        f"dashboard http://{settings.host}:{dashboard_port}/",
        flush=True,
    )
    try:
        await server.wait_stopped()
    finally:
        dashboard.terminate()
        await server.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(dashboard.wait, 10)
        if dashboard.poll() is None:
            dashboard.kill()
        logger.info("dashboard stopped", extra={"code": dashboard.returncode})
    raise_failure(server)
