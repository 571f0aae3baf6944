"""Hostile sources: a stream with a share of broken events, through a real ``senti serve``.

For each live source, ``--events`` events are pushed, about ``--bad`` of them broken by
the mutations of ``tests/mutations.py`` (any field of another type, missing or unknown;
truncated JSON, bytes that are not UTF-8, lone surrogates, deep nesting):

* **x**: ``senti serve --source x`` against the fake X API (``tests/fakes/x_api.py``);
* **bluesky**: ``senti serve --source bluesky`` against the fake Jetstream
  (``tests/fakes/jetstream.py``), text and binary frames;
* **redis**: subscription events written to a real ``redis-server``'s events stream,
  read by :class:`~flows.sources.redis_subscriptions.RedisSubscriptionSource` in a
  dataflow with a store, in this process (``senti dataflow`` has no store).

``senti serve`` runs as a subprocess with a SQLite store, and a websocket client
tracks ``hostile``, a word every good post has. Each broken event is kept only if
the pure parsers (the oracle) reject it, so what the system must do is known
exactly: every good post delivered to the client once and stored once, every
broken one counted on ``/metrics`` (``senti_source_rejected_total``, by code) and
kept in the store's ``rejected`` table, the server alive throughout and exiting 0
on SIGTERM.

    .venv/bin/python -m bench.hostile_sources [--events 100000] [--bad 0.3]
                                              [--sources x,bluesky,redis] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from bench.common import ROOT, figure, progress, write_result
from bench.serving import free_port
from flows.model import Line, Rejected
from flows.platforms.bluesky import Skipped, map_message
from flows.platforms.x import parse_line
from flows.platforms.x_wire import peek
from flows.runtime.redis_bus import BusEvent, parse_event
from flows.sources.replay import MAX_LINE_BYTES
from flows.store import StoreError, open_store
from tests.helpers.fakes.jetstream import FakeJetstream, post_event, tag_facet
from tests.helpers.fakes.x_api import FakeXApi
from tests.helpers.mutations import RandomChooser, break_encoding, mutate
from tests.helpers.xlines import x_envelope

QUERY = "hostile"
MAX_MESSAGE = 1 << 20
"""The Jetstream client's limit (``maxMessageSizeBytes``): a real instance sends nothing larger."""
STALL_SECONDS = 120.0
"""No progress for this long ends a run as failed."""

X_KINDS = {"type": ["liked", ""], "tag": ["", "senti:"]}
JETSTREAM_KINDS = {
    "kind": ["sync", "Commit", ""],
    "operation": ["merge", ""],
    "collection": ["app.bsky.feed.like"],
    "$type": ["app.bsky.embed.nope"],
}
REDIS_KINDS = {"op": ["part", "JOIN", ""]}


@dataclass
class Plan:
    """The events to push in order, and what the system must make of them."""

    events: list[tuple[bool, Any]] = field(default_factory=list)
    """``(good, payload)``: a good event's payload is its number, a bad one's its bytes."""
    good: set[str] = field(default_factory=set)
    """Ids of the good posts (or keys of the good queries)."""
    codes: Counter[str] = field(default_factory=Counter)
    """Rejections expected, by code."""
    discarded: int = 0
    """Mutations the oracle did not reject (still valid, or not one event): not pushed,
    another is drawn instead."""

    @property
    def bad(self) -> int:
        return sum(self.codes.values())


def _broken(template: Any, choose: RandomChooser, kinds: dict[str, list[str]]) -> bytes:
    value = mutate(template, choose, unknown_kinds=kinds)
    text = json.dumps(value, ensure_ascii=choose.pick((True, False)))
    raw = break_encoding(text, choose) if choose.pick((True, False)) else text
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")


def _plan(
    count: int, bad_share: float, seed: int, make_bad: Callable[[int, RandomChooser], Any]
) -> Plan:
    """``count`` events; ``make_bad(n, choose)`` returns ``(payload, code)`` or ``None``."""
    rng = random.Random(seed)
    choose = RandomChooser(rng)
    plan = Plan()
    n = 0
    while len(plan.events) < count:
        n += 1
        if rng.random() >= bad_share:
            plan.events.append((True, n))
            continue
        while (made := make_bad(n, choose)) is None:  # until the oracle rejects one
            plan.discarded += 1
            n += 1
        payload, code = made
        plan.events.append((False, payload))
        plan.codes[code] += 1
    return plan


def x_plan(count: int, bad_share: float, seed: int) -> Plan:
    """X lines: the oracle is the X source's own peek (ids, error messages) and parse_line."""
    ids: set[str] = set()
    created = datetime.now(UTC)

    def bad(n: int, choose: RandomChooser) -> tuple[bytes, str] | None:
        line = _broken(x_envelope(f"b{n}", f"{QUERY} post {n}", at=created), choose, X_KINDS)
        if b"\n" in line or b"\r" in line or not line.strip() or len(line) >= MAX_LINE_BYTES:
            return None  # not one line of the stream
        text = line.decode("utf-8", "surrogateescape")
        post_id, errors = peek(text)
        if (post_id is None and errors is not None) or (post_id is not None and post_id in ids):
            return None  # an X error message, or a duplicate the source drops
        result = parse_line(Line(text))
        if not isinstance(result, Rejected):
            return None
        if post_id is not None:
            ids.add(post_id)
        return line, str(result.code)

    plan = _plan(count, bad_share, seed, bad)
    plan.good = {f"g{n}" for good, n in plan.events if good}
    return plan


def jetstream_plan(count: int, bad_share: float, seed: int, base_us: int) -> Plan:
    """Jetstream messages: the oracle is map_message, and the source's origin of a rejection."""
    origins: set[str] = set()
    text = f"{QUERY} post #bench"
    facets = [tag_facet(text, "#bench")]

    def bad(n: int, choose: RandomChooser) -> tuple[bytes | str, str] | None:
        event = post_event(f"b{n}", text, time_us=base_us + n, facets=facets)
        message: bytes | str = _broken(event, choose, JETSTREAM_KINDS)
        assert isinstance(message, bytes)
        if len(message) > MAX_MESSAGE:
            return None
        with contextlib.suppress(UnicodeDecodeError):
            message = message.decode("utf-8")  # a text frame when it is UTF-8
        result = map_message(message)
        if not isinstance(result, Skipped) or result.code is None:
            return None
        origin = _jetstream_origin(message, result)
        if origin in origins:
            return None  # the source drops it as a replay of the first
        origins.add(origin)
        return message, str(result.code)

    plan = _plan(count, bad_share, seed, bad)
    plan.good = {f"at://did:plc:alice/app.bsky.feed.post/g{n}" for good, n in plan.events if good}
    return plan


def _jetstream_origin(message: str | bytes, result: Skipped) -> str:
    """The origin the Jetstream source gives a rejected event (see its _queue_rejected)."""
    if result.time_us is not None:
        return f"bluesky:{result.time_us}"
    raw = message if isinstance(message, str) else message.decode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=8)
    return f"bluesky:no-time:{digest.hexdigest()}"


def redis_plan(count: int, bad_share: float, seed: int) -> Plan:
    """Events-stream entries: good joins of new queries; the oracle is parse_event."""

    def bad(n: int, choose: RandomChooser) -> tuple[dict[bytes, bytes], str] | None:
        value = mutate({"gw": f"gw{n}", "op": "join", "key": f"topic{n}"}, choose)
        if not isinstance(value, dict) or not value:
            return None  # Redis keeps only non-empty field maps
        entry = {_redis_bytes(name): _redis_bytes(item) for name, item in value.items()}
        if choose.pick((False, False, True)):
            name = choose.pick(list(entry))
            entry[name] = entry[name][: choose.number(0, len(entry[name]))] + b"\xc3"
        result = parse_event(entry)
        if isinstance(result, BusEvent):
            return None
        return entry, str(result[0])

    plan = _plan(count, bad_share, seed, bad)
    plan.good = {f"topic{n}" for good, n in plan.events if good}
    return plan


def _redis_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


# senti serve and its client


class Client(threading.Thread):
    """A websocket client (subprotocol senti.v2) tracking one query, counting post ids."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ids: Counter[str] = Counter()
        self.tracking = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            with connect(self.url, subprotocols=["senti.v2"], max_size=None) as ws:
                ws.send(json.dumps({"type": "track", "query": QUERY}))
                for message in ws:
                    data = json.loads(message)
                    if data.get("type") == "post":
                        with self._lock:
                            self.ids[data["id"]] += 1
                        self.tracking.set()
        except Exception as exc:  # the server went away: reported by the run
            self.error = exc

    def received(self, ids: set[str]) -> tuple[int, int]:
        """How many of ``ids`` arrived, and how many arrived more than once."""
        with self._lock:
            return (
                sum(1 for i in ids if self.ids[i]),
                sum(1 for i in ids if self.ids[i] > 1),
            )


class Serve:
    """``senti serve --source S`` on 127.0.0.1 with a SQLite store, as a subprocess."""

    def __init__(self, source: str, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.store = f"sqlite:///{folder / 'senti.db'}"
        self.log = (folder / "serve.log").open("wb")
        command = [sys.executable, "-m", "server.cli", "serve", "--source", source]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--store", self.store]
        environment = {
            **os.environ,
            "SENTI_LOG_LEVEL": "WARNING",
            "SENTI_SEND_BUFFER_BYTES": str(1 << 30),
            **env,
        }
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"senti serve exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("senti serve did not become healthy") from None
                time.sleep(0.2)
        self.url = f"ws://127.0.0.1:{self.port}/track"

    def rejected(self) -> Counter[str]:
        """``senti_source_rejected_total`` by reason."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            body = r.read().decode("utf-8")
        counts: Counter[str] = Counter()
        for line in body.splitlines():
            if line.startswith("senti_source_rejected_total{"):
                labels, value = line.rsplit(" ", 1)
                counts[labels.split('reason="', 1)[1].split('"', 1)[0]] += int(float(value))
        return counts

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed after 60 s: -9)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9
        finally:
            self.log.close()


def _until(done: Callable[[], tuple[int, ...]], what: str) -> bool:
    """Poll ``done()`` (progress figures; all equal to their goals when done) until it holds
    or stops moving for :data:`STALL_SECONDS`; whether it held."""
    last: tuple[int, ...] = ()
    moved = time.monotonic()
    while True:
        figures = done()
        if figures[0] == figures[1] and figures[2] == figures[3]:
            return True
        if figures != last:
            last, moved = figures, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            progress(f"{what}: no progress for {STALL_SECONDS:.0f} s at {figures}")
            return False
        time.sleep(0.25)


def _serve_run(
    name: str,
    plan: Plan,
    env: dict[str, str],
    probe: Callable[[int], None],
    push: Callable[[list[tuple[bool, Any]]], None],
) -> dict[str, Any]:
    """Start the server, track, push ``plan``, wait for every outcome, stop, check the store."""
    with tempfile.TemporaryDirectory(prefix=f"senti-hostile-{name}-") as tmp:
        server = Serve(name, Path(tmp), env)
        client = Client(server.url)
        client.start()
        for n in range(10_000):  # until the dataflow knows the query
            probe(n)
            if client.tracking.wait(0.1):
                break
        progress(f"{name}: tracking; pushing {len(plan.events):,} events ({plan.bad:,} bad)")
        started = time.perf_counter()
        chunk = 1000
        for at in range(0, len(plan.events), chunk):
            push(plan.events[at : at + chunk])
        pushed = time.perf_counter() - started

        def figures() -> tuple[int, ...]:
            delivered, _ = client.received(plan.good)
            return delivered, len(plan.good), sum(server.rejected().values()), plan.bad

        complete = _until(figures, name)
        seconds = time.perf_counter() - started
        alive = server.process.poll() is None
        by_code = server.rejected()
        delivered, twice = client.received(plan.good)
        status = server.stop()
        client.join(10)
        with open_store(server.store, readonly=True) as store:
            stored = {row[0] for row in store.select("SELECT id FROM posts")}
            rejected_rows = store.select("SELECT origin FROM rejected")
        log = (Path(tmp) / "serve.log").read_text("utf-8", "replace")
        crashed = "panicked" in log
        if status != 0 or crashed:
            progress(f"{name}: senti serve exited with {status}; its log ends:\n{log[-3000:]}")
    return {
        "events": len(plan.events),
        "good": len(plan.good),
        "bad": plan.bad,
        "discarded_mutations": plan.discarded,
        "push_seconds": pushed,
        "seconds": seconds,
        "events_per_s": len(plan.events) / seconds,
        "complete": complete,
        "alive_before_sigterm": alive,
        "exit_status": status,
        "panics_logged": crashed,
        "good_delivered": delivered,
        "good_delivered_twice": twice,
        "good_stored": len(plan.good & stored),
        "rejected_counted": sum(by_code.values()),
        "rejected_stored": len(rejected_rows),
        "rejected_by_reason": dict(sorted(by_code.items())),
        "expected_by_reason": dict(sorted(plan.codes.items())),
    }


def run_x(count: int, bad_share: float, seed: int) -> dict[str, Any]:
    """The X source against the fake X API."""
    plan = x_plan(count, bad_share, seed)
    with FakeXApi(keepalive=1.0) as fake:
        env = {
            "SENTI_X_BEARER_TOKEN": fake.token,
            "SENTI_X_API_BASE": fake.base_url,
            "SENTI_X_QUEUE_SIZE": str(count + 10_000),
            "SENTI_X_DEDUP_SIZE": str(count + 10_000),
        }

        def probe(n: int) -> None:
            fake.push(x_envelope(f"probe{n}", f"{QUERY} probe", at=datetime.now(UTC)), force=True)

        def push(events: list[tuple[bool, Any]]) -> None:
            now = datetime.now(UTC)
            for good, payload in events:
                if good:
                    text = f"{QUERY} post {payload} #bench"
                    fake.push(x_envelope(f"g{payload}", text, at=now), force=True)
                else:
                    fake.push_raw(payload)

        return _serve_run("x", plan, env, probe, push)


def run_bluesky(count: int, bad_share: float, seed: int) -> dict[str, Any]:
    """The Bluesky source against the fake Jetstream."""
    base_us = time.time_ns() // 1000
    plan = jetstream_plan(count, bad_share, seed, base_us)
    with FakeJetstream() as fake:
        env = {
            "SENTI_JETSTREAM_URL": fake.url,
            "SENTI_JETSTREAM_QUEUE_SIZE": str(count + 10_000),
            "SENTI_JETSTREAM_DEDUP_SIZE": str(count + 10_000),
        }

        def probe(n: int) -> None:
            now = time.time_ns() // 1000
            fake.publish(post_event(f"probe{n}", f"{QUERY} probe", time_us=now))

        def push(events: list[tuple[bool, Any]]) -> None:
            messages = []
            for good, payload in events:
                if good:
                    text = f"{QUERY} post {payload} #bench"
                    event = post_event(f"g{payload}", text, time_us=base_us + payload)
                    messages.append(json.dumps(event))
                else:
                    messages.append(payload)
            fake.publish_raw(*messages)

        return _serve_run("bluesky", plan, env, probe, push)


@contextmanager
def _redis_server(folder: Path) -> Iterator[str]:
    import redis  # noqa: PLC0415 - only this run needs it

    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.02)
    client.close()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_redis(count: int, bad_share: float, seed: int) -> dict[str, Any]:
    """Subscription events in a real Redis, read by the dataflow's source, stored."""
    import redis  # noqa: PLC0415

    from flows.dataflow import FlowSettings, build_flow  # noqa: PLC0415
    from flows.runtime.redis_bus import BusKeys, BusSnapshot  # noqa: PLC0415
    from flows.runtime.runner import FlowThread  # noqa: PLC0415
    from flows.sinks.store_sink import StoreSink  # noqa: PLC0415
    from flows.sources.control import QueueSource  # noqa: PLC0415
    from flows.sources.redis_subscriptions import RedisSubscriptionSource  # noqa: PLC0415

    plan = redis_plan(count, bad_share, seed)
    with (
        tempfile.TemporaryDirectory(prefix="senti-hostile-redis-") as tmp,
        _redis_server(Path(tmp)) as url,
    ):
        store = f"sqlite:///{Path(tmp) / 'senti.db'}"
        stop = threading.Event()
        subscriptions = RedisSubscriptionSource(url, stop=stop, snapshot=BusSnapshot("0-0", {}))
        posts: QueueSource[Line] = QueueSource(stop)
        flow = build_flow(posts, subscriptions, [StoreSink(store)], settings=FlowSettings())
        runner = FlowThread(flow)
        runner.start()
        client = redis.Redis.from_url(url)
        events = BusKeys().events
        progress(f"redis: pushing {len(plan.events):,} entries ({plan.bad:,} bad)")
        started = time.perf_counter()
        for at in range(0, len(plan.events), 1000):
            pipe = client.pipeline(transaction=False)
            for good, payload in plan.events[at : at + 1000]:
                entry = {"gw": "gw-good", "op": "join", "key": f"topic{payload}"}
                pipe.xadd(events, entry if good else payload)
            pipe.execute()
        pushed = time.perf_counter() - started

        def figures() -> tuple[int, ...]:
            try:
                with open_store(store, readonly=True) as reader:
                    queries = reader.select("SELECT count(*) FROM queries")[0][0]
                    rejected = reader.select("SELECT count(*) FROM rejected")[0][0]
            except StoreError:  # not written yet
                queries = rejected = 0
            return queries, len(plan.good), rejected, plan.bad

        complete = _until(figures, "redis")
        seconds = time.perf_counter() - started
        alive = runner.is_alive()
        stop.set()
        runner.join()
        client.close()
        with open_store(store, readonly=True) as reader:
            keys = {row[0] for row in reader.select("SELECT key FROM queries")}
            rows = reader.select("SELECT origin, reason FROM rejected")
    return {
        "events": len(plan.events),
        "good": len(plan.good),
        "bad": plan.bad,
        "discarded_mutations": plan.discarded,
        "push_seconds": pushed,
        "seconds": seconds,
        "events_per_s": len(plan.events) / seconds,
        "complete": complete,
        "alive_before_sigterm": alive,
        "exit_status": 0 if runner.error is None else 1,
        "panics_logged": runner.error is not None,
        "good_delivered": len(plan.good & keys),
        "good_delivered_twice": 0,
        "good_stored": len(plan.good & keys),
        "rejected_counted": len(rows),
        "rejected_stored": len(rows),
        "rejected_by_reason": {},
        "expected_by_reason": dict(sorted(plan.codes.items())),
    }


RUNS: dict[str, Callable[[int, float, int], dict[str, Any]]] = {
    "x": run_x,
    "bluesky": run_bluesky,
    "redis": run_redis,
}


def _ok(result: dict[str, Any]) -> bool:
    return bool(
        result["complete"]
        and result["alive_before_sigterm"]
        and result["exit_status"] == 0
        and not result["panics_logged"]
        and result["good_delivered"] == result["good_stored"] == result["good"]
        and result["good_delivered_twice"] == 0
        and result["rejected_counted"] == result["rejected_stored"] == result["bad"]
        and (
            not result["rejected_by_reason"]
            or result["rejected_by_reason"] == result["expected_by_reason"]
        )
    )


def _accounted(result: dict[str, Any]) -> float:
    """The share of events with the expected outcome (0 if the server did not survive)."""
    if not (result["alive_before_sigterm"] and result["exit_status"] == 0):
        return 0.0
    good = min(result["good_delivered"], result["good_stored"]) - result["good_delivered_twice"]
    bad = min(result["rejected_counted"], result["rejected_stored"], result["bad"])
    return (good + bad) / result["events"]


def main() -> None:
    """Run each source, print the figures, write ``bench/results/hostile_sources.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per source")
    parser.add_argument("--bad", type=float, default=0.3, help="share of events broken")
    parser.add_argument("--sources", default="x,bluesky,redis", help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1,000 events, for the smoke test")
    args = parser.parse_args()
    if args.quick:
        args.events = 1000
    names = [name.strip() for name in args.sources.split(",") if name.strip()]
    if "redis" in names and shutil.which("redis-server") is None:
        progress("redis-server is not installed: the redis run is left out")
        names.remove("redis")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        progress(f"== {name}: {args.events:,} events, {args.bad:.0%} broken")
        result = RUNS[name](args.events, args.bad, args.seed)
        results[name] = result
        figure(f"{name} events/s", result["events_per_s"], "events/s")
        figure(f"{name} good delivered", f"{result['good_delivered']:,} of {result['good']:,}")
        figure(f"{name} good delivered twice", result["good_delivered_twice"])
        figure(f"{name} good stored", f"{result['good_stored']:,} of {result['good']:,}")
        figure(f"{name} rejected", f"{result['rejected_counted']:,} of {result['bad']:,}")
        figure(f"{name} rejected stored", f"{result['rejected_stored']:,}")
        reasons = result["rejected_by_reason"] or result["expected_by_reason"]
        figure(f"{name} rejected by reason", ", ".join(f"{k} {v:,}" for k, v in reasons.items()))
        figure(f"{name} crashes", 0 if result["alive_before_sigterm"] else 1)
        figure(f"{name} exit status on SIGTERM", result["exit_status"])
    targets = {
        f"{name}: events accounted for (0 crashes, good once, bad counted)": {
            "value": _accounted(result),
            "target": "1.00 (all)",
            "met": _ok(result),
        }
        for name, result in results.items()
    }
    write_result(
        "hostile_sources",
        {"events": args.events, "bad_share": args.bad, "runs": results, "targets": targets},
        quick=args.quick,
    )
    if not all(_ok(result) for result in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
