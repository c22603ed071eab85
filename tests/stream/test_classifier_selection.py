"""Execution provider and model-file choice: GPU asked for and absent is an error, never a
silent CPU fallback; the variant follows the provider unless one is named."""

from __future__ import annotations

import pytest

from brandmon.contracts.classifier import to_predictions
from brandmon.contracts.manifest import ManifestError, ModelManifest
from brandmon.stream.classifier import ProviderUnavailableError, choose_variant, select_providers
from brandmon.tools.fake_classifier import FakeClassifier

CPU_ONLY = ["CPUExecutionProvider"]
WITH_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def manifest(**variants: str) -> ModelManifest:
    return ModelManifest(
        name="m",
        version="1",
        architecture="DistilBertForSequenceClassification",
        labels=["NEGATIVE", "POSITIVE"],
        label_map={"NEGATIVE": "negative", "POSITIVE": "positive"},
        max_length=128,
        variants=variants or {"fp32": "model.onnx"},
    )


def test_cpu_needs_only_the_cpu_provider() -> None:
    assert select_providers("cpu", CPU_ONLY) == ["CPUExecutionProvider"]


def test_cuda_is_used_when_present_with_cpu_for_unsupported_operators() -> None:
    assert select_providers("cuda", WITH_CUDA) == WITH_CUDA


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_a_missing_gpu_provider_is_an_error_that_says_what_to_do(provider: str) -> None:
    with pytest.raises(ProviderUnavailableError) as info:
        select_providers(provider, CPU_ONLY)
    assert "onnxruntime-gpu" in str(info.value)
    assert "BRANDMON_EXECUTION_PROVIDER=cpu" in str(info.value)


def test_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ValueError, match="cpu"):
        select_providers("tpu", CPU_ONLY)


def test_auto_variant_prefers_int8_on_cpu_and_fp16_on_gpu() -> None:
    m = manifest(fp32="model.onnx", int8="model.int8.onnx", fp16="model.fp16.onnx")
    assert choose_variant(m, "auto", "cpu") == "model.int8.onnx"
    assert choose_variant(m, "auto", "cuda") == "model.fp16.onnx"
    assert choose_variant(manifest(int8="model.int8.onnx"), "auto", "cuda") == "model.int8.onnx"


def test_a_named_variant_the_model_lacks_is_an_error() -> None:
    with pytest.raises(ManifestError, match="no fp16 variant"):
        choose_variant(manifest(int8="model.int8.onnx"), "fp16", "cpu")


def test_manifest_refuses_labels_without_canonical_mapping() -> None:
    with pytest.raises(ValueError, match="without a canonical mapping"):
        ModelManifest(
            name="m",
            version="1",
            architecture="x",
            labels=["A", "B"],
            label_map={"A": "negative"},
            max_length=8,
            variants={"fp32": "m.onnx"},
        )


def test_predictions_take_the_most_probable_canonical_label() -> None:
    probs = FakeClassifier().predict_proba(["I hate it", "love it", "hmm"])
    assert [p.label for p in to_predictions(probs)] == ["negative", "positive", "neutral"]
