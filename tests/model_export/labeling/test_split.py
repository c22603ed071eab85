"""The grouped split: near-duplicates never straddle train and test; shares and seeds hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brandmon.model_export.labeling.dedup import near_duplicate_groups, normalise
from brandmon.model_export.labeling.split import grouped_split


def test_retweets_and_copies_land_on_the_side_of_their_original() -> None:
    base = [f"acme post {i}: the {i}th thing about widgets number {i * 13}" for i in range(40)]
    texts = (
        base
        + [f"RT @fan: {t}" for t in base]
        + [f"{t} https://t.co/{i}" for i, t in enumerate(base)]
    )
    groups = near_duplicate_groups(texts)
    train, test = grouped_split(texts, groups, test_share=0.25, seed=7)
    train_keys = {normalise(t) for t in train}
    test_keys = {normalise(t) for t in test}
    assert train_keys.isdisjoint(test_keys)
    assert len(test) == 30  # 10 groups of three: exactly a quarter of 120
    assert len(train) + len(test) == len(texts)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60),
    share=st.floats(min_value=0.0, max_value=0.9),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_no_group_is_ever_split_and_test_is_near_its_share(
    sizes: list[int], share: float, seed: int
) -> None:
    groups = [g for g, size in enumerate(sizes) for _ in range(size)]
    rows = list(range(len(groups)))
    train, test = grouped_split(rows, groups, share, seed)
    assert {groups[r] for r in train}.isdisjoint({groups[r] for r in test})
    assert sorted(train + test) == rows
    # greedy by whole groups: off the target by at most the largest group
    assert abs(len(test) - round(share * len(rows))) <= max(sizes)


def test_same_seed_same_split_other_seed_other_split() -> None:
    rows = list(range(100))
    first = grouped_split(rows, rows, 0.2, seed=1)
    assert grouped_split(rows, rows, 0.2, seed=1) == first
    assert grouped_split(rows, rows, 0.2, seed=2) != first


def test_bad_share_is_refused() -> None:
    with pytest.raises(ValueError, match="test_share"):
        grouped_split([1], [1], 1.0, seed=0)
