"""Tests for flows.tuning.datasets: where notebooks find TweetEval, online or offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.tuning.datasets import ENV_VAR, fetch_tweeteval, resolve_tweeteval_dir
from flows.tuning.tweeteval import TweetEvalError, read_tweeteval
from tests.helpers.tweeteval_files import require_tweeteval

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once


def file_url(directory: Path) -> str:
    """A ``file://`` base URL standing in for GitHub's raw files."""
    return directory.resolve().as_uri() + "/"


def test_fetch_copies_and_checks_the_split(tmp_path: Path) -> None:
    """Fetching writes both files into the cache, identical to the source."""
    source = require_tweeteval()
    cache = tmp_path / "cache"
    assert fetch_tweeteval(cache, base_url=file_url(source)) == cache
    assert read_tweeteval(cache) == read_tweeteval(source)
    assert sorted(p.name for p in cache.iterdir()) == ["val_labels.txt", "val_text.txt"]


def test_fetch_uses_the_cache_without_downloading(tmp_path: Path) -> None:
    """A complete cache is used as is, even when the URL is unreachable."""
    source = require_tweeteval()
    cache = tmp_path / "cache"
    fetch_tweeteval(cache, base_url=file_url(source))
    assert fetch_tweeteval(cache, base_url=UNREACHABLE, timeout=1) == cache


def test_failed_fetch_leaves_no_partial_files(tmp_path: Path) -> None:
    """A download that fails raises OSError and removes what it wrote."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "val_text.txt").write_text("only texts\n", encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match=r"val_labels\.txt"):
        fetch_tweeteval(cache, base_url=file_url(source))
    assert list(cache.iterdir()) == []


def test_resolve_prefers_explicit_then_env(tmp_path: Path) -> None:
    """An explicit directory beats the environment variable, which beats downloading."""
    source = require_tweeteval()
    env = {ENV_VAR: str(source)}
    explicit = resolve_tweeteval_dir(source, fallback="nowhere", environ={})
    assert explicit.how == "given as a parameter"
    from_env = resolve_tweeteval_dir(None, fallback="nowhere", environ=env, base_url=UNREACHABLE)
    assert (from_env.directory, from_env.how) == (source, f"from ${ENV_VAR}")


def test_resolve_falls_back_when_offline(tmp_path: Path) -> None:
    """When the download fails the fallback directory is used, and the reason is reported."""
    source = require_tweeteval()
    result = resolve_tweeteval_dir(
        None,
        fallback=source,
        cache_dir=tmp_path / "cache",
        base_url=UNREACHABLE,
        timeout=1,
        environ={},
    )
    assert result.directory == source
    assert result.how.startswith("local fallback (download failed:")


def test_resolve_downloads_into_the_cache(tmp_path: Path) -> None:
    """Online (here a file URL), the files are fetched into the cache directory."""
    source = require_tweeteval()
    cache = tmp_path / "cache"
    result = resolve_tweeteval_dir(
        None, fallback="nowhere", cache_dir=cache, base_url=file_url(source), environ={}
    )
    assert result.directory == cache
    assert result.how.startswith("downloaded from")


def test_resolve_rejects_a_directory_without_the_files(tmp_path: Path) -> None:
    """A chosen directory that lacks the split raises TweetEvalError."""
    with pytest.raises(TweetEvalError, match="file not found"):
        resolve_tweeteval_dir(tmp_path, fallback="nowhere", environ={})
