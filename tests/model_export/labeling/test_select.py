"""Choosing posts to label: least sure first, one per near-duplicate group, spread over
brands and time."""

from __future__ import annotations

import math

import pytest

from brandmon.contracts.posts import Scores
from brandmon.model_export.labeling.select import select_for_labeling, uncertainty
from tests.model_export.labeling.posts import scored


def test_margin_is_one_minus_the_gap_between_the_two_most_probable_classes() -> None:
    assert uncertainty(Scores(negative=0.5, neutral=0.1, positive=0.4)) == pytest.approx(0.9)
    assert uncertainty(Scores(negative=0.0, neutral=0.0, positive=1.0)) == pytest.approx(0.0)


def test_entropy_is_one_for_a_uniform_guess_and_zero_for_a_certain_one() -> None:
    third = 1 / 3
    assert uncertainty(Scores(negative=third, neutral=third, positive=third), "entropy") == (
        pytest.approx(1.0)
    )
    assert uncertainty(Scores(negative=1.0, neutral=0.0, positive=0.0), "entropy") == 0.0
    half = uncertainty(Scores(negative=0.5, neutral=0.0, positive=0.5), "entropy")
    assert half == pytest.approx(math.log(2) / math.log(3))


def test_the_least_sure_posts_are_picked_first() -> None:
    posts = [
        scored("sure", "great phone love it", (0.02, 0.03, 0.95)),
        scored("torn", "the phone is fine i guess but the case cracked", (0.45, 0.1, 0.45)),
        scored("leaning", "delivery came a day late, box was ok", (0.6, 0.3, 0.1)),
    ]
    selection = select_for_labeling(posts, limit=2)
    assert [c.post.id for c in selection.picked] == ["torn", "leaning"]


def test_measure_changes_the_order() -> None:
    # margin: both have gap 0.2; entropy prefers the spread-out one
    posts = [
        scored("two-way", "meh battery, nice screen", (0.4, 0.0, 0.6)),
        scored("three-way", "the update changed things", (0.2, 0.3, 0.5)),
    ]
    picked = select_for_labeling(posts, limit=1, measure="entropy").picked
    assert picked[0].post.id == "three-way"


def test_retweets_and_near_copies_are_labelled_once_keeping_the_original() -> None:
    text = "Acme support kept me on hold for two hours and then hung up"
    posts = [
        scored("rt", f"RT @bob: {text}", (0.4, 0.2, 0.4)),
        scored("orig", text, (0.4, 0.2, 0.4)),
        scored("copy", f"{text} https://t.co/zz", (0.5, 0.1, 0.4)),
        scored("other", "the new acme watch looks great", (0.3, 0.3, 0.4)),
    ]
    selection = select_for_labeling(posts, limit=10)
    assert sorted(c.post.id for c in selection.picked) == ["orig", "other"]
    assert selection.duplicates == 2


def test_posts_with_only_links_and_mentions_are_skipped() -> None:
    posts = [scored("link", "@acme https://t.co/x", (0.4, 0.2, 0.4)), scored("t", "nice")]
    selection = select_for_labeling(posts, limit=10)
    assert [c.post.id for c in selection.picked] == ["t"]
    assert selection.empty == 1


def test_a_loud_brand_does_not_crowd_out_the_others() -> None:
    # acme has 20 very uncertain posts; globex and initech one mildly uncertain each
    posts = [
        scored(f"acme-{i}", f"acme post number {i} about thing {i * 7}", (0.45, 0.1, 0.45))
        for i in range(20)
    ]
    posts.append(scored("globex-1", "globex shipped my order", (0.2, 0.1, 0.7), brand="globex"))
    posts.append(scored("initech-1", "initech printer jam", (0.7, 0.1, 0.2), brand="initech"))
    selection = select_for_labeling(posts, limit=4)
    brands = [c.post.brand for c in selection.picked]
    assert sorted(set(brands)) == ["acme", "globex", "initech"]
    assert selection.strata == 3


def test_posts_are_spread_over_time_buckets() -> None:
    posts = [
        scored(f"day0-{i}", f"monday complaint number {i} topic {i * 3}", (0.45, 0.1, 0.45))
        for i in range(10)
    ]
    posts.append(scored("day2", "wednesday complaint", (0.3, 0.1, 0.6), hours=49))
    picked = select_for_labeling(posts, limit=2, bucket_hours=24).picked
    assert {c.post.id for c in picked} >= {"day2"}
    # one bucket for all: the most uncertain win
    picked = select_for_labeling(posts, limit=2, bucket_hours=24 * 7).picked
    assert "day2" not in {c.post.id for c in picked}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        select_for_labeling([], limit=0)
    with pytest.raises(ValueError, match="measure"):
        uncertainty(Scores(negative=1, neutral=0, positive=0), "variance")  # type: ignore[arg-type]
