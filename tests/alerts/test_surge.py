"""The daily-rhythm mention-surge rule (surge_model = "daily"; the default was the rarity model
of test_rarity.py from issue 18 on): seasonal baseline, guards, lifecycle, composition, state."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import SEVERITY_RANK, Alert
from tests.alerts.streams import T0, Run, at, traffic, warm

HOUR = 3600
HOURLY = AlertSettings(surge_model="daily", bucket_seconds=HOUR)


def _step_rhythm(hour: int) -> int:
    """Quiet nights (100 mentions an hour until 8 am), busy days (400)."""
    return 100 if hour % 24 < 8 else 400


def _history(days: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [round(rng.gauss(_step_rhythm(h), 12)) for h in range(days * 24)]


class Counts:
    """Hourly counts of one brand through a volume-only engine."""

    def __init__(self, settings: AlertSettings = HOURLY) -> None:
        self.engine = AlertEngine(settings, volume_only=True)
        self.state: BrandState | None = None
        self.hour = 0
        self.alerts: list[Alert] = []

    def feed(self, values: list[int]) -> list[Alert]:
        new: list[Alert] = []
        for value in values:
            start = T0.timestamp() + self.hour * HOUR
            result = self.engine.apply_count(self.state, "acme", start, value)
            self.state, self.hour = result.state, self.hour + 1
            new += result.alerts
        self.alerts += new
        return new

    def copy(self) -> Counts:
        twin = Counts(self.engine.settings)
        assert self.state is not None
        twin.state = BrandState.from_dict(self.state.to_dict())
        twin.hour = self.hour
        return twin


def _warm_counts(days: int = 14) -> Counts:
    counts = Counts()
    assert counts.feed(_history(days)) == []  # the rhythm itself never alerts
    return counts


def test_a_busy_noon_is_normal_and_the_same_volume_at_4_am_is_a_surge() -> None:
    history = _warm_counts()
    assert history.state is not None and history.hour % 24 == 0
    noon = history.copy()
    assert noon.feed([100] * 8 + [400] * 5) == []  # 0-7 am quiet, 8 am to 12 noon busy
    night = history.copy()
    alerts = night.feed([100] * 4 + [400])  # 4 am as busy as noon
    assert [(a.action, a.rule, a.severity) for a in alerts] == [
        ("trigger", "mention_surge", "info")  # volume only: never a page
    ]
    alert = alerts[0]
    assert alert.expected_voices == pytest.approx(100, rel=0.1)
    assert alert.counts.voices == 400
    assert alert.dedup_key == "brandmon/acme/surge/20260119T040000Z"
    assert "sentiment unknown" in alert.summary and "x3.9" in alert.summary


def test_without_seasonal_history_the_recent_level_is_the_baseline() -> None:
    fresh = Counts()
    fresh.feed([200] * 30)
    assert fresh.state is not None
    expectation = fresh.state.surge.voices.expect(30, HOUR, HOURLY)
    assert expectation.warm and not expectation.seasonal
    assert expectation.expected == pytest.approx(200)
    assert fresh.feed([200, 700])[0].rule == "mention_surge"


def test_a_long_incident_does_not_raise_the_baseline_and_resolves_once() -> None:
    counts = _warm_counts()
    assert counts.state is not None
    before = [counts.state.surge.voices.expect(h, HOUR, HOURLY).expected for h in range(24)]
    alerts = counts.feed([v * 4 for v in _history(1, seed=8)])  # a whole day at 4x
    alerts += counts.feed(_history(1, seed=9))
    after = [counts.state.surge.voices.expect(h, HOUR, HOURLY).expected for h in range(24)]
    assert after == pytest.approx(before, rel=0.05)
    assert [a.action for a in alerts] == ["trigger", "resolve"]
    assert alerts[0].dedup_key == alerts[1].dedup_key
    # Resolved at the end of the second normal hour: the 2-hour window ending with the
    # first one still holds the surge's last hour.
    assert (alerts[1].evaluated_at - alerts[0].incident_start) == timedelta(hours=26)
    again = counts.feed([v * 4 for v in _history(1, seed=10)][:3])
    assert [a.action for a in again] == ["trigger"]  # the next surge still stands out


def test_minimum_volume_guard() -> None:
    quiet = Run(settings=AlertSettings(surge_model="daily"))
    quiet.feed(traffic(range(60), 5, 0.2))
    quiet.feed(traffic(range(60, 70), 20, 0.2))  # x4, but 40 voices in two minutes
    assert quiet.alerts == []
    loud = Run(settings=AlertSettings(surge_model="daily"))
    loud.feed(traffic(range(60), 30, 0.2))
    loud.feed(traffic(range(60, 70), 120, 0.2))
    triggers = [a for a in loud.alerts if a.action == "trigger"]
    assert triggers and {a.rule for a in triggers} == {"mention_surge"}


def _surge_run(total: int, share: float, *, roundtrip: bool = False) -> Run:
    run = Run(settings=AlertSettings(surge_model="daily"), roundtrip=roundtrip)
    warm(run)
    run.feed(traffic(range(60, 75), total, share, tag="s"))
    run.feed(traffic(range(75, 100), 100, 0.15))
    return run


def _incidents(alerts: list[Alert]) -> dict[str, list[Alert]]:
    found: dict[str, list[Alert]] = {}
    for alert in alerts:
        found.setdefault(alert.dedup_key, []).append(alert)
    return found


def test_surge_at_normal_share_one_trigger_one_resolve_stable_key() -> None:
    run = _surge_run(300, 0.15)
    incidents = _incidents(run.alerts)
    assert list(incidents) == ["brandmon/acme/surge/20260105T010000Z"]  # no share incident
    events = incidents["brandmon/acme/surge/20260105T010000Z"]
    assert [a.action for a in events] == ["trigger", "resolve"]
    trigger, resolve = events
    assert (trigger.rule, trigger.severity, at(trigger)) == ("mention_surge", "warning", 61)
    assert trigger.expected_voices == pytest.approx(100, rel=0.05)
    assert trigger.sample_post_ids
    assert at(resolve) == 75 + 15  # the quiet period after the last surging bucket
    assert "RESOLVED" in resolve.summary and "mention surge" in resolve.summary


def test_a_mostly_negative_surge_is_critical_and_the_share_rule_fires_too() -> None:
    run = _surge_run(300, 0.6)
    incidents = _incidents(run.alerts)
    surge = incidents.pop("brandmon/acme/surge/20260105T010000Z")
    assert max(SEVERITY_RANK[a.severity] for a in surge) == SEVERITY_RANK["critical"]
    assert [a.action for a in surge][-1] == "resolve" and len(surge) <= 3
    (share,) = incidents.values()  # the negative-share rule's own incident
    assert share[0].rule == "baseline" and share[0].dedup_key == "brandmon/acme/20260105T010000Z"


def test_a_viral_positive_surge_is_info_only() -> None:
    run = _surge_run(300, 0.02)
    triggers = [a for a in run.alerts if a.action == "trigger"]
    assert triggers and {a.severity for a in triggers} == {"info"}
    assert {a.rule for a in triggers} == {"mention_surge"}


def test_replay_through_the_stored_state_gives_identical_alerts() -> None:
    plain = _surge_run(300, 0.6)
    stored = _surge_run(300, 0.6, roundtrip=True)
    assert [a.model_dump() for a in stored.alerts] == [a.model_dump() for a in plain.alerts]
    assert plain.state is not None and stored.state is not None
    assert stored.state.to_dict() == plain.state.to_dict()


def test_a_state_stored_before_the_surge_rule_loads_and_keeps_working() -> None:
    run = Run(settings=AlertSettings(surge_model="daily"))
    warm(run)
    assert run.state is not None
    old = run.state.to_dict()
    del old["surge"], old["surge_incident"]
    state = BrandState.from_dict(old)
    assert state.surge_incident is None and state.surge.learned_at is None
    assert state.share == run.state.share and state.buckets.keys() == run.state.buckets.keys()
    engine = AlertEngine(AlertSettings(surge_model="daily"))
    offset = run.offset
    for p in traffic(range(60, 100), 100, 0.15):
        state = engine.apply(state, p, 0, offset).state
        offset += 1
    assert state.surge.learned_at is not None and state.surge.voices.recent.weight > 0


def test_counts_out_of_order_are_late_and_negative_counts_refused() -> None:
    counts = Counts()
    counts.feed([10, 10])
    engine = counts.engine
    assert counts.state is not None
    late = engine.apply_count(counts.state, "acme", T0.timestamp(), 5)
    assert late.outcome == "late" and late.state.late_events == 1
    with pytest.raises(ValueError, match="cannot hold -1 voices"):
        engine.apply_count(counts.state, "acme", T0.timestamp() + 5 * HOUR, -1)


def test_surge_rule_can_be_turned_off() -> None:
    run = Run(settings=AlertSettings(surge_model="daily", surge_enabled=False))
    warm(run)
    run.feed(traffic(range(60, 75), 300, 0.15, tag="s"))
    assert run.alerts == []


def test_surge_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="surge_windows"):
        AlertSettings(surge_model="daily", surge_windows=(6,))
    with pytest.raises(ValueError, match="surge_keepalive_factor"):
        AlertSettings(surge_model="daily", surge_factor=1.5, surge_keepalive_factor=2.0)


def test_a_volume_only_surge_is_info_and_never_a_page() -> None:
    """Counts without sentiment cannot say a surge is bad: it is reported (info) and the
    notifiers' default routing keeps info off PagerDuty (tests/alerts/test_routing.py)."""
    counts = _warm_counts()
    spike = counts.feed([v * 4 for v in _history(1, seed=10)][:3])
    triggers = [a for a in spike if a.action == "trigger"]
    assert triggers and {a.severity for a in triggers} == {"info"}
    assert "volume only" in triggers[0].summary
