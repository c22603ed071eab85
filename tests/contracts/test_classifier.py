"""`argmax_labels`, the one step from scores to labels, and `to_predictions` built on it."""

from __future__ import annotations

import numpy as np
import pytest

from brandmon.contracts.classifier import argmax_labels, to_predictions
from brandmon.contracts.manifest import CANONICAL_LABELS


def test_the_highest_score_names_the_label() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    assert argmax_labels(scores, CANONICAL_LABELS) == ["negative", "positive", "neutral"]


def test_only_the_allowed_columns_compete() -> None:
    probs = np.array([[0.2, 0.6, 0.2 + 1e-3]])
    assert argmax_labels(probs, CANONICAL_LABELS, allowed=("negative", "positive")) == ["positive"]
    assert argmax_labels(probs, CANONICAL_LABELS, allowed=CANONICAL_LABELS) == ["neutral"]


def test_columns_follow_the_names_given_not_the_canonical_order() -> None:
    logits = np.array([[3.0, -1.0], [-2.0, 0.5]])
    assert argmax_labels(logits, ["positive", "negative"]) == ["positive", "negative"]


def test_no_rows_give_no_labels() -> None:
    assert argmax_labels(np.zeros((0, 3), dtype=np.float32), CANONICAL_LABELS) == []


def test_a_mismatch_between_columns_and_names_is_an_error() -> None:
    with pytest.raises(ValueError, match="3 columns but 2 names"):
        argmax_labels(np.zeros((1, 3)), ["negative", "positive"])
    with pytest.raises(ValueError, match="none of"):
        argmax_labels(np.zeros((1, 3)), CANONICAL_LABELS, allowed=("happy",))


def test_predictions_carry_the_label_and_every_rounded_score() -> None:
    [prediction] = to_predictions(np.array([[0.1234567, 0.2, 0.6765433]], dtype=np.float32))
    assert prediction.label == "positive"
    assert set(prediction.scores) == set(CANONICAL_LABELS)
    assert prediction.scores["negative"] == pytest.approx(0.123457, abs=1e-6)
