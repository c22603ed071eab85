"""The rarity surge model (surge_model = "rarity", alerts/rarity.py) on real-shaped counts:
quiet on a brand's own rhythm and burstiness, one incident for a lasting level shift (not
days of pages), info for volume only, a stored state that round-trips, and far fewer triggers
than the daily-rhythm rule on real mention counts."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.backtest import read_counts
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import Alert

FIVE_MIN = 300
RARITY = AlertSettings(bucket_seconds=FIVE_MIN, surge_model="rarity")
DAILY = AlertSettings(bucket_seconds=FIVE_MIN, surge_model="daily")
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "mention_counts_dev"


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _rhythm(bucket: int) -> float:
    """Mentions per 5 minutes: quiet nights, busy afternoons, a quieter weekend."""
    hour = (bucket * FIVE_MIN % 86_400) / 3600
    day = (bucket * FIVE_MIN // 86_400 + 3) % 7  # T0 is a Thursday
    weekend = 0.6 if day >= 5 else 1.0
    return weekend * (20 + 25 * max(0.0, math.sin((hour - 6) / 24 * 2 * math.pi)))


def _run(settings: AlertSettings, counts: list[int]) -> tuple[list[Alert], BrandState | None]:
    engine = AlertEngine(settings, volume_only=True)
    state: BrandState | None = None
    alerts: list[Alert] = []
    for i, value in enumerate(counts):
        result = engine.apply_count(state, "acme", T0 + i * FIVE_MIN, value)
        state = result.state
        alerts += result.alerts
    return alerts, state


def _triggers(alerts: list[Alert]) -> list[Alert]:
    firsts: dict[str, Alert] = {}
    for alert in alerts:
        if alert.action == "trigger":
            firsts.setdefault(alert.dedup_key, alert)
    return list(firsts.values())


def _traffic(days: int, seed: int, factor: float = 1.0, start: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [_poisson(rng, factor * _rhythm(b)) for b in range(start, start + days * 288)]


def test_a_bursty_weekly_rhythm_alone_raises_nothing() -> None:
    # overdispersed: each hour's rate wobbles by +-30% around the rhythm
    rng = random.Random(3)
    counts = []
    for b in range(21 * 288):
        if b % 12 == 0:
            wobble = rng.uniform(0.7, 1.3)
        counts.append(_poisson(rng, wobble * _rhythm(b)))
    alerts, _ = _run(RARITY, counts)
    assert len(_triggers(alerts)) <= 3  # 3 weeks: at most one a week


def test_a_lasting_level_shift_is_one_incident_not_days_of_pages() -> None:
    history = _traffic(7, seed=1)
    shifted = _traffic(4, seed=2, factor=3.0, start=len(history))
    alerts, _ = _run(RARITY, history + shifted)
    after = [a for a in _triggers(alerts) if a.window_start.timestamp() >= T0 + 7 * 86_400]
    assert len(after) == 1, [a.summary for a in after]
    (trigger,) = after
    assert trigger.severity == "info"  # volume only: never a page
    resolves = [a for a in alerts if a.action == "resolve" and a.dedup_key == trigger.dedup_key]
    assert resolves, "the new level never became normal"
    hours_open = (resolves[0].evaluated_at - trigger.evaluated_at).total_seconds() / 3600
    assert hours_open <= 24


def test_a_sharp_surge_after_warm_up_is_caught_within_two_buckets() -> None:
    history = _traffic(7, seed=4)
    rng = random.Random(5)
    surge = [_poisson(rng, 6 * _rhythm(len(history) + b)) for b in range(6)]
    alerts, _ = _run(RARITY, history + surge)
    late = [a for a in _triggers(alerts) if a.window_start.timestamp() >= T0 + 7 * 86_400]
    assert late, "the surge was missed"
    bucket = (late[0].window_end.timestamp() - T0) / FIVE_MIN - len(history)
    assert bucket <= 2


def _slow_rise(seed: int, days: int = 15) -> tuple[list[int], int]:
    """A small bursty brand (about 3-10 mentions per 5 minutes, each hour's rate wobbling
    +-30%), whose level rises 3x over twelve hours from 08:00 of its second-last day and
    stays there; the bucket where the rise starts."""
    rng = random.Random(seed)
    counts, wobble = [], 1.0
    start = (days - 2) * 288 + 8 * 12
    for b in range(days * 288):
        if b % 12 == 0:
            wobble = rng.uniform(0.7, 1.3)
        rise = 1.0 + 2.0 * min(max(b - start, 0) / 144, 1.0)
        counts.append(_poisson(rng, rise * wobble * _rhythm(b) / 4))
    return counts, start


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_slow_rise_is_caught_by_the_shift_test(seed: int) -> None:
    """No window sees a 3x rise spread over twelve hours as sudden; the learned level does,
    once, the same day."""
    counts, start = _slow_rise(seed)
    after = T0 + start * FIVE_MIN
    alerts, _ = _run(RARITY, counts)
    caught = [a for a in _triggers(alerts) if a.window_start.timestamp() >= after]
    assert len(caught) == 1, [a.summary for a in caught]
    assert caught[0].window_start.timestamp() <= after + 18 * 3600
    assert caught[0].severity == "info"  # volume only
    without, _ = _run(AlertSettings(bucket_seconds=FIVE_MIN, surge_shift=False), counts)
    assert not [a for a in _triggers(without) if a.window_start.timestamp() >= after]


def test_silent_buckets_are_learned_as_silence() -> None:
    """A quiet brand's empty hours are part of its normal: every bucket from its first post
    on is learned, those without a post as 0 voices (a missing row is not skipped)."""
    rng = random.Random(9)
    counts = [_poisson(rng, 0.3 if (b // 12) % 24 < 8 else 6.0) for b in range(3 * 288)]
    engine = AlertEngine(RARITY, volume_only=True)
    state: BrandState | None = None
    for i, value in enumerate(counts):
        if value:  # only buckets with posts reach the engine, as in production
            state = engine.apply_count(state, "acme", T0 + i * FIVE_MIN, value).state
    assert state is not None and state.surge.rarity is not None
    first = next(i for i, v in enumerate(counts) if v)
    last = max(i for i, v in enumerate(counts) if v)
    assert state.surge.rarity.voices.learned == last - first + 1
    night = state.surge.rarity.voices.expect(3 * 288 + 2 * 12, RARITY)  # 02:00 next day
    assert night.expected < 1.0


def test_no_alert_during_warm_up() -> None:
    rng = random.Random(6)
    counts = [_poisson(rng, 30) for _ in range(8)] + [300] * 2
    alerts, _ = _run(RARITY, counts)
    assert alerts == []  # 8 buckets learned, the warm-up is 10


def test_the_stored_state_round_trips_and_judges_the_same() -> None:
    counts = _traffic(3, seed=8)
    _, state = _run(RARITY, counts)
    assert state is not None and state.surge.rarity is not None
    again = BrandState.from_dict(state.to_dict())
    assert again.to_dict() == state.to_dict()
    engine = AlertEngine(RARITY, volume_only=True)
    start = T0 + len(counts) * FIVE_MIN
    one = engine.apply_count(state, "acme", start, 400)
    two = engine.apply_count(again, "acme", start, 400)
    assert [a.severity for a in one.alerts] == [a.severity for a in two.alerts]


def test_the_rarity_model_takes_its_measured_defaults_unless_set() -> None:
    assert AlertSettings().surge_model == "rarity"
    assert (RARITY.surge_min_voices, RARITY.surge_keepalive_z, RARITY.surge_z) == (20, 2.0, 4.5)
    assert (DAILY.surge_min_voices, DAILY.surge_keepalive_z, DAILY.surge_z) == (50, 4.0, 5.0)
    fewer = AlertSettings(surge_model="rarity", sensitivity="fewer", surge_min_voices=7)
    assert (fewer.surge_rarity, fewer.surge_z, fewer.surge_min_voices) == (0.9998, 6.0, 7)
    with pytest.raises(ValueError, match="surge_hold_hours"):
        AlertSettings(surge_refractory_hours=48, surge_hold_hours=24)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no real mention counts at {SHARED}")
def test_real_mention_counts_hold_far_fewer_triggers_than_the_daily_rule() -> None:
    """The five real series (55 days each): the daily-rhythm rule fired 6.3 times per
    series-week there; the default must stay within one (issue 18's target)."""
    weeks = rarity = daily = 0.0
    for path in sorted(SHARED.glob("Twitter_volume_*.csv")):
        counts = [value for _, value in read_counts(path, FIVE_MIN).rows]
        weeks += len(counts) / 2016
        rarity += len(_triggers(_run(AlertSettings(bucket_seconds=FIVE_MIN), counts)[0]))
        daily += len(_triggers(_run(DAILY, counts)[0]))
    assert weeks > 35
    assert rarity <= weeks  # at most one a series-week, the warm-up days included
    assert daily > 5 * weeks  # what the issue measured: the old rule's noise


def test_a_state_stored_before_the_shift_test_loads() -> None:
    _, state = _run(RARITY, _traffic(1, seed=10))
    assert state is not None
    stored = state.to_dict()
    for series in ("v", "n"):
        del stored["surge"]["rarity"][series]["hs"]
    loaded = BrandState.from_dict(stored)
    assert loaded.surge.rarity is not None
    assert loaded.surge.rarity.voices.shifts == [0.0] * len(loaded.surge.rarity.voices.shifts)
