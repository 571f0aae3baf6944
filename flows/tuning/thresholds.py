"""Choose VADER thresholds by cross-validated macro-recall on labelled data.

Pure: no I/O, no wall clock. Callers score the texts once
(:func:`flows.tuning.evaluation.compound_scores`, the dataflow's code path) and pass
the compound scores with their TweetEval labels (0 negative, 1 neutral,
2 positive); everything after that is vectorised over the whole grid.

Method
------
* The grid holds every pair ``(negative, positive)`` with ``negative`` from
  ``negative_min`` to ``negative_max`` and ``positive`` from ``positive_min``
  to ``positive_max`` in steps of ``step``, keeping ``negative <= positive``.
  Classification is :func:`flows.analysis.sentiment.classify`'s: positive if
  ``compound >= positive``, else negative if ``compound <= negative``.
* The labelled texts are split into ``folds`` stratified folds (each class is
  shuffled with ``numpy.random.default_rng(seed)`` and dealt round-robin), so
  the folds are the same for the same seed and data.
* Every pair is scored on every fold; the chosen pair maximises the mean
  fold macro-recall. Ties go to the pair nearest the baseline (±0.05), then to
  the first in grid order. The report gives the chosen pair's mean and sample
  standard deviation across folds next to the baseline's.
* The selection itself is also cross-validated: for each fold the best pair on
  the *other* folds is scored on the held-out fold. The spread of these
  fold-wise best pairs shows how sharp the optimum is, and their held-out
  scores estimate what tuning gains on unseen data (the chosen pair's own
  fold scores are slightly optimistic, since the folds also chose it).

Macro-recall is the mean recall over the classes present in the scored
subset (all three in any realistic fold).

One module of about 550 lines on purpose: the sweep, the folds and the config
it writes are one procedure, read from top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from flows.analysis.sentiment import Thresholds
from flows.tuning.tweeteval import LABEL_NEGATIVE, LABEL_NEUTRAL, LABEL_POSITIVE

__all__ = [
    "CONFIG_HEADER",
    "FoldBest",
    "Grid",
    "TuningResult",
    "config_toml",
    "macro_recall_grid",
    "predict_labels",
    "stratified_folds",
    "tune_thresholds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CLASSES: Final = (
    (LABEL_NEGATIVE, "negative"),
    (LABEL_NEUTRAL, "neutral"),
    (LABEL_POSITIVE, "positive"),
)
_VADER_THRESHOLDS: Final = Thresholds()
"""VADER's recommended ±0.05, the default baseline."""
_DECIMALS: Final = 10
"""Grid values are rounded to this many decimals, so ``0.07`` is the float ``0.07``."""

CONFIG_HEADER: Final = """\
# VADER compound cut-offs used by senti (see flows/analysis/sentiment.py and docs/tuning.md).
# positive: compound >= positive; negative: compound <= negative; neutral otherwise.
# Both boundaries are inclusive. senti reads only [thresholds]; [provenance]
# records how `senti tune` chose the values (docs/tuning.md explains each key).
"""


# Grid


@dataclass(frozen=True, slots=True)
class Grid:
    """The ``(negative, positive)`` pairs a tuning run tries (module docstring).

    Raises :class:`ValueError` for a step that is not positive or is wider
    than both ranges, a range whose minimum exceeds its maximum, values
    outside ``[-1, 1]``, or a grid with no pair satisfying
    ``negative <= positive``.
    """

    negative_min: float = -0.5
    negative_max: float = 0.0
    positive_min: float = 0.0
    positive_max: float = 0.5
    step: float = 0.01

    def __post_init__(self) -> None:
        if not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"grid step must be positive, not {self.step!r}")
        for low, high, name in (
            (self.negative_min, self.negative_max, "negative"),
            (self.positive_min, self.positive_max, "positive"),
        ):
            if not -1.0 <= low <= high <= 1.0:
                raise ValueError(
                    f"{name} range must satisfy -1 <= min <= max <= 1, got [{low}, {high}]"
                )
        widest = max(self.negative_max - self.negative_min, self.positive_max - self.positive_min)
        if widest > 0 and self.step > widest:
            raise ValueError(f"grid step {self.step} is wider than the grid's ranges")
        if self.negative_min > self.positive_max:
            raise ValueError("grid has no pair with negative <= positive")

    def negatives(self) -> FloatArray:
        """Negative thresholds tried, ascending."""
        return _axis(self.negative_min, self.negative_max, self.step)

    def positives(self) -> FloatArray:
        """Positive thresholds tried, ascending."""
        return _axis(self.positive_min, self.positive_max, self.step)

    def pairs(self) -> int:
        """How many pairs with ``negative <= positive`` the grid holds."""
        return int(np.count_nonzero(self.negatives()[:, None] <= self.positives()[None, :]))


def _axis(low: float, high: float, step: float) -> FloatArray:
    """``low, low + step, ...`` up to ``high`` (included when on the grid), rounded."""
    first = math.ceil(round(low / step, 6))
    last = math.floor(round(high / step, 6))
    values = np.round(np.arange(first, last + 1, dtype=np.float64) * step, _DECIMALS)
    return values + 0.0  # turns -0.0 into 0.0


# Vectorised classification and scoring


def predict_labels(compounds: npt.ArrayLike, thresholds: Thresholds) -> IntArray:
    """TweetEval labels :func:`flows.analysis.sentiment.classify` gives each compound score."""
    c = np.asarray(compounds, dtype=np.float64)
    return np.where(
        c >= thresholds.positive,
        LABEL_POSITIVE,
        np.where(c <= thresholds.negative, LABEL_NEGATIVE, LABEL_NEUTRAL),
    ).astype(np.int64)


def macro_recall_grid(
    compounds: npt.ArrayLike,
    labels: npt.ArrayLike,
    negatives: npt.ArrayLike,
    positives: npt.ArrayLike,
) -> FloatArray:
    """Macro-recall of every ``(negatives[i], positives[j])`` pair, as a matrix.

    ``result[i, j]`` is NaN where ``negatives[i] > positives[j]``. Costs one
    sort per class and a binary search per threshold, whatever the grid size.
    Raises :class:`ValueError` if the inputs differ in length or are empty.
    """
    c = np.asarray(compounds, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"{c.size} scores but {y.size} labels")
    if c.size == 0:
        raise ValueError("no labelled scores")
    equal = neg[:, None] == pos[None, :]
    total = np.zeros((neg.size, pos.size))
    present = 0
    for label, _ in _CLASSES:
        scores = np.sort(c[y == label])
        support = scores.size
        if support == 0:
            continue
        present += 1
        at_least_positive = support - np.searchsorted(scores, pos, side="left")  # c >= p
        # Negative means c <= n and not positive: c <= n when n < p, c < n when n == p.
        at_most_negative = np.where(
            equal,
            np.searchsorted(scores, neg, side="left")[:, None],
            np.searchsorted(scores, neg, side="right")[:, None],
        )
        if label == LABEL_POSITIVE:
            hits = np.broadcast_to(at_least_positive[None, :], total.shape)
        elif label == LABEL_NEGATIVE:
            hits = at_most_negative
        else:
            hits = support - at_least_positive[None, :] - at_most_negative
        total += hits / support
    result = total / present
    result[neg[:, None] > pos[None, :]] = np.nan
    return result


def stratified_folds(labels: npt.ArrayLike, folds: int, seed: int) -> list[IntArray]:
    """Indices of ``folds`` disjoint folds covering ``labels``, stratified by class.

    Each class's indices are shuffled by ``numpy.random.default_rng(seed)`` and
    dealt round-robin, so fold sizes differ by at most one per class. Raises
    :class:`ValueError` unless ``2 <= folds <= len(labels)``.
    """
    y = np.asarray(labels, dtype=np.int64)
    if not 2 <= folds <= y.size:
        raise ValueError(f"folds must be between 2 and the {y.size} labelled texts, not {folds}")
    rng = np.random.default_rng(seed)
    parts: list[list[IntArray]] = [[] for _ in range(folds)]
    dealt = 0
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        for k in range(folds):
            parts[k].append(members[(k - dealt) % folds :: folds])
        dealt += members.size
    return [np.sort(np.concatenate(part)).astype(np.int64) for part in parts]


# Tuning


@dataclass(frozen=True, slots=True)
class FoldBest:
    """The best pair on all folds but one, and its score on the held-out fold."""

    thresholds: Thresholds
    train_score: float
    test_score: float


@dataclass(frozen=True, slots=True, eq=False)
class TuningResult:
    """A tuning run: the chosen thresholds and the evidence for them."""

    thresholds: Thresholds
    """The chosen pair: the best mean macro-recall across folds."""
    baseline: Thresholds
    grid: Grid
    folds: int
    seed: int
    count: int
    class_counts: dict[str, int]
    cv_scores: tuple[float, ...]
    """Macro-recall of the chosen pair on each fold."""
    baseline_cv_scores: tuple[float, ...]
    full_score: float
    """Macro-recall of the chosen pair on all the data."""
    baseline_full_score: float
    fold_best: tuple[FoldBest, ...]
    """For each fold, the best pair on the other folds and its held-out score."""
    cv_mean_grid: FloatArray = field(repr=False)
    """Mean fold macro-recall of every pair (rows: negatives, columns: positives)."""
    full_grid: FloatArray = field(repr=False)
    """Macro-recall of every pair on all the data."""

    @property
    def cv_mean(self) -> float:
        """Mean of :attr:`cv_scores`."""
        return float(np.mean(self.cv_scores))

    @property
    def cv_std(self) -> float:
        """Sample standard deviation of :attr:`cv_scores`."""
        return _std(self.cv_scores)

    @property
    def baseline_cv_mean(self) -> float:
        """Mean of :attr:`baseline_cv_scores`."""
        return float(np.mean(self.baseline_cv_scores))

    @property
    def baseline_cv_std(self) -> float:
        """Sample standard deviation of :attr:`baseline_cv_scores`."""
        return _std(self.baseline_cv_scores)

    @property
    def nested_scores(self) -> tuple[float, ...]:
        """Held-out scores of the fold-wise best pairs (selection cross-validated)."""
        return tuple(best.test_score for best in self.fold_best)

    @property
    def nested_gains(self) -> tuple[float, ...]:
        """Per fold, held-out score of the fold-wise best pair minus the baseline's."""
        return tuple(
            best.test_score - base
            for best, base in zip(self.fold_best, self.baseline_cv_scores, strict=True)
        )

    @property
    def on_edge(self) -> bool:
        """Whether the chosen pair lies on the grid's outer edge (widen the grid)."""
        g = self.grid
        return bool(
            np.isclose(self.thresholds.negative, g.negatives()[0])
            or np.isclose(self.thresholds.positive, g.positives()[-1])
        )

    def report(self) -> str:
        """A plain-text report of the run, as ``senti tune`` prints it."""
        t, b = self.thresholds, self.baseline
        negs = [best.thresholds.negative for best in self.fold_best]
        poss = [best.thresholds.positive for best in self.fold_best]
        nested = self.nested_scores
        counts = ", ".join(f"{name} {n}" for name, n in self.class_counts.items())
        g = self.grid
        lines = [
            f"texts: {self.count} ({counts})",
            f"grid: negative {g.negative_min:g}..{g.negative_max:g}, "
            f"positive {g.positive_min:g}..{g.positive_max:g}, step {g.step:g} "
            f"({g.pairs()} pairs)",
            f"cross-validation: {self.folds} stratified folds, seed {self.seed}; "
            "metric: macro-recall",
            "",
            f"{'thresholds':<28}{'CV mean ± std':>18}{'full set':>10}",
            f"{_pair(b) + ' (baseline)':<28}"
            f"{self.baseline_cv_mean:>10.4f} ± {self.baseline_cv_std:.4f}"
            f"{self.baseline_full_score:>10.4f}",
            f"{_pair(t) + ' (chosen)':<28}"
            f"{self.cv_mean:>10.4f} ± {self.cv_std:.4f}{self.full_score:>10.4f}",
            "",
            "fold-wise best pairs (chosen on the other folds, scored on the held-out fold):",
        ]
        lines += [
            f"  fold {k + 1}: {_pair(best.thresholds):<20} "
            f"train {best.train_score:.4f}  held-out {best.test_score:.4f}"
            for k, best in enumerate(self.fold_best)
        ]
        lines += [
            f"  spread: negative {min(negs):g}..{max(negs):g}, "
            f"positive {min(poss):g}..{max(poss):g}; "
            f"held-out {np.mean(nested):.4f} ± {_std(nested):.4f}",
            f"  held-out gain over the baseline, paired by fold: "
            f"{np.mean(self.nested_gains):+.4f} ± {_std(self.nested_gains):.4f}",
        ]
        if self.on_edge:
            lines.append("warning: the chosen pair lies on the grid's edge; widen the grid")
        return "\n".join(lines)


def _pair(t: Thresholds) -> str:
    return f"({t.negative:g}, {t.positive:g})"


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _best(
    scores: FloatArray, neg: FloatArray, pos: FloatArray, baseline: Thresholds
) -> tuple[int, int]:
    """Index of the best pair; ties go to the pair nearest ``baseline``, then grid order."""
    top = np.nanmax(scores)
    tied = np.isclose(scores, top, rtol=0.0, atol=1e-12) & ~np.isnan(scores)
    distance = np.abs(neg[:, None] - baseline.negative) + np.abs(pos[None, :] - baseline.positive)
    distance = np.where(tied, distance, np.inf)
    i, j = np.unravel_index(int(np.argmin(distance)), scores.shape)
    return int(i), int(j)


def _thresholds(neg: FloatArray, pos: FloatArray, index: tuple[int, int]) -> Thresholds:
    return Thresholds(negative=float(neg[index[0]]), positive=float(pos[index[1]]))


def tune_thresholds(
    compounds: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    grid: Grid = Grid(),
    folds: int = 5,
    seed: int = 0,
    baseline: Thresholds = _VADER_THRESHOLDS,
) -> TuningResult:
    """Choose thresholds for ``compounds`` by ``folds``-fold cross-validated macro-recall.

    ``labels`` are TweetEval labels (0 negative, 1 neutral, 2 positive).
    Raises :class:`ValueError` if the inputs differ in length, are empty, hold
    another label, or are fewer than ``folds``.
    """
    c = np.asarray(compounds, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"{c.size} scores but {y.size} labels")
    if c.size == 0:
        raise ValueError("no labelled scores")
    known = [label for label, _ in _CLASSES]
    if not np.isin(y, known).all():
        raise ValueError("labels must be 0 (negative), 1 (neutral) or 2 (positive)")
    neg, pos = grid.negatives(), grid.positives()
    parts = stratified_folds(y, folds, seed)
    fold_grids = np.stack([macro_recall_grid(c[p], y[p], neg, pos) for p in parts])
    mean_grid = fold_grids.mean(axis=0)
    chosen = _best(mean_grid, neg, pos, baseline)

    base_neg, base_pos = np.array([baseline.negative]), np.array([baseline.positive])
    baseline_cv = tuple(
        float(macro_recall_grid(c[p], y[p], base_neg, base_pos)[0, 0]) for p in parts
    )
    fold_best = []
    for k, part in enumerate(parts):
        train = np.ones(c.size, dtype=bool)
        train[part] = False
        train_grid = macro_recall_grid(c[train], y[train], neg, pos)
        best = _best(train_grid, neg, pos, baseline)
        fold_best.append(
            FoldBest(
                thresholds=_thresholds(neg, pos, best),
                train_score=float(train_grid[best]),
                test_score=float(fold_grids[k][best]),
            )
        )
    full_grid = macro_recall_grid(c, y, neg, pos)
    return TuningResult(
        thresholds=_thresholds(neg, pos, chosen),
        baseline=baseline,
        grid=grid,
        folds=folds,
        seed=seed,
        count=int(c.size),
        class_counts={name: int(np.count_nonzero(y == label)) for label, name in _CLASSES},
        cv_scores=tuple(float(s) for s in fold_grids[(slice(None), *chosen)]),
        baseline_cv_scores=baseline_cv,
        full_score=float(full_grid[chosen]),
        baseline_full_score=float(macro_recall_grid(c, y, base_neg, base_pos)[0, 0]),
        fold_best=tuple(fold_best),
        cv_mean_grid=mean_grid,
        full_grid=full_grid,
    )


# Config


def config_toml(
    result: TuningResult,
    *,
    dataset: str,
    texts: str,
    labels: str,
    created: datetime,
    version: str,
    texts_sha256: str | None = None,
    labels_sha256: str | None = None,
    header: str = CONFIG_HEADER,
) -> str:
    """The thresholds config of ``result``: ``[thresholds]`` plus a ``[provenance]`` table.

    ``load_thresholds`` reads it (and ignores the provenance). ``created``
    must be timezone-aware; it is written in UTC. ``version`` is senti's.
    """
    if created.tzinfo is None:
        raise ValueError("created must be a timezone-aware datetime")
    t, b, g = result.thresholds, result.baseline, result.grid
    stamp = created.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    files = [("texts", texts), ("labels", labels)]
    digests = [("texts_sha256", texts_sha256), ("labels_sha256", labels_sha256)]
    lines = [
        header.rstrip("\n"),
        "[thresholds]",
        f"negative = {_exact(t.negative)}",
        f"positive = {_exact(t.positive)}",
        "",
        "[provenance]",
        'tool = "senti tune"',
        f"senti_version = {_str(version)}",
        f"created = {stamp}",
        f"dataset = {_str(dataset)}",
        *(f"{key} = {_str(value)}" for key, value in files),
        *(f"{key} = {_str(value)}" for key, value in digests if value is not None),
        f"examples = {result.count}",
        'scoring = "flows.analysis.posts.PostAnalyzer.score_text '
        '(clean_for_polarity, VADER compound)"',
        'metric = "macro_recall"',
        'selection = "best mean macro-recall across folds; ties nearest the baseline"',
        f"macro_recall = {_num(result.full_score)}",
        f"baseline = [{_num(b.negative)}, {_num(b.positive)}]",
        f"baseline_macro_recall = {_num(result.baseline_full_score)}",
        "",
        "[provenance.class_counts]",
        *(f"{name} = {count}" for name, count in result.class_counts.items()),
        "",
        "[provenance.grid]",
        f"negative = [{_num(g.negative_min)}, {_num(g.negative_max)}]",
        f"positive = [{_num(g.positive_min)}, {_num(g.positive_max)}]",
        f"step = {_num(g.step)}",
        f"pairs = {g.pairs()}",
        "",
        "[provenance.cv]",
        f"folds = {result.folds}",
        f"seed = {result.seed}",
        "stratified = true",
        f"scores = {_nums(result.cv_scores)}",
        f"mean = {_num(result.cv_mean)}",
        f"std = {_num(result.cv_std)}",
        f"baseline_scores = {_nums(result.baseline_cv_scores)}",
        f"baseline_mean = {_num(result.baseline_cv_mean)}",
        f"baseline_std = {_num(result.baseline_cv_std)}",
        "fold_best = ["
        + ", ".join(
            f"[{_num(f.thresholds.negative)}, {_num(f.thresholds.positive)}]"
            for f in result.fold_best
        )
        + "]",
        f"fold_best_held_out = {_nums(result.nested_scores)}",
        f"fold_best_held_out_mean = {_num(float(np.mean(result.nested_scores)))}",
        f"fold_best_held_out_std = {_num(_std(result.nested_scores))}",
        f"fold_best_gain_over_baseline = {_nums(result.nested_gains)}",
    ]
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    """A TOML float, rounded to 6 decimals for reading (grid values stay exact)."""
    rounded = round(float(value), 6) + 0.0
    return repr(rounded)


def _exact(value: float) -> str:
    """A TOML float that reads back as exactly ``value``."""
    return repr(float(value) + 0.0)


def _nums(values: Sequence[float]) -> str:
    return "[" + ", ".join(_num(v) for v in values) + "]"


_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _str(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
