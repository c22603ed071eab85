"""`brandmon compare`: is a candidate model (NEW) better than the one in use (OLD)?

Both models score the same labelled rows; this module turns their two probability matrices
into the comparison: the evaluation figures of each (`metrics.compute_metrics`), paired
bootstrap confidence intervals (the same resampled rows for both models, so the interval of
the difference NEW - OLD is the one that matters), an exact McNemar test on the rows where
exactly one model is right, the rows where they disagree, and a recommendation by the rule
below. The command hands in the classifiers the stream runs; nothing here loads a model.

Recommendation, per data file (`recommend`), with alpha = `Thresholds.alpha` (0.05) and
the confidence level of the intervals (0.95):
- NEW is *better* when the macro-F1 difference's interval lies above 0, or McNemar's
  p < alpha with NEW right more often (c > b); *worse* in the mirrored cases.
- "keep" when NEW is worse and not better; "promote" when NEW is better, not worse, and no
  class's recall drops by more than `Thresholds.max_recall_drop` (0.02 = 2 points);
  "inconclusive" otherwise (no significant difference, signals that disagree, or a recall drop).
Over several files (`overall`): "keep" if any file says keep, else "promote" if any file says
promote and no file has a recall drop, else "inconclusive".

Label sets: both models are scored on the canonical labels they share (argmax over those
columns only), and a file's rows with other labels are left out and counted, as `brandmon
evaluate` does for a binary file on a 3-class model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from brandmon.contracts.classifier import Classifier
from brandmon.contracts.manifest import CANONICAL_LABELS
from brandmon.model_export.data import LabelledSet, read_labelled
from brandmon.model_export.evaluate import (
    EvalReport,
    choose_classes,
    predicted_labels,
    save_confusion_png,
)
from brandmon.model_export.metrics import ClassificationReport, compute_metrics, stacked_scores

Decision = Literal["promote", "keep", "inconclusive"]
#: Bootstrap resamples drawn per numpy call: bounds memory (chunk x rows indices) for big files.
_CHUNK = 250
HEADLINE = ("accuracy", "macro_f1", "macro_recall")
PER_CLASS = ("precision", "recall", "f1")


class CompareError(Exception):
    """The two models or the data cannot be compared (label sets, no usable rows)."""


# ---------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Thresholds:
    """What the recommendation counts as significant and as a recall drop."""

    alpha: float = 0.05
    max_recall_drop: float = 0.02


@dataclass(frozen=True)
class CompareOptions:
    resamples: int = 2000
    seed: int = 13
    confidence: float = 0.95
    examples: int = 20
    limit: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class ModelSide:
    """One of the two models as the command loaded it."""

    classifier: Classifier
    labels: Sequence[str]
    variant_file: str


# ---------------------------------------------------------------------------------- labels


def shared_labels(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """The canonical labels both models predict, in canonical order; refuses a pair that
    does not share negative and positive."""
    shared = tuple(label for label in CANONICAL_LABELS if label in old and label in new)
    if not {"negative", "positive"} <= set(shared):
        raise CompareError(
            f"OLD predicts {sorted(set(old))} and NEW predicts {sorted(set(new))}: they do not "
            "share both negative and positive, so they cannot be compared"
        )
    return shared


def label_note(old: Sequence[str], new: Sequence[str], shared: Sequence[str]) -> str | None:
    """A sentence for the report when the two models' label sets differ."""
    if set(old) == set(new):
        return None
    return (
        f"OLD predicts {', '.join(sorted(set(old)))}; NEW predicts {', '.join(sorted(set(new)))}. "
        f"Both are compared on the shared labels ({', '.join(shared)}): rows with another "
        "label are left out and only the shared labels' scores compete."
    )


# ---------------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class PairedInterval:
    """Bootstrap intervals of one metric: OLD's, NEW's and of the difference NEW - OLD."""

    old: Interval
    new: Interval
    diff: Interval


@dataclass(frozen=True)
class BootstrapResult:
    resamples: int
    seed: int
    confidence: float
    #: "accuracy", "macro_f1", "macro_recall" and "<class>.<precision|recall|f1>".
    metrics: dict[str, PairedInterval]

    def as_dict(self) -> dict[str, Any]:
        return {
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "method": "paired percentile bootstrap (same resampled rows for both models)",
            "metrics": {
                name: {"old": p.old.as_list(), "new": p.new.as_list(), "diff": p.diff.as_list()}
                for name, p in self.metrics.items()
            },
        }


def resampled_confusions(
    gold: NDArray[np.int64], pred: NDArray[np.int64], k: int, rows: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Confusion matrix (k x k) of each resample: `rows` is (resamples, n) row indices."""
    cells = (gold * k + pred)[rows]
    offsets = np.arange(rows.shape[0], dtype=np.int64)[:, None] * (k * k)
    counts = np.bincount((cells + offsets).ravel(), minlength=rows.shape[0] * k * k)
    return counts.reshape(rows.shape[0], k, k)


def _metric_samples(confusions: NDArray[np.int64], classes: Sequence[str]) -> dict[str, Any]:
    scores = stacked_scores(confusions)
    out: dict[str, Any] = {
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "macro_recall": scores.macro_recall,
    }
    for name in PER_CLASS:
        values = getattr(scores, name)
        for i, label in enumerate(classes):
            out[f"{label}.{name}"] = values[:, i]
    return out


def _interval(samples: NDArray[np.float64], confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return Interval(float(low), float(high))


def paired_bootstrap(
    gold: Sequence[int],
    old_pred: Sequence[int],
    new_pred: Sequence[int],
    classes: Sequence[str],
    *,
    resamples: int = 2000,
    seed: int = 13,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Percentile intervals of every metric for both models and for NEW - OLD, from
    `resamples` resamples of the rows (with replacement) shared by the two models. Labels
    are indices into `classes`."""
    g, old, new = (np.asarray(x, dtype=np.int64) for x in (gold, old_pred, new_pred))
    if not len(g) == len(old) == len(new) or len(g) == 0:
        raise ValueError("gold and both predictions need the same, non-zero number of rows")
    rng = np.random.default_rng(seed)
    old_parts: list[dict[str, Any]] = []
    new_parts: list[dict[str, Any]] = []
    for start in range(0, resamples, _CHUNK):
        rows = rng.integers(0, len(g), size=(min(_CHUNK, resamples - start), len(g)))
        old_parts.append(_metric_samples(resampled_confusions(g, old, len(classes), rows), classes))
        new_parts.append(_metric_samples(resampled_confusions(g, new, len(classes), rows), classes))
    intervals: dict[str, PairedInterval] = {}
    for name in old_parts[0]:
        old_s = np.concatenate([part[name] for part in old_parts])
        new_s = np.concatenate([part[name] for part in new_parts])
        intervals[name] = PairedInterval(
            _interval(old_s, confidence),
            _interval(new_s, confidence),
            _interval(new_s - old_s, confidence),
        )
    return BootstrapResult(resamples, seed, confidence, intervals)


# ---------------------------------------------------------------------------------- McNemar


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test: b rows only OLD gets right, c rows only NEW gets right; the
    two-sided binomial p-value of b out of b + c at 1/2."""

    old_only: int
    new_only: int
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "b_old_right_new_wrong": self.old_only,
            "c_old_wrong_new_right": self.new_only,
            "p_value": self.p_value,
            "test": "exact McNemar (two-sided binomial test of b out of b + c at 0.5)",
        }


def mcnemar_exact(old_correct: Sequence[bool], new_correct: Sequence[bool]) -> McNemarResult:
    """The exact McNemar test of two models' correctness on the same rows."""
    from scipy.stats import binomtest

    old_ok = np.asarray(old_correct, dtype=bool)
    new_ok = np.asarray(new_correct, dtype=bool)
    b = int(np.sum(old_ok & ~new_ok))
    c = int(np.sum(~old_ok & new_ok))
    p_value = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return McNemarResult(b, c, min(1.0, p_value))


# ---------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[str, ...]
    #: class -> recall change NEW - OLD, for classes that drop more than allowed.
    recall_drops: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "recall_drops": self.recall_drops,
        }


def recommend(
    macro_f1_diff: Interval,
    mcnemar: McNemarResult,
    recall_change: dict[str, float],
    thresholds: Thresholds,
) -> Verdict:
    """The recommendation for one data file, by the rule in the module docstring."""
    significant = mcnemar.p_value < thresholds.alpha
    better, worse = [], []
    if macro_f1_diff.low > 0:
        better.append(f"macro-F1 difference interval lies above 0 ({_fmt_iv(macro_f1_diff)})")
    if macro_f1_diff.high < 0:
        worse.append(f"macro-F1 difference interval lies below 0 ({_fmt_iv(macro_f1_diff)})")
    mc = f"McNemar p = {mcnemar.p_value:.3g}, b = {mcnemar.old_only}, c = {mcnemar.new_only}"
    if significant and mcnemar.new_only > mcnemar.old_only:
        better.append(f"NEW is right on more of the split rows ({mc})")
    if significant and mcnemar.old_only > mcnemar.new_only:
        worse.append(f"OLD is right on more of the split rows ({mc})")
    drops = {
        label: change
        for label, change in recall_change.items()
        if change < -thresholds.max_recall_drop
    }
    drop_reasons = tuple(
        f"recall of {label} drops {-change * 100:.1f} points "
        f"(more than {thresholds.max_recall_drop * 100:g})"
        for label, change in drops.items()
    )
    if worse and not better:
        return Verdict("keep", ("NEW is significantly worse: " + "; ".join(worse),), drops)
    if better and not worse and not drops:
        return Verdict("promote", ("NEW is significantly better: " + "; ".join(better),), drops)
    if better and worse:
        reasons = ("the signals disagree: " + "; ".join([*better, *worse]),)
    elif better:
        reasons = ("NEW is significantly better: " + "; ".join(better),)
    else:
        reasons = (f"no significant difference (macro-F1 diff {_fmt_iv(macro_f1_diff)}; {mc})",)
    return Verdict("inconclusive", reasons + drop_reasons, drops)


def overall(verdicts: dict[str, Verdict]) -> Verdict:
    """One recommendation over several data files (name -> verdict), by the rule in the
    module docstring; the reasons name the files that decide it."""

    def files_saying(decision: str) -> list[str]:
        return [f"{name}: {_reasons(v)}" for name, v in verdicts.items() if v.decision == decision]

    drops = {
        f"{name}: {label}": change
        for name, v in verdicts.items()
        for label, change in v.recall_drops.items()
    }
    if files_saying("keep"):
        return Verdict("keep", tuple(files_saying("keep")), drops)
    if files_saying("promote") and not drops:
        return Verdict("promote", tuple(files_saying("promote")), drops)
    if not drops:
        return Verdict("inconclusive", ("no data file shows a significant difference",))
    blocked = [f"{name}: {_reasons(v)}" for name, v in verdicts.items() if v.recall_drops]
    return Verdict("inconclusive", tuple(blocked), drops)


def _fmt_iv(iv: Interval) -> str:
    return f"[{iv.low:+.4f}, {iv.high:+.4f}]"


# ---------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Disagreement:
    """A row the two models label differently."""

    text: str
    gold: str
    old_label: str
    old_confidence: float
    new_label: str
    new_confidence: float

    @property
    def right(self) -> str:
        if self.old_label == self.gold:
            return "OLD"
        return "NEW" if self.new_label == self.gold else "neither"

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "gold": self.gold,
            "old_label": self.old_label,
            "old_confidence": round(self.old_confidence, 4),
            "new_label": self.new_label,
            "new_confidence": round(self.new_confidence, 4),
            "right": self.right,
        }


@dataclass(frozen=True)
class FileComparison:
    """Both models on one data file."""

    data_file: str
    classes: tuple[str, ...]
    skipped: int
    old: EvalReport
    new: EvalReport
    bootstrap: BootstrapResult
    mcnemar: McNemarResult
    disagreement_count: int
    disagreements: list[Disagreement]
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        return {
            "data": self.data_file,
            "classes": list(self.classes),
            "count": self.old.metrics.count,
            "skipped_rows": self.skipped,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
            "difference": _differences(self.old.metrics, self.new.metrics),
            "bootstrap": self.bootstrap.as_dict(),
            "mcnemar": self.mcnemar.as_dict(),
            "disagreement_count": self.disagreement_count,
            "disagreements": [d.as_dict() for d in self.disagreements],
            "recommendation": self.verdict.as_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    old_model: str
    new_model: str
    old_labels: list[str]
    new_labels: list[str]
    shared_labels: tuple[str, ...]
    label_note: str | None
    options: CompareOptions
    files: list[FileComparison]
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        return {
            "old_model": self.old_model,
            "new_model": self.new_model,
            "old_labels": self.old_labels,
            "new_labels": self.new_labels,
            "shared_labels": list(self.shared_labels),
            "label_note": self.label_note,
            "thresholds": {
                "alpha": self.options.thresholds.alpha,
                "max_recall_drop": self.options.thresholds.max_recall_drop,
                "confidence": self.options.confidence,
            },
            "datasets": [f.as_dict() for f in self.files],
            "recommendation": self.verdict.as_dict(),
        }


def metric_values(report: ClassificationReport) -> dict[str, float]:
    """The metrics the bootstrap covers, by the same names, from one report."""
    values = {name: float(getattr(report, name)) for name in HEADLINE}
    for label, s in report.per_class.items():
        for name in PER_CLASS:
            values[f"{label}.{name}"] = float(getattr(s, name))
    return values


def _differences(old: ClassificationReport, new: ClassificationReport) -> dict[str, float]:
    old_v, new_v = metric_values(old), metric_values(new)
    return {name: new_v[name] - old_v[name] for name in old_v}


def _confidence(probs: NDArray[np.float32], classes: Sequence[str]) -> NDArray[np.float64]:
    """`probs` renormalised over the columns of `classes` (others set to 0)."""
    mask = np.array([label in classes for label in CANONICAL_LABELS])
    kept = np.where(mask, probs.astype(np.float64), 0.0)
    total = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, total, out=np.zeros_like(kept), where=total > 0)


def select_disagreements(
    data: LabelledSet,
    rows: Sequence[int],
    old: tuple[Sequence[str], NDArray[np.float32]],
    new: tuple[Sequence[str], NDArray[np.float32]],
    classes: Sequence[str],
    most: int,
) -> tuple[int, list[Disagreement]]:
    """How many rows the models label differently, and up to `most` of them: those where
    the less sure of the two models is surest first. A model's confidence is the
    probability it gives its own label, renormalised over the compared `classes`."""
    (old_pred, old_probs), (new_pred, new_probs) = old, new
    old_conf, new_conf = _confidence(old_probs, classes), _confidence(new_probs, classes)
    found: list[Disagreement] = []
    for pos, row in enumerate(rows):
        if old_pred[pos] == new_pred[pos]:
            continue
        found.append(
            Disagreement(
                data.texts[row],
                data.labels[row],
                old_pred[pos],
                float(old_conf[row, CANONICAL_LABELS.index(old_pred[pos])]),
                new_pred[pos],
                float(new_conf[row, CANONICAL_LABELS.index(new_pred[pos])]),
            )
        )
    found.sort(
        key=lambda d: (
            -min(d.old_confidence, d.new_confidence),
            -max(d.old_confidence, d.new_confidence),
        )
    )
    return len(found), found[:most]


@dataclass(frozen=True)
class _Scored:
    """One model on one file: probabilities, the label of each compared row, its report."""

    probs: NDArray[np.float32]
    pred: list[str]
    report: EvalReport


def _score(
    side: ModelSide, data: LabelledSet, classes: Sequence[str], data_name: str
) -> tuple[list[int], _Scored]:
    """Score `data` with one model; return the compared rows and the result."""
    started = time.perf_counter()
    probs = side.classifier.predict_proba(data.texts)
    seconds = time.perf_counter() - started
    rows, pred = predicted_labels(data, probs, classes)
    if not rows:
        raise CompareError(
            f"{data_name} has no rows labelled {' or '.join(classes)}: nothing to compare"
        )
    metrics = compute_metrics([data.labels[i] for i in rows], pred, classes)
    skipped = len(data.labels) - len(rows)
    report = EvalReport(
        side.classifier.model_id, side.variant_file, data_name, metrics, seconds, skipped
    )
    return rows, _Scored(probs, pred, report)


def compare_file(
    old: ModelSide,
    new: ModelSide,
    data_file: Path,
    shared: Sequence[str],
    options: CompareOptions,
) -> FileComparison:
    """Score `data_file` with both models and compare them on its rows."""
    data = read_labelled(data_file, limit=options.limit)
    classes = choose_classes(data, shared)
    rows, o = _score(old, data, classes, str(data_file))
    _, n = _score(new, data, classes, str(data_file))
    gold = [data.labels[i] for i in rows]
    index = {label: i for i, label in enumerate(classes)}
    boot = paired_bootstrap(
        [index[x] for x in gold],
        [index[x] for x in o.pred],
        [index[x] for x in n.pred],
        classes,
        resamples=options.resamples,
        seed=options.seed,
        confidence=options.confidence,
    )
    mcnemar = mcnemar_exact(
        [p == t for p, t in zip(o.pred, gold, strict=True)],
        [p == t for p, t in zip(n.pred, gold, strict=True)],
    )
    count, examples = select_disagreements(
        data, rows, (o.pred, o.probs), (n.pred, n.probs), classes, options.examples
    )
    old_m, new_m = o.report.metrics, n.report.metrics
    recall_change = {c: new_m.per_class[c].recall - old_m.per_class[c].recall for c in classes}
    verdict = recommend(boot.metrics["macro_f1"].diff, mcnemar, recall_change, options.thresholds)
    return FileComparison(
        str(data_file),
        tuple(classes),
        o.report.skipped_neutral,
        o.report,
        n.report,
        boot,
        mcnemar,
        count,
        examples,
        verdict,
    )


def compare_models(
    old: ModelSide, new: ModelSide, data_files: Sequence[Path], options: CompareOptions
) -> Comparison:
    """Compare OLD and NEW on every data file, each file on its own, plus one verdict."""
    shared = shared_labels(old.labels, new.labels)
    files = [compare_file(old, new, path, shared, options) for path in data_files]
    return Comparison(
        old.classifier.model_id,
        new.classifier.model_id,
        sorted(set(old.labels)),
        sorted(set(new.labels)),
        shared,
        label_note(old.labels, new.labels, shared),
        options,
        files,
        overall({f.data_file: f.verdict for f in files}),
    )


# ---------------------------------------------------------------------------------- output


def _metric_rows(f: FileComparison) -> list[tuple[str, float, Interval, float, Interval, Interval]]:
    """(metric, OLD, OLD interval, NEW, NEW interval, NEW - OLD interval) per metric."""
    old_v, new_v = metric_values(f.old.metrics), metric_values(f.new.metrics)
    return [
        (name, old_v[name], iv.old, new_v[name], iv.new, iv.diff)
        for name, iv in f.bootstrap.metrics.items()
    ]


def _cell(value: float, iv: Interval, sign: str = "") -> str:
    """A value over its interval, for the terminal table."""
    return f"{value:{sign}.4f}\n[dim]{iv.low:{sign}.3f} to {iv.high:{sign}.3f}[/dim]"


def _terminal_metrics(f: FileComparison, pct: int) -> Any:
    from rich.table import Table

    table = Table(
        "metric",
        f"OLD\n[dim]{pct}% CI[/dim]",
        f"NEW\n[dim]{pct}% CI[/dim]",
        f"NEW - OLD\n[dim]{pct}% CI[/dim]",
    )
    for name, old_v, old_iv, new_v, new_iv, diff_iv in _metric_rows(f):
        table.add_row(
            name.replace(".", " "),
            _cell(old_v, old_iv),
            _cell(new_v, new_iv),
            _cell(new_v - old_v, diff_iv, "+"),
        )
    return table


def _terminal_examples(f: FileComparison) -> Any:
    from rich.table import Table

    table = Table("text", "gold", "OLD", "NEW", "right")
    for d in f.disagreements:
        table.add_row(
            d.text if len(d.text) <= 100 else d.text[:99] + "…",
            d.gold,
            f"{d.old_label} {d.old_confidence:.2f}",
            f"{d.new_label} {d.new_confidence:.2f}",
            d.right,
        )
    return table


def render_terminal(comparison: Comparison, console: Any = None) -> None:
    """Print the comparison as rich tables."""
    from rich.console import Console

    c = comparison
    console = console or Console()
    console.print(f"OLD [bold]{c.old_model}[/bold]   NEW [bold]{c.new_model}[/bold]")
    if c.label_note:
        console.print(f"[yellow]{c.label_note}[/yellow]")
    pct = round(c.options.confidence * 100)
    for f in c.files:
        console.print(
            f"\n[bold]{f.data_file}[/bold]: {f.old.metrics.count} rows, classes "
            f"{', '.join(f.classes)}" + (f", {f.skipped} rows left out" if f.skipped else "")
        )
        console.print(_terminal_metrics(f, pct))
        m = f.mcnemar
        console.print(
            f"McNemar (exact): b = {m.old_only} OLD right/NEW wrong, c = {m.new_only} OLD "
            f"wrong/NEW right, p = {m.p_value:.4g}. The models disagree on "
            f"{f.disagreement_count} rows" + (", the surest:" if f.disagreements else ".")
        )
        if f.disagreements:
            console.print(_terminal_examples(f))
        console.print(f"{f.data_file}: [bold]{f.verdict.decision}[/bold] ({_reasons(f.verdict)})")
    colour = {"promote": "green", "keep": "red", "inconclusive": "yellow"}[c.verdict.decision]
    console.print(
        f"\nrecommendation: [bold {colour}]{c.verdict.decision}[/] ({_reasons(c.verdict)})"
    )


def _reasons(verdict: Verdict) -> str:
    return "; ".join(verdict.reasons)


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _png_names(index: int, f: FileComparison) -> tuple[str, str]:
    stem = Path(f.data_file).stem
    return f"confusion-{index}-{stem}-old.png", f"confusion-{index}-{stem}-new.png"


def render_markdown(comparison: Comparison) -> str:
    """report.md: the figures, tests, confusion matrices (PNGs beside it) and disagreements."""
    c = comparison
    pct = round(c.options.confidence * 100)
    lines = [
        f"# {c.new_model} (NEW) vs {c.old_model} (OLD)",
        "",
        f"**Recommendation: {c.verdict.decision}** ({_md_cell(_reasons(c.verdict))})",
        "",
        f"Rule: NEW is better when the {pct}% interval of the macro-F1 difference lies above 0 "
        f"or McNemar's p < {c.options.thresholds.alpha:g} with NEW right more often; promote "
        "when better, not worse, and no class's recall drops more than "
        f"{c.options.thresholds.max_recall_drop * 100:g} points; keep when worse; "
        "inconclusive otherwise.",
        "",
    ]
    if c.label_note:
        lines += [f"> {c.label_note}", ""]
    for index, f in enumerate(c.files, start=1):
        lines += _markdown_file(index, f, pct)
    return "\n".join(lines) + "\n"


def _markdown_file(index: int, f: FileComparison, pct: int) -> list[str]:
    old_png, new_png = _png_names(index, f)
    b = f.bootstrap
    lines = [
        f"## {f.data_file}",
        "",
        f"{f.old.metrics.count} rows, classes {', '.join(f.classes)}"
        + (f"; {f.skipped} rows with other labels left out" if f.skipped else "")
        + f". Intervals: paired percentile bootstrap, {b.resamples} resamples, seed {b.seed}.",
        "",
        f"| metric | OLD | OLD {pct}% CI | NEW | NEW {pct}% CI | NEW - OLD | {pct}% CI |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, old_v, old_iv, new_v, new_iv, diff_iv in _metric_rows(f):
        lines.append(
            f"| {name} | {old_v:.4f} | {_fmt_iv(old_iv).replace('+', '')} | {new_v:.4f} | "
            f"{_fmt_iv(new_iv).replace('+', '')} | {new_v - old_v:+.4f} | {_fmt_iv(diff_iv)} |"
        )
    m = f.mcnemar
    lines += [
        "",
        f"Exact McNemar test: b = {m.old_only} (OLD right, NEW wrong), c = {m.new_only} "
        f"(OLD wrong, NEW right), two-sided p = {m.p_value:.4g}.",
        "",
        f"**{f.verdict.decision}**: {_md_cell(_reasons(f.verdict))}",
        "",
        "| OLD confusion | NEW confusion |",
        "|---|---|",
        f"| ![OLD]({old_png}) | ![NEW]({new_png}) |",
        "",
        f"### Disagreements ({len(f.disagreements)} of {f.disagreement_count}, surest first)",
        "",
    ]
    if f.disagreements:
        lines += ["| text | gold | OLD | NEW | right |", "|---|---|---|---|---|"]
        lines += [
            f"| {_md_cell(d.text)} | {d.gold} | {d.old_label} {d.old_confidence:.2f} | "
            f"{d.new_label} {d.new_confidence:.2f} | {d.right} |"
            for d in f.disagreements
        ]
    else:
        lines.append("The models agree on every row.")
    return [*lines, ""]


def write_report(comparison: Comparison, out_dir: Path) -> Path:
    """Write report.md, compare.json and both confusion PNGs per data file to `out_dir`;
    return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, f in enumerate(comparison.files, start=1):
        old_png, new_png = _png_names(index, f)
        save_confusion_png(f.old, out_dir / old_png)
        save_confusion_png(f.new, out_dir / new_png)
    (out_dir / "compare.json").write_text(
        json.dumps(comparison.as_dict(), indent=2) + "\n", encoding="utf-8"
    )
    report = out_dir / "report.md"
    report.write_text(render_markdown(comparison), encoding="utf-8")
    return report
