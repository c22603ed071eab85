"""`brandmon bench` end to end on the real broker, with the scale-out phase (issue 10 item 5).

The figures themselves are the benchmark's business (docs/benchmarks.md); this test checks
what a user of the command relies on: every post comes back scored in each phase, and the
JSON names the figures the docs quote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.cli import app

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_bench_reports_every_phase_and_scale_out_without_losing_posts(
    topic_env: dict[str, str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    env = {**topic_env, "BRANDMON_MODEL_PATH": str(tiny_model_dir)}
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--posts",
            "300",
            "--half-rate-posts",
            "150",
            "--scale-out",
            "1,2",
            "--output",
            str(out),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["end_to_end"]["scored"] == 300 and report["end_to_end"]["missing"] == 0
    assert report["half_rate"]["scored"] == 150
    runs = report["scale_out"]["runs"]
    assert set(runs) == {"1", "2"}
    for count, run in runs.items():
        assert run["workers"] == int(count)
        assert run["missing"] == 0, run
        assert run["posts_per_second"] > 0
    assert runs["1"]["speedup"] == 1.0
    # the two workers share the cores rather than each taking all of them
    assert runs["2"]["ort_threads_per_worker"] <= runs["1"]["ort_threads_per_worker"]


def test_scale_out_rejects_a_bad_worker_list() -> None:
    result = CliRunner().invoke(app, ["bench", "--scale-out", "0,2"])
    assert result.exit_code == 2
    assert "positive integers" in result.output
