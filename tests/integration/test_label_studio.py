"""The labeling loop against a real Label Studio (issue 11): `brandmon label serve` starts it
from its own venv on loopback, `label export` fills a project with pre-annotated tasks, two
annotators label through Label Studio's API, and `label import` turns their work into
train/test JSONL with an agreement report and a split no near-duplicate crosses.

The server is the session's `label_studio` fixture (tests/label_studio_fixture.py), skipped
only where Label Studio's venv is absent (`make label-studio` creates it; `make test` does so
first, so CI runs this).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.model_export.labeling.client import LabelStudioClient
from brandmon.model_export.labeling.dedup import normalise
from brandmon.model_export.labeling.tasks import choice_result
from tests.label_studio_fixture import PASSWORD, TOKEN, Server
from tests.model_export.labeling.posts import scored, write_jsonl

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


RUDE = "Acme support kept me on hold for two hours and then hung up on me"
POSTS = [
    scored("p1", RUDE, (0.45, 0.15, 0.40)),
    scored("p2", "the acme x2 camera is decent I suppose", (0.3, 0.35, 0.35)),
    scored("p3", "Globex shipped the wrong size, again", (0.5, 0.2, 0.3), brand="globex"),
    scored("p4", "globex app update moved every button", (0.3, 0.4, 0.3), brand="globex", hours=30),
    scored("p5", "Initech printers finally work with linux", (0.2, 0.3, 0.5), brand="initech"),
    scored("p6", "initech price change announced today", (0.3, 0.45, 0.25), brand="initech"),
    scored("p1-rt", f"RT @bob: {RUDE}", (0.45, 0.15, 0.40)),
    scored("p2-copy", "The Acme X2 camera is decent, I suppose https://t.co/q", (0.3, 0.35, 0.35)),
    scored("p-link", "@acme https://t.co/zzz", (0.34, 0.33, 0.33)),
]

# Two annotators: admin (the token's user) and ann2 (created through the API).
# post id -> (admin's label or "cancel", ann2's label or None)
VOTES: dict[str, tuple[str, str | None]] = {
    "p1": ("negative", "negative"),
    "p2": ("positive", "positive"),
    "p3": ("negative", "positive"),  # a tie: dropped
    "p4": ("neutral", "neutral"),
    "p5": ("positive", None),
    "p6": ("cancel", "neutral"),  # admin skipped it
    "p1-later": ("negative", None),  # a retweet of p1 exported on a later day
}


def _annotate(server: Server, project_id: int) -> None:
    with LabelStudioClient(server.url, TOKEN) as client:
        tasks = {t["data"]["post_id"]: t["id"] for t in client.tasks(project_id)}
    headers = {"Authorization": f"Token {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        second = http.post(
            "/api/users",
            json={"email": "ann2@brandmon.local", "username": "ann2", "password": PASSWORD},
        )
        assert second.status_code == 201, second.text
        for post_id, (first, other) in VOTES.items():
            body: dict[str, Any] = {"result": choice_result("neutral"), "was_cancelled": True}
            if first != "cancel":
                body = {"result": choice_result(first)}
            done = http.post(f"/api/tasks/{tasks[post_id]}/annotations", json=body)
            assert done.status_code == 201, done.text
            if other is not None:
                body = {"result": choice_result(other), "completed_by": second.json()["id"]}
                done = http.post(f"/api/tasks/{tasks[post_id]}/annotations", json=body)
                assert done.status_code == 201, done.text


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_annotate_import_round_trip(label_studio: Server, tmp_path: Path) -> None:
    print(f"Label Studio ready {label_studio.start_seconds:.0f} s after `brandmon label serve`")
    env, project = label_studio.env, "brandmon test loop"
    source = write_jsonl(tmp_path / "scored.jsonl", POSTS, extra_lines=('{"id": "broken"}',))

    output = _run(
        env,
        "label",
        "export",
        str(source),
        "--project",
        project,
        "--out",
        str(tmp_path / "tasks.json"),
    )
    assert "picked 6" in output and "dropped 2 near-duplicates" in output
    assert "skipped 1 invalid records" in output
    assert len(json.loads((tmp_path / "tasks.json").read_text())) == 6

    with LabelStudioClient(label_studio.url, TOKEN) as client:
        found = client.find_project(project)
        assert found is not None
        project_id = found["id"]
        tasks = list(client.tasks(project_id))
        predictions = client.predictions(project_id)
    assert sorted(t["data"]["post_id"] for t in tasks) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    by_task = {p["task"]: p for p in predictions}
    for task in tasks:
        post = next(p for p in POSTS if p.id == task["data"]["post_id"])
        prediction = by_task[task["id"]]
        assert prediction["model_version"] == "brandmon-sentiment-minilm@0.1.0"
        assert prediction["result"][0]["value"]["choices"] == [post.label]
        assert prediction["score"] == pytest.approx(getattr(post.scores, post.label), abs=1e-3)

    # the same file again adds nothing; a retweet of p1 from a later day is a new task
    assert "0 tasks" in _run(env, "label", "export", str(source), "--project", project)
    later = write_jsonl(tmp_path / "later.jsonl", [scored("p1-later", f"RT @eve: {RUDE}")])
    assert "sent 1 tasks" in _run(env, "label", "export", str(later), "--project", project)

    _annotate(label_studio, project_id)
    out_dir = tmp_path / "labeled"
    summary = _run(
        env,
        "label",
        "import",
        "--project",
        project,
        "--out-dir",
        str(out_dir),
        "--test-share",
        "0.4",
        "--seed",
        "3",
    )
    train, test = _rows(out_dir / "train.jsonl"), _rows(out_dir / "test.jsonl")
    labels = {row["id"]: row["label"] for row in train + test}
    assert labels == {
        "p1": "negative",
        "p2": "positive",
        "p4": "neutral",
        "p5": "positive",
        "p6": "neutral",
        "p1-later": "negative",
    }
    assert {r["id"]: r["annotators"] for r in train + test}["p1"] == 2
    assert {r["id"]: r["model_label"] for r in train + test}["p2"] == "neutral"  # corrected
    # pairs on p1, p2, p3, p4: 6 of 8 agree; alpha = 1 - 7 * 2 / 42 (worked in test_agreement)
    assert "0.750 of pairs agree" in summary and "alpha 0.667" in summary
    assert "1 ties" in summary and "1 cancelled" in summary
    # p1 and its later retweet sit on one side
    sides = [{normalise(r["text"]) for r in part} for part in (train, test)]
    assert sides[0].isdisjoint(sides[1])
    assert len(test) >= 1 and len(train) >= 1

    # the same annotations from an export file give the same rows
    with LabelStudioClient(label_studio.url, TOKEN) as client:
        (tmp_path / "export.json").write_text(json.dumps(client.export(project_id)))
    _run(
        env,
        "label",
        "import",
        "--from-file",
        str(tmp_path / "export.json"),
        "--out-dir",
        str(tmp_path / "from-file"),
        "--test-share",
        "0.4",
        "--seed",
        "3",
    )
    assert _rows(tmp_path / "from-file" / "train.jsonl") == train
