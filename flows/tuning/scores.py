"""Classification metrics for evaluating polarity against labelled data.

Pure: plain Python over sequences of labels, no I/O and no third-party
libraries. Labels can be any hashable values (``Polarity``, ``int``, ``str``).

TweetEval's official sentiment metric is :func:`macro_recall`: the mean of the
per-class recalls, which does not reward predicting the majority class.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

__all__ = [
    "accuracy",
    "confusion_matrix",
    "macro_f1",
    "macro_recall",
    "recalls",
]

L = TypeVar("L", bound=Hashable)


def _check(truth: Sequence[L], predicted: Sequence[L]) -> None:
    """Raise :class:`ValueError` unless both sequences are non-empty and equally long."""
    if len(truth) != len(predicted):
        raise ValueError(f"truth and predicted differ in length: {len(truth)} != {len(predicted)}")
    if not truth:
        raise ValueError("no labels to score")


def _labels(truth: Sequence[L], predicted: Sequence[L], labels: Sequence[L] | None) -> list[L]:
    """``labels`` if given, else the classes seen, in order of first appearance."""
    if labels is not None:
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels repeat a class: {list(labels)!r}")
        return list(labels)
    return list(dict.fromkeys([*truth, *predicted]))


def confusion_matrix(
    truth: Sequence[L], predicted: Sequence[L], labels: Sequence[L] | None = None
) -> list[list[int]]:
    """Counts ``matrix[i][j]`` of items of class ``labels[i]`` predicted as ``labels[j]``.

    ``labels`` defaults to the classes seen, in order of first appearance.
    Raises :class:`ValueError` if the sequences differ in length or are empty,
    or if a label is not in ``labels``.
    """
    _check(truth, predicted)
    classes = _labels(truth, predicted, labels)
    index = {label: i for i, label in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for actual, guess in zip(truth, predicted, strict=True):
        try:
            matrix[index[actual]][index[guess]] += 1
        except KeyError as exc:
            raise ValueError(f"label {exc.args[0]!r} is not one of {classes!r}") from None
    return matrix


def recalls(
    truth: Sequence[L], predicted: Sequence[L], labels: Sequence[L] | None = None
) -> dict[L, float]:
    """Recall of each class: the share of its items predicted as it (0.0 if it has none)."""
    classes = _labels(truth, predicted, labels)
    matrix = confusion_matrix(truth, predicted, classes)
    result: dict[L, float] = {}
    for i, label in enumerate(classes):
        support = sum(matrix[i])
        result[label] = matrix[i][i] / support if support else 0.0
    return result


def macro_recall(
    truth: Sequence[L], predicted: Sequence[L], labels: Sequence[L] | None = None
) -> float:
    """Mean of the per-class recalls (TweetEval's sentiment metric)."""
    per_class = recalls(truth, predicted, labels)
    return sum(per_class.values()) / len(per_class)


def accuracy(truth: Sequence[L], predicted: Sequence[L]) -> float:
    """Share of items whose predicted label equals the true one."""
    _check(truth, predicted)
    hits = sum(actual == guess for actual, guess in zip(truth, predicted, strict=True))
    return hits / len(truth)


def macro_f1(
    truth: Sequence[L], predicted: Sequence[L], labels: Sequence[L] | None = None
) -> float:
    """Mean over classes of the F1 score (0.0 for a class never true nor predicted right)."""
    classes = _labels(truth, predicted, labels)
    matrix = confusion_matrix(truth, predicted, classes)
    scores = []
    for i in range(len(classes)):
        hits = matrix[i][i]
        actual = sum(matrix[i])
        guessed = sum(row[i] for row in matrix)
        scores.append(2 * hits / (actual + guessed) if actual + guessed else 0.0)
    return sum(scores) / len(scores)
