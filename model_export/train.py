"""`brandmon train`: fine-tune the default 3-class sentiment model from all-MiniLM-L6-v2.

The model is a DistilBertForSequenceClassification whose encoder is mapped from the MiniLM
BertModel (see minilm.py). Training mixes 3-class rows (tweets) with binary rows (SST-2
phrases): for binary rows the neutral logit is masked out, so they teach negative vs
positive without teaching that nothing is neutral. 3-class rows are weighted by inverse class
frequency, because the target metric is macro-recall and the tweet pool has few negatives.

Speed on 2 CPU cores comes from length buckets (batches of similar length), max_length 64,
frozen word embeddings and bf16 autocast (see docs/model.md, "Training cost").
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brandmon.contracts.classifier import argmax_labels
from brandmon.contracts.manifest import CANONICAL_LABELS
from brandmon.model_export.data import LabelledSet, read_labelled
from brandmon.model_export.metrics import compute_metrics

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Output order of the default model: the canonical order, the same as cardiffnlp's LABEL_0/1/2.
LABELS: tuple[str, ...] = CANONICAL_LABELS
BINARY_LABELS = ("negative", "positive")
NEUTRAL = LABELS.index("neutral")
_MENTION = re.compile(r"@\S+")


class TrainDataError(ValueError):
    """A training or validation file cannot be used (labels outside negative/neutral/positive)."""


@dataclass
class TrainConfig:
    """Everything a training run is told; saved next to the checkpoints."""

    train_files: list[Path]
    val_files: list[Path]
    out_dir: Path
    epochs: int = 2
    lr: float = 6e-5
    batch_size: int = 32
    max_length: int = 64
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    #: Binary (neg/pos only) rows used per epoch; each epoch takes the next slice of the pool.
    binary_per_epoch: int = 20000
    #: Binary rows shorter than this many words are dropped (SST-2 has many 1-2 word phrases).
    binary_min_words: int = 3
    #: Binary rows held out of training to watch negative-vs-positive accuracy.
    binary_holdout: int = 800
    #: Share of 3-class rows whose @mentions become "@user" (TweetEval's convention).
    mention_mask: float = 0.5
    balance_classes: bool = True
    freeze_word_embeddings: bool = True
    bf16: bool = True
    evals_per_epoch: int = 2
    patience: int = 2
    #: Time budget: every `calibrate_steps` the schedule is refitted so that the learning
    #: rate reaches zero (and training ends) within it, however busy the machine is.
    max_minutes: float = 60.0
    #: Start from this saved classifier (e.g. a previous run's best/) instead of MiniLM.
    init: Path | None = None
    calibrate_steps: int = 100
    threads: int = 0
    bucket_batches: int = 50
    log_every: int = 50


@dataclass
class Row:
    ids: list[int]
    label: int
    binary: bool


@dataclass
class Pools:
    """Tokenized rows: the 3-class pool, the binary pool and the held-out sets."""

    multi: list[Row]
    binary: list[Row]
    val: dict[str, list[Row]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- data


def _check_labels(data: LabelledSet) -> None:
    unknown = data.label_set - set(LABELS)
    if unknown:
        raise TrainDataError(
            f"{data.path} has labels {sorted(unknown)}; training files must use "
            f"{list(LABELS)} (map them before training)"
        )


def _tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    if not texts:
        return []
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [list(ids) for ids in enc["input_ids"]]


def _rows(
    tokenizer: Any, texts: Sequence[str], labels: Sequence[str], cfg: TrainConfig, binary: bool
) -> list[Row]:
    ids = _tokenize(tokenizer, texts, cfg.max_length)
    return [Row(i, LABELS.index(lab), binary) for i, lab in zip(ids, labels, strict=True)]


def _mask_mentions(texts: list[str], share: float, rng: random.Random) -> list[str]:
    return [_MENTION.sub("@user", t) if rng.random() < share else t for t in texts]


def load_pools(cfg: TrainConfig, tokenizer: Any, rng: random.Random) -> Pools:
    """Read and tokenize the training and validation files named in `cfg`."""
    multi: list[Row] = []
    binary_texts: list[tuple[str, str]] = []
    for path in cfg.train_files:
        data = read_labelled(path)
        _check_labels(data)
        if data.is_binary:
            binary_texts += [
                (t, lab)
                for t, lab in zip(data.texts, data.labels, strict=True)
                if len(t.split()) >= cfg.binary_min_words
            ]
        else:
            texts = _mask_mentions(data.texts, cfg.mention_mask, rng)
            multi += _rows(tokenizer, texts, data.labels, cfg, binary=False)
    rng.shuffle(binary_texts)
    held, kept = binary_texts[: cfg.binary_holdout], binary_texts[cfg.binary_holdout :]
    pools = Pools(
        multi, _rows(tokenizer, [t for t, _ in kept], [lab for _, lab in kept], cfg, True)
    )
    if held:
        pools.val["binary-holdout"] = _rows(
            tokenizer, [t for t, _ in held], [lab for _, lab in held], cfg, True
        )
    for path in cfg.val_files:
        data = read_labelled(path)
        _check_labels(data)
        pools.val[path.name] = _rows(tokenizer, data.texts, data.labels, cfg, data.is_binary)
    return pools


def class_weights(rows: Sequence[Row]) -> list[float]:
    """Inverse-frequency weights of the 3-class rows, scaled so that their mean is 1."""
    counts = Counter(r.label for r in rows)
    total = sum(counts.values())
    return [total / (len(LABELS) * counts[i]) if counts[i] else 0.0 for i in range(len(LABELS))]


def make_batches(
    rows: Sequence[Row], batch_size: int, bucket: int, rng: random.Random
) -> list[list[Row]]:
    """Shuffle, sort each chunk of `bucket` batches by length, cut into batches, shuffle them."""
    order = list(rows)
    rng.shuffle(order)
    batches: list[list[Row]] = []
    chunk = batch_size * bucket
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda r: len(r.ids))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def epoch_rows(pools: Pools, epoch: int, cfg: TrainConfig) -> list[Row]:
    """All 3-class rows plus this epoch's slice of the binary pool."""
    n = min(cfg.binary_per_epoch, len(pools.binary))
    if n == 0:
        return list(pools.multi)
    start = (epoch * n) % len(pools.binary)
    picked = (pools.binary + pools.binary)[start : start + n]
    return list(pools.multi) + picked


# ---------------------------------------------------------------------------- tensors


def collate(batch: Sequence[Row]) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest row; return input ids, mask, labels and the binary flag."""
    import torch

    width = max(len(r.ids) for r in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, r in enumerate(batch):
        ids[i, : len(r.ids)] = torch.tensor(r.ids)
        mask[i, : len(r.ids)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": torch.tensor([r.label for r in batch]),
        "binary": torch.tensor([r.binary for r in batch]),
    }


def batch_loss(
    logits: torch.Tensor, labels: torch.Tensor, binary: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted cross-entropy; binary rows compare negative vs positive only (neutral masked)."""
    import torch
    import torch.nn.functional as F

    logits = logits.float()
    mask = torch.zeros_like(logits)
    mask[binary, NEUTRAL] = -1e4
    per_row = F.cross_entropy(logits + mask, labels, reduction="none")
    row_w = torch.where(binary, torch.ones_like(per_row), weights[labels])
    return (per_row * row_w).mean()


# ---------------------------------------------------------------------------- model


def build_model(cfg: TrainConfig) -> tuple[Any, Any]:
    """The classifier and its tokenizer: MiniLM-initialised, or the `--init` checkpoint's own."""
    from brandmon.model_export.minilm import distilbert_from_minilm, minilm_tokenizer

    if cfg.init is None:
        model, tokenizer = distilbert_from_minilm(dict(enumerate(LABELS))), minilm_tokenizer()
    else:
        from transformers import AutoTokenizer, DistilBertForSequenceClassification

        model = DistilBertForSequenceClassification.from_pretrained(str(cfg.init))
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if labels != list(LABELS):
            raise TrainDataError(f"{cfg.init} has labels {labels}, not {list(LABELS)}")
        tokenizer = AutoTokenizer.from_pretrained(str(cfg.init))
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
    if cfg.freeze_word_embeddings:
        model.distilbert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model, tokenizer


@dataclass
class Schedule:
    """Linear warm-up then linear decay to zero at `total` steps.

    `total` starts at `planned` and follows the time budget: shortened when the machine is
    slow, lengthened again (never beyond `planned`) when it speeds up.
    """

    warm: int
    total: int
    planned: int = 0
    _mark: tuple[int, float] = (0, 0.0)

    def __post_init__(self) -> None:
        self.planned = self.planned or self.total

    def factor(self, step: int) -> float:
        if step < self.warm:
            return (step + 1) / self.warm
        return max(0.0, (self.total - step) / max(1, self.total - self.warm))

    def fit_budget(self, step: int, elapsed: float, budget: float) -> bool:
        """Set `total` so the remaining steps fit in `budget` seconds at the pace of the steps
        since the last call; True if `total` changed."""
        last_step, last_time = self._mark
        self._mark = (step, elapsed)
        per_step = (elapsed - last_time) / max(1, step - last_step)
        #: Keep 8% of the remaining time for validation runs and checkpoint writes.
        fits = step + int((budget - elapsed) * 0.92 / per_step)
        total = min(self.planned, max(step + 1, fits))
        changed = total != self.total
        self.total = total
        return changed


def make_optimizer(model: Any, cfg: TrainConfig, total_steps: int) -> tuple[Any, Any, Schedule]:
    """AdamW (no decay on biases and LayerNorm) with linear warm-up and linear decay."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (
                no_decay
                if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
                else decay
            ).append(param)
    optim = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    plan = Schedule(max(1, int(total_steps * cfg.warmup)), total_steps)
    return optim, torch.optim.lr_scheduler.LambdaLR(optim, plan.factor), plan


def predict_rows(model: Any, rows: Sequence[Row], binary: bool, batch_size: int = 64) -> list[str]:
    """Predicted labels (negative/positive only when `binary`), in the order of `rows`."""
    import torch

    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
    preds = [""] * len(rows)
    allowed = BINARY_LABELS if binary else None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = collate([rows[i] for i in idx])
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            labels = argmax_labels(logits.float().cpu().numpy(), LABELS, allowed=allowed)
            for i, label in zip(idx, labels, strict=True):
                preds[i] = label
    model.train()
    return preds


def validate(model: Any, pools: Pools) -> dict[str, float]:
    """Headline figure per validation set (macro-recall for 3-class, accuracy for binary)."""
    scores: dict[str, float] = {}
    for name, rows in pools.val.items():
        binary = all(r.binary for r in rows)
        preds = predict_rows(model, rows, binary)
        classes = ["negative", "positive"] if binary else list(LABELS)
        m = compute_metrics([LABELS[r.label] for r in rows], preds, classes)
        scores[name] = m.accuracy if binary else m.macro_recall
    scores["score"] = sum(scores.values()) / len(scores) if scores else 0.0
    return scores


# ---------------------------------------------------------------------------- loop


@dataclass
class RunState:
    step: int = 0
    best: float = -1.0
    evals_since_best: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stop_reason: str = ""

    def minutes(self) -> float:
        return (time.monotonic() - self.started) / 60


def save_checkpoint(model: Any, tokenizer: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _evaluate_and_keep(
    model: Any, tokenizer: Any, pools: Pools, cfg: TrainConfig, state: RunState, epoch: float
) -> None:
    scores = validate(model, pools)
    entry = {
        "epoch": round(epoch, 2),
        "step": state.step,
        "minutes": round(state.minutes(), 1),
        **{k: round(v, 4) for k, v in scores.items()},
    }
    state.history.append(entry)
    log.info("validation %s", entry)
    if scores["score"] > state.best:
        state.best, state.evals_since_best = scores["score"], 0
        save_checkpoint(model, tokenizer, cfg.out_dir / "best")
        log.info("new best checkpoint -> %s", cfg.out_dir / "best")
    else:
        state.evals_since_best += 1
        if state.evals_since_best >= cfg.patience:
            state.stop_reason = f"early stop: no better validation score in {cfg.patience} evals"


def train_step(
    model: Any, batch: list[Row], optim: Any, sched: Any, weights: Any, cfg: TrainConfig
) -> float:
    import torch

    enc = collate(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    loss = batch_loss(out.logits, enc["labels"], enc["binary"], weights)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    sched.step()
    optim.zero_grad(set_to_none=True)
    return float(loss.item())


def _fit_budget(plan: Schedule, state: RunState, cfg: TrainConfig) -> None:
    if state.step < cfg.calibrate_steps or state.step % cfg.calibrate_steps:
        return
    elapsed = time.monotonic() - state.started
    if plan.fit_budget(state.step, elapsed, cfg.max_minutes * 60):
        log.info(
            "schedule now ends at step %d to fit %.0f minutes (%.2f s/step so far)",
            plan.total,
            cfg.max_minutes,
            elapsed / state.step,
        )


def run_epoch(
    model: Any,
    tokenizer: Any,
    pools: Pools,
    cfg: TrainConfig,
    state: RunState,
    epoch: int,
    ctx: dict[str, Any],
) -> None:
    """One pass over this epoch's batches, validating `evals_per_epoch` times."""
    batches = make_batches(
        epoch_rows(pools, epoch, cfg), cfg.batch_size, cfg.bucket_batches, ctx["rng"]
    )
    eval_at = {
        math.ceil(len(batches) * k / cfg.evals_per_epoch) for k in range(1, cfg.evals_per_epoch + 1)
    }
    running, progress, task = 0.0, ctx["progress"], ctx["task"]
    for i, batch in enumerate(batches, start=1):
        running += train_step(model, batch, ctx["optim"], ctx["sched"], ctx["weights"], cfg)
        state.step += 1
        progress.advance(task)
        if state.step % cfg.log_every == 0:
            log.info(
                "epoch %d step %d/%d loss %.4f lr %.2e %.1f min",
                epoch + 1,
                i,
                len(batches),
                running / cfg.log_every,
                ctx["sched"].get_last_lr()[0],
                state.minutes(),
            )
            running = 0.0
        _fit_budget(ctx["plan"], state, cfg)
        progress.update(task, total=ctx["plan"].total)
        schedule_done = state.step >= ctx["plan"].total
        if i in eval_at or schedule_done:
            _evaluate_and_keep(model, tokenizer, pools, cfg, state, epoch + i / len(batches))
            if schedule_done:
                state.stop_reason = state.stop_reason or "end of the learning-rate schedule"
        if state.stop_reason:
            break
    if i == len(batches):  # the epoch ran to its end (also when training stops right there)
        save_checkpoint(model, tokenizer, cfg.out_dir / f"epoch-{epoch + 1}")


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the whole fine-tune; return the summary also written to out_dir/train_summary.json."""
    import torch
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, tokenizer = build_model(cfg)
    pools = load_pools(cfg, tokenizer, rng)
    weights = class_weights(pools.multi) if cfg.balance_classes else [1.0] * len(LABELS)
    log.info(
        "3-class rows %d, binary pool %d, class weights %s, val sets %s",
        len(pools.multi),
        len(pools.binary),
        [round(w, 3) for w in weights],
        {k: len(v) for k, v in pools.val.items()},
    )
    per_epoch = math.ceil(len(epoch_rows(pools, 0, cfg)) / cfg.batch_size)
    optim, sched, plan = make_optimizer(model, cfg, per_epoch * cfg.epochs)
    state = RunState()
    state.started = time.monotonic()
    model.train()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed}/{task.total}",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("training", total=per_epoch * cfg.epochs)
        ctx = {
            "rng": rng,
            "optim": optim,
            "sched": sched,
            "plan": plan,
            "progress": bar,
            "task": task,
            "weights": torch.tensor(weights),
        }
        for epoch in range(cfg.epochs):
            run_epoch(model, tokenizer, pools, cfg, state, epoch, ctx)
            if state.stop_reason:
                break
    return _write_summary(cfg, state, weights)


def _write_summary(cfg: TrainConfig, state: RunState, weights: list[float]) -> dict[str, Any]:
    config: dict[str, Any] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
    }
    config["train_files"] = [str(p) for p in cfg.train_files]
    config["val_files"] = [str(p) for p in cfg.val_files]
    summary: dict[str, Any] = {
        "config": config,
        "best_score": state.best,
        "best_checkpoint": str(cfg.out_dir / "best"),
        "stop_reason": state.stop_reason or "all epochs done",
        "minutes": round(state.minutes(), 1),
        "class_weights": weights,
        "history": state.history,
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
