"""Locate the TweetEval sentiment files: a given directory, a download cache, or a fallback.

I/O only (files and one HTTPS request per file, with a short timeout); the
notebooks call :func:`resolve_tweeteval_dir` so they run online and offline.

Downloads come from TweetEval's public GitHub repository at a pinned commit
(:data:`TWEETEVAL_URL`), the same files as ``shared/data/tweeteval-sentiment``
(see its ``PROVENANCE.txt``), so results do not drift with the repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flows.tuning.tweeteval import TweetEvalError, read_tweeteval

__all__ = [
    "ENV_VAR",
    "MISSING_DATA",
    "TWEETEVAL_COMMIT",
    "TWEETEVAL_URL",
    "DataSource",
    "default_cache_dir",
    "fetch_tweeteval",
    "labelled_files",
    "resolve_tweeteval_dir",
]

TWEETEVAL_COMMIT: Final = "4fbd22cd78421f05b1ecdb4fc5725bc7a7bd8f66"
"""The cardiffnlp/tweeteval commit the shared copy was taken from (2022-07-08)."""
TWEETEVAL_URL: Final = (
    f"https://raw.githubusercontent.com/cardiffnlp/tweeteval/{TWEETEVAL_COMMIT}/datasets/sentiment/"
)
"""Base URL of the sentiment files ``{split}_text.txt`` and ``{split}_labels.txt``."""
ENV_VAR: Final = "SENTI_LABELLED_DATA"
"""Environment variable naming a directory of labelled data in TweetEval's sentiment layout
(``val_text.txt``, ``val_labels.txt``...), for ``senti evaluate``, ``senti tune`` and the
tuning notebook."""
_OLD_ENV_VAR: Final = "SENTI_TWEETEVAL_DIR"
"""The variable's former name, still read when :data:`ENV_VAR` is unset."""
MISSING_DATA: Final = (
    "no labelled data: pass --data DIR or set SENTI_LABELLED_DATA to a directory with "
    "{split}_text.txt and {split}_labels.txt (TweetEval sentiment layout, docs/tuning.md)"
)
"""The one-line error when no labelled data is given."""


def _env_dir(env: Mapping[str, str]) -> str | None:
    return env.get(ENV_VAR) or env.get(_OLD_ENV_VAR) or None


def labelled_files(
    data: str | Path | None, *, split: str = "val", environ: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """The texts and labels files of ``split`` in ``data`` (``--data``), else in the
    directory :data:`ENV_VAR` names.

    Raises :class:`~flows.tuning.tweeteval.TweetEvalError` with one line naming both ways when
    neither is given, or when the directory lacks a file.
    """
    env = os.environ if environ is None else environ
    chosen = str(data) if data is not None and str(data) else _env_dir(env)
    if chosen is None:
        raise TweetEvalError(MISSING_DATA.format(split=split))
    root = Path(chosen)
    texts, labels = root / f"{split}_text.txt", root / f"{split}_labels.txt"
    for path in (texts, labels):
        if not path.is_file():
            how = "--data" if data is not None and str(data) else f"${ENV_VAR}"
            raise TweetEvalError(
                f"{path}: file not found ({how} must name a directory with {texts.name} and "
                f"{labels.name}, TweetEval sentiment layout, docs/tuning.md)"
            )
    return texts, labels


@dataclass(frozen=True, slots=True)
class DataSource:
    """Where the files were found, and how (for the notebook to print)."""

    directory: Path
    how: str


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/senti/tweeteval-sentiment`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "senti" / "tweeteval-sentiment"


def fetch_tweeteval(
    cache_dir: str | Path,
    *,
    split: str = "val",
    timeout: float = 5.0,
    base_url: str = TWEETEVAL_URL,
) -> Path:
    """Download one split's text and label files into ``cache_dir``, unless already there.

    Each file is written to a temporary name and renamed when complete, and the
    pair is checked with :func:`~flows.tuning.tweeteval.read_tweeteval`. Raises
    :class:`OSError` (``urllib.error.URLError`` included) when a download fails
    or times out, and :class:`~flows.tuning.tweeteval.TweetEvalError` when the files
    are inconsistent; partial files are removed.
    """
    directory = Path(cache_dir)
    names = [f"{split}_text.txt", f"{split}_labels.txt"]
    if all((directory / name).is_file() for name in names):
        read_tweeteval(directory, split)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            _download(base_url + name, directory / name, timeout)
        read_tweeteval(directory, split)
    except (OSError, TweetEvalError):
        for name in names:
            (directory / name).unlink(missing_ok=True)
        raise
    return directory


def _download(url: str, target: Path, timeout: float) -> None:
    """Copy ``url`` to ``target`` through a temporary file in the same directory."""
    if not url.startswith(("https://", "http://", "file://")):
        raise OSError(f"refusing to download from {url!r}")
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,  # noqa: S310 - scheme checked above
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out,
    ):
        try:
            shutil.copyfileobj(response, out)
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    Path(out.name).replace(target)


def resolve_tweeteval_dir(
    explicit: str | Path | None = None,
    *,
    fallback: str | Path,
    cache_dir: str | Path | None = None,
    split: str = "val",
    timeout: float = 5.0,
    base_url: str = TWEETEVAL_URL,
    environ: Mapping[str, str] | None = None,
) -> DataSource:
    """The directory to read TweetEval sentiment from, trying each choice in turn.

    1. ``explicit`` (a notebook parameter), if given;
    2. the directory in :data:`ENV_VAR`, if set;
    3. the download cache, filled by :func:`fetch_tweeteval` when online;
    4. ``fallback``, a local copy in the same format.

    Only the download may fail quietly (it is reported in :attr:`DataSource.how`);
    the chosen directory must hold ``{split}_text.txt`` and ``{split}_labels.txt``
    or :class:`~flows.tuning.tweeteval.TweetEvalError` is raised.
    """
    env = os.environ if environ is None else environ
    if explicit is not None and str(explicit):
        source = DataSource(Path(explicit), "given as a parameter")
    elif (named := _env_dir(env)) is not None:
        source = DataSource(Path(named), f"from ${ENV_VAR}")
    else:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            source = DataSource(
                fetch_tweeteval(cache, split=split, timeout=timeout, base_url=base_url),
                f"downloaded from {base_url} (cached)",
            )
        except (OSError, TweetEvalError) as exc:
            source = DataSource(Path(fallback), f"local fallback (download failed: {exc})")
    read_tweeteval(source.directory, split)
    return source
