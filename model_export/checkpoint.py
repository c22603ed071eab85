"""Find and load the checkpoint to export: a local folder, or a hub id where a hub is reachable.

Each kind of problem raises its own ExportError subclass with a message saying what to do.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brandmon.model_export.errors import (
    CheckpointLoadError,
    CheckpointNotFoundError,
    HubUnreachableError,
    TokenizerNotFoundError,
    UnsupportedModelError,
)

HUB_HOST = "huggingface.co"
#: Seconds to wait for the hub before giving up; a missing hub must fail fast.
HUB_TIMEOUT = 3.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)


@dataclass(frozen=True)
class Checkpoint:
    """A local checkpoint folder and where it came from."""

    folder: Path
    source: dict[str, str]


def resolve_checkpoint(spec: str) -> Checkpoint:
    """A local folder as is; a hub id downloaded when the hub answers, else HubUnreachableError."""
    path = Path(spec).expanduser()
    if path.exists():
        folder = _check_folder(path)
        return Checkpoint(
            folder, {"path": str(folder.resolve()), "content_sha256": content_hash(folder)}
        )
    if not _HUB_ID.match(spec) or spec.startswith((".", "/", "~")):
        raise CheckpointNotFoundError(
            f"checkpoint folder {spec} does not exist: give a folder with config.json and weights"
        )
    return _from_hub(spec)


def _check_folder(path: Path) -> Path:
    if not path.is_dir():
        raise CheckpointNotFoundError(f"{path} is a file: give the checkpoint folder that holds it")
    if not (path / "config.json").is_file():
        raise CheckpointNotFoundError(
            f"{path} has no config.json: it is not a transformers checkpoint folder "
            "(save one with model.save_pretrained(folder))"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointNotFoundError(
            f"{path} has config.json but no weights ({' or '.join(WEIGHT_FILES[:2])}); "
            "copy the weights next to it"
        )
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise TokenizerNotFoundError(
            f"{path} has no tokenizer (tokenizer.json or vocab file): save it with "
            "tokenizer.save_pretrained(folder)"
        )
    return path


def content_hash(folder: Path) -> str:
    """sha256 over config.json and the weight files: identifies a checkpoint without git."""
    digest = hashlib.sha256()
    for name in ("config.json", *WEIGHT_FILES):
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def hub_reachable(host: str = HUB_HOST, timeout: float = HUB_TIMEOUT) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_hub(repo_id: str) -> Checkpoint:
    if not hub_reachable():
        raise HubUnreachableError(
            f"{repo_id!r} is not a local folder and the Hugging Face hub ({HUB_HOST}) cannot be "
            "reached from here: download the checkpoint where the hub is reachable "
            "(huggingface-cli download REPO --local-dir DIR), copy DIR here and export DIR"
        )
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id))
    except Exception as exc:  # the hub client raises many types; all mean "not downloadable"
        raise HubUnreachableError(f"could not download {repo_id!r} from the hub: {exc}") from exc
    revision = folder.name
    return Checkpoint(_check_folder(folder), {"hub_id": repo_id, "revision": revision})


def read_labels(folder: Path) -> tuple[str, list[str]]:
    """The architecture name and the labels in output order (id2label, or transformers'
    defaults LABEL_0..LABEL_n-1 when config.json names none)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointLoadError(f"{folder}/config.json cannot be read: {exc}") from exc
    archs = list(config.architectures or [])
    arch = archs[0] if archs else str(config.model_type)
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise UnsupportedModelError(
            f"{folder} holds a {arch}, not a *ForSequenceClassification model: fine-tune a "
            "classification head first (brandmon train) and export that"
        )
    id2label = {int(k): str(v) for k, v in config.id2label.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise CheckpointLoadError(
            f"{folder}/config.json: id2label keys must be 0..n-1, got {sorted(id2label)}"
        )
    return arch, [id2label[i] for i in range(len(id2label))]


def load_model_and_tokenizer(folder: Path) -> tuple[Any, Any]:
    """The PyTorch model (eval mode) and its fast tokenizer, which must not emit token_type_ids
    for models without token types (DistilBERT)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    except Exception as exc:  # transformers/safetensors raise many types; all mean "unloadable"
        raise CheckpointLoadError(
            f"transformers cannot load the weights in {folder} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); re-save the checkpoint"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except (OSError, ValueError, TypeError) as exc:
        raise TokenizerNotFoundError(f"the tokenizer in {folder} cannot be loaded: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizerNotFoundError(
            f"{folder} has only a slow tokenizer: brandmon needs tokenizer.json "
            "(save a fast tokenizer with save_pretrained)"
        )
    if model.config.model_type == "distilbert":
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return model, tokenizer
