"""`brandmon evaluate`: score an exported model folder on a labelled JSONL file.

The texts go through `stream.classifier.load_classifier`, i.e. the ONNX model, tokenizer and
label map exactly as the stream runs them. Binary data (no neutral rows) scored by a 3-class
model is compared on negative vs positive only: the argmax is taken over those two columns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export.data import DataFileError, LabelledSet, read_jsonl
from model_export.metrics import Metrics, compute_metrics
from stream.manifest import CANONICAL_LABELS

BINARY_CLASSES = ("negative", "positive")


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one model on one file, plus how fast the classifier scored it."""

    model_id: str
    variant_file: str
    data_file: str
    metrics: Metrics
    seconds: float
    skipped_neutral: int = 0

    @property
    def texts_per_second(self) -> float:
        return self.metrics.count / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "variant_file": self.variant_file,
            "data": self.data_file,
            **self.metrics.as_dict(),
            "skipped_neutral_rows": self.skipped_neutral,
            "seconds": round(self.seconds, 3),
            "texts_per_second": round(self.texts_per_second, 1),
        }


def predict_labels(probs: np.ndarray, classes: Sequence[str]) -> list[str]:
    """Argmax over the canonical columns named in `classes` (columns in CANONICAL_LABELS order)."""
    columns = [CANONICAL_LABELS.index(c) for c in classes]
    picked = np.asarray(probs)[:, columns]
    return [classes[i] for i in picked.argmax(axis=1)]


def choose_classes(data: LabelledSet, model_labels: Sequence[str]) -> tuple[str, ...]:
    """3 classes when both the data and the model have neutral; else negative vs positive."""
    unknown = data.label_set - set(CANONICAL_LABELS)
    if unknown:
        raise DataFileError(
            f"{data.path} has labels {sorted(unknown)}; use negative, neutral, positive"
        )
    if data.is_binary or "neutral" not in model_labels:
        return BINARY_CLASSES
    return CANONICAL_LABELS


def score_dataset(
    data: LabelledSet, probs: np.ndarray, classes: Sequence[str]
) -> tuple[Metrics, int]:
    """Metrics of `probs` against `data`; neutral rows are left out (and counted) when the
    comparison is binary."""
    keep = [i for i, label in enumerate(data.labels) if label in classes]
    true = [data.labels[i] for i in keep]
    pred = predict_labels(probs[keep], classes)
    return compute_metrics(true, pred, classes), len(data.labels) - len(keep)


def evaluate_model(
    model_dir: Path,
    data_file: Path,
    *,
    variant: str = "auto",
    threads: int = 0,
    micro_batch: int = 32,
    limit: int | None = None,
) -> EvalReport:
    """Load the ONNX classifier from `model_dir`, score `data_file`, return the report."""
    from stream.classifier import load_classifier

    data = read_jsonl(data_file, limit=limit)
    classifier = load_classifier(
        model_dir, variant=variant, threads=threads, micro_batch=micro_batch
    )
    classes = choose_classes(data, classifier.manifest.canonical_labels)
    started = time.perf_counter()
    probs = classifier.predict_proba(data.texts)
    seconds = time.perf_counter() - started
    metrics, skipped = score_dataset(data, probs, classes)
    return EvalReport(
        classifier.model_id, classifier.model_file.name, data_file.name, metrics, seconds, skipped
    )


def render(report: EvalReport) -> None:
    """Print the report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    m = report.metrics
    console = Console()
    console.print(
        f"[bold]{report.model_id}[/bold] ({report.variant_file}) on {report.data_file}: "
        f"{m.count} texts"
        + (f", {report.skipped_neutral} neutral rows skipped" if report.skipped_neutral else "")
    )
    console.print(
        f"accuracy {m.accuracy:.4f}   macro-F1 {m.macro_f1:.4f}   "
        f"macro-recall {m.macro_recall:.4f}   {report.texts_per_second:.0f} texts/s"
    )
    per_class = Table("class", "precision", "recall", "F1", "support")
    for name, s in m.per_class.items():
        per_class.add_row(
            name, f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", str(s.support)
        )
    console.print(per_class)
    confusion = Table("true \\ predicted", *m.classes)
    for name, row in zip(m.classes, m.confusion, strict=True):
        confusion.add_row(name, *(str(v) for v in row))
    console.print(confusion)


def save_confusion_png(report: EvalReport, path: Path) -> None:
    """The confusion matrix as a PNG (matplotlib, imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = report.metrics
    counts = np.asarray(m.confusion)
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(m.classes)), m.classes)
    ax.set_yticks(range(len(m.classes)), m.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"{report.data_file}: acc {m.accuracy:.3f}, macro-R {m.macro_recall:.3f}", fontsize=9
    )
    top = counts.max() if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > top / 2 else "black",
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
