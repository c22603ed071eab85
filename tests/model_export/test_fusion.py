"""`brandmon export --fuse`: ONNX Runtime's transformer fusions on the tiny DistilBERT, the
manifest record of them, and the refusal of a fused graph beyond tolerance."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from brandmon.contracts.manifest import GraphInfo, load_manifest, verify_files
from brandmon.model_export.checkpoint import load_model_and_tokenizer
from brandmon.model_export.cli import register
from brandmon.model_export.errors import FusedLogitsMismatchError
from brandmon.model_export.export import (
    DEFAULT_SAMPLE,
    FP32_FILE,
    INT8_FILE,
    ExportContext,
    ExportOptions,
    attention_shape,
    batched_logits,
    export_model,
    onnx_runner,
    validate_fp32,
)
from brandmon.tools.tiny_model import make_tiny_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "brandmon-sentiment-minilm"
TINY_LAYERS = 2  # brandmon.tools.tiny_model: dim 32, 2 layers, 2 heads


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _op_types(path: Path) -> Counter[str]:
    import onnx

    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.fixture(scope="module")
def fused_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Path:
    """The tiny checkpoint exported with `brandmon export --fuse` (the command line)."""
    out = tmp_path_factory.mktemp("fused") / "tiny-fused"
    result = CliRunner().invoke(
        _app(), ["export", str(tiny_checkpoint_dir), "-o", str(out), "--max-length", "64", "--fuse"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_fused_folder_is_valid_and_its_manifest_lists_the_fusions(fused_model_dir: Path) -> None:
    manifest = load_manifest(fused_model_dir)
    assert verify_files(fused_model_dir, manifest) == []
    assert manifest.variants == {"fp32": FP32_FILE, "int8": INT8_FILE}
    assert manifest.graph.fused
    fusions = manifest.graph.fusions
    assert fusions["Attention"] == TINY_LAYERS
    assert fusions["SkipLayerNormalization"] == 2 * TINY_LAYERS
    assert all(count > 0 for count in fusions.values())
    # the files really hold the fused operators, and int8 was quantized from the fused graph
    assert _op_types(fused_model_dir / FP32_FILE)["Attention"] == TINY_LAYERS
    assert _op_types(fused_model_dir / INT8_FILE)["QAttention"] == TINY_LAYERS
    for key in ("fp32_unfused_vs_pytorch", "fp32_vs_pytorch"):
        assert manifest.validation[key]["max_abs_diff"] <= 1e-4  # type: ignore[index]
    assert manifest.validation["int8_vs_fp32"]["label_agreement"] >= 0.97  # type: ignore[index]


def test_fused_outputs_are_within_tolerance_of_the_unfused_export(
    fused_model_dir: Path, tiny_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    texts = list(DEFAULT_SAMPLE)
    opts = ExportOptions(max_length=64)

    def logits(folder: Path, file: str) -> np.ndarray:
        return batched_logits(onnx_runner(folder / file), tokenizer, texts, opts)

    unfused, fused = logits(tiny_model_dir, FP32_FILE), logits(fused_model_dir, FP32_FILE)
    np.testing.assert_allclose(fused, unfused, atol=1e-4)
    agreement = logits(fused_model_dir, INT8_FILE).argmax(1) == unfused.argmax(1)
    assert agreement.mean() >= 0.97


def test_default_export_is_unfused_and_old_manifests_still_load(tiny_model_dir: Path) -> None:
    assert load_manifest(tiny_model_dir).graph == GraphInfo(fused=False, fusions={})
    assert "Attention" not in _op_types(tiny_model_dir / FP32_FILE)
    # the shipped model's manifest predates the `graph` field
    assert "graph" not in (SHIPPED / "manifest.json").read_text(encoding="utf-8")
    assert load_manifest(SHIPPED).graph.fused is False


def test_fused_graph_beyond_tolerance_is_refused(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    """A fused graph whose logits are not the PyTorch model's (here: another random model's
    fused graph) is refused with an error that names --no-fuse."""
    other = make_tiny_checkpoint(tmp_path / "ckpt", ("negative", "neutral", "positive"), seed=7)
    export_model(str(other), tmp_path / "other", ExportOptions(max_length=64, fuse=True))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(tmp_path / "other" / FP32_FILE, work / FP32_FILE)
    ctx = ExportContext(checkpoint=None, options=ExportOptions(max_length=64), work=work)  # type: ignore[arg-type]
    ctx.model, ctx.tokenizer = load_model_and_tokenizer(tiny_checkpoint_dir)
    ctx.graph = load_manifest(tmp_path / "other").graph
    with pytest.raises(FusedLogitsMismatchError, match="--no-fuse"):
        validate_fp32(ctx, list(DEFAULT_SAMPLE))


def test_attention_shape_comes_from_distilbert_and_bert_configs() -> None:
    from transformers import BertConfig, DistilBertConfig

    assert attention_shape(DistilBertConfig(dim=384, n_heads=12)) == (12, 384)
    assert attention_shape(BertConfig(hidden_size=256, num_attention_heads=4)) == (4, 256)


def test_help_documents_the_fuse_flag() -> None:
    result = CliRunner().invoke(_app(), ["export", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--fuse" in result.output
    assert "--no-fuse" in result.output
    assert "attention" in result.output
