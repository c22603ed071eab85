"""Posts no model read (languages without a model) are counted apart and never make a spike."""

from __future__ import annotations

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.state import BrandState
from brandmon.contracts.posts import NO_MODEL_FOR_LANGUAGE, ScoredPost
from tests.alerts.streams import Run, by_time, minute, traffic, warm


def unscored(posts: list[ScoredPost]) -> list[ScoredPost]:
    return [
        p.model_copy(
            update={
                "label": None,
                "scores": None,
                "unscored_reason": NO_MODEL_FOR_LANGUAGE,
                "lang": "de",
                "model_id": "",
                "model_version": "",
            }
        )
        for p in posts
    ]


def flood(minutes: range, *, read: bool) -> list[ScoredPost]:
    """Calm scored traffic plus 6x as many all-negative posts, scored (read) or unscored."""
    extra = [p for m in minutes for p in minute(m, 600, 600, tag="-de")]
    return list(by_time(traffic(minutes, 100, 0.15) + (extra if read else unscored(extra))))


def test_a_flood_of_unscored_posts_alerts_on_nothing_and_is_shown_apart() -> None:
    both_rules = AlertSettings()
    read = Run(settings=both_rules)
    warm(read)
    read.feed(flood(range(60, 70), read=True))
    assert read.alerts  # the same posts, read as negative, page (the test can fail)

    run = Run(settings=both_rules, roundtrip=True)
    warm(run)
    run.feed(flood(range(60, 70), read=False))
    assert run.alerts == []
    bucket = next(b for b in run.buckets if b.bucket_start.hour == 1 and b.bucket_start.minute == 5)
    assert (bucket.posts, bucket.negatives, bucket.unscored) == (100, 15, 600)
    window = both_rules.window_buckets
    assert bucket.window.unscored == 600 * window and bucket.window.posts == 100 * window


def test_only_unscored_posts_are_no_traffic_to_the_rules() -> None:
    run = Run(settings=AlertSettings())
    warm(run)
    run.feed(unscored(traffic(range(60, 180), 100, 1.0)))  # two hours no model could read
    run.feed(traffic(range(180, 200), 100, 0.15))  # calm traffic again
    assert run.alerts == []
    first = next(b for b in run.buckets if _minutes(b.bucket_start) == 60)
    assert (first.posts, first.unscored) == (0, 100)  # shown while the window has traffic


def test_old_states_without_unscored_counts_still_load() -> None:
    run = Run()
    warm(run, minutes=3)
    assert run.state is not None
    data = run.state.to_dict()
    assert all("u" not in bucket for bucket in data["buckets"])
    assert BrandState.from_dict(data).to_dict() == data


def _minutes(start: object) -> int:
    from datetime import datetime

    assert isinstance(start, datetime)
    return (start.day - 5) * 1440 + start.hour * 60 + start.minute
