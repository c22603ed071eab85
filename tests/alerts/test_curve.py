"""`brandmon alerts curve`: the presets and a threshold sweep as points of score against alerts,
and the leave-one-series-out figure (issue 18, items 5 and 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.alerts.curve import SWEEP, CurvePoint, leave_one_series_out, points
from brandmon.alerts.evaluate import normalise
from tests.alerts.harness import alerts_app
from tests.alerts.test_evaluate import _surge_folder

runner = CliRunner()


def _point(label: str, files: dict[str, tuple[float, float, float, int]]) -> CurvePoint:
    return CurvePoint(label, {}, True, {"standard": None}, 0, 0, 0, 0.0, files)


def test_the_presets_come_first_then_the_sweep() -> None:
    labels = [label for label, _, _ in points()]
    assert labels[:3] == ["fewer", "balanced", "more"]
    assert len(labels) == 3 + len(SWEEP)
    assert all(not preset for _, _, preset in points()[3:])


def test_each_series_is_scored_with_the_preset_chosen_on_the_others() -> None:
    # (raw, null, perfect, triggers) per file: `quiet` suits a and b, `loud` suits c
    quiet = _point("quiet", {"a": (2, -3, 3, 1), "b": (2, -3, 3, 1), "c": (-3, -3, 3, 0)})
    loud = _point("loud", {"a": (0, -3, 3, 9), "b": (0, -3, 3, 9), "c": (3, -3, 3, 4)})
    out = leave_one_series_out([quiet, loud])
    # held out a: on b and c quiet sums -1, loud 3 -> loud; b likewise; c: quiet 4, loud 0
    assert out["picked"] == {"a": "loud", "b": "loud", "c": "quiet"}
    # each pick is the wrong one for its series: 0 + 0 - 3 against null -9, perfect 9
    assert out["score"] == pytest.approx(normalise(-3.0, -9.0, 9.0)) == pytest.approx(100 / 3)


def test_the_curve_command_measures_every_point_and_draws_it(tmp_path: Path) -> None:
    folder = _surge_folder(tmp_path / "counts")
    png = tmp_path / "curve.png"
    result = runner.invoke(
        alerts_app(), ["alerts", "curve", str(folder), "--json", "--png", str(png)]
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    by_label = {p["label"]: p for p in report["points"]}
    assert len(by_label) == 3 + len(SWEEP)
    fewer, balanced, more = (by_label[p] for p in ("fewer", "balanced", "more"))
    assert fewer["triggers"] <= balanced["triggers"] <= more["triggers"]
    # acme's 10x surge is caught at the default; globex's window has nothing to catch
    assert balanced["windows_caught"] == 1 and balanced["windows_total"] == 2
    assert set(balanced["files"]) == {"acme.csv", "globex.csv"}
    assert set(report["leave_one_series_out"]["picked"]) == {"acme.csv", "globex.csv"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_windows_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "acme.csv").write_text("timestamp,value\n2015-02-26 21:40:00,1\n")
    result = runner.invoke(alerts_app(), ["alerts", "curve", str(tmp_path)])
    assert result.exit_code == 2
    assert "windows" in result.stderr
