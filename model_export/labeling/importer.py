"""Finished annotations -> brandmon training rows, an agreement report and a leak-free split.

One row per task with a clear majority: `{"text", "label"}` (what `brandmon train` reads)
plus provenance: the post id and brand, the model's earlier label, how many annotators and
their votes, the Label Studio task id. Ties are dropped and counted; cancelled annotations
and ones without a sentiment choice are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brandmon.model_export.labeling.agreement import AgreementReport, majority
from brandmon.model_export.labeling.dedup import DEFAULT_THRESHOLD, near_duplicate_groups
from brandmon.model_export.labeling.split import grouped_split
from brandmon.model_export.labeling.tasks import AnnotatedTask


@dataclass(frozen=True)
class ImportResult:
    """The split rows and what was left out."""

    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    agreement: AgreementReport
    tasks: int
    unlabelled: int
    ties: int
    cancelled: int
    empty: int
    corrected: int = 0
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "train": len(self.train),
            "test": len(self.test),
            "per_label": self.per_label,
            "agreement": {
                "posts_with_2_or_more_annotators": self.agreement.multi_annotated,
                "percent_agreement": self.agreement.percent,
                "krippendorff_alpha_nominal": self.agreement.alpha,
            },
            "dropped": {
                "ties": self.ties,
                "tasks_without_a_label": self.unlabelled,
                "cancelled_annotations": self.cancelled,
                "annotations_without_a_choice": self.empty,
            },
            "model_label_corrected": self.corrected,
        }


def training_row(task: AnnotatedTask, label: str) -> dict[str, Any]:
    data = task.data
    return {
        "text": task.text,
        "label": label,
        "id": data.get("post_id"),
        "brand": data.get("brand"),
        "model_label": data.get("model_label"),
        "annotators": len(task.labels),
        "votes": dict(Counter(task.labels)),
        "ls_task_id": task.task_id,
    }


def build_rows(
    tasks: Sequence[AnnotatedTask],
    test_share: float,
    seed: int,
    threshold: float = DEFAULT_THRESHOLD,
) -> ImportResult:
    """Majority labels, agreement and the grouped train/test split of exported tasks. The
    rows are ordered by post id, so one `seed` gives one split whatever the tasks' order."""
    rows: list[dict[str, Any]] = []
    ties = 0
    for task in tasks:
        if not task.labels:
            continue
        label = majority(task.labels)
        if label is None:
            ties += 1
        else:
            rows.append(training_row(task, label))
    # The split must not depend on the tasks' order in the project, which follows the order
    # `label export` read the posts (partitions interleave differently on every read).
    rows.sort(key=lambda row: (str(row["id"] or ""), row["text"]))
    groups = near_duplicate_groups([row["text"] for row in rows], threshold)
    train, test = grouped_split(rows, groups, test_share, seed)
    per_label = {
        side: dict(sorted(Counter(row["label"] for row in part).items()))
        for side, part in (("train", train), ("test", test))
    }
    return ImportResult(
        train=train,
        test=test,
        agreement=AgreementReport.of([task.labels for task in tasks]),
        tasks=len(tasks),
        unlabelled=sum(1 for task in tasks if not task.labels),
        ties=ties,
        cancelled=sum(task.cancelled for task in tasks),
        empty=sum(task.empty for task in tasks),
        corrected=sum(1 for row in rows if row["model_label"] not in (None, row["label"])),
        per_label=per_label,
    )


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
