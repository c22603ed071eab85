"""The ONNX Runtime implementation of the classifier interface (brandmon.contracts.classifier).

The ONNX path is split the way an inference server splits it: `_encode` (tokenize, pad a
length-sorted micro-batch), `_run` (one session call) and `_postprocess` (softmax into
canonical-label probabilities). Sorting by token length before micro-batching keeps padding,
and so wasted compute, small; `plan_micro_batches` then cuts the sorted batch where the
padding saved is worth another session call.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from brandmon.contracts.classifier import Probabilities
from brandmon.contracts.manifest import (
    CANONICAL_LABELS,
    TOKENIZER_NAME,
    ManifestError,
    ModelManifest,
    load_manifest,
    resolve_model_folder,
)
from brandmon.settings import Settings

#: Execution providers by setting name, in ONNX Runtime's spelling; CPU always comes last as
#: the provider for operators the GPU provider does not implement (not as a silent fallback).
PROVIDERS: dict[str, list[str]] = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


#: What one more session call costs, in padded tokens' worth of compute: the fixed work of a
#: call (about 1 ms of graph walking and thread hand-offs) against ~0.1 ms per token on 2 CPU
#: cores (docs/benchmarks.md). It decides when a micro-batch is cut to save padding.
CALL_COST_TOKENS = 16


def plan_micro_batches(lengths: Sequence[int], most: int, call_cost: float) -> list[int]:
    """Where to cut `lengths` (sorted ascending) into micro-batches of at most `most` rows:
    the cuts (end indices) that minimise padded tokens plus `call_cost` per call. Each
    micro-batch is padded to its last (longest) row."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        width = lengths[end - 1]
        for start in range(max(0, end - most), end):
            cost = best[start] + (end - start) * width + call_cost
            if cost < best[end]:
                best[end], cut[end] = cost, start
    ends, end = [], n
    while end > 0:
        ends.append(end)
        end = cut[end]
    return ends[::-1]


class ProviderUnavailableError(RuntimeError):
    """A GPU execution provider was asked for but this onnxruntime build or machine lacks it."""


#: How ONNX Runtime words a failure: "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model
#: from PATH failed:WHY", where WHY may start with the C++ source location of the failed check
#: ("/onnxruntime_src/.../model_load_utils.h:46 void onnxruntime::...(...) ").
_ORT_ERROR = re.compile(
    r"\[ONNXRuntimeError\] : \d+ : (?P<code>\w+) : (?:Load model from .*? failed:)?(?P<why>.*)",
    re.DOTALL,
)
_CPP_LOCATION = re.compile(r"^/\S+:\d+ .*?\) ")


def ort_reason(exc: Exception) -> str:
    """ONNX Runtime's error as "CODE: why", without the path it repeats or C++ locations."""
    found = _ORT_ERROR.search(str(exc))
    if found is None:
        return str(exc)
    return f"{found['code']}: {_CPP_LOCATION.sub('', found['why'].strip())}"


def select_providers(provider: str, available: Sequence[str]) -> list[str]:
    """The provider list for a setting, or ProviderUnavailableError naming what is missing."""
    try:
        wanted = PROVIDERS[provider]
    except KeyError as exc:
        raise ValueError(
            f"unknown execution provider {provider!r}: use one of {sorted(PROVIDERS)}"
        ) from exc
    missing = [p for p in wanted[:1] if p not in available]
    if missing:
        raise ProviderUnavailableError(
            f"execution provider {missing[0]} was asked for (BRANDMON_EXECUTION_PROVIDER="
            f"{provider}) but this onnxruntime offers only {list(available)}: install "
            "onnxruntime-gpu with a matching CUDA/cuDNN, or set BRANDMON_EXECUTION_PROVIDER=cpu"
        )
    return list(wanted)


def choose_variant(manifest: ModelManifest, variant: str, provider: str) -> str:
    """Which ONNX file to load: an explicit variant, or for `auto` the fastest for the provider."""
    if variant != "auto":
        if variant not in manifest.variants:
            raise ManifestError(
                f"model {manifest.model_id} has no {variant} variant (it has "
                f"{sorted(manifest.variants)}): set BRANDMON_MODEL_VARIANT to one of them or auto"
            )
        return manifest.variants[variant]
    order = ("int8", "fp32", "fp16") if provider == "cpu" else ("fp16", "fp32", "int8")
    for name in order:
        if name in manifest.variants:
            return manifest.variants[name]
    raise ManifestError(f"model {manifest.model_id} lists no ONNX file")  # unreachable: validated


class OnnxClassifier:
    """An exported sequence-classification model run by ONNX Runtime."""

    def __init__(
        self,
        model_dir: Path,
        *,
        variant: str = "auto",
        provider: str = "cpu",
        threads: int = 0,
        micro_batch: int = 32,
        spinning: bool = False,
        call_cost: float = CALL_COST_TOKENS,
    ) -> None:
        import onnxruntime as ort

        self.manifest = load_manifest(model_dir)
        self.model_id = self.manifest.model_id
        self.model_version = self.manifest.version
        self.micro_batch = micro_batch
        self.call_cost = call_cost
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        self.spinning = spinning
        providers = select_providers(provider, ort.get_available_providers())
        model_file = model_dir / choose_variant(self.manifest, variant, provider)
        if not model_file.is_file():
            raise ManifestError(f"{model_file} is listed in the manifest but missing")
        self.model_file = model_file
        self.provider = providers[0]
        try:
            self._session = ort.InferenceSession(
                str(model_file),
                sess_options=_session_options(self.threads, spinning),
                providers=providers,
            )
        except Exception as exc:  # ONNX Runtime's errors share no base class below Exception
            raise ManifestError(
                f"{model_file}: ONNX Runtime cannot load it: {ort_reason(exc)}"
            ) from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = _load_tokenizer(model_dir, self.manifest)
        self._pad_id = self._tokenizer.padding["pad_id"] if self._tokenizer.padding else 0
        self._column_of = _canonical_columns(self.manifest)

    # -- pre -------------------------------------------------------------------------------
    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def _pad(self, ids: Sequence[list[int]]) -> dict[str, NDArray[np.int64]]:
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return {k: v for k, v in feed.items() if k in self._inputs}

    # -- core ------------------------------------------------------------------------------
    def _run(self, feed: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        logits = self._session.run(None, feed)[0]
        return np.asarray(logits, dtype=np.float32)

    # -- post ------------------------------------------------------------------------------
    def _postprocess(self, logits: NDArray[np.float32]) -> Probabilities:
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        out = np.zeros((len(probs), len(CANONICAL_LABELS)), dtype=np.float32)
        for src, dst in enumerate(self._column_of):
            out[:, dst] += probs[:, src]
        return out

    # -- the classifier interface (StagedClassifier: tokenize, then infer) ---------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encode(texts) if texts else []

    def infer(self, ids: list[list[int]]) -> Probabilities:
        if not ids:
            return np.zeros((0, len(CANONICAL_LABELS)), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        ends = plan_micro_batches([len(ids[i]) for i in order], self.micro_batch, self.call_cost)
        out = np.empty((len(ids), len(CANONICAL_LABELS)), dtype=np.float32)
        start = 0
        for end in ends:
            chunk = order[start:end]
            logits = self._run(self._pad([ids[i] for i in chunk]))
            out[chunk] = self._postprocess(logits)
            start = end
        return out

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        return self.infer(self.tokenize(texts))


def _session_options(threads: int, spinning: bool) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle intra-op threads sleep instead of busy-waiting: in a worker the event loop and
    # the Kafka clients need those cycles (settings.ort_spinning)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def _load_tokenizer(model_dir: Path, manifest: ModelManifest):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    path = model_dir / TOKENIZER_NAME
    if not path.is_file():
        raise ManifestError(f"{path} is missing: the model folder needs its fast tokenizer")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception
        raise ManifestError(f"{path}: the tokenizer cannot be read: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=manifest.max_length)
    return tokenizer


def _canonical_columns(manifest: ModelManifest) -> list[int]:
    return [CANONICAL_LABELS.index(label) for label in manifest.canonical_labels]


def check_provider(settings: Settings) -> None:
    """ProviderUnavailableError when this machine lacks the provider the settings ask for (a
    start-up check of its own, so that it is not reported as a broken model)."""
    import onnxruntime as ort

    select_providers(settings.execution_provider, ort.get_available_providers())


def classifier_for(settings: Settings) -> OnnxClassifier:
    """The classifier the settings name: BRANDMON_MODEL_PATH (default: the shipped model; a
    symlink or an active-model pointer file is followed), _MODEL_VARIANT, _EXECUTION_PROVIDER,
    _ORT_THREADS, _ORT_SPINNING and _MICRO_BATCH."""
    return loader_for(settings)(resolve_model_folder(settings.resolved_model_path))


def loader_for(settings: Settings) -> Callable[[Path], OnnxClassifier]:
    """Loads any model folder with the settings' variant, provider and threads (what a model
    promotion in a running worker uses, stream/rollout.py)."""
    return functools.partial(
        load_classifier,
        variant=settings.model_variant,
        provider=settings.execution_provider,
        threads=settings.ort_threads,
        micro_batch=settings.micro_batch,
        spinning=settings.ort_spinning,
    )


def load_classifier(
    model_dir: Path,
    *,
    variant: str = "auto",
    provider: str = "cpu",
    threads: int = 0,
    micro_batch: int = 32,
    spinning: bool = False,
) -> OnnxClassifier:
    """Load the model folder made by `brandmon export` (manifest.json + ONNX + tokenizer.json)."""
    return OnnxClassifier(
        model_dir,
        variant=variant,
        provider=provider,
        threads=threads,
        micro_batch=micro_batch,
        spinning=spinning,
    )
