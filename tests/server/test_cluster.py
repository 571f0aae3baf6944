"""Helpers of the Bytewax cluster commands (server.cluster) that need no Redis."""

from __future__ import annotations

import socket
import threading
import time

from server.cluster import local_addresses, wait_for_listener


def test_wait_for_listener_sees_a_listening_socket_without_connecting() -> None:
    """A socket that listens is found, and no connection is made to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        assert wait_for_listener(address, timeout=5)
        try:
            server.accept()
        except TimeoutError:
            pass  # nothing connected: what the cluster's process 0 must see
        else:
            raise AssertionError("wait_for_listener connected to the socket")


def test_wait_for_listener_waits_for_a_late_listener_and_gives_up_on_none() -> None:
    """A listener that comes up later is waited for; a port nobody opens times out."""
    [late, never] = local_addresses(2)
    server = socket.socket()

    def listen_later() -> None:
        time.sleep(0.3)
        server.bind(("127.0.0.1", int(late.rsplit(":", 1)[1])))
        server.listen()

    thread = threading.Thread(target=listen_later)
    thread.start()
    try:
        started = time.monotonic()
        assert wait_for_listener(late, timeout=10)
        assert time.monotonic() - started >= 0.25
    finally:
        thread.join()
        server.close()
    started = time.monotonic()
    assert not wait_for_listener(never, timeout=0.3)
    assert time.monotonic() - started >= 0.3
