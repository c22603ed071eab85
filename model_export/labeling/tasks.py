"""Label Studio's formats: the labeling config, tasks with the model's pre-annotation, and
the annotations read back from a JSON export.

A task is `{"data": {...}, "predictions": [{"model_version", "score", "result"}]}`; the
prediction's result is a `choices` region from the config's `sentiment` control to its
`text` object, so Label Studio shows the model's label pre-selected and the annotator only
corrects it. The export (API or file) is a list of tasks with `annotations`, each holding
`result`, `was_cancelled` and `completed_by`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brandmon.contracts.manifest import CANONICAL_LABELS
from brandmon.contracts.posts import ScoredPost
from brandmon.model_export.labeling.select import Candidate

#: Names in the labeling config that tasks, predictions and the import all refer to.
FROM_NAME = "sentiment"
TO_NAME = "text"

LABEL_CONFIG = f"""<View>
  <Header value="$brand, $created_at"/>
  <Text name="{TO_NAME}" value="$text"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" required="true">
{"".join(f'    <Choice value="{label}"/>{chr(10)}' for label in CANONICAL_LABELS)}  </Choices>
</View>
"""


class ExportFormatError(ValueError):
    """A Label Studio export that is not a list of tasks with data.text."""


def choice_result(label: str) -> list[dict[str, Any]]:
    """A Label Studio result that picks `label` in the sentiment choices."""
    return [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def model_name(post: ScoredPost) -> str:
    """`name@version` of the model that scored `post`. The score worker's `model_id` is
    already that (`brandmon-sentiment-minilm@1.0.0`); a bare name gets its version added."""
    suffix = f"@{post.model_version}"
    return post.model_id if post.model_id.endswith(suffix) else post.model_id + suffix


def to_task(candidate: Candidate) -> dict[str, Any]:
    """The Label Studio task of a picked post, pre-annotated with the model's label."""
    post = candidate.post
    if post.label is None:
        raise ValueError(f"post {post.id} is unscored ({post.unscored_reason}): nothing to check")
    return {
        "data": {
            "text": post.text,
            "post_id": post.id,
            "brand": post.brand,
            "created_at": post.created_at.isoformat(),
            "model_label": post.label,
            "model_id": post.model_id,
            "uncertainty": round(candidate.uncertainty, 4),
        },
        "predictions": [
            {
                "model_version": model_name(post),
                "score": round(candidate.confidence, 4),
                "result": choice_result(post.label),
            }
        ],
    }


@dataclass(frozen=True)
class AnnotatedTask:
    """One task read back: its data and the label of each usable annotation."""

    task_id: int | str | None
    data: Mapping[str, Any]
    labels: list[str] = field(default_factory=list)
    cancelled: int = 0
    empty: int = 0

    @property
    def text(self) -> str:
        return str(self.data["text"])


def _annotation_label(annotation: Mapping[str, Any]) -> str | None:
    """The sentiment choice of one annotation, or None when it has none we know."""
    for region in annotation.get("result") or []:
        if not isinstance(region, Mapping) or region.get("from_name") != FROM_NAME:
            continue
        choices = (region.get("value") or {}).get("choices") or []
        if len(choices) == 1 and choices[0] in CANONICAL_LABELS:
            return str(choices[0])
    return None


def read_task(task: Any, position: int) -> AnnotatedTask:
    """An export task's usable labels, with cancelled and empty annotations counted."""
    if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
        raise ExportFormatError(f"item {position} is not a Label Studio task with 'data'")
    if not isinstance(task["data"].get("text"), str):
        raise ExportFormatError(
            f"task {task.get('id', position)} has no data.text: was the project made by "
            "`brandmon label export`?"
        )
    labels: list[str] = []
    cancelled = empty = 0
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            cancelled += 1
        elif (label := _annotation_label(annotation)) is None:
            empty += 1
        else:
            labels.append(label)
    return AnnotatedTask(task.get("id"), task["data"], labels, cancelled, empty)


def read_export(tasks: Any) -> list[AnnotatedTask]:
    """Every task of a Label Studio JSON export (a list of tasks)."""
    if not isinstance(tasks, Sequence) or isinstance(tasks, str | bytes):
        raise ExportFormatError(
            "a Label Studio JSON export is a list of tasks; export the project as 'JSON'"
        )
    return [read_task(task, i) for i, task in enumerate(tasks)]
