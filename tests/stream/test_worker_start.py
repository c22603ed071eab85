"""`brandmon worker` on a broken model folder: the checks of a promotion run at start, and each
fault is one line naming the file and what is wrong, exit status 65, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.contracts.manifest import load_manifest, sha256_file
from brandmon.stream.classifier import choose_variant
from brandmon.stream.worker import EXIT_BAD_MODEL

#: No broker there: a folder that passed its checks would fail on the broker next, exit 1.
NO_BROKER = "127.0.0.1:1"


def worker_env(folder: Path) -> dict[str, str]:
    return {"BRANDMON_MODEL_PATH": str(folder), "BRANDMON_BOOTSTRAP_SERVERS": NO_BROKER}


def onnx_file(folder: Path) -> Path:
    """The ONNX file the worker loads on this machine (the CPU's choice of variant)."""
    return folder / choose_variant(load_manifest(folder), "auto", "cpu")


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def re_sign(path: Path) -> None:
    """Write `path`'s new size and sha256 into the manifest, as a careless re-export would:
    the file passes the checksum check and reaches its loader."""

    def sign(raw: dict[str, Any]) -> None:
        raw["files"][path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}

    edit_manifest(path.parent, sign)


# -- the faults: each breaks a copy of a good folder and returns what the line must say -----


def missing_folder(folder: Path) -> list[str]:
    shutil.rmtree(folder)
    return [str(folder), "does not exist"]


def tampered_onnx(folder: Path) -> list[str]:
    model = onnx_file(folder)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: ONNX Runtime may well load it
    model.write_bytes(bytes(data))
    return [model.name, "bad_checksum", "sha256"]


def corrupt_onnx(folder: Path) -> list[str]:
    model = onnx_file(folder)
    model.write_bytes(model.read_bytes()[:1000])
    re_sign(model)
    return [str(model), "ONNX Runtime cannot load it", "INVALID_PROTOBUF"]


def newer_opset(folder: Path) -> list[str]:
    import onnx

    model = onnx_file(folder)
    proto = onnx.load(str(model))
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 99
    onnx.save(proto, str(model))
    re_sign(model)
    return [str(model), "ONNX Runtime cannot load it", "Opset 99"]


def unknown_label(folder: Path) -> list[str]:
    edit_manifest(folder, lambda raw: raw["label_map"].update(negative="furious"))
    return [str(folder / "manifest.json"), "unknown_labels", "furious"]


def invalid_manifest(folder: Path) -> list[str]:
    edit_manifest(folder, lambda raw: raw.pop("max_length"))
    return [str(folder / "manifest.json"), "max_length: Field required"]


def corrupt_tokenizer(folder: Path) -> list[str]:
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_text('{"version": "1.0", "model": ')
    re_sign(tokenizer)
    return [str(tokenizer), "the tokenizer cannot be read"]


FAULTS = [
    missing_folder,
    tampered_onnx,
    corrupt_onnx,
    newer_opset,
    unknown_label,
    invalid_manifest,
    corrupt_tokenizer,
]


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.__name__)
def test_a_broken_model_folder_is_one_line_and_exit_65(
    model_copy: Path, fault: Callable[[Path], list[str]]
) -> None:
    expected = fault(model_copy)
    result = CliRunner().invoke(app, ["worker"], env=worker_env(model_copy))
    assert result.exit_code == EXIT_BAD_MODEL, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not an escaped exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("brandmon worker cannot start: BRANDMON_MODEL_PATH")
    for words in expected:
        assert words in lines[0]


def test_a_corrupt_onnx_file_prints_no_traceback(model_copy: Path) -> None:
    """The process as an operator runs it: stderr is the one line, nothing else."""
    expected = corrupt_onnx(model_copy)
    done = subprocess.run(
        [sys.executable, "-m", "brandmon.cli", "worker"],
        env={**os.environ, **worker_env(model_copy)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_BAD_MODEL, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert all(words in lines[0] for words in expected)
