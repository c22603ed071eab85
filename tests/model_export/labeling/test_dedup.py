"""Near-duplicates: retweets, link/mention variants and light edits share a group; different
posts do not; grouping stays fast at stream scale."""

from __future__ import annotations

import random
import time

import pytest

from brandmon.model_export.labeling.dedup import (
    is_retweet,
    near_duplicate_groups,
    normalise,
)


def test_normalise_strips_retweet_prefix_links_mentions_case_and_punctuation() -> None:
    assert normalise("RT @fan_1: RT @acme: Battery DIED again!! https://t.co/xYz @support") == (
        "battery died again"
    )
    assert normalise("www.acme.com only") == "only"


def test_retweet_is_recognised_only_at_the_start() -> None:
    assert is_retweet("RT @acme: new phone")
    assert is_retweet("rt @acme new phone")
    assert not is_retweet("I'd RT @acme if I could")


def test_retweets_and_copies_with_other_links_join_the_original() -> None:
    texts = [
        "The new Acme phone battery dies before lunch every single day",
        "RT @bob: The new Acme phone battery dies before lunch every single day",
        "The new acme phone battery dies before lunch every single day!!! https://t.co/a1",
        "@acme the new Acme phone battery dies before lunch every single day",
        "Love the Acme camera, the night shots are stunning",
    ]
    groups = near_duplicate_groups(texts)
    assert groups[:4] == [0, 0, 0, 0]
    assert groups[4] == 4


def test_light_edit_joins_but_a_different_post_on_the_same_topic_does_not() -> None:
    original = "acme support kept me on hold for two hours and then hung up on me"
    edited = "acme support kept me on hold for two hours and then hung up on me again"
    other = "acme support answered in two minutes and fixed my order, great service"
    groups = near_duplicate_groups([original, edited, other])
    assert groups[0] == groups[1]
    assert groups[2] != groups[0]


def test_threshold_one_joins_only_identical_normalised_texts() -> None:
    texts = ["one two three four five six", "one two three four five six seven", "ONE two..."]
    assert near_duplicate_groups(texts, threshold=1.0) == [0, 1, 2]


@pytest.mark.slow
def test_groups_100k_posts_quickly() -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choices(words, k=12)) for _ in range(50_000)]
    texts += [f"RT @u{i}: {text}" for i, text in enumerate(texts)]
    started = time.perf_counter()
    groups = near_duplicate_groups(texts)
    elapsed = time.perf_counter() - started
    assert groups[50_000:] == groups[:50_000]  # every retweet found its original
    assert len(set(groups)) == 50_000
    assert elapsed < 60, f"grouping 100k posts took {elapsed:.1f} s"
