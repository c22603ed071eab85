"""The Prometheus spike rules use the built-in detector's thresholds (AlertSettings defaults).

docs/operations.md (BrandNegativeShareSpike) promises that the shipped rules and the detector
agree on what a spike is; when someone retunes the AlertSettings defaults this fails until
deploy/prometheus/rules follows.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from brandmon.alert_settings import AlertSettings
from tests.deploy.repo import rules

S = AlertSettings()
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def _by_name() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for _, rule in rules():
        if "alert" in rule:
            key = (rule["alert"], rule["labels"]["severity"])
        else:
            key = (rule["record"], "")
        found[key] = rule
    return found


RULES = _by_name()
RECORD = "job_brand:brandmon_brand_negative_share:"


def number(expr: str, pattern: str) -> float:
    """The one number that follows `pattern` (a regex) in `expr`."""
    found = {float(m) for m in re.findall(pattern + r"\s*" + NUMBER, expr)}
    assert len(found) == 1, f"expected one number after {pattern!r} in:\n{expr}\nfound {found}"
    return found.pop()


def minutes(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(value) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


@pytest.mark.parametrize(("severity", "z"), [("warning", S.z_warning), ("critical", S.z_critical)])
def test_spike_rule_matches_the_detector(severity: str, z: float) -> None:
    rule = RULES[("BrandNegativeShareSpike", severity)]
    expr = rule["expr"]
    assert number(expr, r"zscore\s*>=") == z
    assert number(expr, r"mean_3h\s*\+") == S.wilson_margin
    assert number(expr, r"negative_voices_window:max\s*>=") == S.min_negatives
    assert number(expr, r"brand_voices_window:max\s*>=") == S.min_posts
    assert number(expr, r"learned_buckets_3h\s*>=") == S.warmup_buckets
    # Resolve after the detector's quiet time without an elevated bucket.
    assert minutes(rule["keep_firing_for"]) * 60 == S.quiet_seconds


@pytest.mark.parametrize(
    ("severity", "share"),
    [("warning", S.warmup_share), ("critical", S.warmup_critical_share)],
)
def test_warmup_rule_matches_the_detector(severity: str, share: float) -> None:
    rule = RULES[("BrandNegativeShareWarmup", severity)]
    expr = rule["expr"]
    assert number(expr, r"wilson_lower95\s*>") == share
    assert number(expr, r"negative_voices_window:max\s*>=") == S.min_negatives
    assert number(expr, r"brand_voices_window:max\s*>=") == S.warmup_min_posts
    assert number(expr, r"learned_buckets_3h\s*>=") == S.warmup_buckets
    assert minutes(rule["keep_firing_for"]) * 60 == S.quiet_seconds


def test_learning_stops_on_the_same_conditions() -> None:
    above = RULES[(RECORD + "above", "")]["expr"]
    assert number(above, r"zscore\s*>=") == S.z_warning
    assert number(above, r"mean_3h\s*\+") == S.wilson_margin
    assert number(above, r"wilson_lower95\s*>") == S.warmup_share
    assert number(above, r"negative_voices_window:max\s*>=") == S.min_negatives
    assert number(above, r"brand_voices_window:max\s*>=") == S.min_posts
    learning = RULES[(RECORD + "learning", "")]["expr"]
    # The detector learns only from windows with min_posts voices.
    assert number(learning, r"brand_voices_window:max\s*>=") == S.min_posts
    assert "BrandNegativeShareSpike" in learning and "BrandNegativeShareWarmup" in learning


def test_std_floor_and_wilson_constants() -> None:
    assert number(RULES[(RECORD + "zscore", "")]["expr"], r"clamp_min\([\w:]+,") == S.std_floor
    wilson = RULES[(RECORD + "wilson_lower95", "")]["expr"]
    z = S.wilson_z
    # (p + z^2/2n - z*sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), constants written out
    terms = {
        r"max\s*\+\s*([0-9.]+)\s*/\s*job_brand": z * z / 2,
        r"-\s*([0-9.]+)\s*\*\s*sqrt": z,
        r"\+\s*([0-9.]+)\s*/\s*\(job_brand[\w:]*\s*\^\s*2\)": z * z / 4,
        r"/\s*\(1\s*\+\s*([0-9.]+)\s*/": z * z,
    }
    for pattern, value in terms.items():
        (found,) = re.findall(pattern, wilson)
        assert float(found) == pytest.approx(value, abs=1e-4), pattern


def test_baseline_sampling_follows_the_buckets() -> None:
    for name in ("mean_3h", "stddev_3h", "learned_buckets_3h"):
        expr = RULES[(RECORD + name, "")]["expr"]
        window, step, offset = re.search(r"\[(\w+):(\w+)\] offset (\w+)", expr).groups()  # type: ignore[union-attr]
        # One sample per bucket, judged against the baseline before the current bucket.
        assert minutes(step) * 60 == S.bucket_seconds
        assert minutes(offset) * 60 == S.bucket_seconds
        # A flat mean over the window has about the effective sample size of the detector's
        # EW mean: (2 - a) / a buckets, a = 1 - 0.5 ** (bucket / half-life).
        alpha = 1 - 0.5 ** (S.bucket_seconds / S.baseline_half_life_seconds)
        effective_minutes = (2 - alpha) / alpha * S.bucket_seconds / 60
        assert minutes(window) == pytest.approx(effective_minutes, rel=0.1)


def test_brand_groups_evaluate_once_per_bucket() -> None:
    from tests.deploy.repo import RULE_FILES, load_yaml

    groups = [g for path in RULE_FILES for g in load_yaml(path)["groups"]]
    brand = [g for g in groups if g["name"].startswith("brandmon-brand")]
    assert brand
    for group in brand:
        assert minutes(group["interval"]) * 60 == S.bucket_seconds, group["name"]


def test_the_annotations_name_the_window_length() -> None:
    window_minutes = S.window_buckets * S.bucket_seconds // 60
    for severity in ("warning", "critical"):
        description = RULES[("BrandNegativeShareSpike", severity)]["annotations"]["description"]
        assert f"last {window_minutes} minutes" in description
