"""Agreement statistics on hand-checked examples, and majority voting."""

from __future__ import annotations

import pytest

from brandmon.model_export.labeling.agreement import (
    AgreementReport,
    krippendorff_alpha_nominal,
    majority,
    percent_agreement,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
# observers, twelve units, values 1-5, missing values left out. Published nominal alpha: 0.743.
KRIPPENDORFF_EXAMPLE = [
    [1, 1, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [5, 5, 5],
    [1, 1],
    [3],
]


def test_alpha_matches_krippendorffs_published_nominal_example() -> None:
    assert krippendorff_alpha_nominal(KRIPPENDORFF_EXAMPLE) == pytest.approx(0.743, abs=5e-4)


def test_alpha_and_percent_on_a_small_example_worked_by_hand() -> None:
    # coincidences: o(n,n)=2, o(n,p)=o(p,n)=1, o(p,p)=2; n_neg = n_pos = 3, n = 6
    # alpha = 1 - (n-1) * sum_{c!=k} o / sum_{c!=k} n_c n_k = 1 - 5*2/18 = 4/9
    units = [["negative", "negative"], ["negative", "positive"], ["positive", "positive"]]
    assert krippendorff_alpha_nominal(units) == pytest.approx(4 / 9)
    # ordered pairs: 2 + 0 + 2 agree of 6
    assert percent_agreement(units) == pytest.approx(2 / 3)


def test_perfect_agreement_is_one_and_systematic_disagreement_is_negative() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["c", "c"]]) == 1.0
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0


def test_undefined_without_pairs_or_without_variation() -> None:
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a", "a"]]) is None
    assert percent_agreement([["a"]]) is None


def test_report_counts_only_posts_with_two_or_more_annotators() -> None:
    report = AgreementReport.of([["a", "a"], ["a"], ["a", "b", "b"]])
    assert report.multi_annotated == 2
    assert report.percent == pytest.approx((2 + 2) / (2 + 6))


def test_majority_wins_and_ties_give_none() -> None:
    assert majority(["neutral", "negative", "negative"]) == "negative"
    assert majority(["positive"]) == "positive"
    assert majority(["positive", "negative"]) is None
    assert majority([]) is None
