"""Property tests: statistics stay in range; any stream gives a valid, replayable lifecycle."""

from __future__ import annotations

import json
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.stats import EwStat, wilson_lower_bound
from brandmon.contracts.alerts import Alert
from brandmon.contracts.posts import ScoredPost
from tests.alerts.streams import Run, post, traffic


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_wilson_lower_bound_is_below_the_share(k: int, extra: int) -> None:
    n = k + extra
    lower = wilson_lower_bound(k, n)
    assert 0.0 <= lower <= k / n


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=200),
    st.floats(0, 7200),
)
def test_ew_mean_stays_within_the_data(values: list[float], step: float) -> None:
    stat = EwStat()
    for v in values:
        stat.update(v, step, 3600)
    assert min(values) - 1e-9 <= stat.mean <= max(values) + 1e-9
    assert stat.var >= 0.0
    assert 0 < stat.weight <= len(values)


# A burst: (minute, posts, negative share, one author or many).
bursts = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 150), st.floats(0, 1), st.booleans()),
    max_size=6,
)


def _stream(burst_list: list[tuple[int, int, float, bool]]) -> list[ScoredPost]:
    posts = traffic(range(45), 60, 0.2)
    for b, (m, n, share, single) in enumerate(burst_list):
        for i in range(n):
            author = "solo" if single else f"burst{b}-{i}"
            posts.append(post(m * 60 + 59 * i / n, i < n * share, author=author, ident=f"x{b}-{i}"))
    # Arrival order: event time plus a deterministic delay of up to 40 s (some are late).
    return sorted(posts, key=lambda p: p.created_at.timestamp() + (zlib.crc32(p.id.encode()) % 41))


def _check_lifecycle(alerts: list[Alert]) -> None:
    """Per rule family (share, surge): one open incident at a time, triggers only escalate,
    one resolve closes it; alert ids unique."""
    open_key: dict[bool, str | None] = {False: None, True: None}
    severity = {False: -1, True: -1}
    rank = {"info": 0, "warning": 1, "critical": 2}
    for alert in alerts:
        surge = "/surge/" in alert.dedup_key
        assert surge if alert.rule == "mention_surge" else (alert.rule == "quiet" or not surge)
        if alert.action == "trigger":
            if open_key[surge] is None:
                open_key[surge], severity[surge] = alert.dedup_key, rank[alert.severity]
            else:
                assert alert.dedup_key == open_key[surge]  # escalation of the open incident
                assert rank[alert.severity] > severity[surge]
                severity[surge] = rank[alert.severity]
        else:
            assert alert.dedup_key == open_key[surge]  # a resolve closes the open incident
            open_key[surge] = None
    assert len({a.alert_id for a in alerts}) == len(alerts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursts)
def test_any_stream_gives_a_valid_lifecycle_and_replays_exactly(
    burst_list: list[tuple[int, int, float, bool]],
) -> None:
    posts = _stream(burst_list)
    plain = Run(settings=AlertSettings(warmup_buckets=10))
    plain.feed(posts)
    _check_lifecycle(plain.alerts)
    through_json = Run(settings=AlertSettings(warmup_buckets=10), roundtrip=True)
    through_json.feed(posts)
    dump = [a.model_dump(mode="json") for a in plain.alerts]
    assert json.dumps(dump) == json.dumps([a.model_dump(mode="json") for a in through_json.alerts])
    for record in plain.buckets:
        assert record.window.voices <= record.window.posts
        assert record.window.negative_voices <= record.window.voices


def _with_silences(
    posts: list[ScoredPost], silences: list[tuple[int, int]], roundtrip: bool
) -> tuple[list[Alert], list[str]]:
    """Apply `posts`, calling advance() twice after each (position, extra seconds) of
    `silences` with the stream time `extra` past the brand's own; returns the alerts and the
    outcomes of the second calls."""
    run = Run(settings=AlertSettings(warmup_buckets=10), roundtrip=roundtrip)
    stream_time = 0.0
    at = dict(silences)
    seconds: list[str] = []
    for i, p in enumerate(posts):
        run.feed([p])
        stream_time = max(stream_time, run.engine.watermark_time(p) or stream_time)
        if i in at and run.state is not None:
            for call in range(2):
                result = run.engine.advance(run.state, stream_time + at[i])
                run.state = result.state
                run.alerts += result.alerts
                if call:
                    seconds.append(result.outcome)
                    assert result.alerts == [] and result.buckets == []
    return run.alerts, seconds


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursts, st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3600)), max_size=8))
def test_advance_keeps_a_valid_lifecycle_is_idempotent_and_replays_exactly(
    burst_list: list[tuple[int, int, float, bool]], silences: list[tuple[int, int]]
) -> None:
    posts = _stream(burst_list)
    plain, seconds = _with_silences(posts, silences, roundtrip=False)
    _check_lifecycle(plain)
    assert set(seconds) <= {"unchanged"}
    again, _ = _with_silences(posts, silences, roundtrip=True)
    assert [a.model_dump(mode="json") for a in plain] == [a.model_dump(mode="json") for a in again]
