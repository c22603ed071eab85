"""The ONNX classifier on a real exported (tiny, random) DistilBERT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from brandmon.contracts.manifest import ManifestError
from brandmon.stream.classifier import load_classifier

TEXTS = [
    "ok",
    "the new phone update is great and the battery lasts all day now",
    "why is my order late again",
    "bad",
    "love the coffee at this store, best in town, will come back tomorrow with friends",
]


def test_length_sorted_micro_batches_give_the_same_scores_as_one_text_at_a_time(
    tiny_model_dir: Path,
) -> None:
    batched = load_classifier(tiny_model_dir, micro_batch=2).predict_proba(TEXTS)
    single = load_classifier(tiny_model_dir, micro_batch=1)
    one_by_one = np.vstack([single.predict_proba([t]) for t in TEXTS])
    # same rows in the same order as the input, whatever order they were run in
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-5)


def test_over_long_text_is_truncated_to_the_models_max_length_not_an_error(
    tiny_model_dir: Path,
) -> None:
    clf = load_classifier(tiny_model_dir)
    long_text = "the service was bad " * 5000
    probs = clf.predict_proba([long_text, "short"])
    assert probs.shape == (2, 3)
    cut = clf.predict_proba([" ".join(long_text.split()[: clf.manifest.max_length])])
    np.testing.assert_allclose(probs[0], cut[0], atol=1e-4)


def test_empty_batch_gives_empty_scores(tiny_model_dir: Path) -> None:
    assert load_classifier(tiny_model_dir).predict_proba([]).shape == (0, 3)


def test_every_variant_in_the_manifest_loads(tiny_model_dir: Path) -> None:
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    for variant in manifest["variants"]:
        clf = load_classifier(tiny_model_dir, variant=variant)
        assert clf.model_file.name == manifest["variants"][variant]


def test_missing_folder_and_missing_manifest_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_classifier(tmp_path / "nowhere")
    with pytest.raises(ManifestError, match=r"manifest\.json is missing"):
        load_classifier(tmp_path)


def test_missing_model_file_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    (broken / manifest["variants"]["int8"]).unlink()
    with pytest.raises(ManifestError, match="missing"):
        load_classifier(broken, variant="int8")


@pytest.mark.gpu
def test_cuda_provider_runs_the_model_when_a_gpu_is_present(tiny_model_dir: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA execution provider on this machine (needs onnxruntime-gpu + GPU)")
    clf = load_classifier(tiny_model_dir, provider="cuda")
    assert clf.provider == "CUDAExecutionProvider"
    cpu = load_classifier(tiny_model_dir, variant="fp32").predict_proba(TEXTS)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), cpu, atol=2e-2)


def test_tokenize_then_infer_is_predict_proba(tiny_model_dir: Path) -> None:
    clf = load_classifier(tiny_model_dir, micro_batch=2)
    ids = clf.tokenize(TEXTS)
    assert [len(x) for x in ids] == [len(x) for x in clf._encode(TEXTS)]
    np.testing.assert_allclose(clf.infer(ids), clf.predict_proba(TEXTS), atol=1e-6)
    assert clf.tokenize([]) == [] and clf.infer([]).shape == (0, 3)


@pytest.mark.parametrize("spinning", [False, True])
def test_intra_op_spinning_follows_the_setting(tiny_model_dir: Path, spinning: bool) -> None:
    clf = load_classifier(tiny_model_dir, threads=2, spinning=spinning)
    options = clf._session.get_session_options()
    entry = options.get_session_config_entry("session.intra_op.allow_spinning")
    assert entry == ("1" if spinning else "0")
    assert clf.threads == options.intra_op_num_threads == 2


def test_micro_batches_are_cut_where_the_padding_saved_is_worth_a_call() -> None:
    from brandmon.stream.classifier import plan_micro_batches

    # one long text among short ones: it gets a call of its own
    assert plan_micro_batches([5, 5, 6, 6, 60], most=32, call_cost=16) == [4, 5]
    # similar lengths: one call, whatever the padding
    assert plan_micro_batches([20, 21, 22, 23], most=32, call_cost=16) == [4]
    # never more than `most` rows per call, every row in exactly one call
    ends = plan_micro_batches(list(range(1, 71)), most=32, call_cost=16)
    sizes = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    assert ends[-1] == 70 and max(sizes) <= 32
    # a prohibitive call cost gives the fewest calls
    assert len(plan_micro_batches(list(range(1, 71)), most=32, call_cost=1e9)) == 3
    assert plan_micro_batches([], most=32, call_cost=16) == []
