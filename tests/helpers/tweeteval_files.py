"""Where tests find the TweetEval sentiment files (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tweeteval_dir() -> Path:
    """``$SENTI_LABELLED_DATA`` (or its former name ``$SENTI_TWEETEVAL_DIR``), else
    ``<repo>/../shared/data/tweeteval-sentiment``."""
    env = os.environ.get("SENTI_LABELLED_DATA") or os.environ.get("SENTI_TWEETEVAL_DIR")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data" / "tweeteval-sentiment"


def require_tweeteval() -> Path:
    """The TweetEval directory, or skip the test when its val split is absent."""
    directory = tweeteval_dir()
    if not (directory / "val_text.txt").is_file() or not (directory / "val_labels.txt").is_file():
        pytest.skip(f"TweetEval sentiment val split not found in {directory}")
    return directory
