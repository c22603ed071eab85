"""`brandmon export` end to end on a tiny random DistilBERT, and its named failures."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from brandmon.contracts.manifest import ModelManifest, load_manifest, verify_files
from brandmon.model_export import checkpoint as checkpoint_module
from brandmon.model_export.cli import register
from brandmon.model_export.errors import (
    CheckpointLoadError,
    CheckpointNotFoundError,
    HubUnreachableError,
    LogitsMismatchError,
    QuantizationAccuracyError,
    QuantizationAgreementError,
    TokenizerNotFoundError,
    UnknownLabelError,
)
from brandmon.model_export.export import (
    DEFAULT_SAMPLE,
    FP32_FILE,
    INT8_FILE,
    ExportContext,
    ExportOptions,
    export_model,
    probe_isa,
    validate_int8,
    validate_labelled,
)
from brandmon.stream.classifier import load_classifier
from brandmon.tools.tiny_model import make_tiny_checkpoint


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


# ---------------------------------------------------------------------------- success


def test_export_writes_a_validated_folder_the_stream_can_load(tiny_model_dir: Path) -> None:
    manifest = load_manifest(tiny_model_dir)
    assert manifest.variants == {"fp32": FP32_FILE, "int8": INT8_FILE}
    assert verify_files(tiny_model_dir, manifest) == []
    listed = set(manifest.files) | {"manifest.json"}
    assert listed == {p.name for p in tiny_model_dir.iterdir()}
    assert manifest.canonical_labels == ["negative", "neutral", "positive"]
    assert manifest.inputs == ["input_ids", "attention_mask"]
    assert manifest.validation["fp32_vs_pytorch"]["max_abs_diff"] <= 1e-4
    assert manifest.validation["int8_vs_fp32"]["label_agreement"] >= 0.97
    assert {"torch", "transformers", "onnxruntime", "optimum"} <= set(manifest.tools)
    assert len(manifest.source["content_sha256"]) == 64


def test_exported_tokenizer_emits_no_token_type_ids(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert config["model_input_names"] == ["input_ids", "attention_mask"]
    tokenizer = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None
    assert tokenizer["truncation"]["max_length"] == 64


def test_onnx_scores_equal_the_pytorch_model(
    tiny_model_dir: Path, tiny_checkpoint_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = list(DEFAULT_SAMPLE[:6])
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_checkpoint_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint_dir))
    with torch.inference_mode():
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        expected = torch.softmax(model(**enc).logits, -1).numpy()
    got = load_classifier(tiny_model_dir, variant="fp32").predict_proba(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_binary_generic_labels_and_ship_mode_keep_only_int8(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", labels=("LABEL_0", "LABEL_1"), seed=1)
    out = tmp_path / "shipped"
    export_model(str(ckpt), out, ExportOptions(max_length=32, ship=True, name="tiny", version="2"))
    manifest = load_manifest(out)
    assert manifest.model_id == "tiny@2"
    assert manifest.variants == {"int8": INT8_FILE}
    assert not (out / FP32_FILE).exists()
    assert manifest.label_map == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert verify_files(out, manifest) == []
    probs = load_classifier(out).predict_proba(["good", "bad"])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs[:, 1], 0.0)  # a binary model never says neutral


def test_fp16_variant_for_gpu_is_written_and_validated(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    out = tmp_path / "with-fp16"
    export_model(str(tiny_checkpoint_dir), out, ExportOptions(max_length=32, fp16=True))
    manifest = load_manifest(out)
    assert manifest.variants["fp16"] == "model.fp16.onnx"
    assert manifest.validation["fp16_vs_fp32"]["label_agreement"] >= 0.97


def test_label_map_option_rescues_unknown_labels(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", labels=("sad", "glad"))
    result = CliRunner().invoke(
        _app(),
        [
            "export",
            str(ckpt),
            "--out",
            str(tmp_path / "m"),
            "--label-map",
            "sad=negative,glad=positive",
            "--quantize",
            "avx2",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = load_manifest(tmp_path / "m")
    assert manifest.label_map == {"sad": "negative", "glad": "positive"}
    assert manifest.validation["int8_kernels"] == "avx2"


# ---------------------------------------------------------------------------- failures


def test_missing_folder_is_checkpoint_not_found(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        export_model(str(tmp_path / "nope"), tmp_path / "out", ExportOptions())


def test_folder_without_config_is_checkpoint_not_found(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match=r"config\.json"):
        export_model(str(tmp_path / "empty"), tmp_path / "out", ExportOptions())


def test_folder_without_weights_is_checkpoint_not_found(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match="no weights"):
        export_model(str(broken), tmp_path / "out", ExportOptions())


def test_folder_without_tokenizer_is_named(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint_dir, broken)
    for name in ("tokenizer.json", "vocab.txt"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(TokenizerNotFoundError):
        export_model(str(broken), tmp_path / "out", ExportOptions())


def test_corrupt_weights_are_a_load_error(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointLoadError, match="re-save"):
        export_model(str(broken), tmp_path / "out", ExportOptions())


def test_config_with_more_labels_than_the_weights_is_a_load_error(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_checkpoint_dir, mismatched)
    config = json.loads((mismatched / "config.json").read_text())
    config["id2label"] = {"0": "1 star", "1": "2 stars", "2": "3 stars", "3": "4 stars"}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (mismatched / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointLoadError):
        export_model(str(mismatched), tmp_path / "out", ExportOptions())


def test_unknown_labels_fail_before_any_slow_work(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", labels=("anger", "joy"))
    started = time.monotonic()
    with pytest.raises(UnknownLabelError, match="anger"):
        export_model(str(ckpt), tmp_path / "out", ExportOptions())
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out").exists()


def test_hub_id_fails_fast_when_the_hub_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "HUB_HOST", "hub.invalid")
    monkeypatch.setattr(checkpoint_module, "HUB_TIMEOUT", 2.0)
    started = time.monotonic()
    with pytest.raises(HubUnreachableError, match="huggingface-cli download"):
        export_model(
            "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            tmp_path / "out",
            ExportOptions(),
        )
    assert time.monotonic() - started < 10


def test_logits_beyond_tolerance_fail_and_leave_no_folder(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(LogitsMismatchError, match="differ from PyTorch"):
        export_model(str(tiny_checkpoint_dir), out, ExportOptions(atol=0.0))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder was removed too


def _mismatched_pair(tmp_path: Path, tiny_model_dir: Path) -> ExportContext:
    """A work folder whose 'int8' model is another random model: it disagrees with fp32."""
    other = tmp_path / "other"
    export_model(
        str(make_tiny_checkpoint(tmp_path / "ckpt", ("negative", "neutral", "positive"), seed=7)),
        other,
        ExportOptions(max_length=64),
    )
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(tiny_model_dir / FP32_FILE, work / FP32_FILE)
    shutil.copy(other / FP32_FILE, work / INT8_FILE)
    from transformers import AutoTokenizer

    ctx = ExportContext(checkpoint=None, options=ExportOptions(max_length=64), work=work)  # type: ignore[arg-type]
    ctx.tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    ctx.labels = ["negative", "neutral", "positive"]
    ctx.label_map = {label: label for label in ctx.labels}
    return ctx


def test_int8_that_disagrees_with_fp32_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    ctx = _mismatched_pair(tmp_path, tiny_model_dir)
    with pytest.raises(QuantizationAgreementError, match="min-agreement"):
        validate_int8(ctx, list(DEFAULT_SAMPLE))


def test_int8_losing_accuracy_on_the_labelled_file_is_refused(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    ctx = _mismatched_pair(tmp_path, tiny_model_dir)
    # Label the sample with the fp32 model's own predictions: fp32 scores 100%.
    fp32 = load_classifier(tiny_model_dir, variant="fp32")
    probs = fp32.predict_proba(list(DEFAULT_SAMPLE))
    labels = [("negative", "neutral", "positive")[i] for i in probs.argmax(1)]
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}) + "\n"
            for t, lab in zip(DEFAULT_SAMPLE, labels, strict=True)
        )
    )
    ctx.options.labelled_file = labelled
    with pytest.raises(QuantizationAccuracyError, match="loses"):
        validate_labelled(ctx)
    assert ctx.validation["labelled"]["fp32"]["accuracy"] == 1.0


# ---------------------------------------------------------------------------- command line


def test_cli_failure_is_a_message_and_nonzero_exit_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["export", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "CheckpointNotFoundError" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_label_map_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["export", str(tmp_path), "--label-map", "LABEL_0=happy"])
    assert result.exit_code == 2
    assert "negative, neutral, positive" in result.output


def test_cli_bad_languages_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["export", str(tmp_path), "--languages", "french"])
    assert result.exit_code == 2
    assert "--languages fr,de" in result.output


def test_the_exported_manifest_lists_the_languages(
    tiny_model_dir: Path, tiny_model_fr_dir: Path
) -> None:
    assert load_manifest(tiny_model_dir).languages == ["en"]
    assert load_manifest(tiny_model_fr_dir).languages == ["fr"]
    raw = json.loads((tiny_model_dir / "manifest.json").read_text())
    del raw["languages"]  # a manifest written before the field: an English model
    assert ModelManifest.model_validate(raw).languages == ["en"]
    with pytest.raises(ValueError, match="ISO 639"):
        ModelManifest.model_validate({**raw, "languages": ["French"]})


def test_cpu_probe_picks_vnni_only_when_the_flag_is_there() -> None:
    assert probe_isa("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n") == "avx512_vnni"
    assert probe_isa("flags\t\t: fpu sse avx2 fma\n") == "avx2"
    assert probe_isa("") == "avx2"
