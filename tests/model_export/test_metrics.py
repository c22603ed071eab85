"""Evaluation figures on a small hand-made labelled file, against values worked out by hand.

The file (10 rows) and the predictions:

    true:  neg neg neg neg neu neu neu pos pos pos
    pred:  neg neg neu pos neu neu neg pos pos neu

Confusion (rows true, columns predicted, order neg/neu/pos): [[2,1,1],[1,2,0],[0,1,2]].
accuracy 6/10; recall neg 2/4, neu 2/3, pos 2/3 -> macro-recall 11/18;
precision neg 2/3, neu 2/4, pos 2/3; F1 neg 4/7, neu 4/7, pos 2/3 -> macro-F1 38/63.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brandmon.model_export.data import read_labelled
from brandmon.model_export.evaluate import choose_classes, score_dataset
from brandmon.model_export.metrics import compute_metrics

TRUE = ["negative"] * 4 + ["neutral"] * 3 + ["positive"] * 3
PRED = [
    "negative",
    "negative",
    "neutral",
    "positive",
    "neutral",
    "neutral",
    "negative",
    "positive",
    "positive",
    "neutral",
]
COLUMN = {"negative": 0, "neutral": 1, "positive": 2}


def _write(path: Path, labels: list[str]) -> Path:
    rows = [{"text": f"post number {i}", "label": label} for i, label in enumerate(labels)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _probs(pred: list[str]) -> np.ndarray:
    out = np.full((len(pred), 3), 0.1, dtype=np.float32)
    for row, label in enumerate(pred):
        out[row, COLUMN[label]] = 0.8
    return out


def test_three_class_figures_match_the_hand_computation(tmp_path: Path) -> None:
    data = read_labelled(_write(tmp_path / "hand.jsonl", TRUE))
    classes = choose_classes(data, ["negative", "neutral", "positive"])
    metrics, skipped = score_dataset(data, _probs(PRED), classes)
    assert skipped == 0
    assert metrics.count == 10
    assert metrics.confusion == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert metrics.accuracy == pytest.approx(0.6)
    assert metrics.macro_recall == pytest.approx(11 / 18)
    assert metrics.macro_f1 == pytest.approx(38 / 63)
    neg = metrics.per_class["negative"]
    assert (neg.precision, neg.recall, neg.f1, neg.support) == pytest.approx((2 / 3, 0.5, 4 / 7, 4))
    assert metrics.per_class["neutral"].precision == pytest.approx(0.5)


def test_binary_file_on_a_three_class_model_compares_negative_vs_positive_only(
    tmp_path: Path,
) -> None:
    # Row 0: neutral is the top score, but between the two polarities negative wins -> right.
    # Row 1: negative 0.2 > positive 0.1 although neutral tops -> wrong for a positive row.
    probs = np.array([[0.3, 0.5, 0.2], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    data = read_labelled(_write(tmp_path / "binary.jsonl", ["negative", "positive", "positive"]))
    classes = choose_classes(data, ["negative", "neutral", "positive"])
    assert classes == ("negative", "positive")
    metrics, _ = score_dataset(data, probs, classes)
    assert metrics.confusion == [[1, 0], [1, 1]]
    assert metrics.accuracy == pytest.approx(2 / 3)
    assert metrics.macro_recall == pytest.approx((1.0 + 0.5) / 2)


def test_three_class_file_on_a_binary_model_skips_and_counts_the_neutral_rows(
    tmp_path: Path,
) -> None:
    data = read_labelled(_write(tmp_path / "three.jsonl", TRUE))
    classes = choose_classes(data, ["negative", "positive"])
    probs = _probs(["negative"] * 4 + ["negative"] * 3 + ["positive"] * 3)
    metrics, skipped = score_dataset(data, probs, classes)
    assert skipped == 3
    assert metrics.count == 7
    assert metrics.accuracy == pytest.approx(1.0)


def test_class_without_predictions_scores_zero_precision_not_a_crash() -> None:
    m = compute_metrics(
        ["negative", "positive"], ["negative", "negative"], ["negative", "positive"]
    )
    assert m.per_class["positive"].precision == 0.0
    assert m.per_class["positive"].f1 == 0.0
    assert m.accuracy == 0.5


def test_a_lang_column_gives_figures_per_language(tmp_path: Path) -> None:
    from brandmon.model_export.evaluate import per_language

    langs = ["en", "fr", "en", "fr", "en", "fr", "en", "en", "fr", "en"]
    rows = [
        {"text": f"post {i}", "label": label, "lang": lang}
        for i, (label, lang) in enumerate(zip(TRUE, langs, strict=True))
    ]
    path = tmp_path / "langs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = read_labelled(path)
    classes = choose_classes(data, ["negative", "neutral", "positive"])
    reports = per_language(data, _probs(PRED), classes)
    assert list(reports) == ["en", "fr"]
    # en rows 0,2,4,6,7,9: right on 0, 4, 7 -> 3/6; fr rows 1,3,5,8: right on 1, 5, 8 -> 3/4
    assert (reports["en"].count, reports["en"].accuracy) == (6, pytest.approx(0.5))
    assert (reports["fr"].count, reports["fr"].accuracy) == (4, pytest.approx(0.75))
    assert (
        per_language(read_labelled(_write(tmp_path / "plain.jsonl", TRUE)), _probs(PRED), classes)
        == {}
    )
