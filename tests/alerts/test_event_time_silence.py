"""`AlertEngine.advance()`: a brand gone silent has its buckets closed by stream time."""

from __future__ import annotations

import json

import pytest

from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.state import BrandState
from brandmon.contracts.alerts import Alert, BrandBucket
from tests.alerts.streams import T0, Run, at, post, traffic, warm

START = T0.timestamp()


def _minutes(m: float) -> float:
    """Stream time `m` minutes after T0."""
    return START + m * 60


def _silent_after_spike() -> Run:
    """Warm, a 5-minute spike from minute 60, then nothing: the incident is open."""
    run = Run()
    warm(run)
    run.feed(traffic(range(60, 65), 200, 0.6))
    assert [a.action for a in run.alerts] == ["trigger"]
    assert run.state is not None and run.state.incident is not None
    return run


def _advance(run: Run, stream_time: float) -> str:
    assert run.state is not None
    result = run.engine.advance(run.state, stream_time)
    run.state = result.state
    run.alerts += result.alerts
    run.buckets += result.buckets
    return result.outcome


def test_silence_resolves_the_incident_once() -> None:
    run = _silent_after_spike()
    key = run.alerts[0].dedup_key
    assert _advance(run, _minutes(70)) == "advanced"
    assert [a.action for a in run.alerts] == ["trigger"]  # not quiet for long enough yet
    assert _advance(run, _minutes(120)) == "advanced"
    assert [(a.action, a.dedup_key) for a in run.alerts] == [("trigger", key), ("resolve", key)]
    assert at(run.alerts[1]) == 80  # last elevated bucket ends at 65:00, + 15 quiet minutes
    assert run.state is not None and run.state.incident is None
    for later in (_minutes(120), _minutes(119), _minutes(600)):  # idempotent, never backwards
        assert _advance(run, later) == "unchanged"
    assert len(run.alerts) == 2


def test_the_resolve_is_the_one_the_brands_own_next_post_would_give() -> None:
    silent, talking = _silent_after_spike(), _silent_after_spike()
    _advance(silent, _minutes(120))
    talking.feed(traffic(range(200, 202), 100, 0.15))
    assert silent.alerts[1].model_dump() == talking.alerts[1].model_dump()  # same alert_id


def test_the_last_buckets_before_silence_are_judged_and_published() -> None:
    run = Run()
    warm(run)
    run.feed(traffic(range(60, 61), 300, 0.7))
    assert run.alerts == []  # the spike's bucket is still open: nothing of acme closes it
    assert _advance(run, _minutes(61.5)) == "advanced"
    assert [(a.action, at(a)) for a in run.alerts] == [("trigger", 61)]
    assert [(b.bucket_start.timestamp() - START) / 60 for b in run.buckets[-2:]] == [59, 60]


def test_no_alert_from_advance_without_incident_or_spike() -> None:
    run = Run()
    warm(run)
    published = len(run.buckets)
    for m in range(61, 24 * 60, 7):
        _advance(run, _minutes(m))
    assert run.alerts == []
    assert len(run.buckets) == published + 1  # the last minute of traffic, closed by advance
    assert run.state is not None and run.state.buckets == {}


def test_an_idle_brand_is_not_rewritten() -> None:
    run = Run()
    warm(run, minutes=10)
    assert _advance(run, _minutes(60)) == "advanced"
    assert run.state is not None
    before = run.state.to_dict()
    for m in (61, 100, 1000):
        assert _advance(run, _minutes(m)) == "unchanged"
    assert run.state.to_dict() == before


def test_many_advances_over_a_long_gap_cost_few_evaluations() -> None:
    run = _silent_after_spike()
    evaluations = 0
    evaluate = run.engine._evaluate

    def counting(state: BrandState, index: int) -> tuple[list[Alert], BrandBucket | None]:
        nonlocal evaluations
        evaluations += 1
        return evaluate(state, index)

    run.engine._evaluate = counting  # type: ignore[method-assign]
    for step in range(6 * 360):  # six hours of stream time, every 10 s
        _advance(run, _minutes(65 + step / 6))
    assert [a.action for a in run.alerts] == ["trigger", "resolve"]
    # the windows still holding spike buckets, then the one that resolves
    assert evaluations <= run.settings.window_buckets + 1


def test_posts_behind_the_stream_time_are_late_afterwards() -> None:
    run = _silent_after_spike()
    _advance(run, _minutes(90))
    run.feed([post(70 * 60, True, author="slow")])
    assert run.outcomes[-1] == "late"
    run.feed([post(95 * 60, False, author="back")])
    assert run.outcomes[-1] == "applied"


def test_advance_then_replay_gives_the_same_results() -> None:
    def scripted(roundtrip: bool) -> str:
        run = Run(roundtrip=roundtrip)
        warm(run)
        run.feed(traffic(range(60, 64), 200, 0.6))
        for m in (66, 70, 70, 85, 90):
            if roundtrip and run.state is not None:
                run.state = BrandState.from_dict(json.loads(json.dumps(run.state.to_dict())))
            _advance(run, _minutes(m))
        run.feed(traffic(range(95, 100), 100, 0.15))
        return json.dumps(
            [a.model_dump(mode="json") for a in run.alerts]
            + [b.model_dump(mode="json") for b in run.buckets]
        )

    assert scripted(False) == scripted(False) == scripted(True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_stream_time_must_be_finite(bad: float) -> None:
    engine = AlertEngine(Run().settings)
    state = engine.apply(None, post(0, True), 0, 0).state
    with pytest.raises(ValueError, match="finite"):
        engine.advance(state, bad)


def test_a_brand_without_posts_is_left_alone() -> None:
    engine = AlertEngine(Run().settings)
    assert engine.advance(BrandState(brand="acme"), _minutes(10)).outcome == "unchanged"
