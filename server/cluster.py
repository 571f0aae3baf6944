"""The scaled-out commands: ``senti dataflow``, ``senti gateway`` and ``senti scale``.

* ``senti dataflow`` runs the dataflow as process ``-i`` of a Bytewax cluster
  (``-a host:port;host:port``, ``-w`` workers each), or ``-p N`` local processes
  (it runs process 0 and starts 1..N-1 as children). It reads the tracked
  queries from Redis and publishes every message to Redis (docs/deploy.md).
* ``senti gateway`` is a websocket server fed through Redis (:mod:`server.gateway`).
* ``senti scale`` starts Redis, a 2-process dataflow and 2 gateways on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import redis
from pydantic import ValidationError

from flows.analysis.languages import DEFAULT_SCORED_LANGUAGES, parse_scored_languages
from flows.assemble import assemble_flow
from flows.cli import CliError, scored_langs, thresholds_option
from flows.dataflow import FlowSettings, window_wait
from flows.runtime.redis_bus import BusKeys, BusSnapshot
from flows.runtime.runner import settled_heap, stop_on_signals
from flows.sinks.redis_fanout import RedisFanoutSink
from flows.sources.partitioned import PartitionedSyntheticSource
from flows.sources.redis_subscriptions import CountedEnd, RedisSubscriptionSource, take_snapshot
from flows.sources.replay import ReplaySource
from server.gateway import GatewaySettings, run_gateway
from server.logs import configure_logging

__all__ = ["add_cluster_commands", "local_addresses", "wait_for_listener"]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def _fail(message: str) -> NoReturn:
    raise CliError(message)


def _redis_url(value: str | None) -> str:
    return value or os.environ.get("SENTI_REDIS_URL") or DEFAULT_REDIS_URL


def add_cluster_commands(commands: Any) -> None:
    """Add ``dataflow``, ``gateway`` and ``scale`` to the ``senti`` subcommands."""
    dataflow = commands.add_parser(
        "dataflow",
        help="run the dataflow as one process of a Bytewax cluster, publishing to Redis",
        description="Tracked queries come from the gateways through Redis (docs/deploy.md).",
    )
    _add_dataflow_options(dataflow)
    dataflow.set_defaults(run=_dataflow)

    gateway = commands.add_parser(
        "gateway",
        help="a stateless websocket gateway fed by the dataflow through Redis",
        description="Flags override SENTI_* environment variables and .env.",
    )
    _add_gateway_options(gateway)
    gateway.set_defaults(run=_gateway)

    scale = commands.add_parser(
        "scale",
        help="start Redis, a 2-process dataflow and 2 gateways on this machine",
        description="A local rehearsal of the scaled-out deployment (docs/deploy.md).",
    )
    scale.add_argument("--redis-port", type=int, default=6379, help="redis-server port")
    scale.add_argument("--port", type=int, default=8001, help="first gateway's port")
    scale.add_argument("--gateways", type=int, default=2, help="gateways to start")
    scale.add_argument("-p", "--processes", type=int, default=2, help="dataflow processes")
    scale.add_argument("--rate", type=float, default=50.0, help="synthetic posts/s")
    scale.add_argument("--dev", action="store_true", help="allow localhost pages")
    scale.set_defaults(run=_scale)


def _add_bus_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url", default=None, help=f"default SENTI_REDIS_URL or {DEFAULT_REDIS_URL}"
    )
    parser.add_argument("--redis-prefix", default=None, help="key prefix (default senti)")


def _add_dataflow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["synthetic", "replay"], default="synthetic")
    parser.add_argument("--replay", type=Path, action="append", default=[], metavar="FILE",
                        help="replay file (repeatable; one partition each)")  # fmt: skip
    parser.add_argument("--speed", type=float, default=None, help="replay pace factor")
    parser.add_argument("--rate", type=float, default=50.0, help="synthetic posts/s")
    parser.add_argument("--count", type=int, default=None, help="synthetic: stop after N posts")
    parser.add_argument("--seed", type=int, default=0, help="synthetic seed")
    parser.add_argument("--partitions", type=int, default=None,
                        help="synthetic partitions (default: processes x workers)")  # fmt: skip
    parser.add_argument("--window", type=float, default=60.0, help="window seconds")
    parser.add_argument("--wait", type=float, default=None, help="window wait (30 replay, 5 live)")
    parser.add_argument("--thresholds", type=Path, default=None, help="thresholds TOML")
    parser.add_argument("--scored-langs", type=scored_langs, default=DEFAULT_SCORED_LANGUAGES,
                        metavar="LANGS", help="languages VADER scores ('*': all)")  # fmt: skip
    parser.add_argument("--gateway-ttl", type=float, default=6.0,
                        help="reap gateways silent this long (3 x their heartbeat)")  # fmt: skip
    _add_bus_options(parser)
    cluster = parser.add_argument_group("cluster", "-p N locally, or -i/-a per machine")
    cluster.add_argument("-w", "--workers", type=int, default=1, help="workers per process")
    cluster.add_argument("-p", "--processes", type=int, default=1, help="local processes")
    cluster.add_argument("-i", "--process-id", type=int, default=None, help="this process")
    cluster.add_argument("-a", "--addresses", default=None, help='"host:port;host:port;..."')
    cluster.add_argument(
        "--run-id", default=None, help="same on every process: end when the input ends"
    )
    cluster.add_argument("--snapshot-file", type=Path, default=None, help=argparse.SUPPRESS)


def _add_gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--origins", default=None, help="comma-separated allowed origins")
    parser.add_argument("--dev", action="store_true", default=None, help="allow localhost pages")
    parser.add_argument("--certfile", type=Path, default=None)
    parser.add_argument("--keyfile", type=Path, default=None)
    parser.add_argument("--gateway-id", default=None, help="stable id (default host-pid-random)")
    parser.add_argument("--heartbeat", type=float, default=None, help="seconds between beats")
    _add_bus_options(parser)


# senti dataflow


def local_addresses(processes: int) -> list[str]:
    """``127.0.0.1:port`` for ``processes`` free local ports."""
    ports: list[int] = []
    sockets = []
    for _ in range(processes):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return [f"127.0.0.1:{port}" for port in ports]


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
_LISTEN = "0A"
"""TCP state ``LISTEN`` in ``/proc/net/tcp``."""


def _listening_ports() -> set[int] | None:
    """Local TCP ports with a listening socket (IPv4 and IPv6); ``None`` without ``/proc``."""
    ports: set[int] = set()
    found = False
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports if found else None


def wait_for_listener(address: str, *, timeout: float = 30.0) -> bool:
    """Wait until something on this machine listens on the port of ``host:port``.

    Looks in ``/proc/net`` rather than connecting: a probe connection would be
    taken by timely for a peer. Process ``i > 0`` of a local cluster waits so for
    process 0, whose first refused connection timely would retry only a second
    later. Returns whether it listens; ``False`` at once where ``/proc`` is absent.
    """
    port = int(address.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while (ports := _listening_ports()) is not None:
        if port in ports:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return False


def _dataflow(args: argparse.Namespace) -> int:  # noqa: PLR0912, PLR0915 - one linear recipe
    """Run one process of the cluster (and, with ``-p``, start the others)."""
    if args.processes < 1 or args.workers < 1:
        _fail("--processes and --workers must be at least 1")
    if args.processes > 1 and (args.process_id is not None or args.addresses):
        _fail("use either -p N (local processes) or -i/-a (one process of a cluster)")
    if (args.process_id is None) != (args.addresses is None):
        _fail("-i/--process-id and -a/--addresses go together")
    if args.source == "replay":
        if not args.replay:
            _fail("--source replay needs --replay FILE")
        for path in args.replay:
            if not path.is_file():
                _fail(f"no such file: {path}")
    thresholds = thresholds_option(args.thresholds)
    url = _redis_url(args.redis_url)
    keys = BusKeys(args.redis_prefix) if args.redis_prefix else BusKeys()
    finite = args.source == "replay" or args.count is not None

    addresses: list[str] | None = args.addresses.split(";") if args.addresses else None
    process_id: int | None = args.process_id
    run_id: str | None = args.run_id
    if args.processes > 1:
        addresses = local_addresses(args.processes)
        process_id = 0
        run_id = run_id or (uuid.uuid4().hex if finite else None)
    elif addresses is None and finite:
        run_id = run_id or uuid.uuid4().hex
    processes = len(addresses) if addresses else 1

    if args.snapshot_file is not None:
        snapshot = BusSnapshot.from_json(args.snapshot_file.read_text("utf-8"))
    else:
        try:
            with redis.Redis.from_url(url) as client:
                snapshot = take_snapshot(client, keys)
        except redis.RedisError as exc:
            _fail(f"cannot use Redis at {url}: {exc}")

    stop = threading.Event()
    total_workers = processes * args.workers
    live = args.source != "replay"
    wait = window_wait(args.wait, live=live)
    if args.source == "replay":
        posts: Any = ReplaySource(list(args.replay), speed=args.speed, max_span=wait / 2)
    else:
        posts = PartitionedSyntheticSource(
            partitions=args.partitions or total_workers,
            count=args.count,
            seed=args.seed,
            rate=args.rate,
        )
    parts = len(posts.list_parts())
    if run_id is not None:
        posts = CountedEnd(posts, url, run_id, prefix=args.redis_prefix)
    settings = FlowSettings(
        thresholds=thresholds,
        languages=parse_scored_languages(args.scored_langs),
        queries=snapshot.tracked().active(),
        lanes=total_workers,
        window=timedelta(seconds=args.window),
        wait=wait,
        live=live,
    )
    subscriptions = RedisSubscriptionSource(
        url,
        stop=stop,
        prefix=args.redis_prefix,
        snapshot=snapshot,
        run_id=run_id,
        parts=parts,
        gateway_ttl=args.gateway_ttl,
    )
    flow = assemble_flow(
        posts,
        subscriptions=subscriptions,
        sinks=[RedisFanoutSink(url, prefix=args.redis_prefix)],
        settings=settings,
        stop=stop,
    )

    children: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as cleanup:
        if args.processes > 1:
            assert addresses is not None  # noqa: S101
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="senti-")))
            snap = folder / "snapshot.json"
            snap.write_text(snapshot.to_json(), "utf-8")
            for child in range(1, args.processes):
                argv = _child_argv(args, child, addresses, run_id, snap)
                children.append(subprocess.Popen(argv))  # noqa: S603 - our own CLI
            cleanup.callback(_stop_children, children)
        print(
            f"senti: dataflow process {process_id or 0} of {processes} "
            f"({args.workers} workers each) publishing to {keys.prefix}:q:* ",
            flush=True,
        )
        return _run_process(flow, stop, args.workers, process_id, addresses, children)


def _run_process(  # noqa: PLR0917 - private helper of _dataflow
    flow: Any,
    stop: threading.Event,
    workers: int,
    process_id: int | None,
    addresses: list[str] | None,
    children: Sequence[subprocess.Popen[bytes]],
) -> int:
    from bytewax.run import cli_main  # noqa: PLC0415 - heavy, only here

    error: list[BaseException] = []

    def run() -> None:
        try:
            with settled_heap():
                cli_main(  # type: ignore[no-untyped-call]
                    flow,
                    workers_per_process=workers,
                    process_id=process_id,
                    addresses=addresses,
                    epoch_interval=timedelta(seconds=10),
                )
        except BaseException as exc:  # reported below
            error.append(exc)

    if process_id and addresses and addresses[0].rsplit(":", 1)[0] in _LOCAL_HOSTS:
        wait_for_listener(addresses[0])  # process 0 of a local cluster; else timely retries
    thread = threading.Thread(target=run, name="senti-dataflow", daemon=True)
    forwarded = False
    with stop_on_signals(stop):
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.2)
            if any(child.poll() not in (None, 0) for child in children):
                stop.set()  # a peer died: the cluster cannot go on
                break
            if stop.is_set() and not forwarded:
                forwarded = True  # the children end their inputs too
                for child in children:
                    if child.poll() is None:
                        child.send_signal(signal.SIGTERM)
    failed = [child.args for child in children if child.poll() not in (None, 0)]
    if error:
        _fail(f"dataflow failed: {error[0]}")
    if failed:
        _fail("a dataflow process failed")
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=30)
    return 130 if stop.is_set() else 0


def _child_argv(
    args: argparse.Namespace, process_id: int, addresses: list[str], run_id: str | None, snap: Path
) -> list[str]:
    argv = [sys.executable, "-m", "server.cli", "dataflow", "--source", args.source]
    for path in args.replay:
        argv += ["--replay", str(path)]
    options = {
        "--speed": args.speed, "--rate": args.rate, "--count": args.count, "--seed": args.seed,
        "--partitions": args.partitions or len(addresses) * args.workers,
        "--window": args.window, "--wait": args.wait,
        "--thresholds": args.thresholds, "--gateway-ttl": args.gateway_ttl,
        "--scored-langs": args.scored_langs,
        "--redis-url": _redis_url(args.redis_url), "--redis-prefix": args.redis_prefix,
        "--workers": args.workers, "--run-id": run_id,
    }  # fmt: skip
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    return [*argv, "-i", str(process_id), "-a", ";".join(addresses), "--snapshot-file", str(snap)]


def _stop_children(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        if child.poll() is None:
            child.kill()


# senti gateway


def _gateway(args: argparse.Namespace) -> int:
    names = ("host", "port", "origins", "dev", "certfile", "keyfile", "gateway_id", "heartbeat",
             "redis_url", "redis_prefix")  # fmt: skip
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        settings = GatewaySettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        _fail(problems)
    configure_logging()
    try:
        asyncio.run(run_gateway(settings))
    except redis.RedisError as exc:
        _fail(f"cannot use Redis at {settings.redis_url}: {exc}")
    except OSError as exc:
        _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    return 0


# senti scale


def _scale(args: argparse.Namespace) -> int:
    """Redis, ``senti dataflow -p N`` and gateways on consecutive ports, until Ctrl-C."""
    server = shutil.which("redis-server")
    if server is None:
        _fail("senti scale needs redis-server (apt-get install redis-server)")
    url = f"redis://127.0.0.1:{args.redis_port}/0"
    me = [sys.executable, "-m", "server.cli"]
    stop = threading.Event()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="senti-redis-") as folder, stop_on_signals(stop):
        try:
            procs.append(subprocess.Popen([  # noqa: S603 - Debian's redis-server
                server, "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", folder,
            ]))  # fmt: skip
            _wait_for_redis(url, procs[0])
            dataflow = [*me, "dataflow", "-p", str(args.processes), "--rate", str(args.rate)]
            procs.append(subprocess.Popen([*dataflow, "--redis-url", url]))  # noqa: S603
            for number in range(args.gateways):
                gateway = [*me, "gateway", "--port", str(args.port + number), "--redis-url", url]
                procs.append(subprocess.Popen(gateway + (["--dev"] if args.dev else [])))  # noqa: S603
            while not stop.is_set() and all(proc.poll() is None for proc in procs):
                stop.wait(0.5)
        finally:
            _stop_children(procs[:0:-1])  # gateways, then the dataflow
            _stop_children(procs[:1])  # then Redis
    return 130 if stop.is_set() else 1


def _wait_for_redis(url: str, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(url) as client:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _fail(f"redis-server did not start on {url}")
                time.sleep(0.05)
