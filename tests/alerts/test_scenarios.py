"""The scenario benchmark meets its targets with several seeds and volumes."""

from __future__ import annotations

import pytest

from alerts.scenarios import SCENARIOS, run_scenarios


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_all_scenarios_pass_with_several_seeds(seed: int) -> None:
    report = run_scenarios(seed=seed)
    failed = [r for r in report["scenarios"] if not r["pass"]]
    assert not failed, failed
    assert [r["scenario"] for r in report["scenarios"]] == list(SCENARIOS)


@pytest.mark.slow
def test_louder_brands_pass_too() -> None:
    report = run_scenarios(seed=11, scale=2.0, names=["true_spike", "spam_author", "gap"])
    failed = [r for r in report["scenarios"] if not r["pass"]]
    assert not failed, failed


def test_report_shape_and_late_burst_is_counted() -> None:
    report = run_scenarios(seed=5, names=["late_burst"])
    (result,) = report["scenarios"]
    assert result["kind"] == "decoy" and result["precision"] is None
    assert result["late_events"] == 500
    assert result["alerts_fired"]["incidents"] == 0
