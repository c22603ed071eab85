"""One brand's alert state is one changelog record: its worst case must fit the topic's limit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from annotated_types import MaxLen
from hypothesis import given, settings
from hypothesis import strategies as st

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import short_hash
from brandmon.alerts.engine import AlertEngine
from brandmon.alerts.lifecycle import MAX_DEDUP_KEY
from brandmon.alerts.rarity import RarityBaseline, RaritySeries, window_buckets
from brandmon.alerts.state import HASH_CHARS, BrandState, Incident
from brandmon.alerts.stats import EwStat
from brandmon.contracts.posts import Post, ScoredPost
from tests.alerts.streams import T0, post

A = AlertSettings

#: A character outside the Basic Multilingual Plane: 12 bytes once JSON-escaped.
EMOJI = 0x1F600


def _widest_rarity(s: AlertSettings, wide: float, big: int) -> RarityBaseline:
    """The rarity model's memory at its widest: every statistic set, every number widest."""

    def series() -> RaritySeries:
        one = RaritySeries(level=wide, learned=big)
        for stat in [one.recent, one.spread, *one.day, *one.week]:
            stat.mean = stat.var = stat.weight = wide
        one.newest = [[wide, wide, wide] for _ in range(max(window_buckets(s)))]
        one.history = [wide] * len(one.history)
        return one

    return RarityBaseline(series(), series(), learned_at=big, opened_at=big, peak=wide)


def _emoji(n: int, width: int) -> str:
    """`width` astral characters that spell `n` (distinct n, distinct strings)."""
    digits = []
    for _ in range(width):
        n, digit = divmod(n, 64)
        digits.append(chr(EMOJI + digit))
    return "".join(digits)


def _letters(n: int) -> str:
    """A distinct lowercase word for each n (letters only, so it is a term)."""
    word = ""
    while True:
        n, letter = divmod(n, 26)
        word += chr(ord("a") + letter)
        if not n:
            return word + "zzz"


def _widest_term(n: int) -> str:
    """A term of MAX_TERM_CHARS BMP letters, each 6 bytes once JSON-escaped (distinct n)."""
    return "".join(chr(0x4E00 + (n >> (4 * i)) % 16) for i in range(A.MAX_TERM_CHARS))


def _max_len(field: str) -> int:
    return next(m.max_length for m in Post.model_fields[field].metadata if isinstance(m, MaxLen))


def test_size_limits_match_the_schema_and_the_state() -> None:
    assert _max_len("brand") <= A.MAX_BRAND_CHARS
    assert _max_len("id") <= A.MAX_POST_ID_CHARS
    assert MAX_DEDUP_KEY <= A.MAX_DEDUP_KEY_CHARS
    assert len(short_hash("any text")) == HASH_CHARS


def _worst_state(s: AlertSettings) -> BrandState:
    """The biggest state the engine can build: every bucket it can hold at once, each full.

    Five buckets filled on time (closed ones stay for the window), the watermark just short
    of closing the newest, then posts dated max_clock_skew_seconds after their scored_at in
    every bucket up to the furthest a post can reach; every id, the brand and the model
    fields as long as allowed and each character escaped to 12 bytes.
    """
    engine = AlertEngine(s)
    brand = _emoji(0, A.MAX_BRAND_CHARS)
    k = 1000
    base = (T0.timestamp() // s.bucket_seconds + k) * s.bucket_seconds
    w, n = s.max_tracked_posts_per_bucket, 0

    def scored(at: float, *, ahead: float) -> ScoredPost:
        nonlocal n
        n += 1
        words = f"{_letters(2 * n)} {_letters(2 * n + 1)}"  # new terms: every sketch fills
        p = post(at - T0.timestamp(), True, brand=brand, author=f"a{n}", ident=f"x{n}", text=words)
        return p.model_copy(
            update={
                "id": _emoji(n, A.MAX_POST_ID_CHARS),
                "scored_at": p.created_at - timedelta(seconds=ahead),
                "model_id": _emoji(1, A.MAX_MODEL_FIELD_CHARS + 50),
                "model_version": _emoji(2, A.MAX_MODEL_FIELD_CHARS + 50),
            }
        )

    state: BrandState | None = None
    offset = 0

    def feed(p: ScoredPost) -> None:
        nonlocal state, offset
        result = engine.apply(state, p, 0, offset)
        assert result.outcome == "applied"
        state, offset = result.state, offset + 1

    b = s.bucket_seconds
    for j in range(-(s.window_buckets - 1), 1):  # on time
        for i in range(w):
            feed(scored(base + j * b + b * i / w, ahead=-1))
    lateness = s.allowed_lateness_seconds
    feed(scored(base + b - 0.1 + lateness, ahead=-1))  # watermark just short of closing k
    assert state is not None and state.watermark is not None
    reach = state.watermark + s.max_clock_skew_seconds - s.watermark_future_tolerance_seconds
    j = 1
    while (base + j * b) <= reach:  # dated ahead, as far as the skew lets them
        last = min(base + (j + 1) * b, reach)
        for i in range(w):
            feed(
                scored(base + j * b + (last - base - j * b) * i / w, ahead=s.max_clock_skew_seconds)
            )
        j += 1
    assert len(state.buckets) == s.max_state_buckets
    assert all(
        len(x.texts) == w
        and len(x.samples) == s.samples_per_alert
        and len(x.terms) <= s.topic_terms_per_bucket
        for x in state.buckets.values()
    )

    # Everything else at its widest.
    wide, big = -2.2250738585072014e-308, -(2**63)
    state.watermark = state.baseline_at = wide
    state.next_close = state.late_events = state.future_events = big
    state.share = EwStat(wide, wide, wide)
    state.volume = EwStat(wide, wide, wide)
    state.incident = Incident(_emoji(3, A.MAX_DEDUP_KEY_CHARS), wide, "critical", wide)
    state.surge_incident = Incident(_emoji(4, A.MAX_DEDUP_KEY_CHARS), wide, "critical", wide)
    for series in (state.surge.voices, state.surge.negatives):
        for stat in [series.recent, series.dispersion, *series.slots]:
            stat.mean = stat.var = stat.weight = wide
    state.surge.learned_at = big
    if s.surge_model == "rarity":
        state.surge.rarity = _widest_rarity(s, wide, big)
    state.offsets = {-(2**31) + i: big for i in range(A.MAX_OFFSET_PARTITIONS)}
    for x in state.buckets.values():
        x.posts = x.negatives = x.neutrals = x.positives = big
        x.overflow_posts = x.overflow_negatives = big
        x.index = x.term_total = x.term_rounds = x.unscored = big
        x.term_door = 2**1024 - 1 if s.topic_max_terms else 0
        if s.topic_max_terms:  # else the engine never counts a term
            x.terms = {_widest_term(i): [big, 2**64 - 1] for i in range(s.topic_terms_per_bucket)}
    state.topics.total, state.topics.learned_at = wide, big
    if s.topic_max_terms:
        state.topics.weights = {_widest_term(i): wide for i in range(s.topic_baseline_terms)}
    return state


@pytest.mark.parametrize(
    "s",
    [
        AlertSettings(),
        AlertSettings(max_tracked_posts_per_bucket=50, bucket_seconds=20, samples_per_alert=3),
        AlertSettings(
            max_tracked_posts_per_bucket=40, allowed_lateness_seconds=0, max_clock_skew_seconds=0
        ),
        AlertSettings(topic_max_terms=0, max_tracked_posts_per_bucket=1_153),
        AlertSettings(surge_model="daily", max_tracked_posts_per_bucket=1_100),
    ],
    ids=["defaults", "short-buckets", "no-lateness", "no-topic-terms", "daily-surge"],
)
def test_worst_case_state_is_within_the_estimate(s: AlertSettings) -> None:
    state = _worst_state(s)
    assert len(state.model_id) == len(state.model_version) == A.MAX_MODEL_FIELD_CHARS  # clipped
    estimate = s.max_state_json_bytes()
    value = json.dumps(state.to_dict()).encode()
    assert len(value) <= estimate
    assert len(value) >= 0.98 * estimate  # and the estimate is close, not a wild guess
    compact = json.dumps(state.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
    assert len(compact) < len(value)  # what Faust writes is smaller still
    assert len(value) + len(state.brand.encode()) <= s.max_state_record_bytes()
    assert s.max_state_record_bytes() <= s.changelog_max_record_bytes


def test_settings_refuse_a_state_that_cannot_fit() -> None:
    with pytest.raises(ValueError, match="max_tracked_posts_per_bucket to at most 980"):
        AlertSettings(max_tracked_posts_per_bucket=2_500)
    with pytest.raises(ValueError, match="changelog_max_record_bytes"):
        AlertSettings(changelog_max_record_bytes=500_000)
    with pytest.raises(ValueError, match="lower samples_per_alert"):
        AlertSettings(samples_per_alert=50)
    assert AlertSettings(max_tracked_posts_per_bucket=2_500, changelog_max_record_bytes=2 << 20)


def test_defaults_fit_kafkas_default_message_size() -> None:
    s = AlertSettings()
    assert s.changelog_max_record_bytes == 1_000_000
    assert s.max_state_buckets == 11
    assert s.max_state_record_bytes() <= 1_000_000


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([10, 60]),
    st.sampled_from([0, 30, 90]),
    st.sampled_from([0, 60, 300]),
    st.sampled_from([0, 5, 100]),
    st.lists(
        st.tuples(
            st.one_of(st.floats(-100, 200), st.sampled_from([0.1, 9.9, 59.9])),
            st.one_of(st.floats(-200, 400), st.sampled_from([29.9, 95.0, 99.9, 299.9, 300.0])),
            st.booleans(),
        ),
        min_size=1,
        max_size=120,
    ),
)
def test_engine_never_holds_more_buckets_than_the_bound(
    bucket: int,
    lateness: int,
    skew: int,
    tolerance: int,
    steps: list[tuple[float, float, bool]],
) -> None:
    """Any mix of on-time, late, ahead and future posts and advance() calls."""
    s = AlertSettings(
        bucket_seconds=bucket,
        allowed_lateness_seconds=lateness,
        max_clock_skew_seconds=skew,
        watermark_future_tolerance_seconds=tolerance,
        max_tracked_posts_per_bucket=10,
        changelog_max_record_bytes=10_000_000,
    )
    engine = AlertEngine(s)
    state: BrandState | None = None
    clock = 0.0
    for offset, (step, ahead, advance) in enumerate(steps):
        clock += step
        if advance and state is not None:
            state = engine.advance(state, T0.timestamp() + clock).state
        else:
            p = post(clock + ahead, ahead > 0, author=str(offset), scored_delay=-ahead)
            state = engine.apply(state, p, 0, offset).state
        assert len(state.buckets) <= s.max_state_buckets
