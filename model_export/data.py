"""Labelled JSONL files (`{"text": ..., "label": ...}` per line) for training and evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class DataFileError(Exception):
    """A labelled JSONL file is missing, unreadable, or has rows without text/label."""


@dataclass(frozen=True)
class LabelledSet:
    """Texts with their (canonical) labels, as read from one file."""

    path: Path
    texts: list[str]
    labels: list[str]

    @property
    def label_set(self) -> set[str]:
        return set(self.labels)

    @property
    def is_binary(self) -> bool:
        """True when the file has no neutral rows (negative/positive only)."""
        return "neutral" not in self.label_set


def read_jsonl(path: Path, limit: int | None = None) -> LabelledSet:
    """Read `path`; labels are lower-cased. Raise DataFileError with the line that is wrong."""
    if not path.is_file():
        raise DataFileError(f"{path} does not exist: give a JSONL file with text and label fields")
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            text, label = _parse_row(path, lineno, line)
            texts.append(text)
            labels.append(label)
            if limit is not None and len(texts) >= limit:
                break
    if not texts:
        raise DataFileError(f"{path} has no rows")
    return LabelledSet(path, texts, labels)


def _parse_row(path: Path, lineno: int, line: str) -> tuple[str, str]:
    try:
        row = json.loads(line)
        text, label = row["text"], row["label"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFileError(
            f"{path}:{lineno}: each line must be a JSON object with 'text' and 'label' ({exc})"
        ) from exc
    if not isinstance(text, str) or not isinstance(label, str):
        raise DataFileError(f"{path}:{lineno}: 'text' and 'label' must be strings")
    return text, label.strip().lower()
