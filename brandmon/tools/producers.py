"""Reading posts from files for `brandmon produce`: JSONL as sent, CSV through a column map.

Every line is sent, valid or not (the worker dead-letters what is invalid, with its reason),
and the command reports how many lines it expects to fail so nothing is a surprise.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from brandmon.contracts.posts import Post

POST_FIELDS = tuple(Post.model_fields)


@dataclass(frozen=True)
class Line:
    number: int
    key: bytes | None
    value: bytes
    problem: str | None  # why the worker will dead-letter it, or None when it is a valid post


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """`["text=body", "id=tweet_id"]` -> {"text": "body", "id": "tweet_id"} (field -> column)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise ValueError(f"--map {pair!r} is not FIELD=COLUMN (for example text=body)")
        if field not in POST_FIELDS:
            raise ValueError(
                f"--map {pair!r}: {field!r} is not a post field; use one of "
                f"{', '.join(POST_FIELDS)}"
            )
        mapping[field] = column
    return mapping


def _check(obj: object) -> tuple[bytes | None, str | None]:
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    brand = obj.get("brand")
    key = str(brand).encode() if brand is not None else None
    try:
        Post.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        return key, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return key, None


def _jsonl_lines(path: Path) -> Iterator[Line]:
    """Each non-blank line's bytes as they are, with the problem the worker will find."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            value = raw.rstrip(b"\r\n")
            if not value.strip():
                continue
            try:
                key, problem = _check(json.loads(value))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                key, problem = None, f"not JSON: {exc}"
            yield Line(number, key, value, problem)


def _csv_lines(path: Path, mapping: dict[str, str]) -> Iterator[Line]:
    """Each row as a post's JSON, columns renamed to post fields through `mapping`."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or [])
        wanted = {field: mapping.get(field, field) for field in POST_FIELDS}
        missing = [
            c
            for f, c in wanted.items()
            if f in {"id", "text", "brand", "created_at"} and c not in columns
        ]
        if missing:
            raise ValueError(
                f"{path}: columns {missing} not found (it has {sorted(columns)}); "
                "map them with --map FIELD=COLUMN"
            )
        for number, row in enumerate(reader, start=2):
            obj = {
                f: row[c]
                for f, c in wanted.items()
                if c in columns and row.get(c) not in (None, "")
            }
            key, problem = _check(obj)
            yield Line(number, key, json.dumps(obj, ensure_ascii=False).encode(), problem)


def read_posts(path: Path, fmt: str, mapping: dict[str, str]) -> Iterator[Line]:
    """Every line of a JSONL file as sent, or every row of a CSV file through `mapping`
    (post field -> column); `fmt` is jsonl, csv or auto (by the file's extension)."""
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    if fmt == "csv":
        return _csv_lines(path, mapping)
    if mapping:
        raise ValueError("--map applies to CSV input only; JSONL lines are sent as they are")
    return _jsonl_lines(path)


class Pacer:
    """Keeps a loop at `rate` iterations per second (no limit when rate is None)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.started = time.monotonic()

    def wait(self, index: int) -> None:
        if self.rate:
            delay = self.started + index / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
