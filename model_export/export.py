"""`brandmon export`: checkpoint -> validated ONNX model folder with manifest.json.

Steps (each failure raises its own ExportError subclass, see errors.py):

1. resolve the checkpoint (local folder; a hub id only where the hub answers) and map its
   labels onto the canon (labels.py);
2. export fp32 ONNX with optimum and check its logits against PyTorch (atol); with `fuse`,
   rewrite it with ONNX Runtime's transformer optimizer (attention, layer-norm and GELU
   fusions for BERT-family models) and check the fused graph against PyTorch the same way;
3. dynamic int8 quantization (per-channel weights; u8s8 for AVX-512 VNNI, u8u8 for AVX2) and
   check it predicts the fp32 label on enough sample texts, and loses at most `max_drop`
   accuracy and macro-recall on a labelled file when one is given;
4. optional fp16 copy for GPUs;
5. tokenizer files, then manifest.json with the sha256 of every file, the validation results
   and the tool versions.

The folder is built next to the destination and moved into place only when every check has
passed, so a failed export never leaves a folder that looks usable.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from brandmon.contracts.classifier import argmax_labels
from brandmon.contracts.manifest import (
    MANIFEST_NAME,
    TOKENIZER_NAME,
    FileEntry,
    GraphInfo,
    ModelManifest,
    sha256_file,
)
from brandmon.model_export.checkpoint import (
    Checkpoint,
    load_model_and_tokenizer,
    read_labels,
    resolve_checkpoint,
)
from brandmon.model_export.data import DataFileError, read_labelled, read_texts
from brandmon.model_export.errors import (
    ExportError,
    Fp16ConversionError,
    FusedLogitsMismatchError,
    FusionError,
    LogitsMismatchError,
    OnnxExportError,
    QuantizationAccuracyError,
    QuantizationAgreementError,
    TokenizerNotFoundError,
)
from brandmon.model_export.labels import build_label_map
from brandmon.model_export.metrics import compute_metrics

log = logging.getLogger(__name__)

FP32_FILE, INT8_FILE, FP16_FILE = "model.onnx", "model.int8.onnx", "model.fp16.onnx"
TOOL_PACKAGES = (
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
    "onnx",
    "onnxruntime",
    "tokenizers",
)

#: Validation texts when no --sample file is given: short posts of every polarity and shape.
DEFAULT_SAMPLE: tuple[str, ...] = (
    "I love my new phone, the camera is amazing!",
    "Worst customer service ever. Never buying from them again.",
    "The store opens at 9am tomorrow.",
    "@user is the update out yet?",
    "This movie was a complete waste of time.",
    "Absolutely brilliant performance by the whole cast",
    "My package arrived two days late and the box was crushed",
    "Does anyone know if the app works on tablets?",
    "meh. it's fine i guess",
    "Thanks so much for the quick refund, really appreciated",
    "the battery dies after two hours, so disappointed",
    "New blog post: ten tips for better sleep http://t.co/abc",
    "not bad at all, better than I expected",
    "I can't believe they cancelled the show, this is terrible news",
    "Just landed in Paris!",
    "Their coffee is overpriced and tastes burnt",
    "great game last night, what a finish!!!",
    "Is the sale still on this weekend?",
    "so tired of waiting on hold for an hour",
    "happy birthday to my best friend <3",
    "The report will be published on Friday.",
    "ugh my flight got delayed again",
    "a charming, funny and moving film",
    "the plot is thin and the acting is wooden",
    "Stock prices rose slightly in early trading.",
    "I hate Mondays",
    "Loving the new features in this release",
    "Nothing special, just an average burger",
    "They fixed my laptop in one day, excellent service",
    "Why is my order still not shipped???",
    "Watching the debate tonight",
    "this is the best pizza in town, hands down",
)


@dataclass
class ExportOptions:
    """What `brandmon export` was told; defaults are the command's defaults."""

    name: str | None = None
    version: str = "0.1.0"
    label_map: dict[str, str] | None = None
    max_length: int = 128
    opset: int = 18
    quantize: str = "auto"
    fp16: bool = False
    atol: float = 1e-4
    min_agreement: float = 0.97
    max_drop: float = 0.01
    sample_file: Path | None = None
    sample_size: int = 1000
    labelled_file: Path | None = None
    labelled_size: int = 2000
    ship: bool = False
    batch_size: int = 32
    #: ONNX Runtime's transformer fusions before quantization; off because they made the int8
    #: default model slower here (docs/benchmarks.md, "Graph fusion").
    fuse: bool = False
    #: Languages the model reads, written to the manifest (the score stage routes by them).
    languages: tuple[str, ...] = ("en",)


@dataclass
class ExportContext:
    """State shared by the steps of one export."""

    checkpoint: Checkpoint
    options: ExportOptions
    work: Path
    model: Any = None
    tokenizer: Any = None
    architecture: str = ""
    labels: list[str] = field(default_factory=list)
    label_map: dict[str, str] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    graph: GraphInfo = field(default_factory=GraphInfo)
    #: PyTorch's logits on the sample texts, computed once for every fp32 check.
    reference: np.ndarray | None = None


# ---------------------------------------------------------------------------- progress


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while a slow step runs, then a tick with its duration."""
    from rich.console import Console

    console = Console(stderr=True)
    started = time.monotonic()
    with console.status(f"{title}..."):
        yield
    console.print(f"[green]✓[/green] {title} ({time.monotonic() - started:.1f} s)")


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs every skipped tensor on the root logger; hide that."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# ---------------------------------------------------------------------------- cpu


def probe_isa(cpuinfo: str) -> str:
    """'avx512_vnni' or 'avx2' from /proc/cpuinfo text; 'avx2' when neither flag is seen
    (u8u8 kernels are the safe choice on any x86-64 and on ARM)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[-1].split())
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "avx512_vnni"
    return "avx2"


def resolve_isa(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        return probe_isa(Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    except OSError:
        return "avx2"


# ---------------------------------------------------------------------------- texts


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """Padded int64 arrays of the tokenizer's model inputs."""
    enc = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np"
    )
    return {k: np.asarray(enc[k], dtype=np.int64) for k in tokenizer.model_input_names if k in enc}


def batched_logits(
    run: Any, tokenizer: Any, texts: Sequence[str], opts: ExportOptions
) -> np.ndarray:
    """Logits of `run(feed)` over `texts` in batches, in the order of `texts`."""
    parts = [
        run(encode(tokenizer, texts[i : i + opts.batch_size], opts.max_length))
        for i in range(0, len(texts), opts.batch_size)
    ]
    return np.concatenate(parts, axis=0)


def torch_runner(model: Any) -> Any:
    import torch

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
            return model(**tensors).logits.float().numpy()

    return run


def onnx_runner(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(session.run(None, {k: v for k, v in feed.items() if k in names})[0])

    return run


# ---------------------------------------------------------------------------- steps


def load_checkpoint(ctx: ExportContext) -> None:
    """Read labels, map them onto the canon (before any slow work) and load the model."""
    ctx.architecture, ctx.labels = read_labels(ctx.checkpoint.folder)
    ctx.label_map = build_label_map(ctx.labels, ctx.options.label_map)
    with step("loading the PyTorch checkpoint"):
        ctx.model, ctx.tokenizer = load_model_and_tokenizer(ctx.checkpoint.folder)
    n_out = ctx.model.config.num_labels
    if n_out != len(ctx.labels):
        raise LogitsMismatchError(
            f"the model has {n_out} outputs but config.json names {len(ctx.labels)} labels "
            f"({ctx.labels}): fix id2label in config.json"
        )


def export_fp32(ctx: ExportContext) -> None:
    """optimum's ONNX export of the sequence-classification model."""
    from optimum.exporters.onnx import onnx_export_from_model

    with step("exporting fp32 ONNX (optimum)"), tempfile.TemporaryDirectory() as tmp:
        try:
            onnx_export_from_model(
                ctx.model,
                tmp,
                opset=ctx.options.opset,
                task="text-classification",
                do_validation=False,
            )
        except Exception as exc:  # optimum raises many types; all mean "no ONNX file"
            raise OnnxExportError(
                f"optimum could not export {ctx.architecture} at opset {ctx.options.opset}: "
                f"{exc}; try another --opset or a supported architecture"
            ) from exc
        shutil.move(str(Path(tmp) / FP32_FILE), ctx.work / FP32_FILE)
    import onnx

    graph = onnx.load(str(ctx.work / FP32_FILE), load_external_data=False).graph
    ctx.inputs = [i.name for i in graph.input]
    ctx.variants["fp32"] = FP32_FILE


def validate_fp32(ctx: ExportContext, texts: Sequence[str], key: str = "fp32_vs_pytorch") -> None:
    """fp32 ONNX logits must equal PyTorch's within atol on every sample text; the result is
    recorded under validation[key]."""
    fused = ctx.graph.fused
    what = "fused fp32" if fused else "fp32"
    with step(f"checking {what} logits against PyTorch on {len(texts)} texts"):
        if ctx.reference is None:
            ctx.reference = batched_logits(
                torch_runner(ctx.model), ctx.tokenizer, texts, ctx.options
            )
        ref = ctx.reference
        got = batched_logits(onnx_runner(ctx.work / FP32_FILE), ctx.tokenizer, texts, ctx.options)
    if ref.shape != got.shape:
        raise LogitsMismatchError(f"ONNX logits have shape {got.shape}, PyTorch {ref.shape}")
    diff = float(np.abs(ref - got).max())
    ctx.validation[key] = {"texts": len(texts), "max_abs_diff": diff, "atol": ctx.options.atol}
    if diff <= ctx.options.atol:
        return
    if fused:
        raise FusedLogitsMismatchError(
            f"the fused fp32 graph's logits differ from PyTorch by up to {diff:.2e} (allowed "
            f"{ctx.options.atol:.0e}; the unfused graph passed): export with --no-fuse, or "
            "raise --atol if you accept it"
        )
    raise LogitsMismatchError(
        f"fp32 ONNX logits differ from PyTorch by up to {diff:.2e} (allowed "
        f"{ctx.options.atol:.0e}): try another --opset, or raise --atol if you accept it"
    )


def attention_shape(config: Any) -> tuple[int, int]:
    """(attention heads, hidden size) of a BERT-family config; 0 where the config does not
    say, which lets the optimizer read them off the graph."""
    heads = getattr(config, "n_heads", None) or getattr(config, "num_attention_heads", 0)
    hidden = getattr(config, "dim", None) or getattr(config, "hidden_size", 0)
    return int(heads or 0), int(hidden or 0)


def fuse_fp32(ctx: ExportContext) -> None:
    """Rewrite model.onnx with ONNX Runtime's transformer optimizer for BERT-family models:
    Attention, (Skip/Embed)LayerNormalization and BiasGelu fusions. opt_level 1 (ORT's basic,
    hardware-independent rewrites first) keeps the file portable across CPUs."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = attention_shape(ctx.model.config)
    path = ctx.work / FP32_FILE
    with step("fusing attention and layer norms (onnxruntime.transformers)"):
        try:
            optimized = optimize_model(
                str(path),
                model_type="bert",
                num_heads=heads,
                hidden_size=hidden,
                opt_level=1,
                use_gpu=False,
            )
            stats = optimized.get_fused_operator_statistics()
        except Exception as exc:  # the optimizer raises many types; all mean "not fused"
            raise FusionError(
                f"ONNX Runtime's transformer optimizer failed on {ctx.architecture}: {exc}; "
                "export with --no-fuse"
            ) from exc
        fusions = {op: int(count) for op, count in sorted(stats.items()) if count}
        if not fusions.get("Attention"):
            raise FusionError(
                f"ONNX Runtime's transformer optimizer fused no attention in "
                f"{ctx.architecture} (it knows BERT-family graphs): export with --no-fuse"
            )
        optimized.save_model_to_file(str(path))
    ctx.graph = GraphInfo(fused=True, fusions=fusions)


def quantize_int8(ctx: ExportContext) -> None:
    """Dynamic int8 quantization: u8 activations, s8 per-channel weights.

    avx512_vnni: full 8-bit weights (VNNI accumulates u8 x s8 without overflow).
    avx2: 7-bit weights (reduce_range), ONNX Runtime's advice for CPUs without VNNI, where
    the u8 x s8 pair sums of vpmaddubsw can saturate; the model then runs right on any x86-64
    CPU, at the same speed on VNNI ones (u8 weights instead measured at half the speed here).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    isa = resolve_isa(ctx.options.quantize)
    reduce_range = isa != "avx512_vnni"
    extra: dict[str, Any] = {"MatMulConstBOnly": True}
    if ctx.graph.fused:
        import onnx

        # the contrib ops of a fused graph carry no type information the quantizer can read
        extra["DefaultTensorType"] = onnx.TensorProto.FLOAT
    with step(f"quantizing to int8 ({isa}, per-channel)"), _quiet_root_logger():
        quantize_dynamic(
            str(ctx.work / FP32_FILE),
            str(ctx.work / INT8_FILE),
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            extra_options=extra,
        )
    ctx.variants["int8"] = INT8_FILE
    ctx.validation["int8_kernels"] = isa
    ctx.validation["int8_weights"] = "s8 per-channel" + (", 7-bit" if reduce_range else "")


def validate_int8(ctx: ExportContext, texts: Sequence[str]) -> None:
    """int8 must predict fp32's label on at least `min_agreement` of the sample texts."""
    with step(f"checking int8 against fp32 on {len(texts)} texts"):
        ref = batched_logits(onnx_runner(ctx.work / FP32_FILE), ctx.tokenizer, texts, ctx.options)
        got = batched_logits(onnx_runner(ctx.work / INT8_FILE), ctx.tokenizer, texts, ctx.options)
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    ctx.validation["int8_vs_fp32"] = {
        "texts": len(texts),
        "label_agreement": agreement,
        "min_agreement": ctx.options.min_agreement,
    }
    if agreement < ctx.options.min_agreement:
        raise QuantizationAgreementError(
            f"int8 predicts the fp32 label on only {agreement:.1%} of {len(texts)} texts "
            f"(needed {ctx.options.min_agreement:.1%}): try --quantize avx2 (7-bit weights) "
            "or the other choice, or accept it with a lower --min-agreement"
        )


def validate_labelled(ctx: ExportContext) -> None:
    """On a labelled file, int8 may lose at most `max_drop` accuracy and macro-recall."""
    opts = ctx.options
    if opts.labelled_file is None:
        return
    data = read_labelled(opts.labelled_file, limit=opts.labelled_size)
    canon = [ctx.label_map[label] for label in ctx.labels]
    binary = data.is_binary or "neutral" not in canon
    classes = ["negative", "positive"] if binary else ["negative", "neutral", "positive"]
    results: dict[str, dict[str, float]] = {}
    with step(f"scoring fp32 and int8 on {len(data.texts)} labelled texts"):
        for variant, file in (("fp32", FP32_FILE), ("int8", INT8_FILE)):
            logits = batched_logits(onnx_runner(ctx.work / file), ctx.tokenizer, data.texts, opts)
            predicted = argmax_labels(logits, canon, allowed=classes)
            m = compute_metrics(data.labels, predicted, classes)
            results[variant] = {"accuracy": m.accuracy, "macro_recall": m.macro_recall}
    ctx.validation["labelled"] = {
        "file": opts.labelled_file.name,
        "rows": len(data.texts),
        "max_drop": opts.max_drop,
        **results,
    }
    for metric in ("accuracy", "macro_recall"):
        drop = results["fp32"][metric] - results["int8"][metric]
        if drop > opts.max_drop:
            raise QuantizationAccuracyError(
                f"int8 loses {drop:.3f} {metric} on {opts.labelled_file.name} (fp32 "
                f"{results['fp32'][metric]:.3f}, int8 {results['int8'][metric]:.3f}; allowed "
                f"{opts.max_drop}): try --quantize avx2, or ship fp32 (--quantize none)"
            )


def convert_fp16(ctx: ExportContext, texts: Sequence[str]) -> None:
    """fp16 weights and compute (float32 inputs/outputs kept) for GPU execution providers."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with step("converting to fp16"):
        try:
            model16 = convert_float_to_float16(
                onnx.load(str(ctx.work / FP32_FILE)), keep_io_types=True
            )
            onnx.save(model16, str(ctx.work / FP16_FILE))
            ref = batched_logits(
                onnx_runner(ctx.work / FP32_FILE), ctx.tokenizer, texts, ctx.options
            )
            got = batched_logits(
                onnx_runner(ctx.work / FP16_FILE), ctx.tokenizer, texts, ctx.options
            )
        except Exception as exc:  # onnx/ORT raise many types; all mean "no usable fp16"
            raise Fp16ConversionError(
                f"fp16 conversion failed: {exc}; export without --fp16"
            ) from exc
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    ctx.validation["fp16_vs_fp32"] = {"texts": len(texts), "label_agreement": agreement}
    if agreement < ctx.options.min_agreement:
        raise Fp16ConversionError(
            f"fp16 agrees with fp32 on only {agreement:.1%} of texts: export without --fp16"
        )
    ctx.variants["fp16"] = FP16_FILE


def save_tokenizer(ctx: ExportContext) -> None:
    """tokenizer.json (truncating at max_length, no padding) and the small config files."""
    from tokenizers import Tokenizer

    ctx.tokenizer.save_pretrained(str(ctx.work), legacy_format=False)
    path = ctx.work / TOKENIZER_NAME
    if not path.is_file():
        raise TokenizerNotFoundError("the tokenizer did not write tokenizer.json (not a fast one)")
    backend = Tokenizer.from_file(str(path))
    backend.no_padding()
    backend.enable_truncation(max_length=ctx.options.max_length)
    backend.save(str(path))
    config = ctx.work / "tokenizer_config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["model_input_names"] = list(ctx.tokenizer.model_input_names)
    data["model_max_length"] = ctx.options.max_length
    config.write_text(json.dumps(data, indent=2), encoding="utf-8")
    ctx.model.config.save_pretrained(str(ctx.work))


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TOOL_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(ctx: ExportContext, name: str) -> ModelManifest:
    """manifest.json describing every file now in the folder."""
    files = {
        p.name: FileEntry(sha256=sha256_file(p), bytes=p.stat().st_size)
        for p in sorted(ctx.work.iterdir())
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = ModelManifest(
        name=name,
        version=ctx.options.version,
        architecture=ctx.architecture,
        source=ctx.checkpoint.source,
        labels=ctx.labels,
        label_map=ctx.label_map,
        max_length=ctx.options.max_length,
        opset=ctx.options.opset,
        inputs=ctx.inputs,
        variants=ctx.variants,
        files=files,
        validation=ctx.validation,
        graph=ctx.graph,
        tools=tool_versions(),
        languages=list(ctx.options.languages),
    )
    (ctx.work / MANIFEST_NAME).write_text(
        manifest.model_dump_json(indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def drop_unshipped(ctx: ExportContext) -> None:
    """--ship: keep only the int8 model (as committed under models/)."""
    for variant in ("fp32", "fp16"):
        file = ctx.variants.pop(variant, None)
        if file:
            (ctx.work / file).unlink()


# ---------------------------------------------------------------------------- main


def export_model(checkpoint: str, out: Path, options: ExportOptions) -> ModelManifest:
    """Run every step; on success `out` holds the validated folder, on failure it is untouched."""
    source = resolve_checkpoint(checkpoint)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = _run_steps(ExportContext(source, options, work), options.name or out.name)
        _replace_folder(work, out)
    except DataFileError as exc:
        raise ExportError(str(exc)) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _run_steps(ctx: ExportContext, name: str) -> ModelManifest:
    opts = ctx.options
    texts = (
        read_texts(opts.sample_file, opts.sample_size)
        if opts.sample_file is not None
        else list(DEFAULT_SAMPLE)[: opts.sample_size]
    )
    load_checkpoint(ctx)
    export_fp32(ctx)
    if opts.fuse:
        validate_fp32(ctx, texts, key="fp32_unfused_vs_pytorch")
        fuse_fp32(ctx)
    validate_fp32(ctx, texts)
    if opts.quantize != "none":
        quantize_int8(ctx)
        validate_int8(ctx, texts)
        validate_labelled(ctx)
    if opts.fp16:
        convert_fp16(ctx, texts)
    save_tokenizer(ctx)
    if opts.ship:
        drop_unshipped(ctx)
    return write_manifest(ctx, name)


def _replace_folder(work: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    work.chmod(0o755)
    work.rename(out)
    log.info("model folder written: %s", out)
