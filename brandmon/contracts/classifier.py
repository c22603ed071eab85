"""The classifier interface the stages code against, and the one step from scores to labels.

Implementations: `brandmon.stream.classifier.OnnxClassifier` (an exported model run by ONNX
Runtime) and `brandmon.tools.fake_classifier.FakeClassifier` (deterministic, no model file).
`argmax_labels` is the only place in brandmon where a row of scores becomes a label: the
stream, the exporter's validation, training and `brandmon evaluate` all call it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from brandmon.contracts.manifest import CANONICAL_LABELS

#: (texts, 3) probabilities, columns in CANONICAL_LABELS order.
Probabilities = NDArray[np.float32]


class Classifier(Protocol):
    """Scores texts; probabilities come back as columns in CANONICAL_LABELS order."""

    model_id: str
    model_version: str

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        """(len(texts), 3) probabilities for negative, neutral, positive."""
        ...


@runtime_checkable
class StagedClassifier(Classifier, Protocol):
    """A classifier whose two steps can be timed apart: `predict_proba(texts)` is
    `infer(tokenize(texts))`. The score stage times each step when a classifier offers them."""

    def tokenize(self, texts: Sequence[str]) -> Any:
        """The model's input for `texts` (token ids): cheap, CPU-bound Python and Rust."""
        ...

    def infer(self, encoded: Any) -> Probabilities:
        """Probabilities for what `tokenize` returned: the model's forward pass."""
        ...


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]


def argmax_labels(
    scores: ArrayLike, columns: Sequence[str], allowed: Collection[str] | None = None
) -> list[str]:
    """The label of each row's highest score. `columns` names the score columns; only the
    columns named in `allowed` (all of them when None) compete, e.g. negative vs positive
    for data without neutral rows."""
    matrix = np.array(scores, dtype=np.float64, ndmin=2)
    if matrix.shape[1] != len(columns):
        raise ValueError(f"scores have {matrix.shape[1]} columns but {len(columns)} names")
    if allowed is not None:
        barred = [i for i, name in enumerate(columns) if name not in allowed]
        if len(barred) == len(columns):
            raise ValueError(f"none of {list(allowed)} is a column of {list(columns)}")
        matrix[:, barred] = -np.inf
    return [columns[int(i)] for i in matrix.argmax(axis=1)]


def to_predictions(probs: Probabilities) -> list[Prediction]:
    """Turn a probability matrix (CANONICAL_LABELS columns) into labelled predictions."""
    labels = argmax_labels(probs, CANONICAL_LABELS)
    return [
        Prediction(
            label=label,
            scores={
                name: round(float(p), 6) for name, p in zip(CANONICAL_LABELS, row, strict=True)
            },
        )
        for label, row in zip(labels, probs, strict=True)
    ]
