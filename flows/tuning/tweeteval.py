"""Reader for the TweetEval sentiment data set, and its label mapping.

TweetEval (Barbieri et al., Findings of EMNLP 2020) ships one tweet per line
in ``{split}_text.txt`` and one label per line in ``{split}_labels.txt``:
``0`` negative, ``1`` neutral, ``2`` positive. senti's :class:`Polarity`
numbers them differently (``POSITIVE=0, NEGATIVE=1, NEUTRAL=2``), so always
convert with :func:`polarity_from_label` / :func:`label_from_polarity`.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Final

from flows.errors import SentiError
from flows.model import Polarity

__all__ = [
    "LABEL_NEGATIVE",
    "LABEL_NEUTRAL",
    "LABEL_POSITIVE",
    "TweetEvalError",
    "label_from_polarity",
    "polarity_from_label",
    "read_tweeteval",
]

LABEL_NEGATIVE: Final = 0
LABEL_NEUTRAL: Final = 1
LABEL_POSITIVE: Final = 2

_TO_POLARITY: Final = MappingProxyType(
    {
        LABEL_NEGATIVE: Polarity.NEGATIVE,
        LABEL_NEUTRAL: Polarity.NEUTRAL,
        LABEL_POSITIVE: Polarity.POSITIVE,
    }
)
_FROM_POLARITY: Final = MappingProxyType({p: label for label, p in _TO_POLARITY.items()})


class TweetEvalError(SentiError, ValueError):
    """The TweetEval files are missing, unreadable or inconsistent."""


def polarity_from_label(label: int) -> Polarity:
    """The :class:`Polarity` of a TweetEval label (0 negative, 1 neutral, 2 positive)."""
    try:
        return _TO_POLARITY[label]
    except KeyError:
        raise ValueError(f"not a TweetEval sentiment label: {label!r}") from None


def label_from_polarity(polarity: Polarity) -> int:
    """The TweetEval label (0 negative, 1 neutral, 2 positive) of a :class:`Polarity`."""
    return _FROM_POLARITY[Polarity(polarity)]


def _lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file, split on ``\\n`` only (tweets may hold other line breaks)."""
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TweetEvalError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TweetEvalError(f"{path}: cannot read: {exc}") from None
    if content.endswith("\n"):
        content = content[:-1]
    return [line.removesuffix("\r") for line in content.split("\n")] if content else []


def read_tweeteval(directory: str | Path, split: str = "val") -> tuple[list[str], list[int]]:
    """Texts and labels of one split (``val``, ``train`` or ``test``) of TweetEval sentiment.

    Texts are returned as stored, one per line. Raises :class:`TweetEvalError`
    if a file is missing, the two files differ in length, or a label is not
    0, 1 or 2 (the message names the file and line).
    """
    root = Path(directory)
    text_path = root / f"{split}_text.txt"
    label_path = root / f"{split}_labels.txt"
    texts = _lines(text_path)
    raw_labels = _lines(label_path)
    if len(texts) != len(raw_labels):
        raise TweetEvalError(
            f"{text_path.name} has {len(texts)} lines but {label_path.name} has {len(raw_labels)}"
        )
    labels = []
    for number, raw in enumerate(raw_labels, start=1):
        value = raw.strip()
        if value not in {"0", "1", "2"}:
            raise TweetEvalError(f"{label_path}:{number}: label {raw!r} is not 0, 1 or 2")
        labels.append(int(value))
    return texts, labels
