"""Per-brand state of the alert engine, as small dataclasses that round-trip through JSON.

One `BrandState` per brand lives in a changelog-backed table keyed by brand; `to_dict()` gives
the JSON-able value and `BrandState.from_dict()` reads it back. Nothing here reads a clock:
every time is event time in epoch seconds, every bucket an integer index
(`floor(event_time / bucket_seconds)`).

The whole state is one record of the table's changelog topic, so its size must stay below the
topic's `max.message.bytes`: `AlertSettings.max_state_record_bytes()` bounds it, and the
settings check that bound when they are built (`changelog_max_record_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brandmon.alerts.seasonal import SurgeBaseline
from brandmon.alerts.stats import EwStat
from brandmon.alerts.topics import TopicBaseline

STATE_VERSION = 1


class StateVersionError(ValueError):
    """A stored state written by another brandmon version: this worker must not touch it."""


#: Hex characters of the text and author hashes kept per distinct text (alerts.buckets).
HASH_CHARS = 16


@dataclass
class Bucket:
    """Counts of one event-time bucket, plus what the duplicate and author guards need.

    `texts` maps a short hash of each distinct text (first occurrence in the bucket) to
    `[author hash or "", 1 if negative else 0]`, in arrival order. `terms` is the sketch of
    the terms of its negative posts (`term: [count, voice mask]`, alerts.topics) and
    `term_total` the exact number of term occurrences counted, `term_rounds` the counts the
    sketch took off every term and `term_door` its doorkeeper bits (added after version 1 was
    released: a stored bucket without them loads with none).
    """

    index: int
    posts: int = 0
    negatives: int = 0
    neutrals: int = 0
    positives: int = 0
    texts: dict[str, list[Any]] = field(default_factory=dict)
    overflow_posts: int = 0
    overflow_negatives: int = 0
    samples: list[str] = field(default_factory=list)
    terms: dict[str, list[int]] = field(default_factory=dict)
    term_total: int = 0
    term_rounds: int = 0
    term_door: int = 0
    #: Posts no model read (a language without a model): shown, never in the rules' counts.
    unscored: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = {
            "i": self.index,
            "n": [self.posts, self.negatives, self.neutrals, self.positives],
            "t": self.texts,
            "o": [self.overflow_posts, self.overflow_negatives],
            "s": self.samples,
            "w": [self.term_total, self.term_rounds, f"{self.term_door:x}", self.terms],
        }
        if self.unscored:  # absent in states written before language routing
            data["u"] = self.unscored
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bucket:
        posts, negatives, neutrals, positives = data["n"]
        overflow_posts, overflow_negatives = data["o"]
        # absent from states stored before topic terms
        term_total, term_rounds, door, terms = data.get("w", (0, 0, "0", {}))
        return cls(
            index=int(data["i"]),
            posts=posts,
            negatives=negatives,
            neutrals=neutrals,
            positives=positives,
            texts={str(k): list(v) for k, v in data["t"].items()},
            overflow_posts=overflow_posts,
            overflow_negatives=overflow_negatives,
            samples=list(data["s"]),
            terms={str(t): [int(c), int(m)] for t, (c, m) in terms.items()},
            term_total=int(term_total),
            term_rounds=int(term_rounds),
            term_door=int(door, 16),
            unscored=int(data.get("u", 0)),
        )


@dataclass
class Incident:
    """An open incident: triggered, not yet resolved."""

    dedup_key: str
    start: float
    severity: str
    last_elevated: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.dedup_key,
            "start": self.start,
            "severity": self.severity,
            "last": self.last_elevated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(
            dedup_key=str(data["key"]),
            start=float(data["start"]),
            severity=str(data["severity"]),
            last_elevated=float(data["last"]),
        )


@dataclass
class BrandState:
    """Everything the engine remembers about one brand.

    - `watermark`: highest event time seen; `next_close`: the oldest bucket not yet closed
      (events for older buckets are late).
    - `buckets`: open buckets plus the closed ones still inside the window, by index.
    - `share` / `volume`: the baseline, updated only outside incidents; `baseline_at` is the
      event time of its last update.
    - `offsets`: highest offset applied per partition, so a replay is not counted twice.
    - `surge` / `surge_incident`: the mention-surge rule's baseline and open incident (added
      after version 1 was released: a stored state without them loads with empty ones).
    - `topics`: the brand's normal vocabulary of negative posts (alerts.topics), likewise
      added later (a stored state without it loads with an empty one).
    """

    brand: str
    watermark: float | None = None
    next_close: int | None = None
    buckets: dict[int, Bucket] = field(default_factory=dict)
    share: EwStat = field(default_factory=EwStat)
    volume: EwStat = field(default_factory=EwStat)
    baseline_at: float | None = None
    incident: Incident | None = None
    offsets: dict[int, int] = field(default_factory=dict)
    late_events: int = 0
    future_events: int = 0
    model_id: str = ""
    model_version: str = ""
    surge: SurgeBaseline = field(default_factory=SurgeBaseline)
    surge_incident: Incident | None = None
    topics: TopicBaseline = field(default_factory=TopicBaseline)

    def already_applied(self, partition: int, offset: int) -> bool:
        last = self.offsets.get(partition)
        return last is not None and offset <= last

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "watermark": self.watermark,
            "next_close": self.next_close,
            "buckets": [self.buckets[i].to_dict() for i in sorted(self.buckets)],
            "share": self.share.to_list(),
            "volume": self.volume.to_list(),
            "baseline_at": self.baseline_at,
            "incident": self.incident.to_dict() if self.incident else None,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "late": self.late_events,
            "future": self.future_events,
            "model": [self.model_id, self.model_version],
            "surge": self.surge.to_dict(),
            "surge_incident": self.surge_incident.to_dict() if self.surge_incident else None,
            "topics": self.topics.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrandState:
        if data.get("v") != STATE_VERSION:
            raise StateVersionError(
                f"alert state version {data.get('v')!r} is not {STATE_VERSION}: "
                "this worker cannot read it; run the matching brandmon version"
            )
        buckets = [Bucket.from_dict(b) for b in data["buckets"]]
        incident = data["incident"]
        model_id, model_version = data["model"]
        surge = data.get("surge")  # absent from states stored before the surge rule
        surge_incident = data.get("surge_incident")
        topics = data.get("topics")  # absent from states stored before topic terms
        return cls(
            brand=str(data["brand"]),
            watermark=data["watermark"],
            next_close=data["next_close"],
            buckets={b.index: b for b in buckets},
            share=EwStat.from_list(data["share"]),
            volume=EwStat.from_list(data["volume"]),
            baseline_at=data["baseline_at"],
            incident=Incident.from_dict(incident) if incident else None,
            offsets={int(p): int(o) for p, o in data["offsets"].items()},
            late_events=int(data["late"]),
            future_events=int(data["future"]),
            model_id=str(model_id),
            model_version=str(model_version),
            surge=SurgeBaseline.from_dict(surge) if surge else SurgeBaseline(),
            surge_incident=Incident.from_dict(surge_incident) if surge_incident else None,
            topics=TopicBaseline.from_dict(topics) if topics else TopicBaseline(),
        )
