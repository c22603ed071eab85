"""The spike test: is the negative share of a window well above the brand's baseline?

A window is *above* when all of these hold:
- volume guards: at least `min_posts` voices and `min_negatives` negative voices;
- once the baseline is warm: z = (share - mean) / max(std, std_floor) >= z_warning, and the
  Wilson lower bound of the share >= mean + wilson_margin (the excess is real, not noise);
  severity is critical when z >= z_critical;
- during warm-up (too little history): the Wilson lower bound of the share > warmup_share
  (critical above warmup_critical_share).

`elevated()` is the weaker test that keeps an open incident alive: the newest bucket's
Wilson lower bound is within `keepalive_slack` of the trigger level.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.buckets import Window
from alerts.config import AlertSettings
from alerts.schema import Rule, Severity
from alerts.stats import EwStat, wilson_lower_bound


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
        self.s = settings

    def is_warm(self, share: EwStat) -> bool:
        return share.weight >= max(self.s.warmup_buckets, 1e-9)

    def trigger_level(self, share: EwStat) -> float:
        """The level the Wilson lower bound must exceed to trigger."""
        if self.is_warm(share):
            return min(share.mean + self.s.wilson_margin, 1.0)
        return self.s.warmup_share

    def judge(self, window: Window, share: EwStat) -> Verdict:
        counts = window.counts
        lower = wilson_lower_bound(counts.negative_voices, counts.voices, self.s.wilson_z)
        level = self.trigger_level(share)
        if not self.is_warm(share):
            return self._judge_warmup(window, lower, level)
        z = self.z_score(counts.share, share)
        severity: Severity | None = None
        if self._enough_volume(window) and lower >= level and z is not None:
            if z >= self.s.z_critical:
                severity = "critical"
            elif z >= self.s.z_warning:
                severity = "warning"
        return Verdict(window, severity, "baseline", z, lower, level)

    def elevated(self, newest: Window, share: EwStat) -> bool:
        """Does the newest bucket still show the incident (hysteresis for the resolve)?"""
        counts = newest.counts
        if counts.voices == 0:
            return False
        lower = wilson_lower_bound(counts.negative_voices, counts.voices, self.s.wilson_z)
        return lower >= self.trigger_level(share) - self.s.keepalive_slack

    def z_score(self, value: float | None, share: EwStat) -> float | None:
        if value is None or share.weight <= 0:
            return None
        return (value - share.mean) / max(share.std, self.s.std_floor)

    def _enough_volume(self, window: Window) -> bool:
        return window.voices >= self.s.min_posts and window.negative_voices >= self.s.min_negatives

    def _judge_warmup(self, window: Window, lower: float, level: float) -> Verdict:
        severity: Severity | None = None
        enough = (
            window.voices >= self.s.warmup_min_posts
            and window.negative_voices >= self.s.min_negatives
        )
        if enough and lower > level:
            severity = "critical" if lower > self.s.warmup_critical_share else "warning"
        return Verdict(window, severity, "warmup", None, lower, level)
