"""The default model committed under models/: intact, small, and right on clear-cut sentences."""

from __future__ import annotations

import pytest

from brandmon.contracts.classifier import to_predictions
from brandmon.contracts.manifest import load_manifest, verify_files
from brandmon.settings import DEFAULT_MODEL_DIR
from brandmon.stream.classifier import load_classifier

MAX_BYTES = 25 * 1024 * 1024


def test_manifest_checksums_match_the_committed_files() -> None:
    manifest = load_manifest(DEFAULT_MODEL_DIR)
    assert verify_files(DEFAULT_MODEL_DIR, manifest) == []
    committed = {p.name for p in DEFAULT_MODEL_DIR.iterdir()} - {"manifest.json", "README.md"}
    assert committed == set(manifest.files)


def test_only_the_int8_model_ships_and_it_is_small() -> None:
    manifest = load_manifest(DEFAULT_MODEL_DIR)
    assert manifest.variants == {"int8": "model.int8.onnx"}
    assert (DEFAULT_MODEL_DIR / "model.int8.onnx").stat().st_size <= MAX_BYTES
    assert manifest.canonical_labels == ["negative", "neutral", "positive"]
    assert manifest.inputs == ["input_ids", "attention_mask"]


@pytest.fixture(scope="module")
def default_classifier():  # type: ignore[no-untyped-def]
    return load_classifier(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I absolutely love this phone, the camera is amazing!", "positive"),
        ("Best customer service I have ever had, thank you so much!", "positive"),
        ("This is the worst airline ever. Lost my bag and nobody cares.", "negative"),
        ("I hate this update, the app keeps crashing. Terrible.", "negative"),
        ("The store opens at 9am on Saturday.", "neutral"),
        ("Apple will announce the new iPad on Tuesday.", "neutral"),
    ],
)
def test_default_model_scores_clear_sentences_as_expected(
    default_classifier,
    text: str,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    [prediction] = to_predictions(default_classifier.predict_proba([text]))
    assert prediction.label == expected, prediction.scores
