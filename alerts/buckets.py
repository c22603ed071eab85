"""Event-time buckets: where a post lands, and what a window of closed buckets adds up to.

Counting rules (the guards against one source making a spike):
- an exact duplicate text (after trimming surrounding whitespace) inside the window counts
  once, whoever posted it (retweet storms, bot farms);
- an author is one *voice* however many posts they write in the window, negative if any of
  their posts is; a post without an author is its own voice.
The detector judges the share of negative voices, so one author or one copied text can never
make a spike.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from brandmon.alerts.state import HASH_CHARS, Bucket
from brandmon.alerts.topics import count_terms, post_terms, voice_bit
from brandmon.contracts.alerts import WindowCounts
from brandmon.contracts.posts import ScoredPost


def bucket_index(event_time: float, bucket_seconds: int) -> int:
    """Index of the bucket holding `event_time` (epoch seconds)."""
    return math.floor(event_time / bucket_seconds)


def short_hash(value: str) -> str:
    """A 64-bit hex digest: small in the state, collisions negligible within a window."""
    return hashlib.blake2b(value.encode("utf-8"), digest_size=HASH_CHARS // 2).hexdigest()


def add_post(
    bucket: Bucket, post: ScoredPost, max_tracked: int, max_samples: int, max_terms: int = 0
) -> None:
    """Count `post` into `bucket`, remembering its text and author for the guards; the terms
    of a negative post with a new text go into the bucket's sketch of at most `max_terms`
    terms (alerts.topics), with its voice (author, else text)."""
    if post.label is None:  # no model read it: counted as unscored, in no rule's counts
        bucket.unscored += 1
        return
    negative = post.label == "negative"
    bucket.posts += 1
    bucket.negatives += negative
    bucket.neutrals += post.label == "neutral"
    bucket.positives += post.label == "positive"
    text_key = short_hash(post.text.strip())
    if text_key in bucket.texts:
        return
    author_key = short_hash(post.author) if post.author else ""
    if negative and max_terms > 0:
        terms = post_terms(post.text, post.brand)
        bucket.term_total += len(terms)
        bit = voice_bit(author_key or text_key)
        rounds, bucket.term_door = count_terms(
            bucket.terms, terms, bit, max_terms, bucket.term_door
        )
        bucket.term_rounds += rounds
    if len(bucket.texts) >= max_tracked:
        bucket.overflow_posts += 1
        bucket.overflow_negatives += negative
        return
    bucket.texts[text_key] = [author_key, int(negative)]
    if negative and len(bucket.samples) < max_samples:
        bucket.samples.append(post.id)


@dataclass(frozen=True)
class Window:
    """Counts over consecutive closed buckets `[first, last]` (indices)."""

    first: int
    last: int
    counts: WindowCounts
    samples: tuple[str, ...]

    @property
    def voices(self) -> int:
        return self.counts.voices

    @property
    def negative_voices(self) -> int:
        return self.counts.negative_voices


def window_counts(buckets: Iterable[Bucket], first: int, last: int, max_samples: int) -> Window:
    """Add up the buckets (oldest first) of the window `[first, last]` with the guards."""
    ordered = sorted((b for b in buckets if first <= b.index <= last), key=lambda b: b.index)
    seen_texts: set[str] = set()
    voices: dict[str, bool] = {}
    authors: set[str] = set()
    posts = negatives = overflow_posts = overflow_negatives = duplicates = unscored = 0
    for bucket in ordered:
        unscored += bucket.unscored
        posts += bucket.posts
        negatives += bucket.negatives
        overflow_posts += bucket.overflow_posts
        overflow_negatives += bucket.overflow_negatives
        for text_key, (author_key, negative) in bucket.texts.items():
            if text_key in seen_texts:
                continue
            seen_texts.add(text_key)
            if author_key:
                authors.add(author_key)
            voice = f"a{author_key}" if author_key else f"t{text_key}"
            voices[voice] = voices.get(voice, False) or bool(negative)
    duplicates = posts - len(seen_texts) - overflow_posts
    n_voices = len(voices) + overflow_posts
    n_negative = sum(voices.values()) + overflow_negatives
    counts = WindowCounts(
        posts=posts,
        negatives=negatives,
        voices=n_voices,
        negative_voices=n_negative,
        share=n_negative / n_voices if n_voices else None,
        distinct_authors=len(authors),
        duplicate_texts=duplicates,
        unscored=unscored,
    )
    samples = [s for b in reversed(ordered) for s in b.samples][:max_samples]
    return Window(first=first, last=last, counts=counts, samples=tuple(samples))
