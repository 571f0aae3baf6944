"""Tests for flows.tuning.thresholds (threshold sweep, folds, config) and evaluation."""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from flows.analysis.sentiment import Thresholds, classify, load_thresholds
from flows.tuning.evaluation import (
    CLASS_NAMES,
    compound_scores,
    evaluate,
    evaluate_compounds,
    read_labelled,
)
from flows.tuning.scores import macro_recall
from flows.tuning.thresholds import (
    Grid,
    config_toml,
    macro_recall_grid,
    predict_labels,
    stratified_folds,
    tune_thresholds,
)
from flows.tuning.tweeteval import TweetEvalError, label_from_polarity
from tests.helpers.tweeteval_files import require_tweeteval

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def synthetic_scores(n: int = 600, seed: int = 1) -> tuple[list[float], list[int]]:
    """Compound-like scores whose class shifts their mean, with ties on grid values."""
    rng = random.Random(seed)
    scores, labels = [], []
    for _ in range(n):
        label = rng.choice([0, 1, 1, 2])
        centre = {0: -0.4, 1: 0.0, 2: 0.4}[label]
        value = max(-1.0, min(1.0, rng.gauss(centre, 0.35)))
        # Rounded like VADER's compound, so many scores sit exactly on grid values.
        scores.append(round(value, 2 if rng.random() < 0.3 else 4))
        labels.append(label)
    return scores, labels


def reference_macro_recall(scores: list[float], labels: list[int], t: Thresholds) -> float:
    """Macro-recall computed the slow way, with classify and flows.tuning.scores."""
    predicted = [label_from_polarity(classify(c, t)) for c in scores]
    present = sorted(set(labels))
    return macro_recall(labels, predicted, present)


# Grid


def test_grid_axes_are_exact_decimals() -> None:
    """Grid values are the floats their decimal spelling reads as (0.07 is 0.07)."""
    grid = Grid()
    assert grid.negatives()[0] == -0.5
    assert grid.negatives()[-1] == 0.0
    assert len(grid.positives()) == 51
    assert [float(v) for v in grid.positives()[:8]] == [
        0.0,
        0.01,
        0.02,
        0.03,
        0.04,
        0.05,
        0.06,
        0.07,
    ]
    assert all(float(repr(float(v))) == v for v in grid.negatives())
    assert grid.pairs() == 51 * 51


def test_grid_rejects_bad_ranges() -> None:
    """A non-positive step, reversed range or out-of-range value raises ValueError."""
    for kwargs in (
        {"step": 0.0},
        {"negative_min": 0.2, "negative_max": 0.1},
        {"positive_max": 1.5},
    ):
        with pytest.raises(ValueError, match=r"grid|range"):
            Grid(**kwargs)  # type: ignore[arg-type]


# Vectorised classification


def test_predict_labels_matches_classify_on_boundaries() -> None:
    """The vectorised classifier agrees with classify, inclusive boundaries included."""
    values = [-1.0, -0.3, -0.0501, -0.05, -0.0499, 0.0, 0.0499, 0.05, 0.0501, 0.35, 1.0]
    for t in (Thresholds(), Thresholds(-0.3, 0.35), Thresholds(0.0, 0.0)):
        expected = [label_from_polarity(classify(v, t)) for v in values]
        assert predict_labels(values, t).tolist() == expected


def test_macro_recall_grid_matches_slow_path() -> None:
    """Every grid cell equals macro-recall computed with classify and flows.tuning.scores."""
    scores, labels = synthetic_scores()
    neg = np.array([-0.5, -0.3, -0.05, 0.0, 0.1])
    pos = np.array([0.0, 0.05, 0.1, 0.3])
    grid = macro_recall_grid(scores, labels, neg, pos)
    for i, n in enumerate(neg):
        for j, p in enumerate(pos):
            if n > p:
                assert np.isnan(grid[i, j])
            else:
                expected = reference_macro_recall(scores, labels, Thresholds(float(n), float(p)))
                assert grid[i, j] == pytest.approx(expected, abs=1e-12)


def test_macro_recall_grid_rejects_mismatched_inputs() -> None:
    """Scores and labels of different lengths, or none at all, raise ValueError."""
    with pytest.raises(ValueError, match="labels"):
        macro_recall_grid([0.1, 0.2], [1], [0.0], [0.0])
    with pytest.raises(ValueError, match="no labelled"):
        macro_recall_grid([], [], [0.0], [0.0])


# Folds


def test_stratified_folds_partition_and_are_deterministic() -> None:
    """Folds cover every index once, balance each class, and depend only on the seed."""
    _, labels = synthetic_scores(503)
    folds = stratified_folds(labels, 5, seed=7)
    joined = np.sort(np.concatenate(folds))
    assert joined.tolist() == list(range(503))
    y = np.asarray(labels)
    for label in (0, 1, 2):
        sizes = [int(np.count_nonzero(y[f] == label)) for f in folds]
        assert max(sizes) - min(sizes) <= 1
    assert [f.tolist() for f in stratified_folds(labels, 5, seed=7)] == [f.tolist() for f in folds]
    assert [f.tolist() for f in stratified_folds(labels, 5, seed=8)] != [f.tolist() for f in folds]


def test_stratified_folds_rejects_bad_counts() -> None:
    """Fewer than two folds, or more folds than items, raise ValueError."""
    with pytest.raises(ValueError, match="folds"):
        stratified_folds([0, 1, 2], 1, seed=0)
    with pytest.raises(ValueError, match="folds"):
        stratified_folds([0, 1, 2], 4, seed=0)


# Tuning


def test_tune_chooses_the_best_mean_fold_pair() -> None:
    """The chosen pair maximises mean fold macro-recall and its fold scores are reported."""
    scores, labels = synthetic_scores()
    grid = Grid(step=0.05)
    result = tune_thresholds(scores, labels, grid=grid, folds=4, seed=3)
    neg, pos = grid.negatives(), grid.positives()
    best = np.nanmax(result.cv_mean_grid)
    i = int(np.flatnonzero(neg == result.thresholds.negative)[0])
    j = int(np.flatnonzero(pos == result.thresholds.positive)[0])
    assert result.cv_mean_grid[i, j] == pytest.approx(best)
    assert result.cv_mean == pytest.approx(best)
    assert len(result.cv_scores) == 4
    assert len(result.fold_best) == 4
    assert result.cv_std >= 0
    assert result.full_score == pytest.approx(
        reference_macro_recall(scores, labels, result.thresholds)
    )
    assert result.baseline_full_score == pytest.approx(
        reference_macro_recall(scores, labels, Thresholds())
    )
    assert result.cv_mean >= result.baseline_cv_mean


def test_tune_fold_best_is_scored_on_held_out_fold() -> None:
    """Each fold-wise best pair is best on the other folds and scored on its own fold."""
    scores, labels = synthetic_scores()
    result = tune_thresholds(scores, labels, grid=Grid(step=0.1), folds=3, seed=0)
    folds = stratified_folds(labels, 3, seed=0)
    c, y = np.asarray(scores), np.asarray(labels)
    for fold, best in zip(folds, result.fold_best, strict=True):
        held_out = reference_macro_recall(c[fold].tolist(), y[fold].tolist(), best.thresholds)
        assert best.test_score == pytest.approx(held_out)
        train = np.setdiff1d(np.arange(c.size), fold)
        trained = reference_macro_recall(c[train].tolist(), y[train].tolist(), best.thresholds)
        assert best.train_score == pytest.approx(trained)


def test_tune_is_deterministic_and_breaks_ties_towards_baseline() -> None:
    """Same inputs give the same result; on a flat grid the baseline itself wins."""
    scores, labels = synthetic_scores()
    first = tune_thresholds(scores, labels, grid=Grid(step=0.05), seed=2)
    again = tune_thresholds(scores, labels, grid=Grid(step=0.05), seed=2)
    assert (first.thresholds, first.cv_scores) == (again.thresholds, again.cv_scores)
    # Scores far from every threshold: all pairs tie, so the nearest to ±0.05 is kept.
    flat = tune_thresholds([-0.9, 0.9] * 10 + [0.0001] * 10, [0, 2] * 10 + [1] * 10)
    assert flat.thresholds == Thresholds(-0.05, 0.05)


def test_tune_rejects_bad_labels() -> None:
    """A label other than 0, 1 or 2 raises ValueError."""
    with pytest.raises(ValueError, match="labels must be"):
        tune_thresholds([0.1] * 10, [3] * 10)


def test_report_names_baseline_chosen_and_spread() -> None:
    """The report shows both pairs with CV mean ± std and the spread of fold-wise bests."""
    scores, labels = synthetic_scores()
    report = tune_thresholds(scores, labels, grid=Grid(step=0.05)).report()
    assert "(baseline)" in report
    assert "(chosen)" in report
    assert "spread: negative" in report
    assert "±" in report


# Config


def test_config_round_trips_through_load_thresholds(tmp_path: Path) -> None:
    """The written config loads with load_thresholds and its provenance is valid TOML."""
    scores, labels = synthetic_scores()
    result = tune_thresholds(scores, labels, grid=Grid(step=0.01))
    text = config_toml(
        result,
        dataset='odd "name"\\ with\tcontrol\x7f and é',
        texts="data/val_text.txt",
        labels="data/val_labels.txt",
        created=datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        version="0.1.0",
        texts_sha256="ab" * 32,
    )
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    assert load_thresholds(path) == result.thresholds
    document = tomllib.loads(text)
    provenance = document["provenance"]
    assert provenance["dataset"] == 'odd "name"\\ with\tcontrol\x7f and é'
    assert provenance["created"] == CREATED
    assert provenance["metric"] == "macro_recall"
    assert provenance["cv"]["folds"] == 5
    assert provenance["cv"]["scores"] == pytest.approx(list(result.cv_scores), abs=1e-6)
    assert provenance["grid"] == {
        "negative": [-0.5, 0.0],
        "positive": [0.0, 0.5],
        "step": 0.01,
        "pairs": 2601,
    }
    assert "labels_sha256" not in provenance
    assert text.startswith("# VADER compound cut-offs")


def test_config_requires_aware_datetime() -> None:
    """A naive creation time raises ValueError."""
    scores, labels = synthetic_scores()
    result = tune_thresholds(scores, labels, grid=Grid(step=0.1))
    with pytest.raises(ValueError, match="timezone-aware"):
        config_toml(
            result,
            dataset="d",
            texts="t",
            labels="l",
            created=datetime(2024, 5, 1),  # noqa: DTZ001 - the point of the test
            version="0",
        )


def test_shipped_default_has_provenance() -> None:
    """The shipped thresholds config was written by tuning and records how."""
    from importlib import resources

    text = resources.files("flows").joinpath("defaults", "thresholds.toml").read_text("utf-8")
    document = tomllib.loads(text)
    assert load_thresholds() == Thresholds(**document["thresholds"])
    assert document["provenance"]["metric"] == "macro_recall"
    assert document["provenance"]["cv"]["folds"] >= 2
    assert "inclusive" in text


# Evaluation


def test_read_labelled_reports_problems(tmp_path: Path) -> None:
    """Missing files, length mismatches and bad labels raise TweetEvalError naming the file."""
    texts = tmp_path / "t.txt"
    labels = tmp_path / "l.txt"
    texts.write_text("good\nbad\n", encoding="utf-8")
    labels.write_text("2\n0\n", encoding="utf-8")
    assert read_labelled(texts, labels) == (["good", "bad"], [2, 0])
    with pytest.raises(TweetEvalError, match=r"missing\.txt: file not found"):
        read_labelled(tmp_path / "missing.txt", labels)
    labels.write_text("2\n", encoding="utf-8")
    with pytest.raises(TweetEvalError, match=r"2 lines but .* has 1"):
        read_labelled(texts, labels)
    labels.write_text("2\npositive\n", encoding="utf-8")
    with pytest.raises(TweetEvalError, match=r"l\.txt:2: label 'positive'"):
        read_labelled(texts, labels)


def test_evaluate_matches_evaluate_compounds_on_tweeteval() -> None:
    """Scoring texts and classifying precomputed scores give identical evaluations."""
    directory = require_tweeteval()
    texts, labels = read_labelled(directory / "val_text.txt", directory / "val_labels.txt")
    texts, labels = texts[:300], labels[:300]
    scores = compound_scores(texts)
    for t in (Thresholds(), Thresholds(-0.08, 0.35)):
        assert evaluate(texts, labels, t) == evaluate_compounds(scores, labels, t)


def test_evaluation_figures_are_consistent() -> None:
    """Confusion rows sum to class support and recall/precision follow from them."""
    scores, labels = synthetic_scores()
    result = evaluate_compounds(scores, labels, Thresholds(-0.2, 0.2))
    assert sum(map(sum, result.confusion)) == len(labels)
    for i, name in enumerate(CLASS_NAMES):
        row = result.confusion[i]
        column = [r[i] for r in result.confusion]
        assert result.recall[name] == pytest.approx(row[i] / sum(row))
        assert result.precision[name] == pytest.approx(column[i] / sum(column))
    assert result.macro_recall == pytest.approx(sum(result.recall.values()) / 3)
    assert "confusion matrix" in result.report()
