"""The label canon: every documented scheme maps as the model cards say; anything else fails."""

from __future__ import annotations

import pytest

from brandmon.model_export.errors import UnknownLabelError
from brandmon.model_export.labels import build_label_map, canonical_label, parse_label_map


def test_sst2_style_names_map_to_negative_and_positive() -> None:
    assert build_label_map(["NEGATIVE", "POSITIVE"]) == {
        "NEGATIVE": "negative",
        "POSITIVE": "positive",
    }


@pytest.mark.parametrize(
    "labels",
    [
        ["negative", "neutral", "positive"],
        ["Negative", "NEUTRAL", "Positive"],
        ["neg", "neu", "pos"],
    ],
)
def test_three_class_names_in_any_case(labels: list[str]) -> None:
    assert list(build_label_map(labels).values()) == ["negative", "neutral", "positive"]


def test_generic_labels_follow_the_documented_cardiffnlp_order() -> None:
    assert build_label_map(["LABEL_0", "LABEL_1", "LABEL_2"]) == {
        "LABEL_0": "negative",
        "LABEL_1": "neutral",
        "LABEL_2": "positive",
    }


def test_generic_binary_labels_follow_the_sst2_order() -> None:
    assert build_label_map(["LABEL_0", "LABEL_1"]) == {"LABEL_0": "negative", "LABEL_1": "positive"}


def test_stars_split_two_one_two() -> None:
    labels = ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    assert list(build_label_map(labels).values()) == [
        "negative",
        "negative",
        "neutral",
        "positive",
        "positive",
    ]


def test_unknown_label_is_an_error_naming_it_not_a_guess() -> None:
    with pytest.raises(UnknownLabelError, match="joy"):
        build_label_map(["anger", "joy"])


def test_generic_labels_without_a_documented_order_are_unknown() -> None:
    with pytest.raises(UnknownLabelError, match="--label-map"):
        build_label_map(["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"])
    assert canonical_label("LABEL_5", 3) is None


def test_label_map_override_resolves_unknown_labels() -> None:
    overrides = parse_label_map("anger=negative, joy=positive")
    assert build_label_map(["anger", "joy"], overrides) == {"anger": "negative", "joy": "positive"}


def test_label_map_override_wins_over_the_scheme() -> None:
    # A model whose card says LABEL_0 is positive.
    overrides = parse_label_map("LABEL_0=positive,LABEL_1=negative")
    assert build_label_map(["LABEL_0", "LABEL_1"], overrides) == {
        "LABEL_0": "positive",
        "LABEL_1": "negative",
    }


def test_override_naming_a_label_the_model_lacks_is_an_error() -> None:
    with pytest.raises(UnknownLabelError, match="LABEL_7"):
        build_label_map(["NEGATIVE", "POSITIVE"], {"LABEL_7": "neutral"})


def test_a_map_without_both_polarities_is_refused() -> None:
    with pytest.raises(UnknownLabelError, match="positive"):
        build_label_map(["LABEL_0", "LABEL_1"], {"LABEL_0": "negative", "LABEL_1": "negative"})


@pytest.mark.parametrize("spec", ["LABEL_0", "LABEL_0=happy", "=negative", " , "])
def test_malformed_label_map_spec_says_what_is_wrong(spec: str) -> None:
    with pytest.raises(ValueError, match=r"LABEL|negative|target"):
        parse_label_map(spec)
