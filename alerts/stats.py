"""Small pure statistics used by the detector: the Wilson interval and an EW mean/variance."""

from __future__ import annotations

import math
from dataclasses import dataclass


def wilson_lower_bound(successes: float, trials: float, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a binomial proportion (0 when trials <= 0).

    Counts may be fractional (an effective sample size after an overdispersion correction).
    """
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # mathematically 0 <= bound <= p; clamp the rounding error (k = 0 gives ~1e-19 otherwise)
    return min(p, max(0.0, (centre - spread) / (1 + z2 / trials)))


@dataclass
class EwStat:
    """Exponentially weighted mean and variance whose decay follows event time.

    `weight` is the effective number of observations still remembered (each update adds 1,
    and the old weight decays by 0.5 per half-life of event time), so after a long gap the
    statistic knows it has little history.
    """

    mean: float = 0.0
    var: float = 0.0
    weight: float = 0.0

    def update(
        self, value: float, elapsed: float, half_life: float, *, spread: bool = True
    ) -> None:
        """Fold in `value` observed `elapsed` seconds (event time) after the previous one.

        `spread=False` moves the mean (and the weight) but leaves the variance as it is: for
        a value the caller clipped, whose distance from the mean says how wide the clip band
        was, not how much the series varies.
        """
        decay = 0.5 ** (max(elapsed, 0.0) / half_life)
        if self.weight <= 0.0:
            self.mean, self.var, self.weight = value, 0.0, 1.0
            return
        old_weight = self.weight * decay
        alpha = 1.0 / (old_weight + 1.0)
        diff = value - self.mean
        self.mean += alpha * diff
        if spread:
            self.var = (1.0 - alpha) * (self.var + alpha * diff * diff)
        self.weight = old_weight + 1.0

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    def to_list(self) -> list[float]:
        return [self.mean, self.var, self.weight]

    @classmethod
    def from_list(cls, values: list[float]) -> EwStat:
        mean, var, weight = values
        return cls(mean=float(mean), var=float(var), weight=float(weight))
