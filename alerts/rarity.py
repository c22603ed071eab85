"""The *rarity* surge model (`surge_model = "rarity"`): a mention-surge rule built for real
traffic, measured on real mention counts with labelled anomalies (docs/surge.md, "The rarity
model"). The default model is still the daily-rhythm rule of alerts/surge.py and
alerts/seasonal.py; this one is chosen per deployment or per brand.

What is normal
--------------
The surge rule's memory of one count series (a brand's voices, or its negative voices).

Counts are judged on a variance-stabilised scale, y = 2·sqrt(count + 3/8) (Anscombe): a
Poisson count's y has a spread near 1 whatever the brand's size, so one scale serves a brand
of 2 mentions an hour and one of 2,000 a minute.

What is normal for bucket i, on that scale, is a *profile* plus a *level*:
- profile: the bucket's UTC hour of the week (168 EW means of y, half-life
  `surge_week_half_life_weeks` of that hour) once that hour has `surge_week_warm_weeks` weeks of
  history; before that its hour of the day (24 EW means, half-life `surge_season_half_life_days`
  days, trusted after `surge_season_warm_days` days); before that the recent level of y;
- level: a lasting shift of the whole series away from its profile (after news, a brand can
  stay twice as loud for days): an EW mean of the clipped residual with a half-life of
  `surge_level_half_life_hours`, so a new level is learned within hours and does not page for
  days.

The residual of a bucket is (y - normal) / spread, the spread an EW mean absolute residual
(x 1.2533, the standard deviation if residuals were normal; never below 1, the Poisson floor).
Learning is robust: every bucket is learned, its residual clipped to ±`surge_clip_z` spreads
first, so a burst moves the profile, level and spread by a bounded step and a one-off spike is
forgotten, while a lasting shift is followed at the clip's pace.

The *score* of a bucket sums the newest residuals over several windows (`surge_window_minutes`):
mean residual x sqrt(k) / sqrt(1 + (k - 1)/2) for a window of k buckets (the denominator
allows for the residuals' positive autocorrelation), the highest over the windows whose raw
counts also pass the guards (alerts.surge). Each score is folded into a decaying histogram of
the series' own past scores (half-life `surge_history_half_life_days`): the rule fires only on
a score that is rare *for this brand* (alerts.surge), which is what holds on real traffic,
where every brand's counts are burstier than Poisson in their own way.

Size is fixed per series: 168 + 24 + 3 EW statistics, the newest residuals and counts of the
longest window, and `HISTORY_BINS` histogram cells: bounded per brand. Pure: no clock; a
bucket's hour comes from its index.

The test
--------
The mention-surge test: are a brand's voices far above what is normal for it, this hour of
the week, at its current level, *and rare for this brand*?

alerts.seasonal keeps, per brand, what is normal (profile + level, on a variance-stabilised
scale) and scores the newest buckets over several windows (`surge_window_minutes`). A window
counts when its raw counts pass the guards:
- observed >= surge_factor x expected (far above, not just significant on a big brand),
- observed >= surge_min_voices (surge_min_negative_voices for negatives),
and a series' score is the highest over the windows that count. The score is a *surge* when:
- the series has learned `surge_warmup_buckets` buckets (no alert during warm-up), and
- it reaches the series' *rare level*: the `surge_rarity` quantile of its own past scores
  (what this brand reaches about once a week at the default), and at least `surge_z`; while
  the history is shorter than `surge_history_warm_days`, a fixed `surge_provisional_z`
  stands in for the rare level (a new brand, the simulator's few hours);
- no surge incident was opened in the last `surge_refractory_hours`, and within
  `surge_hold_hours` of the last one the score beats that incident's peak: one incident per
  burst, not one per wave of the same news.

Severity fits the evidence (the notifiers page for warning and critical only, by default):
- critical: voices surge, negative voices surge (their own series, their own rare level) and
  the window is mostly negative: the Wilson lower bound of its negative share reaches the
  share rule's trigger level;
- warning: voices and negative voices surge, and it is not a positive wave;
- info: voices surge but negatives do not, or a *positive wave* (the Wilson upper bound of the
  window's negative share below the brand's baseline share), or volume only (`brandmon alerts
  backtest --counts` / `evaluate`: sentiment unknown). Worth knowing, never worth a page.
The verdict's rule is "mention_surge"; its z is the score and its threshold the voices the
window had to reach (approximately: the count whose score meets the level).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import Window, window_counts
from brandmon.alerts.detector import Verdict
from brandmon.alerts.stats import EwStat, wilson_lower_bound
from brandmon.contracts.alerts import Severity

if TYPE_CHECKING:
    from brandmon.alerts.state import Bucket

DAY_SLOTS = 24
WEEK_SLOTS = 168
DAY_SECONDS = 86_400
#: Epoch day 0 (1970-01-01) was a Thursday; hour-of-week slots start on Monday 00:00 UTC.
_EPOCH_WEEKDAY = 3
#: The score histogram: HISTORY_BINS cells of HISTORY_BIN_WIDTH; the last holds every higher
#: score (a brand whose rare scores are that high fires at the top cell's level).
HISTORY_BINS = 80
HISTORY_BIN_WIDTH = 0.5
#: 1.2533 = sqrt(pi / 2): mean absolute deviation -> standard deviation of a normal.
_MAD_TO_STD = math.sqrt(math.pi / 2)


def stabilise(count: float) -> float:
    """Anscombe's transform: a Poisson count's value has a spread close to 1."""
    return 2.0 * math.sqrt(max(count, 0.0) + 0.375)


def unstabilise(value: float) -> float:
    """The count whose stabilised value is `value` (the expected count of a bucket)."""
    return max((value / 2.0) ** 2 - 0.375, 0.0)


def day_slot(index: int, bucket_seconds: int) -> int:
    """UTC hour of the day of the start of bucket `index`."""
    return (index * bucket_seconds % DAY_SECONDS) // 3600


def week_slot(index: int, bucket_seconds: int) -> int:
    """UTC hour of the week (Monday 00:00 = 0) of the start of bucket `index`."""
    start = index * bucket_seconds
    weekday = (start // DAY_SECONDS + _EPOCH_WEEKDAY) % 7
    return int(weekday * 24 + day_slot(index, bucket_seconds))


def window_buckets(s: AlertSettings) -> list[int]:
    """The surge windows in buckets (each at least 1), shortest first, without repeats."""
    return sorted({max(1, round(m * 60 / s.bucket_seconds)) for m in s.surge_window_minutes})


@dataclass(frozen=True)
class Expectation:
    """What is normal for one bucket: on the stabilised scale, and as a count."""

    value: float
    spread: float
    expected: float
    seasonal: bool


@dataclass
class RaritySeries:
    """Profile, level, spread, newest residuals and score history of one count series."""

    recent: EwStat = field(default_factory=EwStat)
    day: list[EwStat] = field(default_factory=lambda: [EwStat() for _ in range(DAY_SLOTS)])
    week: list[EwStat] = field(default_factory=lambda: [EwStat() for _ in range(WEEK_SLOTS)])
    level: float = 0.0
    spread: EwStat = field(default_factory=EwStat)
    #: newest first: (residual, count, expected count) of the last buckets learned
    newest: list[list[float]] = field(default_factory=list)
    history: list[float] = field(default_factory=lambda: [0.0] * HISTORY_BINS)
    learned: int = 0
    #: the same histogram of the series' past shifts (level / spread)
    shifts: list[float] = field(default_factory=lambda: [0.0] * HISTORY_BINS)

    # --- what is normal ---------------------------------------------------------------------

    def expect(self, index: int, s: AlertSettings) -> Expectation:
        """The normal of bucket `index`."""
        b = s.bucket_seconds
        per_day = _per_slot_per_period(b, 1)
        week = self.week[week_slot(index, b)]
        day = self.day[day_slot(index, b)]
        if week.weight >= max(s.surge_week_warm_weeks * per_day, 1.0):
            profile, seasonal = week.mean, True
        elif day.weight >= max(s.surge_season_warm_days * per_day, 1.0):
            profile, seasonal = day.mean, True
        else:
            profile, seasonal = self.recent.mean, False
        value = max(profile + self.level, stabilise(0.0))
        spread = max(self.spread.mean, 1.0) if self.spread.weight else 1.0
        return Expectation(value, spread, unstabilise(value), seasonal)

    def residual(self, count: float, index: int, s: AlertSettings) -> float:
        """How far `count` is above the normal of bucket `index`, in spreads."""
        if not self.learned:
            return 0.0
        e = self.expect(index, s)
        return (stabilise(count) - e.value) / e.spread

    # --- the score and its history ----------------------------------------------------------

    def windows(
        self, count: float, index: int, s: AlertSettings
    ) -> list[tuple[float, int, float, int]]:
        """(score, observed count, expected count, buckets) of each surge window ending with bucket
        `index` holding `count`, judged against what was learned before it."""
        if not self.learned:
            return []
        e = self.expect(index, s)
        r = (stabilise(count) - e.value) / e.spread
        rows = [[r, float(count), e.expected], *self.newest]
        out = []
        for k in window_buckets(s):
            if len(rows) < k:
                break
            part = rows[:k]
            mean = sum(row[0] for row in part) / k
            score = mean * math.sqrt(k) / math.sqrt(1.0 + (k - 1) / 2.0)
            out.append((score, int(sum(row[1] for row in part)), sum(row[2] for row in part), k))
        return out

    def rare_level(self, s: AlertSettings) -> float | None:
        """The score this series reaches only at the `surge_rarity` quantile of its history,
        or None while the history is shorter than `surge_history_warm_days`."""
        return _rare(self.history, s)

    def remember(self, score: float, s: AlertSettings) -> None:
        """Fold one bucket's score into the history (every bucket, surges included)."""
        self.history = _fold(self.history, score, s)

    # --- the shift: a lasting rise of the whole level -----------------------------------------

    def shift(self, index: int, s: AlertSettings) -> float:
        """How far the level stands above the profile, in spreads (0 before any learning)."""
        if not self.learned:
            return 0.0
        return self.level / self.expect(index, s).spread

    def rare_shift(self, s: AlertSettings) -> float | None:
        """The shift this series reaches only at the `surge_rarity` quantile of its past
        shifts, or None while that history is short."""
        return _rare(self.shifts, s)

    def remember_shift(self, shift: float, s: AlertSettings) -> None:
        self.shifts = _fold(self.shifts, shift, s)

    # --- learning ---------------------------------------------------------------------------

    def learn(self, count: float, index: int, s: AlertSettings) -> None:
        """Fold in one bucket's count, its residual clipped (see the module docstring)."""
        b = s.bucket_seconds
        y = stabilise(count)
        if not self.learned:
            self.recent.update(y, 0.0, 1.0)
        e = self.expect(index, s)
        r = (y - e.value) / e.spread
        clipped = min(max(r, -s.surge_clip_z), s.surge_clip_z) * e.spread
        value = e.value + clipped
        self.newest = [[r, float(count), e.expected], *self.newest][: max(window_buckets(s))]
        per_day = _per_slot_per_period(b, 1)
        hour = 3600 / b
        self.recent.update(value, 1.0, max(hour * math.log(2), 1.0))
        self.level += clipped / max(s.surge_level_half_life_hours * hour / math.log(2), 1.0)
        shape = value - self.level
        self.day[day_slot(index, b)].update(
            shape, 1.0, s.surge_season_half_life_days * per_day, spread=False
        )
        self.week[week_slot(index, b)].update(
            shape, 1.0, s.surge_week_half_life_weeks * per_day, spread=False
        )
        deviation = min(abs(y - e.value), s.surge_clip_z * e.spread) * _MAD_TO_STD
        self.spread.update(deviation, 1.0, DAY_SECONDS / b, spread=False)
        self.learned += 1

    # --- state ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "r": self.recent.to_list(),
            "d": [x.to_list() for x in self.day],
            "w": [x.to_list() for x in self.week],
            "l": self.level,
            "s": self.spread.to_list(),
            "n": self.newest,
            "h": self.history,
            "c": self.learned,
            "hs": self.shifts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RaritySeries:
        day, week, history = data["d"], data["w"], data["h"]
        shifts = data.get("hs", [0.0] * HISTORY_BINS)  # states written before the shift test
        if len(day) != DAY_SLOTS or len(week) != WEEK_SLOTS:
            raise ValueError("a surge series needs 24 hour and 168 week-hour cells")
        if len(history) != HISTORY_BINS or len(shifts) != HISTORY_BINS:
            raise ValueError("a surge series needs 80 cells of score and shift history")
        return cls(
            recent=EwStat.from_list(data["r"]),
            day=[EwStat.from_list(v) for v in day],
            week=[EwStat.from_list(v) for v in week],
            level=float(data["l"]),
            spread=EwStat.from_list(data["s"]),
            newest=[[float(x) for x in row] for row in data["n"]],
            history=[float(x) for x in history],
            learned=int(data["c"]),
            shifts=[float(x) for x in shifts],
        )


def _rare(histogram: list[float], s: AlertSettings) -> float | None:
    """The `surge_rarity` quantile of a decaying histogram (upper edge of its cell), or None
    while it holds less than `surge_history_warm_days` of buckets."""
    total = sum(histogram)
    if total < s.surge_history_warm_days * DAY_SECONDS / s.bucket_seconds:
        return None
    # the rarity is per 5 minutes of traffic: the same rate of surprise per hour whatever
    # the bucket length
    tail = (1.0 - s.surge_rarity) * s.bucket_seconds / 300.0
    below = 0.0
    for cell, weight in enumerate(histogram):
        below += weight
        if below >= (1.0 - tail) * total:
            return (cell + 1) * HISTORY_BIN_WIDTH
    return HISTORY_BINS * HISTORY_BIN_WIDTH


def _fold(histogram: list[float], value: float, s: AlertSettings) -> list[float]:
    """The histogram decayed by one bucket (half-life `surge_history_half_life_days`), with
    `value` added (at least the first cell, at most the last)."""
    keep = 0.5 ** (s.bucket_seconds / (s.surge_history_half_life_days * DAY_SECONDS))
    cell = min(HISTORY_BINS - 1, max(0, int(value / HISTORY_BIN_WIDTH)))
    out = [w * keep for w in histogram]
    out[cell] += 1.0
    return out


def _per_slot_per_period(bucket_seconds: int, periods: int) -> float:
    """Buckets that fall in one hour slot per day (at least 1: a bucket longer than an hour
    still updates one slot)."""
    return max(3600 / bucket_seconds, 1.0) * periods


@dataclass
class RarityBaseline:
    """The surge rule's memory of one brand: voices, negative voices, and the last surge
    incident it opened (for the hold-off: one incident per burst)."""

    voices: RaritySeries = field(default_factory=RaritySeries)
    negatives: RaritySeries = field(default_factory=RaritySeries)
    learned_at: int | None = None
    #: bucket of the last surge trigger and the highest score since (the hold-off)
    opened_at: int | None = None
    peak: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.voices.to_dict(),
            "n": self.negatives.to_dict(),
            "at": self.learned_at,
            "open": self.opened_at,
            "peak": self.peak,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RarityBaseline:
        at, opened = data["at"], data.get("open")
        return cls(
            voices=RaritySeries.from_dict(data["v"]),
            negatives=RaritySeries.from_dict(data["n"]),
            learned_at=int(at) if at is not None else None,
            opened_at=int(opened) if opened is not None else None,
            peak=float(data.get("peak", 0.0)),
        )


@dataclass(frozen=True)
class Judged:
    """One series' surge test of the newest bucket."""

    surge: bool
    score: float
    level: float
    buckets: int
    observed: int
    expected: float
    threshold: float


@dataclass(frozen=True)
class RarityVerdict:
    """The surge test of the newest buckets: the verdict and what was expected."""

    verdict: Verdict
    expected_voices: float
    expected_negatives: float
    warm: bool
    score: float


class RarityDetector:
    """Stateless surge tests over a brand's RarityBaseline; see the module docstring."""

    def __init__(self, settings: AlertSettings, *, volume_only: bool = False) -> None:
        self.settings = settings
        self.volume_only = volume_only

    def judge(
        self,
        buckets: Iterable[Bucket],
        index: int,
        baseline: RarityBaseline,
        share_level: float,
        share_mean: float | None,
        *,
        incident_open: bool = False,
    ) -> RarityVerdict:
        """The surge verdict of the windows ending with bucket `index` (not yet learned).

        `share_level`: the share rule's trigger level; `share_mean`: its baseline share (None
        while it warms up); `incident_open`: a surge incident is open (no hold-off then: its
        verdicts may escalate it)."""
        s = self.settings
        pool = list(buckets)
        newest = window_counts(pool, index, index, 0)
        volume = self.test(baseline.voices, newest.voices, index, s.surge_min_voices)
        warm = baseline.voices.learned >= s.surge_warmup_buckets
        held = not incident_open and self._held(baseline, index, volume.score)
        if not (volume.surge and not held):
            # a lasting shift is held off only by the refractory period: it has no peak
            shift = self.shift_test(baseline.voices, newest.voices, index)
            if shift.surge and (incident_open or not self._held(baseline, index, math.inf)):
                volume, held = shift, False
        surge = volume.surge and warm and not held
        first = max(index - volume.buckets + 1, index - s.window_buckets + 1)
        window = window_counts(pool, first, index, s.samples_per_alert)
        lower = wilson_lower_bound(window.negative_voices, window.voices, s.wilson_z)
        severity: Severity | None = None
        negatives = volume
        if surge and not self.volume_only:
            # given a rare volume surge, the negatives only need to rise clearly with it
            # (surge_z), not be rare on their own: a news story that triples a brand's voices
            # and its angry voices with them is a warning
            negatives = self.test(
                baseline.negatives,
                newest.negative_voices,
                index,
                s.surge_min_negative_voices,
                level=s.surge_z,
            )
            if negatives.surge and lower >= share_level:
                severity = "critical"
            elif negatives.surge and not _positive_wave(window, share_mean, s.wilson_z):
                severity = "warning"
            else:
                severity = "info"
        elif surge:
            severity = "info"
        main = negatives if severity in ("warning", "critical") else volume
        verdict = Verdict(window, severity, "mention_surge", main.score, lower, main.threshold)
        expected_negatives = baseline.negatives.expect(index, s).expected
        return RarityVerdict(verdict, volume.expected, expected_negatives, warm, volume.score)

    def test(
        self,
        series: RaritySeries,
        count: int,
        index: int,
        minimum: int,
        *,
        level: float | None = None,
    ) -> Judged:
        """The surge test of one series whose newest bucket holds `count`, against `level`
        (default: the series' own level, `level()`)."""
        s = self.settings
        best: Judged | None = None
        level = self.level(series) if level is None else level
        for score, observed, expected, k in series.windows(count, index, s):
            if observed < max(s.surge_factor * expected, minimum):
                continue
            if best is None or score > best.score:
                needed = self._needed(series, index, k, level)
                best = Judged(score >= level, score, level, k, observed, expected, needed)
        if best is None:  # no window passed the guards: the newest bucket, no surge
            e = series.expect(index, s)
            return Judged(False, 0.0, level, 1, count, e.expected, math.inf)
        return best

    def shift_test(self, series: RaritySeries, count: int, index: int) -> Judged:
        """The second test: has the whole level risen, lastingly, as far as is rare for this
        brand? A slow rise over hours learns into the level (half-life
        `surge_level_half_life_hours`) before any window's score gets far above it; the level
        itself, in spreads, then says it. It must reach `surge_shift_z` and the `surge_rarity`
        quantile of the series' past shifts, with `surge_min_voices` in the longest window."""
        s = self.settings
        rare = series.rare_shift(s)
        windows = series.windows(count, index, s)
        if not s.surge_shift or rare is None or not windows:
            return Judged(False, 0.0, math.inf, 1, count, 0.0, math.inf)
        level = max(s.surge_shift_z, rare)
        shift = series.shift(index, s)
        _, observed, expected, k = windows[-1]
        e = series.expect(index, s)
        needed = k * unstabilise(e.value - series.level + level * e.spread)
        surge = shift >= level and observed >= s.surge_min_voices
        return Judged(surge, shift, level, k, observed, expected, needed)

    def level(self, series: RaritySeries) -> float:
        """The score a surge of this series must reach now."""
        s = self.settings
        rare = series.rare_level(s)
        return s.surge_provisional_z if rare is None else max(s.surge_z, rare)

    def remember(self, baseline: RarityBaseline, newest: Window, index: int) -> None:
        """Fold the newest bucket's scores into each series' history, before it is learned.

        A score is remembered at most at the series' current rare level: a burst lasts many
        buckets, and remembered whole, one big event would lift the level past everything
        smaller for weeks (a brand would go silent after its first big news). Capped, the
        level follows how often the brand comes near it, not how far past it one event went."""
        s = self.settings
        volume = self.test(baseline.voices, newest.voices, index, s.surge_min_voices)
        baseline.voices.remember(min(volume.score, volume.level), s)
        if s.surge_shift:
            shift = baseline.voices.shift(index, s)
            rare = baseline.voices.rare_shift(s)
            cap = math.inf if rare is None else max(s.surge_shift_z, rare)
            baseline.voices.remember_shift(min(shift, cap), s)
        if not self.volume_only:
            negatives = self.test(
                baseline.negatives, newest.negative_voices, index, s.surge_min_negative_voices
            )
            baseline.negatives.remember(min(negatives.score, negatives.level), s)

    def elevated(self, newest: Window, baseline: RarityBaseline, index: int) -> bool:
        """Does the newest bucket still hold the surge (keeps an open incident alive)?

        Its voices (or negative voices) at least surge_keepalive_factor times the expected
        ones and surge_keepalive_z spreads above them."""
        series = [(baseline.voices, newest.voices)]
        if not self.volume_only:
            series.append((baseline.negatives, newest.negative_voices))
        return any(self._loud(one, count, index) for one, count in series)

    def _loud(self, series: RaritySeries, count: int, index: int) -> bool:
        s = self.settings
        e = series.expect(index, s)
        return (
            count >= s.surge_keepalive_factor * e.expected
            and series.residual(count, index, s) >= s.surge_keepalive_z
        )

    def _held(self, baseline: RarityBaseline, index: int, score: float) -> bool:
        """Is a new incident held off: too soon after the last, or not above its peak?"""
        if baseline.opened_at is None:
            return False
        hours = (index - baseline.opened_at) * self.settings.bucket_seconds / 3600
        if hours < self.settings.surge_refractory_hours:
            return True
        return hours < self.settings.surge_hold_hours and score <= baseline.peak

    def opened(self, baseline: RarityBaseline, index: int, score: float, *, new: bool) -> None:
        """Track the hold-off: a new incident at `index`, or the score of a later bucket."""
        s = self.settings
        if new:
            baseline.opened_at, baseline.peak = index, score
        elif baseline.opened_at is not None:
            hours = (index - baseline.opened_at) * s.bucket_seconds / 3600
            if hours < s.surge_refractory_hours:
                baseline.peak = max(baseline.peak, score)

    def _needed(self, series: RaritySeries, index: int, k: int, level: float) -> float:
        """About how many voices a window of k buckets needed for its score to reach `level`."""
        if not math.isfinite(level):
            return math.inf
        e = series.expect(index, self.settings)
        mean = level * math.sqrt(1.0 + (k - 1) / 2.0) / math.sqrt(k)
        return k * unstabilise(e.value + mean * e.spread)


def _positive_wave(window: Window, share_mean: float | None, z: float) -> bool:
    """Is the window's negative share clearly below the brand's baseline share?"""
    if share_mean is None or window.voices == 0:
        return False
    positives = window.voices - window.negative_voices
    upper = 1.0 - wilson_lower_bound(positives, window.voices, z)
    return upper < share_mean
