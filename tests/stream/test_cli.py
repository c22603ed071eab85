"""What a user sees from `brandmon` when an argument or setting is wrong: a message that says
what to do and a non-zero exit, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.cli import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_help_lists_a_command_per_user_task() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in (
        "worker",
        "produce",
        "simulate",
        "consume",
        "kafka",
        "demo",
        "bench",
        "export",
        "train",
        "evaluate",
        "compare",
        "label",
        "alerts",
    ):
        assert re.search(rf"^\W*{command}\s", result.output, re.MULTILINE), command


def test_spike_brand_must_be_one_of_the_brands() -> None:
    result = run("simulate", "--brands", "acme,globex", "--spike-brand", "initech", "--dry-run")
    assert result.exit_code == 2
    assert "initech" in result.output and "--brands" in result.output


def test_simulate_dry_run_prints_valid_posts() -> None:
    import json

    from brandmon.contracts.posts import Post

    result = run("simulate", "--count", "5", "--dry-run")
    assert result.exit_code == 0
    posts = [Post.model_validate(json.loads(line)) for line in result.stdout.splitlines()]
    assert len(posts) == 5


def test_produce_names_a_missing_file() -> None:
    result = run("produce", "does-not-exist.jsonl")
    assert result.exit_code == 2
    assert "does-not-exist.jsonl" in result.output


def test_produce_refuses_a_bad_column_map(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,text\n1,hi\n")
    result = run("produce", str(path), "--map", "body")
    assert result.exit_code == 2
    assert "FIELD=COLUMN" in result.output


def test_invalid_settings_are_reported_not_raised() -> None:
    result = run("consume", "posts", env={"BRANDMON_MAX_BATCH": "0"})
    assert result.exit_code == 2
    assert "BRANDMON" in result.output or "max_batch" in result.output


def test_unreachable_broker_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("consume", "posts", env={"BRANDMON_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "127.0.0.1:1" in result.output and "brandmon kafka start" in result.output


def test_worker_names_a_missing_model_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    result = run("worker", env={"BRANDMON_MODEL_PATH": str(missing)})
    assert result.exit_code == 65  # a model folder that fails its start-up check
    assert str(missing) in result.output and "brandmon export" in result.output


def test_worker_refuses_a_gpu_provider_that_is_not_there(tiny_model_dir: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    result = run(
        "worker",
        env={"BRANDMON_MODEL_PATH": str(tiny_model_dir), "BRANDMON_EXECUTION_PROVIDER": "cuda"},
    )
    assert result.exit_code == 1
    assert "CUDAExecutionProvider" in result.output and "onnxruntime-gpu" in result.output


def test_kafka_start_reports_a_taken_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("kafka", "start", "--home", str(tmp_path), "--port", str(port))
    assert result.exit_code == 1
    assert f"port {port}" in result.output and "--port" in result.output
