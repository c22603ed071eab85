"""`brandmon label export --out` and `label import --from-file` without any server, and the
messages for what a user gets wrong."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.model_export.labeling.tasks import choice_result
from tests.model_export.labeling.posts import scored, write_jsonl

# no token anywhere: the data folder has no stored credentials
ENV = {"BRANDMON_LABEL_STUDIO_DATA_DIR": "/nonexistent/brandmon-label-studio"}


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["label", *args], env=ENV)
    return result.exit_code, result.output


def test_export_to_a_file_needs_no_server(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "scored.jsonl",
        [
            scored("a", "acme battery died", (0.5, 0.1, 0.4)),
            scored("b", "RT @x: acme battery died", (0.5, 0.1, 0.4)),
            scored("c", "globex is fine", (0.1, 0.2, 0.7), brand="globex"),
        ],
        extra_lines=("not json",),
    )
    code, output = _invoke("export", str(source), "--out", str(tmp_path / "tasks.json"))
    assert code == 0, output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert [t["data"]["post_id"] for t in tasks] == ["a", "c"]
    assert "skipped 1 invalid records" in output and "sent" not in output


def test_export_with_nowhere_to_put_the_tasks_says_what_to_give(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "scored.jsonl", [scored("a", "x")])
    code, output = _invoke("export", str(source))
    assert code == 2
    assert "--out" in output and "token" in output


def test_export_of_a_missing_file_names_it(tmp_path: Path) -> None:
    code, output = _invoke("export", str(tmp_path / "nope.jsonl"), "--out", "t.json")
    assert code == 1 and "nope.jsonl does not exist" in output


def test_import_from_an_export_file_writes_train_test_and_a_summary(tmp_path: Path) -> None:
    def task(i: int, text: str, *labels: str) -> dict[str, object]:
        return {
            "id": i,
            "data": {"text": text, "post_id": f"p{i}", "brand": "acme", "model_label": "neutral"},
            "annotations": [{"result": choice_result(label)} for label in labels],
        }

    export = [task(i, f"distinct post number {i} about item {i * 7}", "negative") for i in range(8)]
    export.append(task(8, "a tie", "negative", "positive"))
    export.append(task(9, "distinct post number 0 about item 0!!", "negative", "negative"))
    (tmp_path / "export.json").write_text(json.dumps(export))
    out = tmp_path / "out"
    code, output = _invoke(
        "import",
        "--from-file",
        str(tmp_path / "export.json"),
        "--out-dir",
        str(out),
        "--test-share",
        "0.3",
    )
    assert code == 0, output
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (out / "test.jsonl").read_text().splitlines()]
    assert len(train) + len(test) == 9  # the tie is dropped
    assert {"text", "label", "id", "brand", "model_label", "annotators"} <= set(train[0])
    # p0 and its near-copy p9 are on one side
    side = {row["id"]: name for name, rows in (("train", train), ("test", test)) for row in rows}
    assert side["p0"] == side["p9"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dropped"]["ties"] == 1
    assert summary["model_label_corrected"] == 9
    assert "1 ties" in output


def test_import_splits_the_same_labels_the_same_way_whatever_the_task_order(
    tmp_path: Path,
) -> None:
    # a project's task order follows the order `label export` read posts.scored's partitions
    export = [
        {
            "id": i,
            "data": {"text": f"post {i} on widget {i * 13} and gadget {i * 5}", "post_id": f"p{i}"},
            "annotations": [{"result": choice_result(("negative", "neutral", "positive")[i % 3])}],
        }
        for i in range(30)
    ]
    files = []
    for name, tasks in (("forward", export), ("reversed", export[::-1])):
        (tmp_path / f"{name}.json").write_text(json.dumps(tasks))
        out = tmp_path / name
        args = ("--from-file", str(tmp_path / f"{name}.json"), "--out-dir", str(out))
        code, output = _invoke("import", *args, "--test-share", "0.3", "--seed", "4")
        assert code == 0, output
        files.append([(out / part).read_text() for part in ("train.jsonl", "test.jsonl")])
    assert files[0] == files[1]
    assert files[0][1].count("\n") == 9


def test_import_of_a_file_that_is_no_export_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"not": "tasks"}')
    code, output = _invoke("import", "--from-file", str(tmp_path / "x.json"))
    assert code == 1 and "list of tasks" in output
