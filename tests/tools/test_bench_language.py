"""`brandmon bench` measures what language identification costs the score stage (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from brandmon.cli import app


def test_bench_reports_the_cost_of_language_identification(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    texts = tmp_path / "texts.jsonl"
    lines = ["worst customer service ever, never buying again", "pire service client, jamais"]
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    out = tmp_path / "bench.json"
    env = {"BRANDMON_MODEL_PATH": str(tiny_model_dir)}
    args = ["bench", "--classifier-only", "--posts", "200", "--texts", str(texts)]
    result = CliRunner().invoke(app, [*args, "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    language = report["language"]
    assert language["texts"] == 200 and language["texts_per_second"] > 0
    assert language["languages"] == {"en": 100, "fr": 100}
    assert 0 < report["ratios"]["classifier_with_language_vs_classifier"] < 1

    off = CliRunner().invoke(app, args, env={**env, "BRANDMON_LANG_ROUTING": "false"})
    assert off.exit_code == 0, off.output
    assert "BRANDMON_LANG_ROUTING is off" in off.output
