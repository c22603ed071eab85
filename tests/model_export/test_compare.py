"""`brandmon compare`: the statistics against hand-computed values, the recommendation rule,
and the command end to end on real tiny exported models (two random 3-class tiny models whose
labels depend on the text, and a binary one, exported through the real export path)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.model_export.compare import (
    CompareError,
    Interval,
    McNemarResult,
    Thresholds,
    Verdict,
    mcnemar_exact,
    overall,
    paired_bootstrap,
    recommend,
    resampled_confusions,
    select_disagreements,
    shared_labels,
)
from brandmon.model_export.data import LabelledSet
from brandmon.model_export.metrics import compute_metrics, stacked_scores
from brandmon.tools.tiny_model import make_tiny_checkpoint

THREE = ("negative", "neutral", "positive")
runner = CliRunner()


def _correctness(b: int, c: int, both: int = 0, neither: int = 0) -> tuple[list[bool], list[bool]]:
    old = [True] * b + [False] * c + [True] * both + [False] * neither
    new = [False] * b + [True] * c + [True] * both + [False] * neither
    return old, new


# ---------------------------------------------------------------------------------- McNemar


def test_mcnemar_b10_c2_matches_the_hand_computed_binomial_tail() -> None:
    # n = 12 split rows: P(X <= 2) = (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 79/4096, doubled
    result = mcnemar_exact(*_correctness(b=10, c=2, both=40, neither=7))
    assert (result.old_only, result.new_only) == (10, 2)
    assert result.p_value == pytest.approx(158 / 4096)


def test_mcnemar_is_symmetric_and_ignores_rows_both_get_right_or_wrong() -> None:
    assert mcnemar_exact(*_correctness(b=2, c=10)).p_value == pytest.approx(158 / 4096)
    # b = 0, c = 6: 2 * (1/2)^6
    assert mcnemar_exact(*_correctness(b=0, c=6, both=100)).p_value == pytest.approx(1 / 32)
    assert mcnemar_exact(*_correctness(b=5, c=5)).p_value == 1.0
    assert mcnemar_exact(*_correctness(b=0, c=0, both=3, neither=3)).p_value == 1.0


# ---------------------------------------------------------------------------------- bootstrap


def _labels(n: int, right: float, seed: int, gold: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n) if gold is None else gold
    return np.where(rng.random(n) < right, truth, rng.integers(0, 3, n))


def test_stacked_scores_agree_with_compute_metrics() -> None:
    gold, pred = _labels(300, 0.0, 1), _labels(300, 0.0, 2)
    stack = resampled_confusions(gold, pred, 3, np.arange(300)[None, :])
    scores = stacked_scores(stack)
    report = compute_metrics([THREE[i] for i in gold], [THREE[i] for i in pred], THREE)
    assert stack[0].tolist() == report.confusion
    assert scores.accuracy[0] == pytest.approx(report.accuracy)
    assert scores.macro_f1[0] == pytest.approx(report.macro_f1)
    assert scores.macro_recall[0] == pytest.approx(report.macro_recall)
    for i, label in enumerate(THREE):
        assert scores.precision[0, i] == pytest.approx(report.per_class[label].precision)


def test_bootstrap_intervals_contain_the_point_estimates() -> None:
    gold = _labels(2000, 0.0, 3)
    old, new = _labels(2000, 0.6, 4, gold), _labels(2000, 0.7, 5, gold)
    result = paired_bootstrap(gold, old, new, THREE, resamples=500, seed=1)
    old_acc, new_acc = float(np.mean(old == gold)), float(np.mean(new == gold))
    iv = result.metrics["accuracy"]
    assert iv.old.low < old_acc < iv.old.high
    assert iv.new.low < new_acc < iv.new.high
    assert iv.diff.low < new_acc - old_acc < iv.diff.high
    assert set(result.metrics) >= {"macro_f1", "macro_recall", "neutral.recall", "positive.f1"}


def test_bootstrap_intervals_narrow_with_more_rows() -> None:
    def width(n: int) -> float:
        gold = _labels(n, 0.0, 6)
        iv = paired_bootstrap(
            gold, _labels(n, 0.6, 7, gold), _labels(n, 0.7, 8, gold), THREE, resamples=400
        ).metrics["macro_f1"]
        return iv.diff.high - iv.diff.low

    assert width(4000) < width(250) / 2


def test_identical_models_have_a_difference_interval_of_exactly_zero() -> None:
    gold = _labels(500, 0.0, 9)
    pred = _labels(500, 0.5, 10, gold)
    result = paired_bootstrap(gold, pred, pred, THREE, resamples=300)
    for iv in result.metrics.values():
        assert (iv.diff.low, iv.diff.high) == (0.0, 0.0)
        assert iv.old == iv.new


def test_pairing_detects_a_small_consistent_gain_the_separate_intervals_do_not() -> None:
    # NEW fixes 25 of OLD's errors and changes nothing else: the models' own intervals
    # overlap, but on every resample NEW >= OLD, so the paired difference is above 0.
    gold = _labels(1000, 0.0, 11)
    old = _labels(1000, 0.7, 12, gold)
    new = old.copy()
    wrong = np.flatnonzero(old != gold)[:25]
    new[wrong] = gold[wrong]
    iv = paired_bootstrap(gold, old, new, THREE, resamples=1000, seed=3).metrics["accuracy"]
    assert iv.old.high > iv.new.low
    assert iv.diff.low > 0


def test_bootstrap_is_reproducible_by_seed() -> None:
    gold = _labels(300, 0.0, 13)
    args = (gold, _labels(300, 0.6, 14, gold), _labels(300, 0.6, 15, gold), THREE)
    first = paired_bootstrap(*args, resamples=200, seed=5).metrics["macro_f1"]
    again = paired_bootstrap(*args, resamples=200, seed=5).metrics["macro_f1"]
    other = paired_bootstrap(*args, resamples=200, seed=6).metrics["macro_f1"]
    assert first == again
    assert first != other


# ---------------------------------------------------------------------------------- verdict

NO_SPLIT = McNemarResult(old_only=10, new_only=11, p_value=1.0)
FLAT = {"negative": 0.0, "neutral": 0.0, "positive": 0.0}


def test_promote_when_the_macro_f1_gain_is_significant_and_no_recall_drops() -> None:
    verdict = recommend(Interval(0.01, 0.03), NO_SPLIT, FLAT, Thresholds())
    assert verdict.decision == "promote"


def test_promote_on_mcnemar_alone_when_new_is_right_more_often() -> None:
    split = McNemarResult(old_only=2, new_only=10, p_value=158 / 4096)
    assert recommend(Interval(-0.01, 0.04), split, FLAT, Thresholds()).decision == "promote"
    # the same split is not significant at alpha 0.01
    strict = Thresholds(alpha=0.01)
    assert recommend(Interval(-0.01, 0.04), split, FLAT, strict).decision == "inconclusive"


def test_keep_when_new_is_significantly_worse() -> None:
    split = McNemarResult(old_only=10, new_only=2, p_value=158 / 4096)
    verdict = recommend(Interval(-0.04, 0.01), split, FLAT, Thresholds())
    assert verdict.decision == "keep"
    assert "b = 10" in verdict.reasons[0]


def test_a_recall_drop_blocks_promotion_unless_the_threshold_allows_it() -> None:
    change = {"negative": -0.03, "neutral": 0.08, "positive": 0.0}
    verdict = recommend(Interval(0.01, 0.03), NO_SPLIT, change, Thresholds())
    assert verdict.decision == "inconclusive"
    assert verdict.recall_drops == {"negative": -0.03}
    assert any("recall of negative drops 3.0 points" in r for r in verdict.reasons)
    loose = Thresholds(max_recall_drop=0.05)
    assert recommend(Interval(0.01, 0.03), NO_SPLIT, change, loose).decision == "promote"


def test_inconclusive_without_signal_or_when_the_signals_disagree() -> None:
    assert recommend(Interval(-0.01, 0.01), NO_SPLIT, FLAT, Thresholds()).decision == (
        "inconclusive"
    )
    worse_split = McNemarResult(old_only=30, new_only=10, p_value=0.002)
    verdict = recommend(Interval(0.005, 0.02), worse_split, FLAT, Thresholds())
    assert verdict.decision == "inconclusive"
    assert "disagree" in verdict.reasons[0]


def test_overall_keep_wins_and_promote_needs_no_recall_drop_anywhere() -> None:
    promote = Verdict("promote", ("x",))
    keep = Verdict("keep", ("x",))
    flat = Verdict("inconclusive", ("x",))
    dropped = Verdict("inconclusive", ("x",), {"neutral": -0.05})
    assert overall({"a": promote, "b": keep}).decision == "keep"
    assert overall({"a": promote, "b": flat}).decision == "promote"
    assert overall({"a": flat}).decision == "inconclusive"
    blocked = overall({"a": promote, "b": dropped})
    assert blocked.decision == "inconclusive"
    assert blocked.recall_drops == {"b: neutral": -0.05}
    assert blocked.reasons[0].startswith("b: ")


# ---------------------------------------------------------------------------------- labels, rows


def test_label_sets_must_share_negative_and_positive() -> None:
    assert shared_labels(THREE, ["negative", "positive"]) == ("negative", "positive")
    assert shared_labels(THREE, list(reversed(THREE))) == THREE
    with pytest.raises(CompareError, match="cannot be compared"):
        shared_labels(THREE, ["negative", "neutral"])


def test_disagreements_surest_first_with_confidence_over_the_compared_classes() -> None:
    data = LabelledSet(Path("x.jsonl"), ["a", "b", "c", "d"], ["negative"] * 4)
    old_probs = np.array(
        [[0.9, 0.0, 0.1], [0.6, 0.0, 0.4], [0.1, 0.0, 0.9], [0.2, 0.6, 0.2]], dtype=np.float32
    )
    new_probs = np.array(
        [[0.05, 0.0, 0.95], [0.3, 0.0, 0.7], [0.1, 0.0, 0.9], [0.1, 0.6, 0.3]], dtype=np.float32
    )
    old_pred = ["negative", "negative", "positive", "negative"]
    new_pred = ["positive", "positive", "positive", "positive"]
    count, rows = select_disagreements(
        data,
        [0, 1, 2, 3],
        (old_pred, old_probs),
        (new_pred, new_probs),
        ("negative", "positive"),
        most=2,
    )
    assert count == 3  # row c: both say positive
    assert [d.text for d in rows] == ["a", "b"]  # min confidence 0.9, then 0.6 (d: 0.5)
    assert rows[0].old_confidence == pytest.approx(0.9)
    assert rows[0].right == "OLD"


# ---------------------------------------------------------------------------------- end to end


def _export(factory: pytest.TempPathFactory, name: str, labels: tuple[str, ...], seed: int) -> Path:
    """A tiny model whose labels depend on the text (weight_std), exported the real way
    (fp32 only: with such weights int8 flips too many labels for the export's own check)."""
    from brandmon.model_export.export import ExportOptions, export_model

    base = factory.mktemp(f"compare-{name}")
    ckpt = make_tiny_checkpoint(base / "ckpt", labels, seed=seed, weight_std=0.3)
    options = ExportOptions(max_length=64, name=f"tiny-{name}", quantize="none")
    export_model(str(ckpt), base / name, options)
    return base / name


@pytest.fixture(scope="module")
def old_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory, "old", THREE, seed=2)


@pytest.fixture(scope="module")
def new_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory, "new", THREE, seed=1)


@pytest.fixture(scope="module")
def binary_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory, "bin", ("NEGATIVE", "POSITIVE"), seed=3)


WORDS = ["good", "bad", "love", "hate", "phone", "app", "service", "slow", "great", "awful"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(4)
    path = tmp_path_factory.mktemp("compare-data") / "posts.jsonl"
    rows = [
        {"text": " ".join(rng.choices(WORDS, k=rng.randint(2, 9))), "label": THREE[i % 3]}
        for i in range(90)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _compare_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["compare", *args, "--json", "--resamples", "300"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_compare_json_reports_both_models_on_the_same_rows(
    old_model_dir: Path, new_model_dir: Path, data_file: Path
) -> None:
    out = _compare_json(str(old_model_dir), str(new_model_dir), "--data", str(data_file))
    assert out["old_model"].startswith("tiny-old@")
    assert out["new_model"].startswith("tiny-new@")
    assert out["label_note"] is None
    (ds,) = out["datasets"]
    assert ds["count"] == 90 and ds["classes"] == list(THREE)
    for side in ("old", "new"):
        assert set(ds[side]) >= {"accuracy", "macro_f1", "macro_recall", "per_class"}
    assert ds["difference"]["accuracy"] == pytest.approx(
        ds["new"]["accuracy"] - ds["old"]["accuracy"]
    )
    boot = ds["bootstrap"]
    assert boot["resamples"] == 300 and boot["seed"] == 13
    low, high = boot["metrics"]["macro_f1"]["old"]
    assert low <= ds["old"]["macro_f1"] <= high
    # b - c is the difference in rows right: (acc_new - acc_old) * n = c - b
    mc = ds["mcnemar"]
    assert mc["c_old_wrong_new_right"] - mc["b_old_right_new_wrong"] == round(
        ds["difference"]["accuracy"] * 90
    )
    assert ds["disagreement_count"] > 0, "the two random models should disagree somewhere"
    assert 0 < len(ds["disagreements"]) <= 20
    example = ds["disagreements"][0]
    assert example["old_label"] != example["new_label"]
    assert out["recommendation"]["decision"] in {"promote", "keep", "inconclusive"}


def test_a_model_against_itself_differs_by_exactly_nothing(
    old_model_dir: Path, data_file: Path
) -> None:
    out = _compare_json(str(old_model_dir), str(old_model_dir), "--data", str(data_file))
    (ds,) = out["datasets"]
    assert all(iv["diff"] == [0.0, 0.0] for iv in ds["bootstrap"]["metrics"].values())
    assert ds["mcnemar"]["p_value"] == 1.0
    assert ds["disagreement_count"] == 0
    assert out["recommendation"]["decision"] == "inconclusive"


def test_binary_and_three_class_models_are_compared_on_the_shared_labels(
    old_model_dir: Path, binary_model_dir: Path, data_file: Path
) -> None:
    out = _compare_json(str(old_model_dir), str(binary_model_dir), "--data", str(data_file))
    assert out["shared_labels"] == ["negative", "positive"]
    assert "shared labels" in out["label_note"]
    (ds,) = out["datasets"]
    assert ds["classes"] == ["negative", "positive"]
    assert ds["skipped_rows"] == 30 and ds["count"] == 60
    assert all(d["gold"] != "neutral" for d in ds["disagreements"])
    assert all("neutral" not in (d["old_label"], d["new_label"]) for d in ds["disagreements"])


def test_report_folder_holds_markdown_json_and_both_confusion_pngs(
    old_model_dir: Path, new_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            *("compare", str(old_model_dir), str(new_model_dir), "-d", str(data_file)),
            *("--report", str(report), "--examples", "5", "--resamples", "200"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recommendation:" in result.stdout  # the terminal tables still print
    text = (report / "report.md").read_text(encoding="utf-8")
    pngs = sorted(report.glob("*.png"))
    assert len(pngs) == 2
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in text
    saved = json.loads((report / "compare.json").read_text(encoding="utf-8"))
    assert f"**Recommendation: {saved['recommendation']['decision']}**" in text
    assert "Exact McNemar test: b = " in text
    first = saved["datasets"][0]["disagreements"][0]
    assert f"| {first['text']} | {first['gold']} |" in text
    assert len(saved["datasets"][0]["disagreements"]) <= 5


def test_bad_arguments_get_a_message_and_exit_code_2(
    old_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "hi", "label": "joy"}\n', encoding="utf-8")
    (tmp_path / "plain").mkdir()
    model, data = str(old_model_dir), str(data_file)
    cases = {
        "is not a folder": [str(tmp_path / "missing"), model, "-d", data],
        "not a model folder": [model, str(tmp_path / "plain"), "-d", data],
        "does not exist": [model, model, "-d", str(tmp_path / "nope.jsonl")],
        "has no rows": [model, model, "-d", str(empty)],
        "use negative, neutral, positive": [model, model, "-d", str(odd)],
    }
    for message, args in cases.items():
        result = runner.invoke(app, ["compare", *args])
        assert result.exit_code == 2, (message, result.output)
        assert message in " ".join(result.output.replace("│", " ").split()), result.output
        assert "Traceback" not in result.output
