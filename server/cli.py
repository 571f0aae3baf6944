"""The ``senti`` command line: the entry point, composing flow and server commands.

Subcommands::

    senti analyze [--thresholds FILE]                 UTF-8 texts on stdin -> JSON lines on stdout
    senti generate --count N [--seed S] --out FILE    a synthetic stream file (X API v2 lines)
    senti replay FILE... --track QUERY ...            run the dataflow over recorded files
    senti run [--source synthetic] --track QUERY ...  run the dataflow live, printing windows
    senti serve [--source synthetic|replay] ...       websocket server + dataflow + store
    senti up [serve options] [--dashboard-port 8501]  serve, plus the Streamlit dashboard
    senti dataflow [-p N | -i I -a ADDRS] [-w W] ...  one process of a dataflow cluster (Redis)
    senti gateway [--port P] [--redis-url URL] ...    a websocket gateway fed through Redis
    senti scale                                      Redis + 2 dataflow processes + 2 gateways
    senti evaluate --texts FILE --labels FILE         metrics against TweetEval-style labels
    senti tune --texts FILE --labels FILE --out FILE  choose thresholds, write their config
    senti capture --out FILE [--track QUERY ...]      record the live X stream for replay

Exit status: 0 on success, 1 when the input or environment is unusable (missing
file, bad store URL, invalid query) or a source cannot go on (Jetstream or X
refusing for good, an unreadable file): a one-line ``senti: error: ...`` on
stderr, naming the source (``senti: error: bluesky source: ...``); 2 for a
command line argparse cannot parse, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flows.cli import (
    CliError,
    add_flow_commands,
    add_recovery_options,
    add_scored_langs_option,
    add_thresholds_option,
    add_tool_commands,
    positive_float,
    positive_int,
    run_command,
    thresholds_option,
)
from flows.runtime.recovery import RecoveryError, prepare_recovery_dir
from flows.sinks.store_sink import check_store_url
from flows.sources.registry import SourceSettingsError, check_source, source_names
from flows.store import StoreError
from server.app import DataflowFailed, run_server
from server.cluster import add_cluster_commands
from server.logs import configure_logging
from server.settings import ServerSettings
from server.up import run_up

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``senti`` console script."""
    parser = _parser()
    rest, tracked = _split_tracks(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(rest)
    if tracked and getattr(args, "track", None):
        leftover = list(args.track)
        leftover.remove(tracked[0])
        args.track = tracked + leftover
    code = run_command(args)
    if argv is None and code == 0 and getattr(args, "track", None):
        # A flow run ended well and the process ends here: the OS frees its
        # memory, while a collection at exit would walk what the run left in
        # reference cycles (the flow and its queries: over half a second for 100,000).
        gc.freeze()
    return code


def _split_tracks(argv: list[str]) -> tuple[list[str], list[str]]:
    """Take the ``--track QUERY`` options out of ``argv`` but the first; return both.

    argparse's time grows with the square of the number of options, which
    10,000 ``--track`` options make seconds. The first one stays so that
    argparse still checks that the command takes ``--track`` and has one;
    the values, in their order, are the second list. A value that looks like
    an option, and everything after ``--``, is left to argparse.
    """
    rest: list[str] = []
    tracked: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest += argv[index:]
            break
        value: str | None = None
        step = 1
        if arg == "--track" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            value, step = argv[index + 1], 2
        elif arg.startswith("--track="):
            value = arg.removeprefix("--track=")
        if value is None:
            rest.append(arg)
        else:
            if not tracked:
                rest += argv[index : index + step]
            tracked.append(value)
        index += step
    return rest, tracked


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="senti", description="Stream posts, score their sentiment, route them per query."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    add_flow_commands(commands)  # analyze, generate, replay, run
    _add_serve_commands(commands)  # serve, up
    add_cluster_commands(commands)  # dataflow, gateway, scale: docs/deploy.md
    add_tool_commands(commands)  # evaluate, tune, capture
    return parser


def _add_serve_commands(commands: Any) -> None:
    serve_cmd = commands.add_parser(
        "serve",
        help="serve the dataflow's output over websockets",
        description="Flags override SENTI_* environment variables and .env.",
    )
    _add_server_options(serve_cmd)
    serve_cmd.set_defaults(run=_serve)

    up = commands.add_parser(
        "up",
        help="serve, and run the Streamlit dashboard beside the server",
        description="senti serve plus the dashboard; the store defaults to data/senti.db.",
    )
    _add_server_options(up)
    up.add_argument("--dashboard-port", type=int, default=8501, help="Streamlit port")
    up.set_defaults(run=_up)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=source_names(), default=None)
    parser.add_argument("--replay", type=Path, action="append", default=None, metavar="FILE")
    parser.add_argument("--speed", type=positive_float, default=None, help="replay pace")
    parser.add_argument("--rate", type=positive_float, default=None, help="synthetic posts/s")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--store", default=None, metavar="URL")
    parser.add_argument("--origins", default=None, help="comma-separated allowed origins")
    parser.add_argument("--dev", action="store_true", default=None, help="allow localhost pages")
    parser.add_argument("--certfile", type=Path, default=None)
    parser.add_argument("--keyfile", type=Path, default=None)
    parser.add_argument("--window", type=positive_float, default=None, help="window seconds")
    parser.add_argument("--workers", type=positive_int, default=None)
    add_thresholds_option(parser)
    add_scored_langs_option(parser, default=None)
    add_recovery_options(parser, defaults=False)


def _server_settings(args: argparse.Namespace, **defaults: Any) -> ServerSettings:
    """Settings from defaults, .env, SENTI_* and the flags (last wins), checked up front."""
    names = (
        "source", "replay", "speed", "rate", "host", "port", "store", "origins", "dev",
        "certfile", "keyfile", "window", "workers", "thresholds", "scored_langs",
        "recovery_dir", "snapshot_interval",
    )  # fmt: skip
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        settings = ServerSettings(**overrides)
        if defaults:
            unset = {k: v for k, v in defaults.items() if getattr(settings, k) is None}
            settings = ServerSettings(**(overrides | unset))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise CliError(problems) from None
    for path in settings.replay:
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    if settings.recovery_dir is not None:
        try:
            prepare_recovery_dir(settings.recovery_dir)
        except RecoveryError as exc:
            raise CliError(str(exc)) from None
    thresholds_option(settings.thresholds)
    try:
        check_source(settings.source)
    except SourceSettingsError as exc:
        raise CliError(str(exc)) from None
    if settings.store is not None:
        try:
            check_store_url(settings.store)
        except StoreError as exc:
            raise CliError(f"unusable store {settings.store!r}: {exc}") from None
    return settings


def _run_async(settings: ServerSettings, main: Coroutine[Any, Any, None]) -> int:
    configure_logging()
    try:
        asyncio.run(main)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except DataflowFailed as exc:
        raise CliError(str(exc)) from None
    except StoreError as exc:  # reading where to resume from
        raise CliError(" ".join(str(exc).split())) from None
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = _server_settings(args)
    return _run_async(settings, run_server(settings))


def _up(args: argparse.Namespace) -> int:
    if args.store is None and "SENTI_STORE" not in os.environ:
        Path("data").mkdir(exist_ok=True)
    settings = _server_settings(args, store="sqlite:///data/senti.db")
    return _run_async(settings, run_up(settings, dashboard_port=args.dashboard_port))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
