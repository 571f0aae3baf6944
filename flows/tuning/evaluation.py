"""Evaluate senti's polarity against labelled texts (TweetEval sentiment format).

Texts are scored by :meth:`flows.analysis.posts.PostAnalyzer.score_text`, the code
path of the dataflow and ``senti analyze``, so an evaluation measures exactly
what senti does to a post. Labels follow TweetEval: ``0`` negative,
``1`` neutral, ``2`` positive (:mod:`flows.tuning.tweeteval` converts them).

The metrics come from :mod:`flows.tuning.scores`; TweetEval's official sentiment
metric is macro-averaged recall. I/O is limited to :func:`read_labelled` and
:func:`describe_files`, which read the two files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flows.analysis.posts import PostAnalyzer
from flows.analysis.sentiment import Analyzer, Thresholds, classify
from flows.tuning.scores import accuracy, confusion_matrix, macro_f1, macro_recall, recalls
from flows.tuning.tweeteval import (
    LABEL_NEGATIVE,
    LABEL_NEUTRAL,
    LABEL_POSITIVE,
    TweetEvalError,
    label_from_polarity,
)

__all__ = [
    "CLASS_NAMES",
    "LABELS",
    "DatasetFiles",
    "Evaluation",
    "compound_scores",
    "describe_files",
    "evaluate",
    "evaluate_compounds",
    "raw_compound_scores",
    "read_labelled",
]

LABELS: Final = (LABEL_NEGATIVE, LABEL_NEUTRAL, LABEL_POSITIVE)
"""TweetEval labels in the order rows and columns of a confusion matrix use."""
CLASS_NAMES: Final = ("negative", "neutral", "positive")
"""Names of :data:`LABELS`, in the same order."""
_VADER_THRESHOLDS: Final = Thresholds()
"""VADER's recommended ±0.05, the default of the functions below."""


# Reading


def _lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file, split on ``\\n`` only, as :mod:`flows.tuning.tweeteval` reads them."""
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TweetEvalError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TweetEvalError(f"{path}: is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TweetEvalError(f"{path}: cannot read: {exc}") from None
    if content.endswith("\n"):
        content = content[:-1]
    return [line.removesuffix("\r") for line in content.split("\n")] if content else []


def read_labelled(texts: str | Path, labels: str | Path) -> tuple[list[str], list[int]]:
    """Texts (one per line) and their TweetEval labels (one per line) from two files.

    Raises :class:`~flows.tuning.tweeteval.TweetEvalError` if a file is missing or
    unreadable, the files are empty or differ in length, or a label is not
    0, 1 or 2 (the message names the file and line).
    """
    text_path, label_path = Path(texts), Path(labels)
    lines = _lines(text_path)
    raw_labels = _lines(label_path)
    if len(lines) != len(raw_labels):
        raise TweetEvalError(
            f"{text_path} has {len(lines)} lines but {label_path} has {len(raw_labels)}"
        )
    if not lines:
        raise TweetEvalError(f"{text_path} and {label_path} hold no labelled texts")
    values = []
    for number, raw in enumerate(raw_labels, start=1):
        value = raw.strip()
        if value not in {"0", "1", "2"}:
            raise TweetEvalError(
                f"{label_path}:{number}: label {raw!r} is not 0 (negative), "
                "1 (neutral) or 2 (positive)"
            )
        values.append(int(value))
    return lines, values


@dataclass(frozen=True, slots=True)
class DatasetFiles:
    """Where labelled data came from, as a tuning provenance records it."""

    name: str
    texts: str
    labels: str
    texts_sha256: str
    labels_sha256: str


def describe_files(texts: str | Path, labels: str | Path, *, name: str) -> DatasetFiles:
    """The paths (as given) and SHA-256 digests of a texts file and a labels file.

    Raises :class:`~flows.tuning.tweeteval.TweetEvalError` if either cannot be read.
    """

    def digest(path: Path) -> str:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise TweetEvalError(f"{path}: cannot read: {exc.strerror or exc}") from None

    return DatasetFiles(name, str(texts), str(labels), digest(Path(texts)), digest(Path(labels)))


# Scoring


def compound_scores(texts: Iterable[str], analyzer: PostAnalyzer | None = None) -> list[float]:
    """VADER compound score of each text as senti computes it (cleaned, then scored)."""
    analyzer = analyzer or PostAnalyzer()
    return [analyzer.score_text(text).compound for text in texts]


def raw_compound_scores(texts: Iterable[str]) -> list[float]:
    """VADER compound score of each text as written, without senti's cleaning.

    For comparing preprocessing choices only; senti itself always cleans.
    """
    analyzer = Analyzer()
    return [analyzer.compound(text) for text in texts]


# Metrics


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics of predicted against gold TweetEval labels under some thresholds."""

    thresholds: Thresholds
    count: int
    macro_recall: float
    """Mean of the per-class recalls: TweetEval's official sentiment metric."""
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    """Recall of each class, by name (:data:`CLASS_NAMES`)."""
    precision: dict[str, float]
    """Precision of each class, by name (0.0 for a class never predicted)."""
    confusion: tuple[tuple[int, ...], ...]
    """``confusion[i][j]``: texts of gold class ``CLASS_NAMES[i]`` predicted as class ``j``."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary of every figure, ``senti evaluate --json``."""
        return {
            "count": self.count,
            "thresholds": {
                "negative": self.thresholds.negative,
                "positive": self.thresholds.positive,
            },
            "macro_recall": self.macro_recall,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "recall": self.recall,
            "precision": self.precision,
            "confusion_matrix": {
                "labels": list(CLASS_NAMES),
                "rows": "gold",
                "columns": "predicted",
                "counts": [list(row) for row in self.confusion],
            },
        }

    def report(self) -> str:
        """A plain-text report: metrics, then the labelled confusion matrix."""
        t = self.thresholds
        width = max(len(name) for name in CLASS_NAMES) + 2
        lines = [
            f"texts:        {self.count}",
            f"thresholds:   negative <= {t.negative:g}, positive >= {t.positive:g}",
            f"macro-recall: {self.macro_recall:.4f}  (TweetEval's official metric)",
            f"accuracy:     {self.accuracy:.4f}",
            f"macro-F1:     {self.macro_f1:.4f}",
            "",
            f"{'class':<{width}}{'precision':>10}{'recall':>10}",
        ]
        lines += [
            f"{name:<{width}}{self.precision[name]:>10.4f}{self.recall[name]:>10.4f}"
            for name in CLASS_NAMES
        ]
        lines += [
            "",
            "confusion matrix (rows: gold, columns: predicted)",
            " " * width + "".join(f"{name:>{width}}" for name in CLASS_NAMES),
        ]
        lines += [
            f"{name:<{width}}" + "".join(f"{count:>{width}}" for count in row)
            for name, row in zip(CLASS_NAMES, self.confusion, strict=True)
        ]
        return "\n".join(lines)


def _evaluation(
    gold: Sequence[int], predicted: Sequence[int], thresholds: Thresholds
) -> Evaluation:
    matrix = confusion_matrix(gold, predicted, LABELS)
    per_class = recalls(gold, predicted, LABELS)
    precision = {}
    for j, name in enumerate(CLASS_NAMES):
        guessed = sum(row[j] for row in matrix)
        precision[name] = matrix[j][j] / guessed if guessed else 0.0
    return Evaluation(
        thresholds=thresholds,
        count=len(gold),
        macro_recall=macro_recall(gold, predicted, LABELS),
        accuracy=accuracy(gold, predicted),
        macro_f1=macro_f1(gold, predicted, LABELS),
        recall={name: per_class[label] for label, name in zip(LABELS, CLASS_NAMES, strict=True)},
        precision=precision,
        confusion=tuple(tuple(row) for row in matrix),
    )


def evaluate(
    texts: Sequence[str], labels: Sequence[int], thresholds: Thresholds = _VADER_THRESHOLDS
) -> Evaluation:
    """Score ``texts`` with :class:`~flows.analysis.posts.PostAnalyzer` and compare with ``labels``.

    Raises :class:`ValueError` if the sequences are empty or differ in length,
    or a label is not 0, 1 or 2.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    analyzer = PostAnalyzer(thresholds)
    predicted = [label_from_polarity(analyzer.score_text(text).polarity) for text in texts]
    return _evaluation(labels, predicted, thresholds)


def evaluate_compounds(
    compounds: Sequence[float], labels: Sequence[int], thresholds: Thresholds = _VADER_THRESHOLDS
) -> Evaluation:
    """Like :func:`evaluate` for texts already scored (:func:`compound_scores`).

    Classifies with :func:`flows.analysis.sentiment.classify`, as the analyser does, so
    the result equals :func:`evaluate` on the texts the scores came from.
    """
    if len(compounds) != len(labels):
        raise ValueError(f"{len(compounds)} scores but {len(labels)} labels")
    predicted = [label_from_polarity(classify(c, thresholds)) for c in compounds]
    return _evaluation(labels, predicted, thresholds)
