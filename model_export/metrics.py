"""Classification metrics as pure functions over label lists (no model, no I/O).

All figures follow the usual definitions: per-class precision = TP / predicted, recall =
TP / true, F1 their harmonic mean (0 when both are 0); macro figures are unweighted means
over the classes given. `stacked_scores` computes the same figures for a stack of confusion
matrices at once (numpy), for bootstrap resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationReport:
    """Scores of predictions against true labels over a fixed class order."""

    classes: list[str]
    #: confusion[i][j] = rows whose true class is classes[i] and prediction classes[j].
    confusion: list[list[int]]
    per_class: dict[str, ClassScores] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(sum(row) for row in self.confusion)

    @property
    def accuracy(self) -> float:
        correct = sum(self.confusion[i][i] for i in range(len(self.classes)))
        return _ratio(correct, self.count)

    @property
    def macro_recall(self) -> float:
        return _mean([s.recall for s in self.per_class.values()])

    @property
    def macro_precision(self) -> float:
        return _mean([s.precision for s in self.per_class.values()])

    @property
    def macro_f1(self) -> float:
        return _mean([s.f1 for s in self.per_class.values()])

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "macro_recall": self.macro_recall,
            "macro_precision": self.macro_precision,
            "classes": list(self.classes),
            "per_class": {
                name: {
                    "precision": s.precision,
                    "recall": s.recall,
                    "f1": s.f1,
                    "support": s.support,
                }
                for name, s in self.per_class.items()
            },
            "confusion": [list(row) for row in self.confusion],
        }


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def confusion_matrix(
    true: Sequence[str], pred: Sequence[str], classes: Sequence[str]
) -> list[list[int]]:
    """Counts of (true, predicted) pairs; a label outside `classes` raises ValueError."""
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true labels but {len(pred)} predictions")
    index = {name: i for i, name in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for t, p in zip(true, pred, strict=True):
        if t not in index or p not in index:
            raise ValueError(f"label {t if t not in index else p!r} is not one of {list(classes)}")
        matrix[index[t]][index[p]] += 1
    return matrix


def compute_metrics(
    true: Sequence[str], pred: Sequence[str], classes: Sequence[str]
) -> ClassificationReport:
    """Accuracy, per-class and macro precision/recall/F1 and the confusion matrix."""
    matrix = confusion_matrix(true, pred, classes)
    per_class: dict[str, ClassScores] = {}
    for i, name in enumerate(classes):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        actual = sum(matrix[i])
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_class[name] = ClassScores(precision, recall, f1, actual)
    return ClassificationReport(list(classes), matrix, per_class)


@dataclass(frozen=True)
class StackedScores:
    """The figures of `compute_metrics` for each of a stack of confusion matrices: arrays of
    shape (matrices,) or (matrices, classes), classes in the matrices' order."""

    accuracy: NDArray[np.float64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]

    @property
    def macro_recall(self) -> NDArray[np.float64]:
        return self.recall.mean(axis=1)

    @property
    def macro_f1(self) -> NDArray[np.float64]:
        return self.f1.mean(axis=1)


def _safe_ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    """num / den, 0 where den is 0 (as `_ratio`)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def stacked_scores(confusions: NDArray[np.int64]) -> StackedScores:
    """Accuracy and per-class precision/recall/F1 of each matrix in `confusions`, shape
    (matrices, classes, classes) with confusions[m, true, predicted] counts."""
    counts = confusions.astype(np.float64)
    tp = np.diagonal(counts, axis1=1, axis2=2)
    precision = _safe_ratio(tp, counts.sum(axis=1))
    recall = _safe_ratio(tp, counts.sum(axis=2))
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    accuracy = _safe_ratio(tp.sum(axis=1), counts.sum(axis=(1, 2)))
    return StackedScores(accuracy, precision, recall, f1)
