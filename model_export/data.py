"""Reading texts from files: the one text loader of brandmon.

- `read_texts`: unlabelled texts, from JSONL (a "text" field per line) or plain text (one
  text per line); for the export's validation sample and the benchmark.
- `read_labelled`: labelled JSONL (`{"text": ..., "label": ...}` per line), for training and
  evaluation.

Both skip blank lines and raise DataFileError naming the file and line that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataFileError(Exception):
    """A text file is missing, unreadable, or has rows without the fields it needs."""


@dataclass(frozen=True)
class LabelledSet:
    """Texts with their (canonical) labels, as read from one file."""

    path: Path
    texts: list[str]
    labels: list[str]
    #: Each row's language when the file has a `lang` column (rows without one are "und").
    langs: list[str] | None = None

    @property
    def label_set(self) -> set[str]:
        return set(self.labels)

    @property
    def is_binary(self) -> bool:
        """True when the file has no neutral rows (negative/positive only)."""
        return "neutral" not in self.label_set


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of every non-blank line of `path`."""
    if not path.is_file():
        raise DataFileError(f"{path} does not exist: give a JSONL or text file")
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    yield lineno, line.strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path} cannot be read as UTF-8 text: {exc}") from exc


def _json_object(path: Path, lineno: int, line: str, fields: tuple[str, ...]) -> dict[str, Any]:
    try:
        row = json.loads(line)
        if not isinstance(row, dict):
            raise TypeError(f"a JSON {type(row).__name__}, not an object")
        missing = [name for name in fields if name not in row]
        if missing:
            raise KeyError(", ".join(missing))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFileError(
            f"{path}:{lineno}: each line must be a JSON object with "
            f"{' and '.join(repr(f) for f in fields)} ({exc})"
        ) from exc
    return row


def read_texts(path: Path, limit: int) -> list[str]:
    """The first `limit` texts of `path`: a line that starts with `{` is JSON with a "text"
    field, any other line is a text as it stands."""
    texts: list[str] = []
    for lineno, line in _lines(path):
        if line.startswith("{"):
            line = str(_json_object(path, lineno, line, ("text",))["text"])
        texts.append(line)
        if len(texts) >= limit:
            break
    if not texts:
        raise DataFileError(f"{path} holds no texts")
    return texts


def read_labelled(path: Path, limit: int | None = None) -> LabelledSet:
    """Read labelled JSONL; labels are lower-cased."""
    texts: list[str] = []
    labels: list[str] = []
    langs: list[str] = []
    for lineno, line in _lines(path):
        row = _json_object(path, lineno, line, ("text", "label"))
        text, label, lang = row["text"], row["label"], row.get("lang")
        if not isinstance(text, str) or not isinstance(label, str):
            raise DataFileError(f"{path}:{lineno}: 'text' and 'label' must be strings")
        if lang is not None and not isinstance(lang, str):
            raise DataFileError(f"{path}:{lineno}: 'lang' must be a language code like 'en'")
        texts.append(text)
        labels.append(label.strip().lower())
        langs.append(lang.strip().lower() if lang and lang.strip() else "und")
        if limit is not None and len(texts) >= limit:
            break
    if not texts:
        raise DataFileError(f"{path} has no rows")
    has_langs = any(lang != "und" for lang in langs)
    return LabelledSet(path, texts, labels, langs if has_langs else None)
