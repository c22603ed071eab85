"""One round of the model lifecycle through the real commands (issue 11), as a team runs it:
a `brandmon worker` scores posts with model A on a real Kafka broker; `brandmon label export`
sends them to a project on a real Label Studio; two annotators label them through Label
Studio's HTTP API; `brandmon label import` writes train/test JSONL; `brandmon train --init`
fine-tunes A's checkpoint on them; `brandmon export` makes model B; `brandmon compare A B`
scores both on the imported test split; `brandmon model promote B` switches the running
worker while posts keep flowing. Every post must come out on posts.scored with its id, each
brand's records must switch from A's version to B's once and never back.

Model A is the session's tiny random DistilBERT (tests/model_fixtures.py), so training and
export take seconds; the server is the session's `label_studio` fixture
(tests/label_studio_fixture.py), skipped only where Label Studio's venv is absent.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.contracts.manifest import load_manifest
from brandmon.kafka_io import JsonProducer, Record
from brandmon.model_export.labeling.client import LabelStudioClient
from brandmon.model_export.labeling.tasks import choice_result
from brandmon.settings import Settings
from tests.helpers import post, read_topic, values
from tests.integration.test_rollout_kafka import (
    Feeder,
    brandmon,
    models_per_brand,
    ready,
    wait_for,
)
from tests.label_studio_fixture import PASSWORD, TOKEN, Server

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: The posts the team labels: (text, brand, the label people give it). Distinct enough that
#: `label export` keeps every one (no near-duplicates, every post has words).
LABELLED: list[tuple[str, str, str]] = [
    ("acme phone battery died again after the update", "acme", "negative"),
    ("worst customer support I have ever had from acme", "acme", "negative"),
    ("globex delivery was three days late and the box was broken", "globex", "negative"),
    ("I hate the new initech app, so slow", "initech", "negative"),
    ("initech never answered my order question, awful", "initech", "negative"),
    ("the globex store lost my order twice", "globex", "negative"),
    ("acme price went up today", "acme", "neutral"),
    ("globex has a new coffee store on main street", "globex", "neutral"),
    ("initech update ships tomorrow night", "initech", "neutral"),
    ("does anyone know when the acme film comes out", "acme", "neutral"),
    ("globex flight leaves at three", "globex", "neutral"),
    ("initech support team moved to a new week schedule", "initech", "neutral"),
    ("love my new acme camera, amazing pictures", "acme", "positive"),
    ("globex service was excellent, thanks team", "globex", "positive"),
    ("initech game is the best one this year", "initech", "positive"),
    ("great food at the acme cafe, really nice", "acme", "positive"),
    ("so happy with my globex phone", "globex", "positive"),
    ("initech coffee is awesome", "initech", "positive"),
]
#: ann2 labels the first rows too, agreeing except on this one (a tie, which import drops).
SECOND_ANNOTATOR = 8
TIE = 2
#: The team's earlier validation set (train's early stopping; never the test split).
VALIDATION = [
    ("terrible service and a broken phone", "negative"),
    ("bad food, never again", "negative"),
    ("the store opens tomorrow", "neutral"),
    ("new update today", "neutral"),
    ("great movie, loved it", "positive"),
    ("excellent delivery, thanks", "positive"),
]


def cli(env: dict[str, str], *args: str) -> str:
    """Run a `brandmon` command (the real typer app, in this process) and return its output."""
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, f"brandmon {' '.join(args)}:\n{result.output}"
    return result.output


def annotate(server: Server, project_id: int) -> None:
    """Two annotators label the project's tasks through Label Studio's API: the admin (the
    token's user) every post, ann2 the first SECOND_ANNOTATOR posts."""
    with LabelStudioClient(server.url, TOKEN) as client:
        tasks = {t["data"]["post_id"]: t["id"] for t in client.tasks(project_id)}
    assert sorted(tasks) == sorted(f"p{i}" for i in range(len(LABELLED)))
    name = f"ann-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Token {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        user = {"email": f"{name}@brandmon.local", "username": name, "password": PASSWORD}
        second = http.post("/api/users", json=user)
        assert second.status_code == 201, second.text
        for i, (_, _, label) in enumerate(LABELLED):
            votes: list[dict[str, Any]] = [{"result": choice_result(label)}]
            if i < SECOND_ANNOTATOR:
                other = "positive" if i == TIE else label
                votes.append({"result": choice_result(other), "completed_by": second.json()["id"]})
            for body in votes:
                done = http.post(f"/api/tasks/{tasks[f'p{i}']}/annotations", json=body)
                assert done.status_code == 201, done.text


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def scored_ids(settings: Settings, sent: int) -> list[dict[str, Any]]:
    """posts.scored from its start until every post p0..p<sent-1> is there (at least once)."""
    missing = {f"p{i}" for i in range(sent)}

    def all_in(got: list[Record]) -> bool:
        if got[-1].value is not None:
            missing.discard(json.loads(got[-1].value)["id"])
        return not missing

    records = values(read_topic(settings, settings.topic_scored, timeout=120, until=all_in))
    assert not missing, f"{len(missing)} posts never reached posts.scored, e.g. {min(missing)}"
    return records


def test_label_train_compare_promote_round(
    label_studio: Server,
    test_settings: Settings,
    topic_env: dict[str, str],
    worker_factory: Any,
    tiny_checkpoint_dir: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    marks: dict[str, float] = {}
    a = load_manifest(tiny_model_dir)
    worker = worker_factory()
    worker.wait_ready()
    marks["worker ready"] = time.monotonic() - started

    # 1. posts scored by model A
    producer = JsonProducer(test_settings)
    for i, (text, brand, _) in enumerate(LABELLED):
        producer.send(test_settings.topic_posts, post(i, brand=brand, text=text), key=brand)
    producer.flush()
    first = values(read_topic(test_settings, test_settings.topic_scored, expected=len(LABELLED)))
    assert {p["model_id"] for p in first} == {a.model_id}

    # 2. the scored posts go to a Label Studio project with A's labels as predictions
    env = {**topic_env, **label_studio.env}
    project = f"lifecycle {uuid.uuid4().hex[:6]}"
    n = str(len(LABELLED))
    out = cli(env, "label", "export", "--from-topic", "--max-read", n, "--project", project)
    assert f"read {n} scored posts: picked {n}" in out and f"sent {n} tasks" in out
    with LabelStudioClient(label_studio.url, TOKEN) as client:
        found = client.find_project(project)
        assert found is not None
        predictions = client.predictions(found["id"])
    assert len(predictions) == len(LABELLED)
    assert {p["model_version"] for p in predictions} == {a.model_id}
    marks["label export"] = time.monotonic() - started

    # 3. two annotators; 4. their labels become train/test JSONL
    annotate(label_studio, found["id"])
    labeled = tmp_path / "labeled"
    args = ("--project", project, "--out-dir", str(labeled), "--test-share", "0.3", "--seed", "5")
    summary = cli(env, "label", "import", *args)
    assert "0.875 of pairs agree" in summary and "1 ties" in summary
    train, test = rows(labeled / "train.jsonl"), rows(labeled / "test.jsonl")
    expected = {f"p{i}": label for i, (_, _, label) in enumerate(LABELLED) if i != TIE}
    assert {r["id"]: r["label"] for r in train + test} == expected
    # seed 5 puts every label on both sides (the split does not follow the tasks' order)
    for part in (train, test):
        assert {r["label"] for r in part} == {"negative", "neutral", "positive"}
    assert len(test) == 5
    marks["label import"] = time.monotonic() - started

    # 5. fine-tune A's checkpoint on the people's labels; 6. export it as B
    val = tmp_path / "validation.jsonl"
    val.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in VALIDATION))
    ckpt = tmp_path / "round-2"
    train_args = ("--train", str(labeled / "train.jsonl"), "--val", str(val), "--out", str(ckpt))
    out = cli(
        env,
        "train",
        "--init",
        str(tiny_checkpoint_dir),
        *train_args,
        *("--epochs", "3", "--batch-size", "4", "--lr", "1e-3", "--threads", "1"),
    )
    assert f"checkpoint {ckpt / 'best'}" in out
    history = json.loads((ckpt / "train_summary.json").read_text())["history"]
    assert history and history[-1]["step"] >= 3  # several optimizer steps
    before = load_file(tiny_checkpoint_dir / "model.safetensors")
    after = load_file(ckpt / "best" / "model.safetensors")
    # fine-tuned from A (its frozen word embeddings kept), not started afresh; the head moved
    words = "distilbert.embeddings.word_embeddings.weight"
    assert np.array_equal(before[words], after[words])
    assert not np.allclose(before["classifier.weight"], after["classifier.weight"])
    marks["train"] = time.monotonic() - started
    b_dir = tmp_path / "models" / "tiny-sentiment-0.2.0"
    export_args = ("--name", a.name, "--version", "0.2.0", "--max-length", "64")
    # fp32 only, as tests/model_fixtures.py's model B: int8 of a random tiny model is too noisy
    cli(env, "export", str(ckpt / "best"), "--out", str(b_dir), *export_args, "--quantize", "none")
    b = load_manifest(b_dir)
    assert (b.name, b.version) == (a.name, "0.2.0") and b.model_id != a.model_id
    marks["export"] = time.monotonic() - started

    # 7. compare A and B on the held-out labels
    report = tmp_path / "compare"
    data = ("--data", str(labeled / "test.jsonl"), "--report", str(report), "--resamples", "200")
    comparison = json.loads(cli(env, "compare", str(tiny_model_dir), str(b_dir), *data, "--json"))
    assert (comparison["old_model"], comparison["new_model"]) == (a.model_id, b.model_id)
    assert comparison["recommendation"]["decision"] in {"promote", "keep", "inconclusive"}
    (dataset,) = comparison["datasets"]
    assert dataset["count"] == len(test)
    assert dataset["classes"] == ["negative", "neutral", "positive"]
    assert json.loads((report / "compare.json").read_text()) == comparison
    assert b.model_id in (report / "report.md").read_text()
    marks["compare"] = time.monotonic() - started

    # 8. promote B into the running worker while posts keep flowing
    with Feeder(test_settings, first=len(LABELLED)) as feeder:
        time.sleep(3)
        done = brandmon(topic_env, "model", "promote", str(b_dir), "--requested-by", "round-2")
        assert done.returncode == 0, done.stderr
        body = wait_for(worker, lambda r: r["model_id"] == b.model_id, "B never became active")
        assert body["model_version"] == "0.2.0" and body["status"] == 200
        assert body["last_promotion"]["outcome"] == "promoted"
        time.sleep(3)
        sent = feeder.stop()
    marks["promote"] = time.monotonic() - started

    # 9. nothing lost, every record names its model, and each brand switches once, A -> B
    scored = scored_ids(test_settings, sent)
    for brand, models in models_per_brand(scored).items():
        assert models == [a.model_id, b.model_id], brand
    versions = {(p["model_id"], p["model_version"]) for p in scored}
    assert versions == {(a.model_id, a.version), (b.model_id, "0.2.0")}
    assert ready(worker)["model_id"] == b.model_id and worker.alive()
    print(f"{sent} posts; seconds since start: {marks}")
