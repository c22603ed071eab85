"""Event time at the edges: extreme timestamps, and future-dated posts that must not hijack
a brand's watermark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import Alert
from brandmon.contracts.posts import ScoredPost, Scores
from tests.alerts.streams import T0, Run, at, post, traffic, warm

YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time
YEAR_9999 = datetime(9999, 12, 31, 23, 50, tzinfo=UTC)


def _at(created: datetime, i: int, negative: bool, scored_delay: float = 0.0) -> ScoredPost:
    return ScoredPost(
        id=f"p{i}",
        text=f"post {i}",
        brand="acme",
        created_at=created,
        author=f"author{i}",
        label="negative" if negative else "neutral",
        scores=Scores(negative=float(negative), neutral=float(not negative), positive=0.0),
        model_id="test-model",
        model_version="7",
        scored_at=created + timedelta(seconds=scored_delay),
    )


def _spike_from(origin: datetime, minutes: int = 9) -> list[ScoredPost]:
    """60 posts a minute, 85 % negative: the warm-up rule triggers on the first bucket, whose
    window starts four buckets before `origin`."""
    return [
        _at(origin + timedelta(seconds=m * 60 + i), m * 60 + i, i < 51)
        for m in range(minutes)
        for i in range(60)
    ]


@pytest.mark.parametrize("origin", [YEAR_1, YEAR_9999], ids=["year-1", "year-9999"])
def test_extreme_event_times_never_crash_the_engine(origin: datetime) -> None:
    engine = AlertEngine(AlertSettings())
    state: BrandState | None = None
    alerts: list[Alert] = []
    for offset, p in enumerate(_spike_from(origin)):
        result = engine.apply(state, p, 0, offset)
        state, alerts = result.state, alerts + result.alerts
        assert BrandState.from_dict(state.to_dict()) == state
    assert [(a.action, a.rule, a.severity) for a in alerts] == [("trigger", "warmup", "critical")]
    trigger = alerts[0]
    assert trigger.window_start <= trigger.incident_start < trigger.evaluated_at
    assert state is not None and state.watermark is not None
    after = engine.advance(state, state.watermark + 10 * 3600)
    assert [a.action for a in after.alerts] == ["resolve"]
    assert after.alerts[0].dedup_key == trigger.dedup_key


@pytest.mark.parametrize("created", [YEAR_1, datetime.max.replace(tzinfo=UTC)])
def test_a_lone_post_at_the_ends_of_time_is_applied_without_a_crash(created: datetime) -> None:
    engine = AlertEngine(AlertSettings())
    result = engine.apply(None, _at(created, 0, True), 0, 0)
    assert result.outcome == "applied" and result.alerts == []
    # a post of today after it: after year 1 it closes every bucket in between (cheaply);
    # after year 9999 it is late (scored posts that far ahead are "future" in practice)
    later = engine.apply(result.state, post(0, True), 0, 1)
    assert later.outcome == ("applied" if created == YEAR_1 else "late")
    assert engine.advance(later.state, 1e15).alerts == []


def test_dedup_key_has_a_four_digit_year() -> None:
    engine = AlertEngine(AlertSettings())
    state: BrandState | None = None
    keys = []
    for offset, p in enumerate(_spike_from(YEAR_1)):
        result = engine.apply(state, p, 0, offset)
        state = result.state
        keys += [a.dedup_key for a in result.alerts]
    assert keys == ["brandmon/acme/00010101T000000Z"]


# --- future-dated posts -----------------------------------------------------------------------


def _with_one_post_ahead(posts: list[ScoredPost], at_index: int, ahead: float) -> list[ScoredPost]:
    """`posts` with one post inserted at `at_index`, dated `ahead` seconds in the future."""
    now = posts[at_index].created_at
    offender = post(
        (now - T0).total_seconds() + ahead,
        True,
        author="clock",
        ident="ahead",
        scored_delay=-ahead + 1,
    )
    assert offender.scored_at - now == timedelta(seconds=1)
    return [*posts[:at_index], offender, *posts[at_index:]]


def test_a_post_four_minutes_ahead_does_not_make_on_time_posts_late() -> None:
    stream = traffic(range(60), 100, 0.15) + traffic(range(60, 70), 200, 0.6)
    stream += traffic(range(70, 100), 100, 0.15)
    reference = Run()
    reference.feed(stream)
    assert [a.action for a in reference.alerts] == ["trigger", "resolve"]

    for where in (30 * 100 + 17, 60 * 100 + 250, 60 * 100 + 10 * 200 + 5):
        hijack = Run()
        hijack.feed(_with_one_post_ahead(stream, where, 240))
        assert "late" not in hijack.outcomes
        assert hijack.outcomes.count("applied") == len(stream) + 1  # the offender counts too
        assert [(a.action, a.severity, a.dedup_key, at(a)) for a in hijack.alerts] == [
            (a.action, a.severity, a.dedup_key, at(a)) for a in reference.alerts
        ]
        assert hijack.state is not None and reference.state is not None
        assert hijack.state.late_events == 0


def test_the_future_post_is_counted_in_its_own_bucket() -> None:
    run = Run()
    run.feed(_with_one_post_ahead(traffic(range(10), 100, 0.15), 5 * 100, 240))
    run.feed(traffic(range(10, 12), 100, 0.15))
    record = next(b for b in run.buckets if (b.bucket_start - T0).total_seconds() == 9 * 60)
    assert record.posts == 101 and record.negatives == 16


def test_watermark_moves_at_most_the_tolerance_past_scored_at() -> None:
    settings = AlertSettings(watermark_future_tolerance_seconds=5)
    run = Run(settings=settings)
    run.feed(traffic(range(5), 100, 0.15))
    assert run.state is not None and run.state.watermark is not None
    ahead = post(10 * 60, True, author="clock", ident="ahead", scored_delay=-200)
    run.feed([ahead])
    assert run.outcomes[-1] == "applied"
    assert run.state.watermark == ahead.scored_at.timestamp() + 5


def test_posts_beyond_the_clock_skew_stay_ignored() -> None:
    run = Run()
    warm(run, minutes=5)
    run.feed([post(20 * 60, True, author="clock", scored_delay=-301)])
    assert run.outcomes[-1] == "future"
