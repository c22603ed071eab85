"""Topic terms: the words and phrases behind a spike, in bounded memory per brand.

An alert names what its negative posts are about ("about: refund, outage, app crash"), so the
on-call engineer knows before opening anything. Three steps, all pure and deterministic:

1. `post_terms()` turns a negative post's text into a set of terms: lowercase words (letters
   only) and the bigrams of adjacent words, without URLs, @mentions, stopwords, the brand's own
   name, words under 3 characters, and terms over `MAX_TERM_CHARS` characters.
2. `count_terms()` adds them to the bucket's sketch: at most `topic_terms_per_bucket` terms,
   kept by the Misra-Gries rule: a new term when the sketch is full takes one off every count
   instead (a *round*), so a term's true count lies between its count and its count plus the
   bucket's rounds, and a term in more than 1/(size+1) of the occurrences always stays. A
   term enters the sketch only at its second sighting in the bucket (a 1,024-bit doorkeeper),
   so terms seen once, the long tail of most texts, do not churn it. A
   term counts once per post, an exact duplicate text not at all (alerts.buckets), and each
   entry keeps a 64-bit mask of its voices (author, or the text of an author-less post). A
   term's voices are min(count + rounds, voices of its mask by linear counting): one account
   writing a word in many posts counts about once, and a word the rounds took counts down
   is still counted by its voices.
3. `TopicBaseline` remembers the brand's normal negative vocabulary: the sketches of closed
   buckets outside incidents, decayed with `topic_baseline_half_life_seconds`, at most
   `topic_baseline_terms` terms (the smallest weight goes first). `rank_terms()` compares the
   window's terms with it by the log-odds ratio with an informative Dirichlet prior (Monroe,
   Colaresi & Quinn 2008, "Fightin' Words"), z-scored; the top terms above `topic_min_z`
   with at least `topic_min_voices` voices are named. While the baseline holds fewer than
   `topic_min_baseline` term occurrences (a new brand) the most frequent terms are named.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from brandmon.alert_settings import AlertSettings

#: Longest term kept, in characters (a bigram counts its space): bounds the state (a term is
#: at most 6 bytes a character once JSON-escaped, since only BMP characters are kept).
MAX_TERM_CHARS = AlertSettings.MAX_TERM_CHARS
#: Terms taken from one post (its first ones): bounds the work a very long text costs.
MAX_TERMS_PER_POST = 32
#: Bits of a bucket's doorkeeper: a term enters the sketch at its second sighting in the
#: bucket, so the long tail of terms seen once (most of them) never churns it. Stored as hex.
DOOR_BITS = 1024
#: Bits of the voice mask of a sketch entry (linear counting is good to ~3x this many voices).
MASK_BITS = 64
MIN_WORD_CHARS = 3
#: A phrase replaces its named words when it is in at least this share of their voices.
PHRASE_SHARE = 0.6

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\"|]+")
#: Letters only, with inner apostrophes (don't); digits and underscores split words.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each even ever every few for from further get gets got had
    hadn't has hasn't have haven't having he her here hers herself him himself his how i i'm
    i've if in into is isn't it it's its itself just let's like me more most much must my
    myself never no nor not now of off on once one only or other ought our ours ourselves out
    over own really same she should shouldn't so some still such than that that's the their
    theirs them themselves then there there's these they they're this those through to too
    under until up us very via was wasn't we we're were weren't what when where which while who
    whom why will with won't would wouldn't yet you you're your yours yourself yourselves
    amp rt lol omg im ive dont cant wont didnt doesnt isnt thats yeah yes ok okay
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def post_terms(text: str, brand: str) -> list[str]:
    """The distinct terms of `text` (words, then bigrams of adjacent words), in order."""
    own = _own_words(brand)
    text = _MENTION.sub(" ", _URL.sub(" ", _normal(text)))
    # None marks a dropped word or a clause break, so no bigram spans it.
    kept: list[str | None] = []
    for clause in _CLAUSE.split(text):
        for word in _words_of_normal(clause):
            good = (
                len(word) >= MIN_WORD_CHARS
                and len(word) <= MAX_TERM_CHARS
                and word not in STOPWORDS
                and word not in own
                and all(ord(c) <= 0xFFFF for c in word)
            )
            kept.append(word if good else None)
        kept.append(None)
    terms = dict.fromkeys(w for w in kept if w is not None)
    for first, second in itertools.pairwise(kept):
        if first is not None and second is not None and first != second:
            bigram = f"{first} {second}"
            if len(bigram) <= MAX_TERM_CHARS:
                terms.setdefault(bigram)
    return list(terms)[:MAX_TERMS_PER_POST]


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")


def _words_of_normal(text: str) -> list[str]:
    words = []
    for word in _WORD.findall(text):
        if word.endswith("'s"):
            word = word[:-2]
        words.append(word)
    return words


@functools.lru_cache(maxsize=4096)
def _own_words(brand: str) -> frozenset[str]:
    """The words of a brand's name: never a topic of its own alerts."""
    return frozenset(_words_of_normal(_normal(brand)))


def voice_bit(voice_key: str) -> int:
    """The mask bit of a voice (a hex hash of its author or text)."""
    return 1 << (int(voice_key[:8], 16) % MASK_BITS)


def count_terms(
    sketch: dict[str, list[int]], terms: Iterable[str], bit: int, size: int, seen: int
) -> tuple[int, int]:
    """Add one post's terms (each once) to a bucket's sketch of at most `size` terms, behind
    the doorkeeper `seen`; returns the rounds (counts taken off every kept term) it cost and
    the new doorkeeper."""
    rounds = 0
    for term in terms:
        entry = sketch.get(term)
        if entry is not None:
            entry[0] += 1
            entry[1] |= bit
            continue
        door = 1 << (zlib.crc32(term.encode()) % DOOR_BITS)
        if not seen & door:  # first sighting in the bucket: remembered, not counted
            seen |= door
        elif len(sketch) < size:
            sketch[term] = [2, bit]  # this sighting and the one at the door
        else:  # Misra-Gries: the newcomer and one count of every kept term cancel out
            rounds += 1
            for key in list(sketch):
                sketch[key][0] -= 1
                if sketch[key][0] <= 0:
                    del sketch[key]
    return rounds, seen


def sketch_voices(count: int, mask: int, rounds: int) -> float:
    """A sketch entry's voices: at most its count plus the rounds, at most its mask's."""
    return min(float(count + rounds), voices_in(mask))


def voices_in(mask: int) -> float:
    """Distinct voices behind a mask (linear counting); infinite once every bit is set."""
    zeros = MASK_BITS - bin(mask).count("1")
    if zeros == 0:
        return math.inf
    return -MASK_BITS * math.log(zeros / MASK_BITS)


@dataclass
class TopicBaseline:
    """Decayed term counts of a brand's negative posts outside incidents (bounded)."""

    weights: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    learned_at: int | None = None  # bucket index of the last bucket learned

    def learn(
        self,
        sketch: dict[str, list[int]],
        total: int,
        rounds: int,
        index: int,
        settings: AlertSettings,
    ) -> None:
        """Fold the sketch of bucket `index` (its exact term total and its rounds) in,
        decaying first."""
        if self.learned_at is not None and index > self.learned_at:
            elapsed = (index - self.learned_at) * settings.bucket_seconds
            decay = 0.5 ** (elapsed / settings.topic_baseline_half_life_seconds)
            self.weights = {t: w * decay for t, w in self.weights.items()}
            self.total *= decay
        self.learned_at = index if self.learned_at is None else max(index, self.learned_at)
        self.total += total
        for term, (count, mask) in sketch.items():
            self.weights[term] = self.weights.get(term, 0.0) + sketch_voices(count, mask, rounds)
        limit = settings.topic_baseline_terms
        if len(self.weights) > limit:
            kept = sorted(self.weights.items(), key=lambda tw: (-tw[1], tw[0]))[:limit]
            self.weights = dict(kept)

    def floor(self, settings: AlertSettings) -> float:
        """The most a term missing from a full baseline may weigh (it was evicted)."""
        if len(self.weights) < settings.topic_baseline_terms:
            return 0.0
        return min(self.weights.values(), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.total, "at": self.learned_at, "t": self.weights}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicBaseline:
        at = data["at"]
        return cls(
            weights={str(t): float(w) for t, w in data["t"].items()},
            total=float(data["n"]),
            learned_at=None if at is None else int(at),
        )


@dataclass(frozen=True)
class WindowTerms:
    """A window's merged sketches: per term its count (plus the rounds of the buckets that
    hold it) and voice mask; `total` term occurrences."""

    counts: dict[str, tuple[int, int]]
    total: int


def merge(sketches: Iterable[tuple[dict[str, list[int]], int, int]]) -> WindowTerms:
    """Add up bucket sketches `(sketch, term total, rounds)`: counts, rounds, OR of masks."""
    counts: dict[str, tuple[int, int]] = {}
    total = 0
    for sketch, bucket_total, rounds in sketches:
        total += bucket_total
        for term, (count, mask) in sketch.items():
            old_count, old_mask = counts.get(term, (0, 0))
            counts[term] = (old_count + count + rounds, old_mask | mask)
    return WindowTerms(counts, total)


@dataclass(frozen=True)
class Scored:
    term: str
    voices: float
    z: float


def rank_terms(
    window: WindowTerms, baseline: TopicBaseline, settings: AlertSettings
) -> list[Scored]:
    """The window's unusual terms, most unusual first (see the module docstring)."""
    s = settings
    candidates = {
        term: sketch_voices(count, mask, 0) for term, (count, mask) in window.counts.items()
    }
    candidates = {t: v for t, v in candidates.items() if v >= s.topic_min_voices}
    if not candidates:
        return []
    if baseline.total < s.topic_min_baseline:
        # No normal to compare with yet: the most frequent terms.
        scored = [Scored(t, v, math.nan) for t, v in candidates.items()]
        scored.sort(key=lambda x: (-x.voices, x.term))
    else:
        scored = []
        floor = baseline.floor(s)
        for term, voices in candidates.items():
            z = log_odds_z(voices, window.total, baseline.weights.get(term, floor), baseline, s)
            if z >= s.topic_min_z:
                scored.append(Scored(term, voices, z))
        scored.sort(key=lambda x: (-x.z, x.term))
    return _distinct(scored, s.topic_max_terms)


def log_odds_z(
    count: float, total: float, base: float, baseline: TopicBaseline, settings: AlertSettings
) -> float:
    """z-score of the log-odds ratio of a term, window vs baseline, with an informative
    Dirichlet prior of strength `topic_prior_strength` spread like the pooled counts."""
    a0 = settings.topic_prior_strength
    total = max(total, count)
    pooled = (base + count) / (baseline.total + total)
    alpha = max(a0 * pooled, 1e-9)
    window = math.log((count + alpha) / max(total + a0 - count - alpha, 1e-9))
    normal = math.log((base + alpha) / max(baseline.total + a0 - base - alpha, 1e-9))
    variance = 1.0 / (count + alpha) + 1.0 / (base + alpha)
    return (window - normal) / math.sqrt(variance)


def _distinct(scored: Sequence[Scored], limit: int) -> list[Scored]:
    """The first `limit` terms, a phrase standing in for its words: a word of a kept phrase
    is skipped, and a phrase replaces the kept words it contains when it holds at least
    `PHRASE_SHARE` of their voices (`app crash`, not `app` and `crash`)."""
    kept: list[Scored] = []
    for item in scored:
        words = set(item.term.split())
        inside = [k for k in kept if set(k.term.split()) <= words]
        if any(words <= set(k.term.split()) for k in kept):
            continue  # says nothing a kept term does not
        if inside:
            if item.voices < PHRASE_SHARE * max(k.voices for k in inside):
                continue
            at = kept.index(inside[0])
            kept = [k for k in kept if k not in inside]
            kept.insert(at, item)
        elif len(kept) < limit:
            kept.append(item)
    return kept[:limit]
