"""The text loader: JSONL or plain text, blank lines skipped, errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandmon.model_export.data import DataFileError, read_labelled, read_texts


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_texts_come_from_json_lines_and_plain_lines_alike(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.txt", '{"text": " kept as sent "}\n\n  plain text  \n')
    assert read_texts(path, 10) == [" kept as sent ", "plain text"]


def test_texts_stop_at_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "many.jsonl", "".join(f'{{"text": "t{i}"}}\n' for i in range(9)))
    assert read_texts(path, 3) == ["t0", "t1", "t2"]


def test_a_json_line_without_text_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", '{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(DataFileError, match=r"bad\.jsonl:2: .*'text'"):
        read_texts(path, 10)


def test_an_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="holds no texts"):
        read_texts(_write(tmp_path / "empty.txt", "\n \n"), 10)
    with pytest.raises(DataFileError, match="does not exist"):
        read_texts(tmp_path / "absent.jsonl", 10)


def test_labels_are_lower_cased_and_rows_need_both_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.jsonl", '{"text": "a", "label": " Positive"}\n')
    assert read_labelled(path).labels == ["positive"]
    bad = _write(tmp_path / "nolabel.jsonl", '{"text": "a"}\n')
    with pytest.raises(DataFileError, match=r"nolabel\.jsonl:1: .*'label'"):
        read_labelled(bad)
