"""The compute ceiling of a classifier on this machine: how many texts per second the model's
matrix multiplies alone would allow, at the speed ONNX Runtime multiplies matrices here.

    model.onnx -> count_macs      multiply-accumulates per token: weight matmuls (int8
                                  MatMulInteger or fp32 MatMul, from the graph) and attention
                                  matmuls (activation x activation, grow with the length)
    machine    -> measure_rates   ops/s of MatMulInteger (uint8 x int8) and of fp32 MatMul on
                                  the model's own weight shapes, with the classifier's threads
    both       -> ceiling         texts/s = 1 / (tokens x seconds per token)

Everything that is not a matrix multiply (layer norms, softmax, GELU, quantizing the
activations, tokenization, padding) is left out, so no real run reaches the ceiling; the
fraction of it a run reaches says how much room is left. Needs the `onnx` package (the
export extra) to read the graph and to build the one-operator benchmark graphs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: ONNX operators that multiply matrices, and the precision the ceiling prices them at.
MATMUL_PRECISION = {"MatMulInteger": "int8", "MatMul": "fp32"}


@dataclass(frozen=True)
class ModelMacs:
    """Multiply-accumulates of one model, per token."""

    #: (K, N) of each weight matmul, with how many the graph has, by precision.
    weight_shapes: dict[str, dict[tuple[int, int], int]]
    #: Activation x activation matmuls (attention scores and their weighted sum), by precision.
    attention_matmuls: dict[str, int]
    #: Model width: each attention matmul costs `dim` x length MACs per token.
    dim: int

    def weight_macs(self, precision: str) -> int:
        return sum(k * n * c for (k, n), c in self.weight_shapes.get(precision, {}).items())

    def attention_macs(self, precision: str, tokens: float) -> float:
        return self.attention_matmuls.get(precision, 0) * self.dim * tokens


def count_macs(model_file: Path) -> ModelMacs:
    """Read the ONNX graph: each matmul whose second input is a rank-2 initializer is a weight
    matmul (K x N MACs per token); the others multiply two activations (attention)."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    weights: dict[str, Counter[tuple[int, int]]] = {"int8": Counter(), "fp32": Counter()}
    attention: Counter[str] = Counter()
    for node in graph.node:
        precision = MATMUL_PRECISION.get(node.op_type)
        if precision is None:
            continue
        shape = shapes.get(node.input[1])
        if shape is not None and len(shape) == 2:
            weights[precision][(int(shape[0]), int(shape[1]))] += 1
        else:
            attention[precision] += 1
    embeddings = [s for name, s in shapes.items() if "word_embeddings" in name and len(s) == 2]
    dim = int(embeddings[0][1]) if embeddings else _dim_from_config(model_file.parent)
    return ModelMacs(
        weight_shapes={p: dict(c) for p, c in weights.items() if c},
        attention_matmuls=dict(attention),
        dim=dim,
    )


def _dim_from_config(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    return int(config.get("dim") or config.get("hidden_size") or 0)


def _matmul_graph(precision: str, m: int, k: int, n: int, seed: int = 0) -> bytes:
    """A one-operator ONNX model: (m x k) @ (k x n), the weight as an initializer."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    if precision == "int8":
        weight = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    else:
        weight = rng.standard_normal((k, n)).astype(np.float32)
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
    graph = helper.make_graph([node], "matmul", [a], [y], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def time_matmul(
    precision: str, m: int, k: int, n: int, threads: int, spinning: bool, seconds: float = 0.3
) -> float:
    """Best seconds per call of one (m x k) @ (k x n) multiply, over about `seconds` of calls."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(
        _matmul_graph(precision, m, k, n), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(1)
    if precision == "int8":
        feed = {"a": rng.integers(0, 256, size=(m, k), dtype=np.uint8)}
    else:
        feed = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    session.run(None, feed)  # warm-up
    best = float("inf")
    deadline = time.perf_counter() + seconds
    calls = 0
    while calls < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - started)
        calls += 1
    return best


@dataclass(frozen=True)
class Rates:
    """Ops per second (2 per multiply-accumulate) of the model's weight shapes here."""

    int8: float
    fp32: float


def measure_rates(macs: ModelMacs, rows: int, threads: int, spinning: bool) -> Rates:
    """Throughput of int8 and fp32 matmuls over every weight shape of the model, each with
    `rows` rows (one micro-batch of tokens), weighted by how often the graph uses it."""
    shapes: Counter[tuple[int, int]] = Counter()
    for by_shape in macs.weight_shapes.values():
        shapes.update(by_shape)
    rates = {}
    for precision in ("int8", "fp32"):
        ops = seconds = 0.0
        for (k, n), count in shapes.items():
            ops += 2.0 * rows * k * n * count
            seconds += time_matmul(precision, rows, k, n, threads, spinning) * count
        rates[precision] = ops / seconds
    return Rates(int8=rates["int8"], fp32=rates["fp32"])


def texts_per_second(macs: ModelMacs, rates: Rates, tokens: float, *, as_fp32: bool) -> float:
    """The ceiling for texts of `tokens` tokens: matmul seconds per text, inverted. With
    `as_fp32`, every matmul is priced at the fp32 rate (the model's fp32 export)."""
    seconds = 0.0
    for precision in ("int8", "fp32"):
        rate = rates.fp32 if as_fp32 or precision == "fp32" else rates.int8
        macs_per_token = macs.weight_macs(precision) + macs.attention_macs(precision, tokens)
        seconds += 2.0 * macs_per_token * tokens / rate
    return 1.0 / seconds if seconds > 0 else float("inf")


def ceiling(
    model_file: Path, tokens: float, micro_batch: int, threads: int, spinning: bool
) -> dict[str, Any]:
    """The ceiling figures `brandmon bench` prints (see module)."""
    macs = count_macs(model_file)
    rows = max(1, round(micro_batch * tokens))
    rates = measure_rates(macs, rows, threads, spinning)
    quantized = bool(macs.weight_macs("int8"))
    return {
        "tokens": round(tokens, 1),
        "rows_per_matmul": rows,
        "threads": threads,
        "int8_gops": round(rates.int8 / 1e9, 1),
        "fp32_gflops": round(rates.fp32 / 1e9, 1),
        "weight_macs_per_token": macs.weight_macs("int8") + macs.weight_macs("fp32"),
        "attention_macs_per_token": round(
            macs.attention_macs("int8", tokens) + macs.attention_macs("fp32", tokens)
        ),
        "int8_texts_per_second": round(texts_per_second(macs, rates, tokens, as_fp32=False), 1)
        if quantized
        else None,
        "fp32_texts_per_second": round(texts_per_second(macs, rates, tokens, as_fp32=True), 1),
        "how": "matrix multiplies only, at the speed of one-operator ONNX Runtime graphs of the "
        "model's weight shapes; everything else in the model is left out",
    }
