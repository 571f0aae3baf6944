"""The ``senti`` command run as a subprocess on files it generated itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.analysis.posts import PostAnalyzer
from flows.model import Line, Post
from flows.platforms.x import parse_line
from flows.routing.matching import TermIndex, parse_query
from flows.store import StoreCounts, StoreError, open_store

pytestmark = pytest.mark.slow

START = "2024-05-01T12:00:00Z"
POSTS = 2_000
TRACKED = ["python", "climate change", "#covid19", "coffee, tea"]
SUMMARY = re.compile(
    r"(?P<posts>\d+) posts read, (?P<retweets>\d+) retweets dropped, "
    r"(?P<malformed>\d+) malformed lines, (?P<matches>\d+) matches, .* posts/s"
)


def senti(
    *args: str | Path, cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m server.cli ARGS`` in ``cwd`` and capture its output as text."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
        env=os.environ | {"PYTHONUTF8": "1"},
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8"),
        result.stderr.decode("utf-8"),
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Insist the command succeeded, showing its stderr if not."""
    assert result.returncode == 0, result.stderr
    return result


def tracked_args(queries: list[str] = TRACKED) -> list[str]:
    """``--track Q`` for each query."""
    return [arg for query in queries for arg in ("--track", query)]


def replay_args(*files: Path, out: Path | None = None, store: str | None = None) -> list[Any]:
    """Arguments of a replay of ``files`` with ten-second windows."""
    args: list[Any] = ["replay", *files, *tracked_args(), "--window", "10"]
    if out is not None:
        args += ["--out", out]
    if store is not None:
        args += ["--store", store]
    return args


def summary_of(stderr: str) -> dict[str, int]:
    """The counts of the closing summary line."""
    found = SUMMARY.search(stderr)
    assert found is not None, stderr
    return {name: int(value) for name, value in found.groupdict().items()}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def per_post(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-post messages (``"type": "match"``)."""
    return [message for message in messages if message.get("type") == "match"]


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Messages tagged ``"type": kind``."""
    return [message for message in messages if message.get("type") == kind]


def store_counts(url: str) -> StoreCounts:
    """Row counts of the store at ``url``, opened read-only."""
    with open_store(url, readonly=True) as store:
        return store.counts()


@dataclass(frozen=True)
class Replayed:
    """A generated stream file and the result of replaying it once."""

    workdir: Path
    stream: Path
    out: Path
    store: str
    result: subprocess.CompletedProcess[str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every line the replay wrote to ``--out``."""
        return read_jsonl(self.out)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by the module's generated files."""
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def stream(workdir: Path) -> Path:
    """A synthetic stream of 2,000 posts from a fixed seed and start time."""
    path = workdir / "stream.jsonl"
    ok(
        senti(
            "generate", "--count", POSTS, "--seed", 7, "--start", START, "--out", path, cwd=workdir
        )
    )
    return path


@pytest.fixture(scope="module")
def replayed(workdir: Path, stream: Path) -> Replayed:
    """The stream replayed once into an output file and a SQLite store."""
    out = workdir / "replay.jsonl"
    store = f"sqlite:///{workdir / 'replay.db'}"
    result = ok(senti(*replay_args(stream, out=out, store=store), cwd=workdir))
    return Replayed(workdir, stream, out, store, result)


# analyze

TEXTS = [
    "I love this, it is wonderful!",
    "This is terrible, I hate it.",
    "The bus leaves at noon",
    "#Python #python and #AI",
    "",
]


def analyze(texts: list[str], *extra: str | Path, cwd: Path) -> list[dict[str, Any]]:
    """Run ``senti analyze`` on ``texts`` and decode its output lines."""
    stdin = "".join(text + "\n" for text in texts).encode("utf-8")
    result = ok(senti("analyze", *extra, cwd=cwd, stdin=stdin))
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_analyze_prints_one_json_line_per_input_line_in_order(tmp_path: Path) -> None:
    """Each stdin line gives one JSON line with polarityIndex, compound and hashtags, in order."""
    lines = analyze(TEXTS, cwd=tmp_path)
    assert len(lines) == len(TEXTS)
    assert all(set(line) == {"polarityIndex", "compound", "hashtags"} for line in lines)
    assert [line["polarityIndex"] for line in lines] == [0, 1, 2, 2, 2]
    assert lines[0]["compound"] > 0.5 > -0.5 > lines[1]["compound"]
    assert lines[3]["hashtags"] == {"python": 2, "ai": 1}
    assert lines[4] == {"polarityIndex": 2, "compound": 0.0, "hashtags": {}}


@pytest.mark.parametrize(
    ("stdin", "line", "problem"),
    [
        pytest.param(b"good day\n\xff\xfe broken \xc3\n#caf\xc3\xa9 time\n", 2, "not valid UTF-8",
                     id="invalid-utf8"),
        pytest.param(b"good day\nfine\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n", 3, "byte 0x89",
                     id="binary-png"),
        pytest.param(b"good day\nfine\nok\x00ok\n", 3, "NUL byte", id="nul-byte"),
        pytest.param(b"good day\n\xed\xa0\x80 surrogate\n", 2, "not valid UTF-8",
                     id="encoded-surrogate"),
    ],
)  # fmt: skip
def test_analyze_refuses_input_that_is_not_utf8_text(
    tmp_path: Path, stdin: bytes, line: int, problem: str
) -> None:
    """Bytes that are not UTF-8 text stop analyze with one ``senti: error:`` line naming the
    input line, exit status 1; the lines before it are answered."""
    result = senti("analyze", cwd=tmp_path, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"senti: error: stdin line {line} ")
    assert problem in result.stderr
    answered = [json.loads(text) for text in result.stdout.splitlines()]
    assert len(answered) == line - 1


def test_analyze_reads_utf8_with_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    """A leading byte order mark and CRLF line endings are not part of the texts."""
    stdin = "\ufeff#Café time\r\nI love it\r\n".encode()
    result = ok(senti("analyze", cwd=tmp_path, stdin=stdin))
    lines = [json.loads(text) for text in result.stdout.splitlines()]
    assert lines[0]["hashtags"] == {"café": 1}
    assert lines[1]["polarityIndex"] == 0


def test_analyze_thresholds_file_changes_classes(tmp_path: Path) -> None:
    """Wider thresholds from ``--thresholds`` turn mild texts neutral."""
    wide = tmp_path / "wide.toml"
    wide.write_text("[thresholds]\nnegative = -0.95\npositive = 0.95\n", encoding="utf-8")
    default = analyze(TEXTS, cwd=tmp_path)
    widened = analyze(TEXTS, "--thresholds", wide, cwd=tmp_path)
    assert [line["compound"] for line in widened] == [line["compound"] for line in default]
    assert [line["polarityIndex"] for line in widened] == [2, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("[thresholds]\nnegative = 0.5\npositive = 0.1\n", "negative <= positive"),
        pytest.param("[thresholds]\nnegative = -0.1\n", "missing thresholds.positive"),
        pytest.param("not = [toml", "not valid TOML"),
        pytest.param(None, "not found"),
    ],
)
def test_analyze_bad_thresholds_file_exits_1(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """An unusable thresholds file is a one-line ``senti: error:`` naming it, exit status 1."""
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = senti("analyze", "--thresholds", path, cwd=tmp_path, stdin=b"hello\n")
    assert result.returncode == 1
    assert result.stderr.startswith("senti: error:")
    assert str(path) in result.stderr
    assert message in result.stderr
    assert result.stdout == ""


# generate


def test_generate_writes_count_parseable_lines(workdir: Path, stream: Path) -> None:
    """``generate --count N`` writes N X API v2 lines that parse as posts."""
    lines = stream.read_text(encoding="utf-8").splitlines()
    assert len(lines) == POSTS
    parsed = [parse_line(Line(line)) for line in lines]
    assert all(isinstance(post, Post) for post in parsed)
    assert len({post.id for post in parsed if isinstance(post, Post)}) == POSTS


def test_generate_is_deterministic_by_seed(tmp_path: Path) -> None:
    """The same seed and start give the same bytes; another seed gives another stream."""
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        args = ["generate", "--count", 50, "--seed", seed, "--start", START, "--out", f"{name}"]
        result = ok(senti(*args, cwd=tmp_path))
        assert "wrote 50 posts" in result.stderr
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert (tmp_path / "a").read_bytes() != (tmp_path / "c").read_bytes()


@pytest.mark.parametrize("count", ["0", "-5", "abc"])
def test_generate_bad_count_is_a_usage_error(tmp_path: Path, count: str) -> None:
    """A count that is not a positive integer exits 2 with usage and writes nothing."""
    result = senti("generate", "--count", count, "--out", "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "--count" in result.stderr
    assert not (tmp_path / "x.jsonl").exists()


# replay


def test_replay_writes_per_post_messages_and_window_summaries(replayed: Replayed) -> None:
    """The ``--out`` file holds per-post messages for tracked queries and window summaries."""
    messages = replayed.messages
    posts = per_post(messages)
    keys = {parse_query(query).key for query in TRACKED}
    assert posts
    assert all(
        set(message)
        == {"type", "polarityIndex", "hashtags", "query", "id", "created_at", "compound", "lang"}
        for message in posts
    )
    assert {message["query"] for message in posts} == keys
    windows = of_type(messages, "window")
    assert {window["query"] for window in windows} == keys | {"*"}
    overall = [window for window in windows if window["query"] == "*"]
    assert sum(window["posts"] + window["retweets"] for window in overall) == POSTS
    assert of_type(messages, "rejected") == []


def test_replay_routes_exactly_the_matching_posts(replayed: Replayed) -> None:
    """Per-post messages are exactly the (query, post) pairs the track rules select."""
    analyzer, index = PostAnalyzer(), TermIndex()
    for query in TRACKED:
        index.add(parse_query(query))
    expected: set[tuple[str, str]] = set()
    for line in replayed.stream.read_text(encoding="utf-8").splitlines():
        post = parse_line(Line(line))
        assert isinstance(post, Post)
        if not post.is_retweet:
            terms = analyzer.analyse(post).terms
            expected.update((key, post.id) for key in index.match(terms))
    found = [(message["query"], message["id"]) for message in per_post(replayed.messages)]
    assert len(found) == len(set(found))
    assert set(found) == expected


def test_replay_summary_line_reports_the_run(replayed: Replayed) -> None:
    """stderr ends with posts read, retweets dropped, malformed lines, matches and posts/s."""
    messages = replayed.messages
    overall = [window for window in of_type(messages, "window") if window["query"] == "*"]
    assert summary_of(replayed.result.stderr) == {
        "posts": POSTS,
        "retweets": sum(window["retweets"] for window in overall),
        "malformed": 0,
        "matches": len(per_post(messages)),
    }
    assert summary_of(replayed.result.stderr)["retweets"] > 0


def test_replay_store_counts_match_the_out_file(replayed: Replayed) -> None:
    """The store holds one match row per per-post message and one row per window."""
    messages = replayed.messages
    posts = per_post(messages)
    counts = store_counts(replayed.store)
    assert counts.matches == len(posts)
    assert counts.posts == len({message["id"] for message in posts})
    assert counts.windows == len(of_type(messages, "window"))
    assert (counts.late, counts.rejected) == (0, 0)


def test_replay_counts_malformed_lines_and_carries_on(stream: Path, tmp_path: Path) -> None:
    """Truncated JSON, invalid UTF-8 and missing fields are counted as malformed, exit 0."""
    dirty = tmp_path / "dirty.jsonl"
    good = stream.read_bytes()
    bad = [
        b'{"data": {"id": "x1", "text": "python is gr',
        b'{"data": {"id": "x2", "text": "caf\xe9 \xff python", '
        b'"created_at": "2024-05-01T12:00:01Z"}}',
        b'{"data": {"id": "x3", "text": "python without a time"}}',
    ]
    dirty.write_bytes(good + b"\n".join(bad) + b"\n\n")
    out = tmp_path / "out.jsonl"
    store = f"sqlite:///{tmp_path / 'dirty.db'}"
    result = ok(senti(*replay_args(dirty, out=out, store=store), cwd=tmp_path))
    summary = summary_of(result.stderr)
    assert (summary["posts"], summary["malformed"]) == (POSTS, 3)
    rejected = of_type(read_jsonl(out), "rejected")
    assert sorted(message["reason"].split(":")[0] for message in rejected) == [
        "a field is not valid UTF-8 (undecodable byte or lone surrogate)",
        "invalid JSON",
        "missing data.created_at",
    ]
    assert all(message["origin"].startswith(str(dirty)) for message in rejected)
    assert store_counts(store).rejected == 3


def test_replay_survives_invalid_utf8_in_a_hashtag(tmp_path: Path) -> None:
    """A line whose hashtag entity holds invalid UTF-8 does not stop the replay."""
    path = tmp_path / "tag.jsonl"
    path.write_bytes(
        b'{"data": {"id": "x9", "text": "python rocks", "created_at": "2024-05-01T12:00:01Z",'
        b' "entities": {"hashtags": [{"start": 0, "end": 3, "tag": "py\xff"}]}}}\n'
    )
    result = senti("replay", path, "--track", "python", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stderr)
    assert summary["posts"] + summary["malformed"] == 1


def canonical(messages: list[dict[str, Any]]) -> Counter[str]:
    """Messages as a multiset of canonical JSON strings."""
    return Counter(json.dumps(message, sort_keys=True) for message in messages)


def test_replay_with_two_workers_gives_the_same_output(replayed: Replayed, tmp_path: Path) -> None:
    """Two worker threads produce the same messages as one, in some order."""
    out = tmp_path / "two.jsonl"
    result = ok(senti(*replay_args(replayed.stream, out=out), "--workers", "2", cwd=tmp_path))
    assert canonical(read_jsonl(out)) == canonical(replayed.messages)
    assert summary_of(result.stderr) == summary_of(replayed.result.stderr)


def test_replay_counts_other_languages_as_unscored_unless_told(
    replayed: Replayed, tmp_path: Path
) -> None:
    """By default the synthetic stream's non-English posts are unscored in the windows and
    counted by language; ``--scored-langs '*'`` scores them all."""
    overall = [w for w in of_type(replayed.messages, "window") if w["query"] == "*"]
    unscored = sum(window["unscored"] for window in overall)
    by_lang: Counter[str] = Counter()
    for window in overall:
        by_lang.update(window["langs"])
        assert sum(window["langs"].values()) == window["posts"]
    assert unscored == sum(n for lang, n in by_lang.items() if lang not in ("en", "und")) > 0
    out = tmp_path / "all.jsonl"
    ok(senti(*replay_args(replayed.stream, out=out), "--scored-langs", "*", cwd=tmp_path))
    everything = [w for w in of_type(read_jsonl(out), "window") if w["query"] == "*"]
    assert sum(window["unscored"] for window in everything) == 0
    assert sum(w["posts"] for w in everything) == sum(w["posts"] for w in overall)
    assert all(m["polarityIndex"] is not None for m in per_post(read_jsonl(out)))


@pytest.mark.parametrize("value", ["english", "*,en", ""])
def test_bad_scored_langs_is_refused(stream: Path, tmp_path: Path, value: str) -> None:
    """A ``--scored-langs`` that names no language code is a usage error, exit status 2."""
    result = senti(*replay_args(stream), "--scored-langs", value, cwd=tmp_path)
    assert result.returncode == 2
    assert "--scored-langs" in result.stderr


def test_serve_refuses_bad_scored_langs_from_the_environment(tmp_path: Path) -> None:
    """SENTI_SCORED_LANGS that names no language code stops serve with one error line."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"SENTI_SCORED_LANGS": "english"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("senti: error: scored_langs:")
    assert "'english' is not a language code" in result.stderr
    assert result.stderr.count("\n") == 1


def test_replay_twice_into_one_store_is_idempotent(stream: Path, tmp_path: Path) -> None:
    """Replaying the same file again into the same store leaves every count unchanged."""
    url = "sqlite:///twice.db"
    ok(senti(*replay_args(stream, store=url), cwd=tmp_path))
    first = store_counts(f"sqlite:///{tmp_path / 'twice.db'}")
    ok(senti(*replay_args(stream, store=url), cwd=tmp_path))
    assert store_counts(f"sqlite:///{tmp_path / 'twice.db'}") == first
    assert first.matches > 0


# errors


def test_replay_missing_file_exits_1_naming_it(tmp_path: Path) -> None:
    """A missing input file is ``senti: error:`` with its path, exit status 1."""
    result = senti(*replay_args(tmp_path / "absent.jsonl"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("senti: error:")
    assert str(tmp_path / "absent.jsonl") in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("postgresql://x", "postgresql", id="unsupported-scheme"),
        pytest.param("sqlite:///missing/dir/s.db", "does not exist", id="missing-directory"),
    ],
)
def test_replay_unusable_store_exits_1(
    stream: Path, tmp_path: Path, url: str, message: str
) -> None:
    """A store URL senti cannot use is refused before the flow runs, exit status 1."""
    result = senti(*replay_args(stream, out=tmp_path / "o.jsonl", store=url), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("senti: error:")
    assert message in result.stderr
    assert not (tmp_path / "missing").exists()
    assert not (tmp_path / "o.jsonl").exists() or not (tmp_path / "o.jsonl").read_text()


@pytest.mark.parametrize("query", ["", "#2024", "#a-b", "!!!"])
def test_replay_invalid_query_exits_1_naming_it(stream: Path, tmp_path: Path, query: str) -> None:
    """An invalid ``--track`` query is ``senti: error: invalid query '...'``, exit status 1."""
    result = senti("replay", stream, "--track", "python", "--track", query, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"senti: error: invalid query {query!r}")


# run


def test_run_prints_window_lines_and_finishes(tmp_path: Path) -> None:
    """``run --count 50`` streams synthetic posts, prints its windows and exits 0."""
    args = ["run", "--count", "50", "--rate", "1000", "--window", "1"]
    result = ok(senti(*args, *tracked_args(["python", "coffee"]), cwd=tmp_path))
    assert "all posts" in result.stdout
    assert summary_of(result.stderr)["posts"] == 50


def test_an_interrupted_replay_resumes_from_the_store_without_a_recovery_dir(
    stream: Path, tmp_path: Path
) -> None:
    """SIGTERM a paced replay, rerun it on the same store: the second run reads only the rest,
    and the store ends as after one uninterrupted replay (whose cursor is then forgotten)."""
    store = tmp_path / "resumed.db"
    args = [*replay_args(stream, store=f"sqlite:///{store}"), "--speed", "5"]
    env = os.environ | {"PYTHONUTF8": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "server.cli", *map(str, args)],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _stored_posts(f"sqlite:///{store}") == 0:
            assert time.monotonic() < deadline, "the first run stores nothing"
            time.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130
    read_first = summary_of(stderr)["posts"]
    with open_store(f"sqlite:///{store}", readonly=True) as opened:
        assert opened.cursor(f"replay:{stream}") is not None
    second = ok(senti(*replay_args(stream, store=f"sqlite:///{store}"), cwd=tmp_path))
    assert summary_of(second.stderr)["posts"] == POSTS - read_first
    full = f"sqlite:///{tmp_path / 'full.db'}"
    ok(senti(*replay_args(stream, store=full), cwd=tmp_path))
    with open_store(f"sqlite:///{store}", readonly=True) as a, open_store(full, readonly=True) as b:
        ids = "SELECT id FROM posts ORDER BY id"
        assert a.select(ids) == b.select(ids)
        assert a.counts().matches == b.counts().matches
        assert a.cursor(f"replay:{stream}") is None


def _stored_posts(url: str) -> int:
    """Posts in the store at ``url``; 0 while its writer has not created it yet."""
    try:
        return store_counts(url).posts
    except StoreError:  # no file yet, or its tables not written yet
        return 0


def test_many_track_options_parse_in_their_order() -> None:
    """Every ``--track`` value, in either spelling, reaches the command in the order given."""
    from server.cli import _parser, _split_tracks

    argv = ["replay", "f.jsonl", "--track", "a", "--window", "5", "--track=b c", "--track", "d"]
    rest, tracked = _split_tracks(argv)
    assert tracked == ["a", "b c", "d"]
    assert rest == ["replay", "f.jsonl", "--track", "a", "--window", "5"]
    assert _parser().parse_args(argv).track == tracked
