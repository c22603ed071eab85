"""manifest.json: the contract between model exporters (who write it) and the stream (reader).

A model folder holds one or more ONNX files (variants), the tokenizer (tokenizer.json) and this
manifest. The stream trusts nothing else: the label order, the canonical label map and the
maximum sequence length all come from here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CANONICAL_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
CanonicalLabel = Literal["negative", "neutral", "positive"]
VariantName = Literal["fp32", "int8", "fp16"]

MANIFEST_NAME = "manifest.json"
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
TOKENIZER_NAME = "tokenizer.json"


class ManifestError(Exception):
    """The model folder is missing, unreadable, or its manifest does not describe it."""


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    sha256: str
    bytes: int


class GraphInfo(BaseModel):
    """How the ONNX graphs were optimised at export time. Manifests written before this
    field existed describe unfused graphs, which is what the default says."""

    model_config = ConfigDict(frozen=True)

    #: True when ONNX Runtime's transformer optimizer rewrote the fp32 graph (and so the
    #: int8 graph quantized from it).
    fused: bool = False
    #: Fused operator -> how many the optimizer made, e.g. {"Attention": 6}.
    fusions: dict[str, int] = Field(default_factory=dict)


class ModelManifest(BaseModel):
    """What a model folder contains and how its outputs map onto canonical labels."""

    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())

    name: str
    version: str
    architecture: str
    #: Where the checkpoint came from: a hub id or folder, plus revision or content hash.
    source: dict[str, str] = Field(default_factory=dict)
    #: The model's own labels, in output (logit) order: id2label[0], id2label[1], ...
    labels: list[str]
    #: Original label -> canonical label. Every entry of `labels` must be mapped.
    label_map: dict[str, CanonicalLabel]
    max_length: int = Field(gt=0)
    opset: int | None = None
    #: Input names the ONNX graph takes, e.g. ["input_ids", "attention_mask"].
    inputs: list[str] = Field(default_factory=lambda: ["input_ids", "attention_mask"])
    #: Variant name -> file name in the folder.
    variants: dict[VariantName, str]
    #: Every file of the folder (except this manifest) with its checksum.
    files: dict[str, FileEntry] = Field(default_factory=dict)
    validation: dict[str, object] = Field(default_factory=dict)
    graph: GraphInfo = Field(default_factory=GraphInfo)
    tools: dict[str, str] = Field(default_factory=dict)
    #: Languages the model reads (ISO 639-1 codes); the score stage routes only these to it
    #: (docs/languages.md). Manifests written before this field existed are English models.
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)

    @model_validator(mode="after")
    def _labels_all_mapped(self) -> ModelManifest:
        unmapped = [label for label in self.labels if label not in self.label_map]
        if unmapped:
            raise ValueError(f"labels without a canonical mapping: {unmapped}")
        if not self.variants:
            raise ValueError("no model variants listed")
        bad = [code for code in self.languages if not _LANGUAGE_CODE.fullmatch(code)]
        if bad:
            raise ValueError(f"languages must be lower-case ISO 639 codes like 'en': {bad}")
        return self

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def canonical_labels(self) -> list[str]:
        """Canonical label of each output, in output order."""
        return [self.label_map[label] for label in self.labels]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(model_dir: Path) -> ModelManifest:
    """Read and check `model_dir/manifest.json`; raise ManifestError naming what is wrong."""
    if not model_dir.is_dir():
        raise ManifestError(
            f"model folder {model_dir} does not exist: set BRANDMON_MODEL_PATH to a folder "
            "made by `brandmon export`, or leave it unset to use the default model"
        )
    path = model_dir / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(
            f"{path} is missing: {model_dir} is not a brandmon model folder "
            "(make one with `brandmon export`)"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} cannot be read as JSON: {exc}") from exc
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"{path} is not a valid manifest: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    """Each problem as "field: what is wrong", on one line (no input value quoted)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'manifest'}: "
        + str(error["msg"]).removeprefix("Value error, ")
        for error in exc.errors(include_url=False, include_input=False)
    )


def verify_files(model_dir: Path, manifest: ModelManifest) -> list[str]:
    """Return the files whose size or sha256 differ from the manifest (empty when all match)."""
    bad: list[str] = []
    for name, entry in manifest.files.items():
        path = model_dir / name
        if (
            not path.is_file()
            or path.stat().st_size != entry.bytes
            or sha256_file(path) != entry.sha256
        ):
            bad.append(name)
    return bad


def resolve_model_folder(path: Path) -> Path:
    """The model folder `path` names: a folder (symlinks followed), or the folder an "active
    model" pointer file names on its first non-blank line (relative to the file's folder).
    A path that is neither is returned as it is, for load_manifest to report."""
    if path.is_dir():
        return path.resolve()
    if not path.is_file():
        return path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the model pointer file {path} cannot be read: {exc}") from exc
    target = next((line.strip() for line in lines if line.strip()), "")
    if not target:
        raise ManifestError(
            f"the model pointer file {path} is empty: write the model folder's path on its "
            "first line"
        )
    folder = (path.parent / target).resolve()
    if not folder.is_dir():
        raise ManifestError(
            f"the model pointer file {path} names {target!r}, which is not a folder "
            f"({folder}): point it at a folder made by `brandmon export`"
        )
    return folder
