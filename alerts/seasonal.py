"""The surge rule's baseline: what volume is normal for a brand at this hour of the day.

One `Series` per counted quantity (voices, negative voices) holds:
- `recent`: an EW level of the count per bucket, half-life `surge_level_half_life_buckets` of
  event time; the baseline while an hour of the day has too little history (cold start);
- `slots`: 24 EW levels, one per UTC hour of the day, each decaying by its own updates
  (half-life `surge_season_half_life_days` days of that hour); an hour with at least
  `surge_season_warm_days` days of history is its own baseline, so a busy noon is normal at
  noon and the same volume at 4 am is not;
- `dispersion`: EW mean of the squared Pearson residual (count - expected)^2 / expected, the
  overdispersion phi (at least 1) of the brand's counts around the baseline, used as an upper
  estimate: times (1 + sqrt(2 / weight)) for the uncertainty of a variance from few buckets.

Learning (`learn`) clips the count to expected ± surge_clip_z·sqrt(phi·expected) once warm, and
the engine calls it only outside incidents, so neither a surge's onset nor a past incident
raises the baseline. The size is fixed (2 x 26 EW statistics): bounded per brand. Pure: no
clock; a bucket's hour comes from its index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.stats import EwStat

if TYPE_CHECKING:  # rarity imports the buckets, which import this module
    from brandmon.alerts.rarity import RarityBaseline

SLOTS = 24
DAY_SECONDS = 86_400


def slot_of(index: int, bucket_seconds: int) -> int:
    """UTC hour of the day of the start of bucket `index`."""
    return (index * bucket_seconds % DAY_SECONDS) // 3600


@dataclass(frozen=True)
class Expectation:
    """The baseline of one bucket: expected count, overdispersion, and whether it is trusted."""

    expected: float
    phi: float
    warm: bool
    seasonal: bool


@dataclass
class Series:
    """Baseline of one count series; see the module docstring."""

    recent: EwStat = field(default_factory=EwStat)
    slots: list[EwStat] = field(default_factory=lambda: [EwStat() for _ in range(SLOTS)])
    dispersion: EwStat = field(default_factory=EwStat)

    def expect(self, index: int, bucket_seconds: int, s: AlertSettings) -> Expectation:
        """The baseline for bucket `index` ."""
        slot = self.slots[slot_of(index, bucket_seconds)]
        seasonal = slot.weight >= max(s.surge_season_warm_days * _per_day_slot(bucket_seconds), 1)
        expected = slot.mean if seasonal else self.recent.mean
        phi = max(1.0, self.dispersion.mean) if self.dispersion.weight > 0 else 1.0
        # An upper estimate: phi from few buckets is uncertain, and an underestimate turns
        # ordinary swings into surges (as the share rule's overdispersion, alerts.detector).
        phi *= 1.0 + math.sqrt(2.0 / max(self.dispersion.weight, 1.0))
        warm = seasonal or self.recent.weight >= max(s.surge_warmup_buckets, 1e-9)
        return Expectation(max(expected, 0.0), phi, warm, seasonal)

    def learn(self, count: float, index: int, elapsed_buckets: float, s: AlertSettings) -> None:
        """Fold in one bucket's count (outside incidents), clipped once the baseline is warm."""
        bucket_seconds = s.bucket_seconds
        base = self.expect(index, bucket_seconds, s)
        if base.warm:
            band = s.surge_clip_z * math.sqrt(base.phi * max(base.expected, 1.0))
            count = min(max(count, base.expected - band), base.expected + band)
            residual = (count - base.expected) ** 2 / max(base.expected, 1.0)
            self.dispersion.update(residual, 1.0, s.surge_level_half_life_buckets)
        self.recent.update(count, elapsed_buckets, s.surge_level_half_life_buckets)
        half_life = s.surge_season_half_life_days * _per_day_slot(bucket_seconds)
        self.slots[slot_of(index, bucket_seconds)].update(count, 1.0, half_life)

    def to_list(self) -> list[list[float]]:
        return [self.recent.to_list(), self.dispersion.to_list()] + [
            slot.to_list() for slot in self.slots
        ]

    @classmethod
    def from_list(cls, values: list[list[float]]) -> Series:
        recent, dispersion, *slots = values
        if len(slots) != SLOTS:
            raise ValueError(f"a surge series needs {SLOTS} hour slots, not {len(slots)}")
        return cls(
            recent=EwStat.from_list(recent),
            slots=[EwStat.from_list(v) for v in slots],
            dispersion=EwStat.from_list(dispersion),
        )


def _per_day_slot(bucket_seconds: int) -> float:
    """Buckets that fall in one hour slot per day (at least 1: a bucket longer than an hour
    still updates one slot)."""
    return max(3600 / bucket_seconds, 1.0)


@dataclass
class SurgeBaseline:
    """The surge rule's memory of one brand: voices, negative voices, last learned bucket."""

    voices: Series = field(default_factory=Series)
    negatives: Series = field(default_factory=Series)
    learned_at: int | None = None
    #: the rarity model's memory (alerts/rarity.py), when `surge_model = "rarity"`
    rarity: RarityBaseline | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": self.voices.to_list(),
            "n": self.negatives.to_list(),
            "at": self.learned_at,
        }
        if self.rarity is not None:
            data["rarity"] = self.rarity.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurgeBaseline:
        from brandmon.alerts.rarity import RarityBaseline

        at, rarity = data["at"], data.get("rarity")
        return cls(
            voices=Series.from_list(data["v"]),
            negatives=Series.from_list(data["n"]),
            learned_at=int(at) if at is not None else None,
            rarity=RarityBaseline.from_dict(rarity) if rarity else None,
        )
