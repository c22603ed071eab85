"""Pieces of `brandmon train` that decide what the model learns: loss masking, class weights,
length buckets and the time-budgeted schedule."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from brandmon.model_export.data import read_labelled
from brandmon.model_export.train import (
    LABELS,
    NEUTRAL,
    Pools,
    Row,
    Schedule,
    TrainConfig,
    TrainDataError,
    _check_labels,
    batch_loss,
    class_weights,
    epoch_rows,
    make_batches,
)


def test_binary_rows_never_push_the_neutral_logit() -> None:
    logits = torch.zeros((2, 3), requires_grad=True)
    labels = torch.tensor([0, 2])
    loss = batch_loss(logits, labels, torch.tensor([True, True]), torch.ones(3))
    loss.backward()
    assert torch.all(logits.grad[:, NEUTRAL] == 0)
    # with neutral masked the loss is the 2-way cross-entropy: ln 2 for equal logits
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-6)


def test_three_class_rows_are_weighted_by_their_class() -> None:
    logits = torch.zeros((1, 3))
    weights = torch.tensor([2.0, 0.5, 1.0])
    negative = batch_loss(logits, torch.tensor([0]), torch.tensor([False]), weights)
    neutral = batch_loss(logits, torch.tensor([1]), torch.tensor([False]), weights)
    assert negative.item() == pytest.approx(4 * neutral.item())


def test_class_weights_balance_the_classes() -> None:
    rows = [Row([1], 0, False)] * 10 + [Row([1], 1, False)] * 30 + [Row([1], 2, False)] * 20
    weights = class_weights(rows)
    counts = [10, 30, 20]
    # every class contributes the same total weight, and the mean row weight is 1
    assert [w * c for w, c in zip(weights, counts, strict=True)] == pytest.approx([20.0] * 3)
    assert sum(w * c for w, c in zip(weights, counts, strict=True)) / 60 == pytest.approx(1.0)


def test_batches_hold_texts_of_similar_length_and_cover_every_row() -> None:
    rng = random.Random(0)
    rows = [Row([1] * rng.randint(3, 60), 0, False) for _ in range(640)]
    batches = make_batches(rows, batch_size=32, bucket=20, rng=random.Random(1))
    assert sorted(len(r.ids) for b in batches for r in b) == sorted(len(r.ids) for r in rows)
    spreads = [max(len(r.ids) for r in b) - min(len(r.ids) for r in b) for b in batches]
    assert max(spreads) <= 10  # one chunk of 640 sorted rows -> neighbours in length


def test_each_epoch_takes_the_next_slice_of_the_binary_pool() -> None:
    binary = [Row([i], 0, True) for i in range(10)]
    pools = Pools(multi=[Row([99], 1, False)], binary=binary)
    cfg = TrainConfig([], [], Path("unused"), binary_per_epoch=4)
    first = [r.ids[0] for r in epoch_rows(pools, 0, cfg) if r.binary]
    second = [r.ids[0] for r in epoch_rows(pools, 1, cfg) if r.binary]
    assert first == [0, 1, 2, 3]
    assert second == [4, 5, 6, 7]


def test_schedule_warms_up_then_decays_to_zero() -> None:
    plan = Schedule(warm=10, total=110)
    assert plan.factor(0) == pytest.approx(0.1)
    assert plan.factor(10) == pytest.approx(1.0)
    assert plan.factor(60) == pytest.approx(0.5)
    assert plan.factor(110) == 0.0


def test_schedule_follows_the_time_budget_but_never_exceeds_the_plan() -> None:
    plan = Schedule(warm=10, total=1000)
    # 100 steps in 200 s (2 s/step) with 1000 s left of 1200: ~460 more steps fit
    assert plan.fit_budget(step=100, elapsed=200.0, budget=1200.0) is True
    assert plan.total == 100 + int(1000 * 0.92 / 2)
    # the machine got faster (0.5 s/step): the plan grows back, capped at 1000
    assert plan.fit_budget(step=200, elapsed=250.0, budget=1200.0) is True
    assert plan.total == 1000


def test_training_file_with_foreign_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stars.jsonl"
    path.write_text(json.dumps({"text": "ok", "label": "4 stars"}) + "\n")
    with pytest.raises(TrainDataError, match="4 stars"):
        _check_labels(read_labelled(path))
    assert LABELS == ("negative", "neutral", "positive")


def test_train_command_passes_every_option_to_the_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    import brandmon.model_export.train as train_module
    from brandmon.model_export.cli import register

    seen: list[TrainConfig] = []

    def fake_train(cfg: TrainConfig) -> dict[str, object]:
        seen.append(cfg)
        return {"best_score": 0.5, "minutes": 0.1, "stop_reason": "test", "best_checkpoint": "x"}

    monkeypatch.setattr(train_module, "train", fake_train)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "ok", "label": "neutral"}) + "\n")
    init = tmp_path / "init"
    init.mkdir()
    (init / "config.json").write_text("{}")
    app = typer.Typer()
    register(app)
    args = [
        "train",
        "-t",
        str(data),
        "--val",
        str(data),
        "--init",
        str(init),
        "--lr",
        "3e-5",
        "--warmup",
        "0.03",
        "--binary-min-words",
        "6",
        "--seed",
        "14",
        "--max-minutes",
        "30",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.init, cfg.lr, cfg.warmup, cfg.binary_min_words, cfg.seed, cfg.max_minutes) == (
        init,
        3e-5,
        0.03,
        6,
        14,
        30.0,
    )


def test_train_command_rejects_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from brandmon.model_export.cli import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["train", "-t", str(tmp_path / "no.jsonl"), "--val", "x"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def _tiny_data(tmp_path: Path) -> tuple[Path, Path]:
    tweets = tmp_path / "tweets.jsonl"
    rows = [("love", "positive"), ("hate", "negative"), ("new", "neutral")] * 20
    tweets.write_text(
        "".join(
            json.dumps({"text": f"{w} phone today @someone", "label": lab}) + "\n"
            for w, lab in rows
        )
    )
    phrases = tmp_path / "phrases.jsonl"
    pairs = [("great", "positive"), ("awful", "negative")] * 30
    phrases.write_text(
        "".join(
            json.dumps({"text": f"a really {w} movie", "label": lab}) + "\n" for w, lab in pairs
        )
    )
    return tweets, phrases


def test_training_learns_and_saves_a_loadable_best_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from brandmon.model_export.train import train
    from brandmon.tools.tiny_model import make_tiny_checkpoint

    # small head weights, like a fresh head: the logits start near zero and can move
    init = make_tiny_checkpoint(tmp_path / "init", LABELS, head_scale=0.02)
    tweets, phrases = _tiny_data(tmp_path)
    cfg = TrainConfig(
        [tweets, phrases],
        [tweets],
        tmp_path / "out",
        epochs=6,
        batch_size=8,
        lr=5e-3,
        binary_per_epoch=20,
        binary_holdout=10,
        init=init,
        bf16=False,
        patience=10,
        max_minutes=5.0,
    )
    summary = train(cfg)
    history = summary["history"]
    assert [h["epoch"] for h in history] == [k / 2 for k in range(1, 13)]
    assert {"binary-holdout", "tweets.jsonl", "score"} <= set(history[0])
    # one word decides each tweet's class: macro-recall climbs from chance (1/3)
    assert history[0]["tweets.jsonl"] < 0.4
    assert history[-1]["tweets.jsonl"] > 0.6
    assert (tmp_path / "out" / "epoch-6" / "config.json").is_file()
    assert (tmp_path / "out" / "epoch-3" / "config.json").is_file()
    best = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "out" / "best"))
    assert best.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    saved = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert saved["best_score"] == summary["best_score"]
    assert summary["best_score"] == pytest.approx(max(h["score"] for h in history), abs=1e-4)


def test_training_stops_early_when_validation_stops_improving(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    from brandmon.model_export.train import train

    tweets, phrases = _tiny_data(tmp_path)
    cfg = TrainConfig(
        [tweets, phrases],
        [tweets],
        tmp_path / "out",
        epochs=5,
        batch_size=8,
        lr=0.0,
        binary_per_epoch=20,
        binary_holdout=10,
        init=tiny_checkpoint_dir,
        bf16=False,
        patience=2,
        max_minutes=5.0,
    )
    summary = train(cfg)
    assert summary["stop_reason"].startswith("early stop")
    assert len(summary["history"]) == 3  # the first eval is the best; two more without gain
