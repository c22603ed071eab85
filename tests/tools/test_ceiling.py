"""The compute ceiling: multiply-accumulates read off a real exported graph, and the
arithmetic from matmul rates to texts per second (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandmon.tools.bench import ratios
from brandmon.tools.ceiling import ModelMacs, Rates, count_macs, texts_per_second, time_matmul


def test_the_macs_of_the_tiny_int8_model_are_read_off_its_graph(tiny_model_dir: Path) -> None:
    # tiny DistilBERT: dim 32, hidden 64 (tools/tiny_model.py), 2 layers, int8 weights
    macs = count_macs(tiny_model_dir / "model.int8.onnx")
    assert macs.dim == 32
    int8 = macs.weight_shapes["int8"]
    assert int8[(32, 32)] >= 2 * 4  # q, k, v and out per layer
    assert macs.weight_macs("int8") >= 2 * 4 * 32 * 32
    assert sum(macs.attention_matmuls.values()) == 2 * 2  # scores and weighted sum per layer


def test_rates_become_texts_per_second_by_counting_two_ops_per_mac() -> None:
    macs = ModelMacs({"int8": {(100, 100): 2}}, {"fp32": 2}, dim=100)
    rates = Rates(int8=4e9, fp32=1e9)
    # per token: 20,000 int8 MACs (4e4 ops at 4e9/s = 10 us) and 2 x 100 x 10 = 2,000 fp32
    # MACs (4e3 ops at 1e9/s = 4 us): 10 tokens take 140 us
    assert texts_per_second(macs, rates, 10, as_fp32=False) == pytest.approx(1 / 140e-6)
    # all at fp32: (4e4 + 4e3) ops x 10 tokens at 1e9/s = 440 us
    assert texts_per_second(macs, rates, 10, as_fp32=True) == pytest.approx(1 / 440e-6)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_a_one_operator_matmul_runs(precision: str) -> None:
    assert 0 < time_matmul(precision, 8, 16, 16, threads=1, spinning=False, seconds=0.01) < 1


def test_ratios_say_which_targets_are_met() -> None:
    result = {
        "classifier": {"texts_per_second": 400.0},
        "ceiling": {"int8_texts_per_second": 800.0, "fp32_texts_per_second": 200.0},
        "reference": {"texts_per_second": 50.0},
        "end_to_end": {"posts_per_second": 390.0},
    }
    out = ratios(result)
    assert out["classifier_vs_int8_ceiling"] == 0.5
    assert out["meets_classifier_vs_int8_ceiling"] is False
    assert out["end_to_end_vs_classifier"] == 0.975
    assert out["meets_end_to_end_vs_classifier"] is True
    assert out["end_to_end_vs_reference"] == 7.8 and out["meets_end_to_end_vs_reference"]
