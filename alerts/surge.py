"""The mention-surge test: are a brand's voices far above normal for this hour of the day?

For each length k in `surge_windows` (default the newest 1 and 2 buckets), with E the voices
the seasonal baseline (alerts.seasonal) expects over those buckets and phi its overdispersion,
the window's voices O are a *surge* when all hold:
- O >= surge_factor * E (far above, not just significant on a big brand),
- z = (O - E) / sqrt(phi * E) >= surge_z (not a Poisson wobble of a small brand),
- O >= surge_min_voices (minimum-volume guard),
and the baseline is warm. The same test on negative voices (surge_min_negative_voices) gives a
*negative surge*. Severity composes the two with the negative-share rule:
- critical: a surge that is a negative surge too and mostly negative: the Wilson lower bound
  of the window's negative share reaches the share rule's trigger level (baseline share +
  wilson_margin, or warmup_share in warm-up);
- warning: a surge that is a negative surge too (negative voices far above normal, share not
  necessarily up) and not a positive wave; negative voices up at a normal volume are a
  share spike, the negative-share rule's case, not a surge;
- info: a surge of voices whose negatives are not surging, or a *positive wave*: the Wilson
  upper bound of the window's negative share is below the brand's baseline share (a viral
  positive or neutral moment drags some negatives along: worth knowing, not worth a page);
- volume only (`brandmon alerts backtest --counts`: sentiment unknown): a surge is info, never
  a page (nothing says it is bad: the notifiers page for warning and critical by default).
The verdict's rule is "mention_surge"; its threshold is the voices O had to reach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import Window, window_counts
from brandmon.alerts.detector import Verdict
from brandmon.alerts.seasonal import Series, SurgeBaseline
from brandmon.alerts.state import Bucket
from brandmon.alerts.stats import wilson_lower_bound
from brandmon.contracts.alerts import SEVERITY_RANK, Severity


@dataclass(frozen=True)
class Excess:
    """One count of one window against its baseline."""

    observed: int
    expected: float
    z: float
    level: float
    above: bool


@dataclass(frozen=True)
class SurgeVerdict:
    """The surge test of the newest buckets: the verdict and what was expected."""

    verdict: Verdict
    expected_voices: float
    expected_negatives: float
    warm: bool


class SurgeDetector:
    """Stateless surge tests; see the module docstring."""

    def __init__(self, settings: AlertSettings, *, volume_only: bool = False) -> None:
        self.settings = settings
        self.volume_only = volume_only

    def judge(
        self,
        buckets: Iterable[Bucket],
        index: int,
        baseline: SurgeBaseline,
        share_level: float,
        share_mean: float | None,
    ) -> SurgeVerdict:
        """The most severe surge verdict over the windows ending with bucket `index`.

        `share_level`: the share rule's trigger level; `share_mean`: its baseline share (None
        while it warms up)."""
        s = self.settings
        pool = list(buckets)
        best: SurgeVerdict | None = None
        for k in sorted(set(s.surge_windows)):
            window = window_counts(pool, index - k + 1, index, s.samples_per_alert)
            candidate = self._judge_window(window, baseline, share_level, share_mean)
            if best is None or _rank(candidate.verdict) > _rank(best.verdict):
                best = candidate
        assert best is not None  # surge_windows is never empty (AlertSettings)
        return best

    def elevated(self, newest: Window, baseline: SurgeBaseline) -> bool:
        """Does the newest bucket still hold the surge (keeps an open incident alive)?

        Its voices (or negative voices) at least surge_keepalive_factor times the expected
        ones and surge_keepalive_z above them."""
        s = self.settings
        loud = self._excess(
            newest.voices, baseline.voices, newest, 1, s.surge_keepalive_factor, s.surge_keepalive_z
        )
        if loud.above or self.volume_only:
            return loud.above
        angry = self._excess(
            newest.negative_voices,
            baseline.negatives,
            newest,
            1,
            s.surge_keepalive_factor,
            s.surge_keepalive_z,
        )
        return angry.above

    def expected(self, series: Series, first: int, last: int) -> float:
        """Expected count over buckets first..last."""
        b = self.settings.bucket_seconds
        return sum(series.expect(i, b, self.settings).expected for i in range(first, last + 1))

    def _judge_window(
        self, window: Window, baseline: SurgeBaseline, share_level: float, share_mean: float | None
    ) -> SurgeVerdict:
        s = self.settings
        b = s.bucket_seconds
        warm = all(
            baseline.voices.expect(i, b, s).warm for i in range(window.first, window.last + 1)
        )
        factor, z = s.surge_factor, s.surge_z
        volume = self._excess(window.voices, baseline.voices, window, s.surge_min_voices, factor, z)
        negative = self._excess(
            window.negative_voices,
            baseline.negatives,
            window,
            s.surge_min_negative_voices,
            factor,
            z,
        )
        lower = _wilson_share(window, s.wilson_z)
        severity: Severity | None = None
        if warm and self.volume_only:
            severity = "info" if volume.above else None
        elif warm:
            mostly_negative = lower >= share_level
            if volume.above and negative.above and mostly_negative:
                severity = "critical"
            elif volume.above and negative.above:
                positive = _positive_wave(window, share_mean, s.wilson_z)
                severity = "info" if positive else "warning"
            elif volume.above:
                severity = "info"
        main = negative if severity in ("warning", "critical") and not self.volume_only else volume
        verdict = Verdict(window, severity, "mention_surge", main.z, lower, main.level)
        return SurgeVerdict(verdict, volume.expected, negative.expected, warm)

    def _excess(
        self,
        observed: int,
        series: Series,
        window: Window,
        minimum: int,
        factor: float,
        z_level: float,
    ) -> Excess:
        """`observed` against the series' expectation over the window's buckets: above when
        at least factor x expected, z_level overdispersed Poisson std above it and minimum."""
        s = self.settings
        b = s.bucket_seconds
        expected = self.expected(series, window.first, window.last)
        phi = series.expect(window.last, b, s).phi
        scale = math.sqrt(phi * max(expected, 1.0))
        z = (observed - expected) / scale
        level = max(factor * expected, expected + z_level * scale, float(minimum))
        return Excess(observed, expected, z, level, observed >= level)


def _wilson_share(window: Window, z: float) -> float:
    return wilson_lower_bound(window.negative_voices, window.voices, z)


def _positive_wave(window: Window, share_mean: float | None, z: float) -> bool:
    """Is the window's negative share clearly below the brand's baseline share?"""
    if share_mean is None or window.voices == 0:
        return False
    positives = window.voices - window.negative_voices
    upper = 1.0 - wilson_lower_bound(positives, window.voices, z)
    return upper < share_mean


def _rank(verdict: Verdict) -> tuple[int, float]:
    severity = SEVERITY_RANK[verdict.severity] if verdict.severity else -1
    return severity, verdict.z if verdict.z is not None else 0.0
