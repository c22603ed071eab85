"""`brandmon evaluate`: score an exported model folder on a labelled JSONL file.

The command hands in the classifier the stream runs (`brandmon.stream.classifier`: the ONNX
model, tokenizer and label map exactly as the worker loads them); this module sees only the
classifier interface. Binary data (no neutral rows) scored by a 3-class model is compared on
negative vs positive only: the argmax is taken over those two columns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brandmon.contracts.classifier import Classifier, argmax_labels
from brandmon.contracts.manifest import CANONICAL_LABELS
from brandmon.model_export.data import DataFileError, LabelledSet, read_labelled
from brandmon.model_export.metrics import ClassificationReport, compute_metrics

BINARY_CLASSES = ("negative", "positive")


@dataclass(frozen=True)
class EvalReport:
    """Quality of one model on one file, plus how fast the classifier scored it."""

    model_id: str
    variant_file: str
    data_file: str
    metrics: ClassificationReport
    seconds: float
    skipped_neutral: int = 0
    #: The same figures for each language of the file's `lang` column (empty without one).
    per_language: dict[str, ClassificationReport] = field(default_factory=dict)

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
            "per_language": {lang: m.as_dict() for lang, m in self.per_language.items()},
        }


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


def predicted_labels(
    data: LabelledSet, probs: np.ndarray, classes: Sequence[str]
) -> tuple[list[int], list[str]]:
    """The rows of `data` whose label is one of `classes`, and the label predicted for each
    of them (the argmax over the columns of `classes` only)."""
    keep = [i for i, label in enumerate(data.labels) if label in classes]
    return keep, argmax_labels(probs[keep], CANONICAL_LABELS, allowed=classes)


def score_dataset(
    data: LabelledSet, probs: np.ndarray, classes: Sequence[str]
) -> tuple[ClassificationReport, int]:
    """Quality of `probs` against `data`; neutral rows are left out (and counted) when the
    comparison is binary."""
    keep, pred = predicted_labels(data, probs, classes)
    true = [data.labels[i] for i in keep]
    return compute_metrics(true, pred, classes), len(data.labels) - len(keep)


def evaluate_model(
    classifier: Classifier,
    data_file: Path,
    *,
    model_labels: Sequence[str],
    variant_file: str,
    limit: int | None = None,
) -> EvalReport:
    """Score `data_file` with `classifier` (whose model knows `model_labels` and was loaded
    from `variant_file`), return the report."""
    data = read_labelled(data_file, limit=limit)
    classes = choose_classes(data, model_labels)
    started = time.perf_counter()
    probs = classifier.predict_proba(data.texts)
    seconds = time.perf_counter() - started
    metrics, skipped = score_dataset(data, probs, classes)
    return EvalReport(
        classifier.model_id,
        variant_file,
        data_file.name,
        metrics,
        seconds,
        skipped,
        per_language(data, probs, classes),
    )


def per_language(
    data: LabelledSet, probs: np.ndarray, classes: Sequence[str]
) -> dict[str, ClassificationReport]:
    """`score_dataset`'s figures for each language of the data (none without a lang column);
    a language with no row of `classes` (only neutral rows, binary comparison) is left out."""
    if data.langs is None:
        return {}
    reports: dict[str, ClassificationReport] = {}
    for lang in sorted(set(data.langs)):
        rows = [i for i, row_lang in enumerate(data.langs) if row_lang == lang]
        part = LabelledSet(data.path, [data.texts[i] for i in rows], [data.labels[i] for i in rows])
        if any(label in classes for label in part.labels):
            reports[lang] = score_dataset(part, probs[rows], classes)[0]
    return reports


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
    if report.per_language:
        languages = Table("language", "texts", "accuracy", "macro-F1", "macro-recall")
        for lang, lm in report.per_language.items():
            languages.add_row(
                lang,
                str(lm.count),
                f"{lm.accuracy:.4f}",
                f"{lm.macro_f1:.4f}",
                f"{lm.macro_recall:.4f}",
            )
        console.print(languages)


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
