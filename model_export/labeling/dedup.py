"""Near-duplicate posts: one key per post that retweets, copies and light edits share.

`normalise` strips what makes copies of one post look different (a leading "RT @user:",
links, @mentions, case, punctuation, spacing); `near_duplicate_groups` then joins posts whose
normalised word shingles overlap by at least a Jaccard threshold, found with MinHash and
locality-sensitive hashing (banding), so 100k posts take seconds and never n² comparisons.

Export keeps one post per group (nobody labels the same text twice); import splits train
and test by group, so no near-copy of a test text is ever trained on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_RETWEET = re.compile(r"^\s*rt\s+@\w+\s*:?\s*", re.IGNORECASE)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_NOT_WORD = re.compile(r"[\W_]+")

#: MinHash signature length = BANDS x ROWS. Two posts become candidates when one band of
#: ROWS hashes matches: probability 1 - (1 - J^ROWS)^BANDS, 0.99 at Jaccard 0.7, 0.27 at 0.4.
BANDS = 16
ROWS = 4
#: Default Jaccard similarity of word shingles at which two posts count as one.
DEFAULT_THRESHOLD = 0.7
#: Words per shingle; texts shorter than this are compared by their set of words.
SHINGLE_WORDS = 3

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def is_retweet(text: str) -> bool:
    """True for a post that starts with "RT @user:", the classic retweet form."""
    return _RETWEET.match(text) is not None


def normalise(text: str) -> str:
    """The text with retweet prefixes, links, mentions, case and punctuation removed."""
    text = unicodedata.normalize("NFKC", text)
    while (match := _RETWEET.match(text)) is not None:
        text = text[match.end() :]
    text = _MENTION.sub(" ", _URL.sub(" ", text))
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def shingles(normalised: str) -> frozenset[str]:
    """Word n-grams of a normalised text (its words when it has fewer than n)."""
    words = normalised.split()
    if len(words) < SHINGLE_WORDS:
        return frozenset(words)
    return frozenset(
        " ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 1.0 for two empty sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _hash64(item: str) -> int:
    return int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest(), "little")


def _permutations(seed: int = 1) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Odd multipliers and offsets of the multiply-add hash family (mod 2**64)."""
    rng = np.random.default_rng(seed)
    size = BANDS * ROWS
    mult = rng.integers(1, 2**63, size=size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    add = rng.integers(0, 2**63, size=size, dtype=np.uint64)
    return mult, add


_MULT, _ADD = _permutations()


def minhash(items: frozenset[str]) -> npt.NDArray[np.uint64]:
    """The MinHash signature (BANDS * ROWS values) of a non-empty set of strings."""
    values = np.fromiter((_hash64(item) for item in items), dtype=np.uint64, count=len(items))
    with np.errstate(over="ignore"):
        hashed = (values[:, None] * _MULT[None, :] + _ADD[None, :]) & _MASK64
    # the high bits of a multiply-add hash are the well-mixed ones
    return (hashed >> np.uint64(32)).min(axis=0)


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_groups(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """A group number per text: texts whose normalised forms are equal, or whose shingles
    have Jaccard >= `threshold`, share a number (the index of the group's first text).

    Each LSH bucket compares its members with its first member only, so the work is linear
    in the number of texts; chains of edits still join through shared members.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    groups = _UnionFind(len(texts))
    first_by_key: dict[str, int] = {}
    shingle_sets: dict[int, frozenset[str]] = {}
    for i, text in enumerate(texts):
        key = normalise(text)
        if key in first_by_key:
            groups.union(first_by_key[key], i)
            continue
        first_by_key[key] = i
        shingle_sets[i] = shingles(key)
    if threshold < 1.0:
        _join_similar(shingle_sets, threshold, groups)
    return [groups.find(i) for i in range(len(texts))]


def _join_similar(
    shingle_sets: dict[int, frozenset[str]], threshold: float, groups: _UnionFind
) -> None:
    first_in_bucket: dict[tuple[int, bytes], int] = {}
    for i, items in shingle_sets.items():
        if not items:
            continue
        signature = minhash(items)
        for band in range(BANDS):
            bucket = (band, signature[band * ROWS : (band + 1) * ROWS].tobytes())
            other = first_in_bucket.setdefault(bucket, i)
            if other != i and jaccard(shingle_sets[other], items) >= threshold:
                groups.union(other, i)
