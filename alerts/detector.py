"""The spike test: is the negative share of a window well above the brand's baseline?

A window of k buckets is *above* when all of these hold:
- volume guards: at least `min_posts` voices and `min_negatives` negative voices (multiplied
  by the overdispersion below once the baseline is warm: they count independent evidence);
- once the baseline is warm:
  - z = (share - mean) / std_n >= z_warning, where mean is the EW baseline of full-window
    shares and std_n the std of a share over this window's voices (`z_score`);
  - the Wilson lower bound of the share >= mean + wilson_margin, with the sample size divided
    by the brand's overdispersion (observed variance of the share over the binomial one, at
    least 1), so a brand whose share swings more than chance does not page on a swing;
  - severity is critical when z >= z_critical.
  A short window (k < window_buckets) gives window_buckets/k times as many independent looks
  per hour, and there are several short windows, so their z thresholds are raised until
  each one's one-sided tail probability is k / window_buckets / (number of short windows)
  of the full window's (z 3 -> 3.64 for 1 bucket, 3.46 for 2, of 5): together they add at
  most the full window's false-alarm rate per hour, as a fast path for sharp spikes.
- during warm-up (too little history), full window only: the Wilson lower bound of the share
  > warmup_share (critical above warmup_critical_share), with the same volume guards and
  overdispersion correction (from whatever history there is).

`elevated()` is the weaker test that keeps an open incident alive: the newest bucket's
Wilson lower bound is within `keepalive_slack` of the trigger level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import Window
from brandmon.alerts.stats import EwStat, wilson_lower_bound
from brandmon.contracts.alerts import Rule, Severity

_NORMAL = NormalDist()


def equalised_z(z: float, fraction: float) -> float:
    """The z whose one-sided tail probability is `fraction` of z's (Bonferroni)."""
    tail = (1.0 - _NORMAL.cdf(z)) * fraction
    return _NORMAL.inv_cdf(1.0 - tail) if tail > 0 else z


@dataclass(frozen=True)
class Verdict:
    """The detector's judgement of one window against the baseline it had before it."""

    window: Window
    severity: Severity | None
    rule: Rule
    z: float | None
    wilson_lower: float
    threshold: float

    @property
    def above(self) -> bool:
        return self.severity is not None


class Detector:
    """Stateless tests of windows against a baseline; see the module docstring."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        n = settings.window_buckets
        shorts = sorted(set(settings.short_windows) - {n})
        self._z_levels = {n: (settings.z_warning, settings.z_critical)}
        for k in shorts:
            fraction = k / n / len(shorts)
            self._z_levels[k] = (
                equalised_z(settings.z_warning, fraction),
                equalised_z(settings.z_critical, fraction),
            )

    def is_warm(self, share: EwStat) -> bool:
        return share.weight >= max(self.settings.warmup_buckets, 1e-9)

    def trigger_level(self, share: EwStat) -> float:
        """The level the Wilson lower bound must exceed to trigger."""
        if self.is_warm(share):
            return min(share.mean + self.settings.wilson_margin, 1.0)
        return self.settings.warmup_share

    def judge(self, window: Window, share: EwStat, volume: EwStat) -> Verdict:
        """Is `window` above the baseline (`share`, `volume`: as before this bucket)?"""
        length = window.last - window.first + 1
        level = self.trigger_level(share)
        phi = self.overdispersion(share, volume)
        if not self.is_warm(share):
            lower = self.wilson(window, phi)
            if length < self.settings.window_buckets:
                return Verdict(window, None, "warmup", None, lower, level)
            return self._judge_warmup(window, lower, level, phi)
        lower = self.wilson(window, phi)
        z = self.z_score(window, share, phi)
        severity: Severity | None = None
        if self._enough_volume(window, phi) and lower >= level and z is not None:
            warning, critical = self._z_levels[length]
            if z >= critical:
                severity = "critical"
            elif z >= warning:
                severity = "warning"
        return Verdict(window, severity, "baseline", z, lower, level)

    def elevated(self, newest: Window, share: EwStat, volume: EwStat) -> bool:
        """Does the newest bucket still show the incident (hysteresis for the resolve)?"""
        if newest.voices == 0:
            return False
        phi = self.overdispersion(share, volume)
        return self.wilson(newest, phi) >= self.trigger_level(share) - self.settings.keepalive_slack

    def wilson(self, window: Window, overdispersion: float) -> float:
        """Wilson lower bound of the window's share, sample size shrunk by overdispersion."""
        counts = window.counts
        if counts.voices == 0:
            return 0.0
        n_eff = counts.voices / overdispersion
        k_eff = counts.negative_voices / overdispersion
        return wilson_lower_bound(k_eff, n_eff, self.settings.wilson_z)

    def overdispersion(self, share: EwStat, volume: EwStat) -> float:
        """How much more the share varies than chance: an upper estimate, at least 1.

        The ratio of the baseline's variance of full-window shares to the binomial variance
        at the baseline's volume, times (1 + sqrt(2 / dof)), dof = the independent windows
        the baseline remembers: a variance estimated from few windows is uncertain, and an
        underestimate would turn ordinary swings into pages (the z-test becomes a t-test).
        """
        if volume.weight <= 0 or volume.mean < 1:
            return 1.0
        p = min(max(share.mean, 0.01), 0.99)
        binomial = p * (1 - p) / volume.mean
        dof = max(share.weight / self.settings.window_buckets, 1.0)
        return max(1.0, share.var / binomial * (1.0 + math.sqrt(2.0 / dof)))

    def z_score(self, window: Window, share: EwStat, overdispersion: float) -> float | None:
        """z of the window's share against the baseline of full-window shares.

        The std is that of a share over this window's own voices: overdispersion * p(1-p) / n
        (equal to the baseline's variance at the baseline's volume, larger for a short or
        quiet window, smaller for a loud one), floored at std_floor.
        """
        counts = window.counts
        if counts.share is None or share.weight <= 0:
            return None
        p = min(max(share.mean, 0.01), 0.99)
        std = math.sqrt(overdispersion * p * (1 - p) / counts.voices)
        return (counts.share - share.mean) / max(std, self.settings.std_floor)

    def _enough_volume(self, window: Window, overdispersion: float) -> bool:
        """Volume guards, on the evidence left after the overdispersion correction."""
        return (
            window.voices >= self.settings.min_posts * overdispersion
            and window.negative_voices >= self.settings.min_negatives * overdispersion
        )

    def _judge_warmup(
        self, window: Window, lower: float, level: float, overdispersion: float
    ) -> Verdict:
        severity: Severity | None = None
        enough = (
            window.voices >= self.settings.warmup_min_posts * overdispersion
            and window.negative_voices >= self.settings.min_negatives * overdispersion
        )
        if enough and lower > level:
            severity = "critical" if lower > self.settings.warmup_critical_share else "warning"
        return Verdict(window, severity, "warmup", None, lower, level)
