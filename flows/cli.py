"""The flow commands of ``senti``: the dataflow over files or a live source, and tools.

:func:`add_flow_commands` and :func:`add_tool_commands` add them to the
command line :mod:`server.cli` composes (the ``senti`` entry point, which also
adds the server commands); :func:`run_command` runs one and turns a
:class:`CliError` into one line on stderr. The option helpers
(:func:`add_thresholds_option`, :func:`positive_float`...) are shared with the
server commands so both spell their options alike.

About 600 lines: one short function per flow command and the option helpers
they share; splitting them would scatter how the commands spell options.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flows.analysis.languages import DEFAULT_SCORED_LANGUAGES, parse_scored_languages
from flows.analysis.posts import PostAnalyzer
from flows.analysis.sentiment import Thresholds, ThresholdsError, load_thresholds
from flows.assemble import assemble_flow
from flows.dataflow import FlowSettings, window_wait
from flows.errors import SentiError
from flows.model import parse_time
from flows.routing.matching import InvalidQuery, Query, parse_query
from flows.runtime.cursors import Positions, replay_key
from flows.runtime.recovery import (
    DEFAULT_SNAPSHOT_INTERVAL,
    Recovery,
    RecoveryError,
    prepare_recovery_dir,
)
from flows.runtime.resume import stored_resume, write_positions
from flows.runtime.runner import paused_gc, run_until_stopped
from flows.sinks.console import ConsoleSink
from flows.sinks.jsonl import JsonLinesSink
from flows.sinks.run_summary import RunSummary, SummarySink
from flows.sources.control import FlowStop, SourceFailed, failure_reason
from flows.sources.replay import ReplaySource
from flows.sources.synthetic import SyntheticSource, write_synthetic
from flows.store import StoreError, check_store
from flows.tuning.datasets import labelled_files
from flows.tuning.evaluation import compound_scores, describe_files, evaluate, read_labelled
from flows.tuning.thresholds import Grid, config_toml, tune_thresholds
from flows.tuning.tweeteval import TweetEvalError

__all__ = [
    "CliError",
    "add_flow_commands",
    "add_recovery_options",
    "add_scored_langs_option",
    "add_thresholds_option",
    "add_tool_commands",
    "positive_float",
    "positive_int",
    "run_command",
    "scored_langs",
    "thresholds_option",
]


class CliError(SentiError):
    """A problem with the user's input, reported as ``senti: error: ...`` and exit 1."""


def run_command(args: argparse.Namespace) -> int:
    """Run the subcommand ``args`` name; a :class:`CliError` becomes one line on stderr and 1."""
    try:
        result: int = args.run(args)
    except CliError as exc:
        print(f"senti: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("senti: interrupted", file=sys.stderr)
        return 130
    return result


def add_flow_commands(commands: Any) -> None:
    """Add ``analyze``, ``generate``, ``replay`` and ``run`` to the ``senti`` subcommands."""

    analyze = commands.add_parser("analyze", help="score texts from stdin, one per line")
    add_thresholds_option(analyze)
    analyze.set_defaults(run=_analyze)

    generate = commands.add_parser("generate", help="write a synthetic stream file")
    generate.add_argument("--count", type=positive_int, required=True, help="posts to write")
    generate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    generate.add_argument("--out", type=Path, required=True, help="file to write")
    generate.add_argument("--rate", type=positive_float, default=50.0, help="posts per second")
    generate.add_argument(
        "--start", type=_timestamp, default=None, help="created_at of the first post (ISO 8601)"
    )
    generate.set_defaults(run=_generate)

    replay = commands.add_parser("replay", help="run the dataflow over recorded stream files")
    replay.add_argument("files", type=Path, nargs="+", metavar="FILE", help="JSON-lines files")
    replay.add_argument(
        "--speed", type=positive_float, default=None, help="original pace times this factor"
    )
    _add_flow_options(replay)
    add_recovery_options(replay)
    replay.set_defaults(run=_replay)

    run = commands.add_parser("run", help="run the dataflow live on a source")
    run.add_argument("--source", choices=["synthetic"], default="synthetic")
    run.add_argument("--rate", type=positive_float, default=50.0, help="synthetic posts/s")
    run.add_argument("--count", type=positive_int, default=None, help="stop after N posts")
    run.add_argument("--seed", type=int, default=0, help="synthetic seed")
    _add_flow_options(run)
    run.set_defaults(run=_run_live)


def add_tool_commands(commands: Any) -> None:
    """Add ``evaluate``, ``tune`` and ``capture`` to the ``senti`` subcommands."""
    _add_evaluate_tune(commands)
    _add_capture(commands)


def add_recovery_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """``--recovery-dir`` and ``--snapshot-interval`` (see :mod:`flows.runtime.recovery`)."""
    parser.add_argument(
        "--recovery-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="snapshot state here and resume from it (a private directory, created 0700)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_float,
        default=DEFAULT_SNAPSHOT_INTERVAL.total_seconds() if defaults else None,
        metavar="SECONDS",
        help=f"seconds between snapshots (default {DEFAULT_SNAPSHOT_INTERVAL.total_seconds():g})",
    )


def _add_capture(commands: Any) -> None:
    """The ``capture`` subcommand: a live stream to a file ``replay`` reads."""
    capture = commands.add_parser(
        "capture",
        help="record a live stream (X or Bluesky) to a JSON-lines file replay can read",
        description="X needs SENTI_X_BEARER_TOKEN (docs/x-source.md); Bluesky needs no "
        "account (docs/bluesky.md). Without --count or --seconds it records until Ctrl-C.",
    )
    capture.add_argument("--source", choices=["x", "bluesky"], default="x")
    capture.add_argument("--out", type=Path, required=True, help="file to write")
    capture.add_argument(
        "--track", action="append", default=[], metavar="QUERY", help="add a rule (repeatable)"
    )
    capture.add_argument("--count", type=positive_int, default=None, help="stop after N posts")
    capture.add_argument("--seconds", type=positive_float, default=None, help="stop after S s")
    capture.set_defaults(run=_capture)


def _capture(args: argparse.Namespace) -> int:
    """Record the live stream to ``--out`` (see :mod:`flows.sources.capture`)."""
    if args.source == "bluesky":
        return _capture_bluesky(args)
    from flows.sources.capture import CaptureError, run_capture  # noqa: PLC0415 - tweepy only here

    queries = _queries(args.track)
    try:
        written = run_capture(args.out, queries=queries, count=args.count, seconds=args.seconds)
    except CaptureError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {written} posts to {args.out}", file=sys.stderr)
    return 0


def _capture_bluesky(args: argparse.Namespace) -> int:
    from flows.sources.bluesky import JetstreamError, run_capture  # noqa: PLC0415

    if args.track:
        raise CliError("--track is for X: Jetstream sends every post; filter with replay --track")
    try:
        written = run_capture(args.out, count=args.count, seconds=args.seconds)
    except JetstreamError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {written} posts to {args.out}", file=sys.stderr)
    return 0


def _add_evaluate_tune(commands: Any) -> None:
    """The ``evaluate`` and ``tune`` subcommands (labelled data, TweetEval format)."""
    evaluate_cmd = commands.add_parser(
        "evaluate",
        help="score labelled texts and print macro-recall, accuracy, macro-F1, confusion",
        description="Labels are TweetEval's: 0 negative, 1 neutral, 2 positive, one per line.",
    )
    add_labelled_options(evaluate_cmd)
    add_thresholds_option(evaluate_cmd)
    evaluate_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate_cmd.set_defaults(run=_evaluate)
    tune = commands.add_parser(
        "tune",
        help="choose thresholds by cross-validated macro-recall and write a thresholds config",
        description="Labels are TweetEval's: 0 negative, 1 neutral, 2 positive, one per line.",
    )
    add_labelled_options(tune)
    tune.add_argument("--out", type=Path, required=True, help="thresholds TOML to write")
    tune.add_argument("--folds", type=positive_int, default=5, help="CV folds (default 5)")
    tune.add_argument("--seed", type=int, default=0, help="fold shuffling seed (default 0)")
    tune.add_argument(
        "--grid-step", type=positive_float, default=0.01, help="grid step (default 0.01)"
    )
    tune.add_argument(
        "--dataset", default="TweetEval sentiment", help="data set name for the provenance"
    )
    tune.set_defaults(run=_tune)


def add_labelled_options(parser: argparse.ArgumentParser) -> None:
    """``--data DIR`` (or ``$SENTI_LABELLED_DATA``), ``--split``, or ``--texts`` + ``--labels``."""
    parser.add_argument(
        "--data",
        type=Path,
        help="directory in TweetEval's sentiment layout: SPLIT_text.txt, SPLIT_labels.txt "
        "(default: $SENTI_LABELLED_DATA)",
    )
    parser.add_argument("--split", default="val", help="which split of --data (default val)")
    parser.add_argument("--texts", type=Path, help="one text per line (instead of --data)")
    parser.add_argument("--labels", type=Path, help="one label per line (with --texts)")


def labelled_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The texts and labels files the options name (:func:`add_labelled_options`)."""
    if (args.texts is None) != (args.labels is None):
        raise CliError("--texts and --labels go together (or use --data DIR)")
    if args.texts is not None:
        if args.data is not None:
            raise CliError("give --data DIR or --texts and --labels, not both")
        paths: tuple[Path, Path] = (args.texts, args.labels)
        return paths
    try:
        return labelled_files(args.data, split=args.split)
    except TweetEvalError as exc:
        raise CliError(str(exc)) from None


def add_thresholds_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--thresholds", type=Path, default=None, help="thresholds TOML (default: shipped config)"
    )


def add_scored_langs_option(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    parser.add_argument(
        "--scored-langs",
        type=scored_langs,
        default=default,
        metavar="LANGS",
        help="languages VADER scores, comma-separated ('*': all); posts in others are "
        f"unscored (default {DEFAULT_SCORED_LANGUAGES}"
        + ("" if default is not None else ", or SENTI_SCORED_LANGS")
        + ")",
    )


def scored_langs(text: str) -> str:
    """A ``--scored-langs`` value, checked and spelled canonically (``und,en`` is ``en,und``)."""
    try:
        return str(parse_scored_languages(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_flow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--track",
        action="append",
        required=True,
        metavar="QUERY",
        help="query to track (repeatable): comma = OR, space = AND, #tag, @user",
    )
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="sqlite:///senti.db or postgresql://user:pass@host/db",
    )
    parser.add_argument("--out", type=Path, default=None, help="write JSON lines here")
    parser.add_argument("--window", type=positive_float, default=60.0, help="window seconds")
    parser.add_argument(
        "--wait",
        type=_non_negative_float,
        default=None,
        help="seconds a post may lag the newest one before it counts as late "
        "(default: 30 for replay, whose batches interleave; 5 live)",
    )
    parser.add_argument("--top", type=positive_int, default=10, help="top hashtags per window")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker threads (they share a GIL; scale with senti dataflow -p)",
    )
    add_thresholds_option(parser)
    add_scored_langs_option(parser, default=DEFAULT_SCORED_LANGUAGES)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _timestamp(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def thresholds_option(path: Path | None) -> Thresholds:
    try:
        return load_thresholds(path)
    except ThresholdsError as exc:
        raise CliError(str(exc)) from None


def _queries(texts: Sequence[str]) -> list[Query]:
    queries: dict[str, Query] = {}
    for text in texts:
        try:
            query = parse_query(text)
        except InvalidQuery as exc:
            raise CliError(f"invalid query {text!r}: {exc}") from None
        queries.setdefault(query.key, query)
    return list(queries.values())


# Commands


def _analyze(args: argparse.Namespace) -> int:
    """Score each line of stdin; stop at the first line that is not UTF-8 text."""
    analyzer = PostAnalyzer(thresholds_option(args.thresholds))
    stdin = open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
    out = sys.stdout
    try:
        for number, raw in enumerate(stdin, start=1):
            score = analyzer.score_text(_text_line(raw, number))
            out.write(json.dumps(score.message(), ensure_ascii=False) + "\n")
    finally:
        out.flush()  # the lines before a bad one are answered
    return 0


def _text_line(raw: bytes, number: int) -> str:
    """Line ``number`` of ``senti analyze``'s input as text, without its line ending.

    Raises :class:`CliError`, naming the line, for a NUL byte (binary input) or
    bytes that are not UTF-8: guessing would score text that is not there.
    """
    if b"\0" in raw:
        raise CliError(
            f"stdin line {number} holds a NUL byte: binary input? "
            "senti analyze reads UTF-8 text, one post per line"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"stdin line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1}); senti analyze reads UTF-8 text, one post per line"
        ) from None
    if number == 1:
        text = text.removeprefix("\ufeff")  # a byte order mark some editors write
    return text.rstrip("\r\n")


def _evaluate(args: argparse.Namespace) -> int:
    """Score labelled texts with the dataflow's analyser and print the metrics."""
    thresholds = thresholds_option(args.thresholds)
    text_path, label_path = labelled_paths(args)
    try:
        texts, labels = read_labelled(text_path, label_path)
    except TweetEvalError as exc:
        raise CliError(str(exc)) from None
    result = evaluate(texts, labels, thresholds)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.report())
    return 0


def _tune(args: argparse.Namespace) -> int:
    """Tune thresholds on labelled texts, print the report and write the config."""
    from importlib.metadata import version  # noqa: PLC0415 - only tune needs it

    if args.folds < 2:
        raise CliError(f"--folds must be at least 2, not {args.folds}")
    text_path, label_path = labelled_paths(args)
    try:
        grid = Grid(step=args.grid_step)
        texts, labels = read_labelled(text_path, label_path)
        files = describe_files(text_path, label_path, name=args.dataset)
    except (TweetEvalError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if len(texts) < args.folds:
        raise CliError(f"{len(texts)} labelled texts cannot make {args.folds} folds")
    result = tune_thresholds(
        compound_scores(texts), labels, grid=grid, folds=args.folds, seed=args.seed
    )
    config = config_toml(
        result,
        dataset=files.name,
        texts=files.texts,
        labels=files.labels,
        texts_sha256=files.texts_sha256,
        labels_sha256=files.labels_sha256,
        created=datetime.now(UTC),
        version=version("senti"),
    )
    try:
        args.out.write_text(config, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(result.report())
    print(f"\nwrote {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:

    start = args.start or datetime.now(UTC).replace(microsecond=0)
    try:
        written = write_synthetic(
            args.out, count=args.count, seed=args.seed, start=start, rate=args.rate
        )
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {written} posts to {args.out}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:

    for path in args.files:
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    # A replay's windows follow event time only, so reruns give equal summaries.
    wait = window_wait(args.wait, live=False)
    positions = Positions() if args.store is not None else None
    try:  # an interrupted replay into this store resumes after its last stored line
        keys = [replay_key(str(path)) for path in args.files]
        resume = stored_resume(args.store, keys).cursors
    except StoreError as exc:
        raise CliError(f"unusable store {args.store!r}: {exc}") from None
    source = ReplaySource(
        list(args.files), speed=args.speed, max_span=wait / 2, positions=positions, resume=resume
    )
    return _run_flow(args, source, live=False, name="replay", positions=positions)


def _run_live(args: argparse.Namespace) -> int:

    source = SyntheticSource(count=args.count, seed=args.seed, rate=args.rate)
    return _run_flow(args, source, live=True, name=args.source)


def _run_flow(
    args: argparse.Namespace,
    source: Any,
    *,
    live: bool,
    name: str,
    positions: Positions | None = None,
) -> int:
    """Run the dataflow over ``source``; Ctrl-C or SIGTERM ends it cleanly.

    A source that cannot go on (``name`` says which) is a :class:`CliError`,
    raised once the flow has flushed what it read before. ``positions`` (the
    source's, see :mod:`flows.runtime.cursors`) go to the store.
    """

    with paused_gc():  # the queries live as long as the run (10,000s of them)
        settings = FlowSettings(
            thresholds=thresholds_option(args.thresholds),
            languages=parse_scored_languages(args.scored_langs),
            queries=_queries(args.track),
            window=timedelta(seconds=args.window),
            wait=window_wait(args.wait, live=live),
            top_n=args.top,
            live=live,
            lanes=args.workers,
        )
        recovery, resuming = _recovery(args)
        if args.store is not None:
            _check_store(args.store)
    summary = RunSummary()
    sinks: list[Any] = [SummarySink(summary)]
    if args.out is not None:
        if not resuming:  # a resumed run appends (at least once: see docs/operations.md)
            _truncate(args.out)
        sinks.append(JsonLinesSink(args.out))
    if live:
        sinks.append(ConsoleSink())
    progress = _progress_bar(disable=live)
    summary.on_posts = progress.update if progress is not None else None
    stop = FlowStop()
    try:
        with paused_gc():  # the flow indexes the queries
            flow = assemble_flow(
                source,
                settings=settings,
                stop=stop,
                sinks=sinks,
                store=args.store,
                positions=positions,
                recovery=recovery,
                store_queries=True,
            )
    except OSError as exc:  # a replay file gone since it was checked
        raise CliError(f"{name} source: {failure_reason(exc)}") from None
    failure: str | None = None
    ended = False  # the input ended (a stop, its end, a failed source): every sink closed
    try:
        interrupted = run_until_stopped(flow, stop, workers=args.workers, recovery=recovery)
        ended = True
    except SourceFailed as exc:
        ended = True
        failure = f"{name} source: {exc}"
    except Exception as exc:  # a step or a sink failed; Bytewax may have printed its panic
        failure = f"dataflow failed: {_innermost(exc)}"
    finally:
        summary.finish()
        if progress is not None:
            progress.close()
    if ended and recovery is None and positions is not None and args.store is not None:
        write_positions(args.store, positions)
    if failure is not None:
        raise CliError(failure)
    print(summary.line(), file=sys.stderr)
    return 130 if interrupted else 0


def _innermost(error: BaseException) -> str:
    """``Type: message`` of the _innermost cause of ``error``, on one line."""
    seen: set[int] = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    return " ".join(f"{type(error).__name__}: {error}".split())


def _recovery(args: argparse.Namespace) -> tuple[Recovery | None, bool]:
    """The run's recovery settings and whether it resumes; ``(None, False)`` without."""
    directory: Path | None = getattr(args, "recovery_dir", None)
    if directory is None:
        return None, False
    try:
        new = prepare_recovery_dir(directory)
    except RecoveryError as exc:
        raise CliError(str(exc)) from None
    interval = timedelta(seconds=args.snapshot_interval)
    return Recovery(directory, snapshot_interval=interval), not new


def _check_store(url: str) -> None:
    """Check, changing nothing, that the flow could write to the store at ``url``.

    The run's queries are written as tracked by the flow's store writer, before
    its first batch (see :class:`~flows.sinks.store_sink.StoreSink`).
    """
    try:
        check_store(url)
    except StoreError as exc:
        raise CliError(f"unusable store {url!r}: {exc}") from None


def _truncate(path: Path) -> None:
    try:
        path.open("w").close()
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _progress_bar(*, disable: bool) -> Any:
    if disable or not sys.stderr.isatty():
        return None

    return tqdm(unit=" posts", file=sys.stderr, dynamic_ncols=True)
