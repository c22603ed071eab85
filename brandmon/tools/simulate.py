"""Synthetic social posts for demos, benchmarks and alert tests.

`PostSimulator` is pure: it yields post dicts with event times computed from a start time and
a rate, never from the clock, so a seed and the same arguments give the same posts. The
texts are built from templates in three tones, so a real sentiment model scores them as a
person would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

NEGATIVE = (
    "{b} support has ignored me for a week, absolutely terrible service",
    "my {b} order arrived broken and nobody will refund it. so angry",
    "the new {b} update is awful, the app crashes every time I open it",
    "worst experience ever with {b}, never buying again",
    "{b} charged me twice and the help line just hangs up. disgusting",
    "really disappointed with {b}, the quality has gone downhill badly",
    "{b} is down again?? this is unacceptable, I hate this",
    "stay away from {b}, they scammed me and deleted my complaint",
)
NEUTRAL = (
    "does {b} ship to Canada?",
    "what time does the {b} store on Main Street open tomorrow",
    "{b} announced its quarterly results today",
    "anyone know if {b} has a student discount",
    "switching my phone plan to {b} next month",
    "is the {b} app available on tablets",
    "{b} will hold a press event on Thursday",
    "reading the {b} terms of service before I sign up",
)
POSITIVE = (
    "loving the new {b} update, everything is so fast now!",
    "{b} support fixed my problem in five minutes, amazing service",
    "just got my {b} order a day early, great job",
    "{b} never disappoints, best purchase this year",
    "huge thanks to the {b} team, you made my day",
    "the new {b} collection looks fantastic, I love it",
    "{b} customer service is excellent, really impressed",
    "so happy I switched to {b}, highly recommend",
)
SUFFIXES = ("", "", " #fail", " #happy", " @{b}", " 🙂", " lol", " (again)")
#: Neutral openers and a mention of another user make texts as varied as real ones: the alert
#: detector counts exact duplicate texts once (a bot or retweet storm is one voice).
OPENERS = ("", "", "", "so ", "ok ", "fyi ", "update: ", "hey ", "well ", "btw ")


@dataclass(frozen=True)
class Spike:
    """Between `start` and `start + duration` (seconds from the simulation start), posts about
    `brand` are negative with probability `negative_share`."""

    brand: str
    start: float
    duration: float
    negative_share: float = 0.6


@dataclass(frozen=True)
class SimulationConfig:
    brands: Sequence[str] = ("acme", "globex", "initech")
    rate: float = 20.0  # posts per second of event time, over all brands
    negative_share: float = 0.1
    positive_share: float = 0.35
    authors_per_brand: int = 500
    spike: Spike | None = None


class PostSimulator:
    def __init__(self, config: SimulationConfig, start: datetime, seed: int = 7) -> None:
        if config.rate <= 0:
            raise ValueError("rate must be positive")
        self.config = config
        self.start = start
        self.rng = random.Random(seed)
        self.run_id = f"{seed}-{int(start.timestamp())}"

    def _tone(self, brand: str, elapsed: float) -> Sequence[str]:
        cfg = self.config
        negative = cfg.negative_share
        spike = cfg.spike
        if spike and spike.brand == brand and spike.start <= elapsed < spike.start + spike.duration:
            negative = spike.negative_share
        roll = self.rng.random()
        if roll < negative:
            return NEGATIVE
        if roll < negative + cfg.positive_share * (1 - negative) / (1 - cfg.negative_share):
            return POSITIVE
        return NEUTRAL

    def post(self, index: int) -> dict[str, Any]:
        """The `index`-th post: its event time is start + index / rate."""
        elapsed = index / self.config.rate
        brand = self.rng.choice(list(self.config.brands))
        template = self.rng.choice(self._tone(brand, elapsed))
        text = (self.rng.choice(OPENERS) + template + self.rng.choice(SUFFIXES)).format(
            b=brand.capitalize()
        )
        if self.rng.random() < 0.6:
            text += f" cc @friend{self.rng.randrange(5000)}"
        created = self.start + timedelta(seconds=elapsed)
        return {
            "id": f"sim-{self.run_id}-{index}",
            "text": text,
            "brand": brand,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "author": f"user{self.rng.randrange(self.config.authors_per_brand)}",
            "lang": "en",
            "source": "simulator",
        }

    def posts(self, count: int | None = None) -> Iterator[dict[str, Any]]:
        index = 0
        while count is None or index < count:
            yield self.post(index)
            index += 1
