"""Model promotion without a broker: what the validator refuses, that a swap never splits a
batch, and what /ready and the metrics say after a promotion, a refusal and a rollback."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.contracts.classifier import Probabilities
from brandmon.contracts.manifest import ManifestError, load_manifest, resolve_model_folder
from brandmon.metrics import Metrics
from brandmon.stream.classifier import load_classifier
from brandmon.stream.rollout import (
    BAD_CHECKSUM,
    INVALID_MANIFEST,
    PROMOTED,
    SMOKE_FAILED,
    UNKNOWN_LABELS,
    ModelRejected,
    ModelRollout,
    smoke_test,
    validate_model,
)
from brandmon.stream.scoring import BatchScorer, RawRecord
from brandmon.tools.fake_classifier import FakeClassifier

load = functools.partial(load_classifier, threads=1)


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def rejected(folder: Path) -> ModelRejected:
    with pytest.raises(ModelRejected) as info:
        validate_model(folder, load)
    return info.value


# -- the validator -----------------------------------------------------------------------


def test_a_good_folder_passes_and_comes_back_loaded(tiny_model_dir: Path) -> None:
    classifier = validate_model(tiny_model_dir, load)
    assert classifier.model_id == load_manifest(tiny_model_dir).model_id


def test_a_tampered_file_is_refused_by_its_checksum(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    onnx = folder / load_manifest(folder).variants["fp32"]
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    onnx.write_bytes(bytes(data))
    error = rejected(folder)
    assert error.outcome == BAD_CHECKSUM
    assert onnx.name in error.detail


def test_a_missing_file_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    error = rejected(folder)
    assert error.outcome == BAD_CHECKSUM and "tokenizer.json" in error.detail


def test_an_unknown_canonical_label_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    edit_manifest(folder, lambda raw: raw["label_map"].update({raw["labels"][0]: "happy"}))
    error = rejected(folder)
    assert error.outcome == UNKNOWN_LABELS and "happy" in error.detail


def test_an_unreadable_manifest_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "manifest.json").write_text("{not json")
    assert rejected(folder).outcome == INVALID_MANIFEST
    assert rejected(tmp_path / "nowhere").outcome == INVALID_MANIFEST


def test_a_manifest_that_does_not_match_the_model_fails_the_smoke_test(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # the manifest lists four output labels; the model has three outputs
    folder = copy_model(tiny_model_dir, tmp_path / "m")

    def add_label(raw: dict[str, Any]) -> None:
        raw["labels"].append("mixed")
        raw["label_map"]["mixed"] = "neutral"

    edit_manifest(folder, add_label)
    error = rejected(folder)
    assert error.outcome == SMOKE_FAILED and "raised" in error.detail


class Broken(FakeClassifier):
    def __init__(self, fill: float) -> None:
        super().__init__()
        self.fill = fill

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        return np.full((len(texts), 3), self.fill, dtype=np.float32)


@pytest.mark.parametrize(("fill", "why"), [(np.nan, "not finite"), (0.2, "sum to")])
def test_probabilities_must_be_finite_and_sum_to_one(fill: float, why: str) -> None:
    with pytest.raises(ModelRejected, match=why) as info:
        smoke_test(Broken(fill))
    assert info.value.outcome == SMOKE_FAILED
    smoke_test(FakeClassifier())  # a well-behaved model passes


# -- a swap never splits a batch ---------------------------------------------------------


class Named(FakeClassifier):
    """A fake with its own model id, that runs `during` inside its first call."""

    def __init__(self, model_id: str, during: Callable[[], None] = lambda: None, **kw: Any):
        super().__init__(**kw)
        self.model_id = model_id
        self.model_version = model_id
        self.during = during

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        during, self.during = self.during, lambda: None
        during()
        return super().predict_proba(texts)


def raw(offset: int, text: str = "fine") -> RawRecord:
    value = json.dumps(
        {"id": f"p{offset}", "text": text, "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}
    ).encode()
    return RawRecord("posts", 0, offset, b"acme", value, timestamp=1.0)


def new_scorer(classifier: FakeClassifier) -> BatchScorer:
    clock = functools.partial(datetime.now, UTC)
    return BatchScorer(classifier, Metrics(CollectorRegistry()), clock=clock)


def test_a_model_swapped_while_a_batch_is_scored_takes_the_next_batch() -> None:
    b = Named("b@2")
    scorer = new_scorer(Named("a@1"))
    entered, go = threading.Event(), threading.Event()

    def pause() -> None:
        entered.set()
        assert go.wait(10)

    scorer.classifier = Named("a@1", during=pause)
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(scorer.score([raw(i) for i in range(5)]))
    )
    worker.start()
    assert entered.wait(10)
    scorer.classifier = b  # the promotion, from another thread, mid-batch
    go.set()
    worker.join(10)
    assert {post.model_id for _, post in results[0].scored} == {"a@1"}
    assert len(results[0].scored) == 5
    later = scorer.score([raw(i) for i in range(5, 8)])
    assert {post.model_id for _, post in later.scored} == {"b@2"}


def test_a_batch_retried_record_by_record_stays_on_its_model() -> None:
    # the whole-batch call raises (a poison post): the records are then scored one by one,
    # still by the model the batch started with, though a promotion happened in between
    scorer = new_scorer(FakeClassifier())
    b = Named("b@2")
    a = Named("a@1", poison="poison")
    a.during = lambda: setattr(scorer, "classifier", b)
    scorer.classifier = a
    result = scorer.score([raw(0), raw(1, "poison pill"), raw(2)])
    assert [post.id for _, post in result.scored] == ["p0", "p2"]
    assert {post.model_id for _, post in result.scored} == {"a@1"}
    assert [letter.reason for _, letter in result.dead] == ["inference_failed"]


# -- the rollout: promote, refuse, roll back -----------------------------------------------


def info(metrics: Metrics, model_id: str, version: str) -> float | None:
    labels = {"model_id": model_id, "model_version": version, "role": "champion"}
    labels["provider"] = "CPUExecutionProvider"
    return metrics.registry.get_sample_value("brandmon_model_info", labels)


def promotions(metrics: Metrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "brandmon_model_promotions_total", {"outcome": outcome}
    )


def test_promote_refuse_and_roll_back(
    tiny_model_dir: Path, tiny_model_b_dir: Path, tmp_path: Path
) -> None:
    a, b = load_manifest(tiny_model_dir), load_manifest(tiny_model_b_dir)
    assert a.model_id != b.model_id
    metrics = Metrics(CollectorRegistry())
    scorer = BatchScorer(load(tiny_model_dir), metrics)
    rollout = ModelRollout(scorer, metrics, tiny_model_dir, load)
    assert info(metrics, a.model_id, a.version) == 1

    async def scenario() -> None:
        done = await rollout.promote(tiny_model_b_dir, "alice", "test")
        assert done.outcome == PROMOTED
        assert scorer.classifier.model_id == b.model_id
        assert info(metrics, b.model_id, b.version) == 1
        assert info(metrics, a.model_id, a.version) is None  # the old series is gone
        about = rollout.about()
        assert about["model_id"] == b.model_id and about["model_version"] == b.version
        assert about["model_path"] == str(tiny_model_b_dir)
        assert about["previous_model_path"] == str(tiny_model_dir)

        broken = copy_model(tiny_model_dir, tmp_path / "broken")
        (broken / "tokenizer.json").write_text("{}")
        refused = await rollout.promote(broken, "bob", "test")
        assert refused.outcome == BAD_CHECKSUM
        assert scorer.classifier.model_id == b.model_id  # the old model keeps scoring
        last = rollout.about()["last_promotion"]
        assert last["outcome"] == BAD_CHECKSUM and last["requested_by"] == "bob"
        assert "tokenizer.json" in last["detail"]

        # rollback: promote the previous folder
        previous = Path(rollout.about()["previous_model_path"])
        assert (await rollout.promote(previous, "alice", "test")).outcome == PROMOTED
        assert scorer.classifier.model_id == a.model_id
        assert rollout.about()["previous_model_path"] == str(tiny_model_b_dir)

    asyncio.run(scenario())
    rollout.close()
    assert promotions(metrics, PROMOTED) == 2
    assert promotions(metrics, BAD_CHECKSUM) == 1


# -- the stable model path: a symlink or a pointer file ------------------------------------


def test_a_pointer_file_or_symlink_names_the_active_folder(tiny_model_dir: Path, tmp_path: Path):
    pointer = tmp_path / "active-model"
    pointer.write_text(f"\n{tiny_model_dir}\n")
    assert resolve_model_folder(pointer) == tiny_model_dir.resolve()
    relative = tmp_path / "models" / "m1"
    relative.mkdir(parents=True)
    (tmp_path / "models" / "ACTIVE").write_text("m1\n")
    assert resolve_model_folder(tmp_path / "models" / "ACTIVE") == relative.resolve()
    link = tmp_path / "current"
    link.symlink_to(tiny_model_dir)
    assert resolve_model_folder(link) == tiny_model_dir.resolve()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ManifestError, match="empty"):
        resolve_model_folder(tmp_path / "empty")
    (tmp_path / "dangling").write_text("no-such-folder\n")
    with pytest.raises(ManifestError, match="not a folder"):
        resolve_model_folder(tmp_path / "dangling")


def test_promote_names_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "promote", str(tmp_path)])
    assert result.exit_code == 2
    assert "manifest.json" in result.output and "brandmon export" in result.output


def test_rollback_names_a_worker_that_does_not_answer() -> None:
    result = CliRunner().invoke(app, ["model", "rollback", "--worker", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "no score worker answered at http://127.0.0.1:9/ready" in result.output
