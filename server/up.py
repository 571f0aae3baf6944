"""``senti up``: the websocket server with its dataflow, plus the Streamlit dashboard.

The server runs in this process; the dashboard is a child process reading the
same store (``SENTI_STORE``) and the server's ``/metrics`` for client counts
(``SENTI_METRICS_URL``). SIGINT or SIGTERM stops both: the server closes its
clients and flushes the store, the dashboard gets SIGTERM.

The dashboard port is checked before anything starts, and the dashboard must
be listening before the URLs are printed: a port another program holds, or a
Streamlit that exits at start, is :class:`DashboardFailed` (one line for the
user), never a printed URL that is someone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import socket
import subprocess
import sys

from flows.errors import SentiError
from server.app import SentiServer, apply_switch_interval, raise_failure, start_server
from server.settings import ServerSettings

__all__ = ["DashboardFailed", "check_port_free", "dashboard_command", "run_up"]

logger = logging.getLogger("senti.up")

_START_TIMEOUT = 120.0
"""Seconds to wait for Streamlit to listen before going on without that proof."""
_POLL = 0.2


class DashboardFailed(SentiError, ValueError):
    """The dashboard cannot run: its port is taken, or Streamlit exited at start.

    The CLI reports it as one ``senti: error:`` line.
    """


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`DashboardFailed` unless ``host:port`` can be bound now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # The same SO_REUSEADDR as Tornado (Streamlit's server), so a port in
        # TIME_WAIT is free for both, and one in use by a listener is taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DashboardFailed(
                f"cannot start the dashboard on {host}:{port}: {exc.strerror or exc}"
                " (choose another with --dashboard-port)"
            ) from None


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def _wait_listening(dashboard: subprocess.Popen[bytes], host: str, port: int) -> None:
    """Return once the dashboard accepts connections; :class:`DashboardFailed` if it exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_TIMEOUT
    while loop.time() < deadline:
        code = dashboard.poll()
        if code is not None:
            raise DashboardFailed(
                f"the dashboard (Streamlit) exited at start with status {code} on {host}:{port}"
            )
        if await asyncio.to_thread(_listening, host, port):
            return
        await asyncio.sleep(_POLL)
    logger.warning("dashboard not listening yet", extra={"port": port, "waited": _START_TIMEOUT})


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
        "--logger.level",
        "warning",
    ]


async def run_up(settings: ServerSettings, *, dashboard_port: int = 8501) -> None:
    """Serve and show the dashboard until a signal; stop both cleanly.

    Raises :class:`~server.app.DataflowFailed` when the dataflow ends because of an error,
    :class:`DashboardFailed` when the dashboard port is taken or Streamlit exits at start.
    """
    if settings.store is None:
        raise ValueError("senti up needs a store (--store or SENTI_STORE) for the dashboard")
    check_port_free(settings.host, dashboard_port)
    apply_switch_interval(settings)
    server = SentiServer(settings)
    await start_server(server)
    web = "https" if settings.certfile else "http"
    base = f"{web}://{settings.host}:{server.port}"
    env = os.environ | {"SENTI_STORE": settings.store, "SENTI_METRICS_URL": f"{base}/metrics"}
    # Streamlit's greeting repeats the banner's URL: stdout carries only senti's banner.
    dashboard = subprocess.Popen(  # noqa: S603 - our own interpreter and app
        dashboard_command(host=settings.host, port=dashboard_port),
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        await _wait_listening(dashboard, settings.host, dashboard_port)
    except BaseException:
        dashboard.kill()
        await asyncio.to_thread(dashboard.wait)
        await server.close()
        raise
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
