"""Train/test split by group: all members of a near-duplicate group land on one side.

A random row-level split puts a retweet in train and its original in test, and the test
score then measures memory, not the model. Here whole groups are shuffled (seeded) and
taken into test until it holds about `test_share` of the rows.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


def grouped_split(
    rows: Sequence[Row], groups: Sequence[Hashable], test_share: float, seed: int
) -> tuple[list[Row], list[Row]]:
    """(train, test): rows of one group are never split; test gets the first shuffled
    groups until it reaches round(test_share * len(rows)) rows (a group that would
    overshoot the target by more than it falls short goes to train)."""
    if len(rows) != len(groups):
        raise ValueError("one group per row is needed")
    if not 0.0 <= test_share < 1.0:
        raise ValueError(f"test_share must be in [0, 1), got {test_share}")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    order = sorted(members, key=lambda g: members[g][0])  # first-seen order, then shuffle
    random.Random(seed).shuffle(order)
    target = round(test_share * len(rows))
    test_ids: set[int] = set()
    for group in order:
        size = len(members[group])
        if len(test_ids) + size - target <= target - len(test_ids):
            test_ids.update(members[group])
        if len(test_ids) >= target:
            break
    train = [row for i, row in enumerate(rows) if i not in test_ids]
    test = [row for i, row in enumerate(rows) if i in test_ids]
    return train, test
