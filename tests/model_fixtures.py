"""pytest plugin (listed in tests/conftest.py): tiny exported models for tests that need a real
ONNX model folder but not a good one.

`tiny_model_dir` is a random 3-class DistilBERT (dim 32, 2 layers) exported through the real
`brandmon export` path (optimum, validation, int8, manifest), once per test session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 3-class DistilBertForSequenceClassification checkpoint folder."""
    from brandmon.tools.tiny_model import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-checkpoint") / "ckpt", TINY_LABELS)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Path:
    """The tiny checkpoint exported to an ONNX model folder (model.onnx, model.int8.onnx,
    tokenizer, manifest.json)."""
    from brandmon.model_export.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("tiny-model") / "tiny-sentiment"
    export_model(str(tiny_checkpoint_dir), out, ExportOptions(max_length=64))
    return out


@pytest.fixture(scope="session")
def tiny_model_b_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model, different from `tiny_model_dir` in weights (seed, weight_std),
    name and version (tiny-sentiment-b@0.2.0): the model a promotion switches to."""
    from brandmon.model_export.export import ExportOptions, export_model
    from brandmon.tools.tiny_model import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny-checkpoint-b") / "ckpt", TINY_LABELS, seed=1, weight_std=0.3
    )
    out = tmp_path_factory.mktemp("tiny-model-b") / "tiny-sentiment-b"
    # fp32 only: with such weights int8 flips too many labels for the export's own check
    export_model(str(ckpt), out, ExportOptions(version="0.2.0", max_length=64, quantize="none"))
    return out


@pytest.fixture(scope="session")
def tiny_model_fr_dir(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Path:
    """The tiny checkpoint exported again as a French model (tiny-sentiment-fr@0.3.0, manifest
    `languages: ["fr"]`): a second model for language routing."""
    from brandmon.model_export.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("tiny-model-fr") / "tiny-sentiment-fr"
    options = ExportOptions(version="0.3.0", max_length=64, quantize="none", languages=("fr",))
    export_model(str(tiny_checkpoint_dir), out, options)
    return out
