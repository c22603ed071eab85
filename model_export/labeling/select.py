"""Which scored posts are worth a person's time: the ones the model is least sure of, one
per near-duplicate group, spread over brands and time.

Pure functions over `ScoredPost` records (the `posts.scored` contract); reading them from a
file or the topic is the caller's job (labeling/sources.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from brandmon.contracts.posts import ScoredPost, Scores
from brandmon.model_export.labeling.dedup import (
    DEFAULT_THRESHOLD,
    is_retweet,
    near_duplicate_groups,
    normalise,
)

Measure = Literal["margin", "entropy"]
MEASURES: tuple[Measure, ...] = ("margin", "entropy")


def uncertainty(scores: Scores, measure: Measure = "margin") -> float:
    """How unsure the model is, 0 (certain) to 1 (no idea).

    margin: 1 - (top probability - second probability). entropy: the Shannon entropy of
    the three probabilities over its maximum, log 3.
    """
    probs = [scores.negative, scores.neutral, scores.positive]
    if measure == "margin":
        top, second = sorted(probs, reverse=True)[:2]
        return 1.0 - (top - second)
    if measure == "entropy":
        total = sum(probs)
        if total <= 0:
            return 1.0
        return -sum(p / total * math.log(p / total) for p in probs if p > 0) / math.log(3)
    raise ValueError(f"unknown uncertainty measure {measure!r}: use one of {MEASURES}")


@dataclass(frozen=True)
class Candidate:
    """A scored post with how unsure the model was of it."""

    post: ScoredPost
    uncertainty: float

    @property
    def confidence(self) -> float:
        """The model's probability of the label it gave (0 for an unscored post)."""
        if self.post.label is None:
            return 0.0
        return float(getattr(self.post.scores, self.post.label))


@dataclass(frozen=True)
class Selection:
    """What export sends to annotators, and what it left out and why."""

    picked: list[Candidate]
    read: int
    duplicates: int
    empty: int
    strata: int


def stratum(post: ScoredPost, bucket_hours: float) -> tuple[str, int]:
    """(brand, time bucket number) of a post."""
    return post.brand, math.floor(post.created_at.timestamp() / (bucket_hours * 3600))


def _representative(members: Sequence[Candidate]) -> Candidate:
    """The group's most uncertain post; an original before a retweet, then the lowest id."""
    return min(members, key=lambda c: (-c.uncertainty, is_retweet(c.post.text), c.post.id))


def deduplicate(
    candidates: Sequence[Candidate], threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[Candidate], int]:
    """One candidate per near-duplicate group, and how many were dropped."""
    groups: dict[int, list[Candidate]] = defaultdict(list)
    for group, candidate in zip(
        near_duplicate_groups([c.post.text for c in candidates], threshold),
        candidates,
        strict=True,
    ):
        groups[group].append(candidate)
    kept = [_representative(members) for members in groups.values()]
    return kept, len(candidates) - len(kept)


def round_robin(
    candidates: Iterable[Candidate], limit: int, bucket_hours: float
) -> tuple[list[Candidate], int]:
    """Up to `limit` candidates, taken in turns from each brand x time-bucket stratum, most
    uncertain first within a stratum and within each turn (so the last, partial turn keeps
    the most uncertain of its posts)."""
    strata: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        strata[stratum(candidate.post, bucket_hours)].append(candidate)
    queues = [
        sorted(members, key=lambda c: (-c.uncertainty, c.post.id)) for members in strata.values()
    ]
    picked: list[Candidate] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        turn = [q[depth] for q in queues if depth < len(q)]
        picked.extend(sorted(turn, key=lambda c: (-c.uncertainty, c.post.brand, c.post.id)))
        depth += 1
    return picked[:limit], len(strata)


def select_for_labeling(
    posts: Iterable[ScoredPost],
    limit: int,
    *,
    measure: Measure = "margin",
    bucket_hours: float = 24.0,
    threshold: float = DEFAULT_THRESHOLD,
) -> Selection:
    """The posts to label: duplicates and posts with no words left after normalising
    (links and mentions only) dropped, then a round-robin over brand x time strata."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if bucket_hours <= 0:
        raise ValueError("bucket_hours must be positive")
    read = 0
    candidates: list[Candidate] = []
    for post in posts:
        read += 1
        # an unscored post (a language no model reads) has no model answer to check
        if post.scores is not None and normalise(post.text):
            candidates.append(Candidate(post, uncertainty(post.scores, measure)))
    kept, duplicates = deduplicate(candidates, threshold)
    picked, strata = round_robin(kept, limit, bucket_hours)
    return Selection(
        picked=picked,
        read=read,
        duplicates=duplicates,
        empty=read - len(candidates),
        strata=strata,
    )
