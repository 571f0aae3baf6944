"""Tests for flows.tuning.scores: confusion matrix, recall, accuracy and F1."""

from __future__ import annotations

import pytest

from flows.model import Polarity
from flows.tuning.scores import accuracy, confusion_matrix, macro_f1, macro_recall, recalls

TRUTH = ["neg", "neg", "neu", "neu", "neu", "pos"]
GUESS = ["neg", "neu", "neu", "neu", "pos", "pos"]
LABELS = ["neg", "neu", "pos"]


def test_confusion_matrix_rows_are_truth() -> None:
    """Rows count true classes and columns predicted ones, in label order."""
    assert confusion_matrix(TRUTH, GUESS, LABELS) == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]


def test_confusion_matrix_default_labels_in_first_seen_order() -> None:
    """Without labels, classes appear in the order first seen."""
    assert confusion_matrix(["b", "a"], ["a", "a"]) == [[0, 1], [0, 1]]


def test_recalls_per_class() -> None:
    """Recall is the share of each class predicted as itself."""
    assert recalls(TRUTH, GUESS, LABELS) == {"neg": 0.5, "neu": pytest.approx(2 / 3), "pos": 1.0}


def test_macro_recall_is_mean_of_recalls() -> None:
    """Macro recall averages the per-class recalls, whatever the class sizes."""
    assert macro_recall(TRUTH, GUESS, LABELS) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_macro_recall_ignores_majority_guessing() -> None:
    """Predicting only the majority class scores one over the number of classes."""
    assert macro_recall(TRUTH, ["neu"] * len(TRUTH), LABELS) == pytest.approx(1 / 3)


def test_class_without_items_has_zero_recall() -> None:
    """A listed class with no true items contributes a recall of 0."""
    assert recalls(["a"], ["a"], ["a", "b"]) == {"a": 1.0, "b": 0.0}


def test_accuracy() -> None:
    """Accuracy is the share of exact hits."""
    assert accuracy(TRUTH, GUESS) == pytest.approx(4 / 6)


def test_macro_f1() -> None:
    """Macro F1 averages per-class F1 = 2 hits / (true + predicted)."""
    expected = (2 * 1 / 3 + 2 * 2 / 6 + 2 * 1 / 3) / 3
    assert macro_f1(TRUTH, GUESS, LABELS) == pytest.approx(expected)


def test_perfect_prediction_scores_one() -> None:
    """Predicting the truth scores 1 on every metric."""
    assert macro_recall(TRUTH, TRUTH) == 1.0
    assert accuracy(TRUTH, TRUTH) == 1.0
    assert macro_f1(TRUTH, TRUTH) == 1.0


def test_metrics_work_on_polarity() -> None:
    """Polarity values are labels like any other."""
    truth = [Polarity.POSITIVE, Polarity.NEGATIVE]
    assert macro_recall(truth, [Polarity.POSITIVE, Polarity.NEUTRAL], list(Polarity)) == (
        pytest.approx(1 / 3)
    )


@pytest.mark.parametrize(
    ("truth", "predicted", "labels", "message"),
    [
        (["a"], ["a", "b"], None, "differ in length"),
        ([], [], None, "no labels"),
        (["a"], ["c"], ["a", "b"], "not one of"),
        (["a"], ["a"], ["a", "a"], "repeat"),
    ],
)
def test_bad_input_raises(
    truth: list[str], predicted: list[str], labels: list[str] | None, message: str
) -> None:
    """Mismatched lengths, empty input, unknown or repeated labels raise ValueError."""
    with pytest.raises(ValueError, match=message):
        confusion_matrix(truth, predicted, labels)
