"""The alert engine: one scored post in, the brand's new state and any alert events out.

Pure: it reads no clock and does no I/O; every decision comes from the posts' event times,
so replaying the same posts gives the same alerts, byte for byte. The Faust agent calls it::

    engine = AlertEngine(settings.alerts)
    result = engine.apply(state, post, partition, offset)   # state: BrandState | None
    # result.state   -> store in the table (result.state.to_dict())
    # result.alerts  -> produce to `alerts`, then hand to the notifiers
    # result.buckets -> produce to `brand.sentiment`
    # result.outcome -> "applied" | "late" | "future" | "duplicate" (for metrics)

    result = engine.advance(state, stream_time)              # a brand gone silent
    # result.outcome -> "advanced" (store the state, deliver the records) | "unchanged"

`apply()` and `advance()` update the state passed in and return it (parse it fresh from the
table, or copy it, if you need the old one). A (partition, offset) at or below the highest
already applied for that partition is a replay: nothing changes and nothing is emitted.

A bucket closes when the brand's watermark passes its end plus the allowed lateness; each
close evaluates the windows ending with that bucket. The watermark is the highest event time
seen, where a post's event time counts for at most its `scored_at` plus a small tolerance
(`watermark_time()`): a post dated minutes ahead is counted in its own bucket but cannot close
the buckets that on-time posts are still filling. Buckets with no posts are closed too, but
once a whole window is empty the engine jumps to the next bucket with posts (stopping where an
open incident's quiet period runs out), and an empty window is not judged at all (it could
only end an incident), so a long gap costs a few evaluations, not one per empty bucket.

Two rule families run on every closed bucket, each with its own incident and lifecycle: the
negative-share spike (alerts.detector) and the mention surge (alerts.surge: voices far above
the brand's normal for that hour, alerts.seasonal). A trigger of either names the terms
that are unusually frequent in its window's negative posts (alerts.topics), learned from the
buckets of no incident. `AlertEngine(settings, volume_only=True)`
runs the surge rule alone, on counts of voices of unknown sentiment (`apply_count()`, for
`brandmon alerts backtest --counts`).

A brand that goes silent has no watermark of its own to close its last buckets and resolve
its incident; `advance()` closes them as if its watermark had reached a stream time the
caller derives from the records of the other brands on the same partition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.buckets import Window, add_post, bucket_index, window_counts
from brandmon.alerts.detector import Detector, Verdict
from brandmon.alerts.lifecycle import Evaluation, Lifecycle, utc
from brandmon.alerts.rarity import RarityBaseline, RarityDetector, RarityVerdict
from brandmon.alerts.state import BrandState, Bucket, Incident
from brandmon.alerts.surge import SurgeDetector, SurgeVerdict
from brandmon.alerts.topics import merge, rank_terms
from brandmon.contracts.alerts import SEVERITY_RANK, Alert, BrandBucket
from brandmon.contracts.posts import ScoredPost

#: Most buckets without posts the rarity model learns as silence at once (a week of 1-minute
#: buckets; a brand silent for longer has decayed to what the newest week says).
SILENCE_LEARNED_BUCKETS = 7 * 24 * 60

#: "advanced" / "unchanged": from `advance()`, whether the state changed (store it if so).
Outcome = Literal["applied", "late", "future", "duplicate", "advanced", "unchanged"]


@dataclass(frozen=True)
class ApplyResult:
    """What one `AlertEngine.apply()` or `AlertEngine.advance()` produced."""

    state: BrandState
    alerts: list[Alert]
    buckets: list[BrandBucket]
    outcome: Outcome


class AlertEngine:
    """Per-brand event-time buckets, spike detector and incident lifecycle in one call."""

    def __init__(self, settings: AlertSettings, *, volume_only: bool = False) -> None:
        self.settings = settings
        self.volume_only = volume_only
        self.detector = Detector(settings)
        self.lifecycle = Lifecycle(settings)
        self.surge_detector = SurgeDetector(settings, volume_only=volume_only)
        self.rarity = (
            RarityDetector(settings, volume_only=volume_only)
            if settings.surge_model == "rarity"
            else None
        )
        self.surge_lifecycle = Lifecycle(settings, kind="surge")

    def apply(
        self, state: BrandState | None, post: ScoredPost, partition: int, offset: int
    ) -> ApplyResult:
        """Fold one scored post into its brand's state; see the module docstring."""
        if state is None:
            state = BrandState(brand=post.brand)
        elif state.brand != post.brand:
            raise ValueError(
                f"post of brand {post.brand!r} applied to the state of {state.brand!r}"
            )
        if state.already_applied(partition, offset):
            return ApplyResult(state, [], [], "duplicate")
        state.offsets[partition] = offset
        vouched = self.watermark_time(post)
        if vouched is None:
            state.future_events += 1
            return ApplyResult(state, [], [], "future")
        index = bucket_index(post.created_at.timestamp(), self.settings.bucket_seconds)
        if state.next_close is not None and index < state.next_close:
            state.late_events += 1
            return ApplyResult(state, [], [], "late")
        self._add(state, index, post)
        if state.watermark is None or vouched > state.watermark:
            state.watermark = vouched
        target = self.close_target(state.watermark)
        if state.next_close is None:
            state.next_close = target
        alerts, records = self._close_until(state, target)
        return ApplyResult(state, alerts, records, "applied")

    def apply_count(
        self, state: BrandState | None, brand: str, bucket_start: float, voices: int
    ) -> ApplyResult:
        """Volume-only history: `voices` voices of unknown sentiment in the bucket that starts
        at `bucket_start` (epoch seconds, aligned to bucket_seconds), which then closes.

        Buckets must come oldest first; one at or before the last closed one is "late".
        """
        if voices < 0:
            raise ValueError(f"a bucket cannot hold {voices} voices")
        if state is None:
            state = BrandState(brand=brand)
        index = bucket_index(bucket_start, self.settings.bucket_seconds)
        if state.next_close is not None and index < state.next_close:
            state.late_events += 1
            return ApplyResult(state, [], [], "late")
        state.buckets[index] = Bucket(index=index, posts=voices, overflow_posts=voices)
        end = (index + 1) * self.settings.bucket_seconds + self.settings.allowed_lateness_seconds
        state.watermark = max(state.watermark or end, end)
        target = self.close_target(state.watermark)
        if state.next_close is None:
            state.next_close = index
        alerts, records = self._close_until(state, target)
        return ApplyResult(state, alerts, records, "applied")

    def advance(self, state: BrandState, stream_time: float) -> ApplyResult:
        """Close the brand's buckets as if its watermark had reached `stream_time`.

        For a brand gone silent: its last buckets close and an open incident resolves through
        the normal lifecycle (same dedup_key, one resolve). `stream_time` is event time in
        epoch seconds, e.g. the highest `watermark_time()` of the posts on the brand's
        partition so far. Time never moves back: a `stream_time` whose buckets are already
        closed changes nothing, so a second call with the same time emits nothing. The brand's
        own watermark is kept; its posts older than the closed buckets count as late.

        Outcome "advanced" when the state changed (store it), else "unchanged": nothing to
        close, or nothing left to close for (no open bucket, no incident: an idle brand's
        state is not rewritten however often it is advanced).
        """
        if not math.isfinite(stream_time):
            raise ValueError(f"stream time must be a finite epoch time, not {stream_time!r}")
        target = self.close_target(stream_time)
        if state.next_close is None or state.next_close >= target:
            return ApplyResult(state, [], [], "unchanged")
        if not state.buckets and not _open_incidents(state):
            return ApplyResult(state, [], [], "unchanged")
        alerts, records = self._close_until(state, target)
        return ApplyResult(state, alerts, records, "advanced")

    def watermark_time(self, post: ScoredPost) -> float | None:
        """How far `post` moves event time: its created_at, at most its scored_at plus
        `watermark_future_tolerance_seconds`; None when it is ignored as "future"."""
        event_time = post.created_at.timestamp()
        scored_time = post.scored_at.timestamp()
        if event_time > scored_time + self.settings.max_clock_skew_seconds:
            return None
        return min(event_time, scored_time + self.settings.watermark_future_tolerance_seconds)

    def close_target(self, event_time: float) -> int:
        """The first bucket still open once event time has reached `event_time`."""
        return bucket_index(
            event_time - self.settings.allowed_lateness_seconds, self.settings.bucket_seconds
        )

    def _add(self, state: BrandState, index: int, post: ScoredPost) -> None:
        bucket = state.buckets.get(index)
        if bucket is None:
            bucket = state.buckets[index] = Bucket(index=index)
        add_post(
            bucket,
            post,
            self.settings.max_tracked_posts_per_bucket,
            self.settings.samples_per_alert,
            self.settings.topic_terms_per_bucket if self.settings.topic_max_terms else 0,
        )
        if post.label is None:  # unscored: counted in the bucket apart, no model to name
            return
        clip = self.settings.MAX_MODEL_FIELD_CHARS  # bounds the state (AlertSettings)
        state.model_id, state.model_version = post.model_id[:clip], post.model_version[:clip]

    def _close_until(self, state: BrandState, target: int) -> tuple[list[Alert], list[BrandBucket]]:
        """Close every bucket before `target`, oldest first."""
        alerts: list[Alert] = []
        records: list[BrandBucket] = []
        while state.next_close is not None and state.next_close < target:
            index = self._next_to_evaluate(state, state.next_close, target)
            self._learn_silence(state, state.next_close, index)
            if self._worth_evaluating(state, index):
                new_alerts, record = self._evaluate(state, index)
                alerts += new_alerts
                if record is not None:
                    records.append(record)
            else:
                self._learn_silence(state, index, index + 1)
            state.next_close = index + 1
            oldest_needed = state.next_close - self.settings.window_buckets + 1
            for old in [i for i in state.buckets if i < oldest_needed]:
                del state.buckets[old]
        return alerts, records

    def _learn_silence(self, state: BrandState, first: int, stop: int) -> None:
        """The rarity model learns buckets `[first, stop)`, closed without a post, as silence
        (0 voices): a quiet brand's nights are part of what is normal for it. At most
        SILENCE_LEARNED_BUCKETS of them (the newest): older ones have decayed away."""
        if self.rarity is None or not self.settings.surge_enabled or state.surge.rarity is None:
            return
        for index in range(max(first, stop - SILENCE_LEARNED_BUCKETS), stop):
            self._learn_surge(state, index, window_counts((), index, index, 0))

    def _next_to_evaluate(self, state: BrandState, index: int, target: int) -> int:
        """`index`, or further on when the window is empty (a gap with no traffic)."""
        first = index - self.settings.window_buckets + 1
        if any(first <= i <= index for i in _scored_buckets(state)):
            return index
        later = [i for i in _scored_buckets(state) if i > index]
        land = min(min(later) - 1 if later else target - 1, target - 1)
        for incident in _open_incidents(state):
            due = incident.last_elevated + self.settings.quiet_seconds
            land = min(land, math.ceil(due / self.settings.bucket_seconds) - 1)
        return max(index, land)

    def _worth_evaluating(self, state: BrandState, index: int) -> bool:
        """False when judging the window ending at `index` could change nothing.

        An empty window has no verdict, no elevated bucket, no record and nothing to learn;
        all it can do is end an open incident whose quiet period has run out.
        """
        first = index - self.settings.window_buckets + 1
        if any(first <= i <= index for i in _scored_buckets(state)):
            return True
        end = (index + 1) * self.settings.bucket_seconds
        return any(
            end - incident.last_elevated >= self.settings.quiet_seconds
            for incident in _open_incidents(state)
        )

    def _evaluate(self, state: BrandState, index: int) -> tuple[list[Alert], BrandBucket | None]:
        """Judge the windows ending with bucket `index`, step both lifecycles, learn."""
        s = self.settings
        newest = window_counts(state.buckets.values(), index, index, 0)
        if self.volume_only:
            alerts = self._surge(state, index, newest)
            record = self._record(state, index, None, newest)
            self._learn_surge(state, index, newest)
            return alerts, record
        was_open = state.incident is not None or state.surge_incident is not None
        buckets = state.buckets.values()
        full = window_counts(buckets, index - s.window_buckets + 1, index, s.samples_per_alert)
        full_verdict = self.detector.judge(full, state.share, state.volume)
        verdict = full_verdict
        for length in sorted(set(s.short_windows) - {s.window_buckets}):
            window = window_counts(buckets, index - length + 1, index, s.samples_per_alert)
            verdict = _most_severe(verdict, self.detector.judge(window, state.share, state.volume))
        ev = Evaluation(
            brand=state.brand,
            bucket_start=index * s.bucket_seconds,
            bucket_end=(index + 1) * s.bucket_seconds,
            verdict=verdict,
            elevated=self.detector.elevated(newest, state.share, state.volume),
            share=replace(state.share),
            volume=replace(state.volume),
            warm=self.detector.is_warm(state.share),
            model_id=state.model_id,
            model_version=state.model_version,
            topic_terms=self._topic_terms(state, verdict),
        )
        state.incident, alerts = self.lifecycle.step(state.incident, ev)
        if s.surge_enabled:
            alerts += self._surge(state, index, newest)
        record = self._record(state, index, full_verdict, newest)
        if state.incident is None:
            self._learn(state, full.counts.share, full.voices, ev)
        if self.rarity is not None:
            self._learn_surge(state, index, newest)
        if not was_open and state.incident is None and state.surge_incident is None:
            if self.rarity is None:
                self._learn_surge(state, index, newest)
            self._learn_topics(state, index - s.window_buckets + 1)
        return alerts, record

    def _surge(self, state: BrandState, index: int, newest: Window) -> list[Alert]:
        """Judge the surge windows ending with bucket `index` and step the surge lifecycle."""
        s = self.settings
        if not s.surge_enabled:
            return []
        if self.rarity is not None:
            return self._rarity_surge(state, index, newest, self.rarity)
        judged = self.surge_detector.judge(
            state.buckets.values(),
            index,
            state.surge,
            self.detector.trigger_level(state.share),
            state.share.mean if self.detector.is_warm(state.share) else None,
        )
        elevated = self.surge_detector.elevated(newest, state.surge)
        alerts = self._step_surge(state, index, judged.verdict, elevated, judged)
        return alerts

    def _rarity_surge(
        self, state: BrandState, index: int, newest: Window, rarity: RarityDetector
    ) -> list[Alert]:
        """The rarity model's verdict (alerts/rarity.py) through the same surge lifecycle."""
        baseline = _rarity_baseline(state)
        was_open = state.surge_incident is not None
        judged = rarity.judge(
            state.buckets.values(),
            index,
            baseline,
            self.detector.trigger_level(state.share),
            state.share.mean if self.detector.is_warm(state.share) else None,
            incident_open=was_open,
        )
        elevated = rarity.elevated(newest, baseline, index)
        alerts = self._step_surge(state, index, judged.verdict, elevated, judged)
        opened = not was_open and state.surge_incident is not None
        rarity.opened(baseline, index, judged.score, new=opened)
        return alerts

    def _step_surge(
        self,
        state: BrandState,
        index: int,
        verdict: Verdict,
        elevated: bool,
        judged: SurgeVerdict | RarityVerdict,
    ) -> list[Alert]:
        """Step the surge lifecycle (either model) with the verdict of bucket `index`."""
        s = self.settings
        ev = Evaluation(
            brand=state.brand,
            bucket_start=index * s.bucket_seconds,
            bucket_end=(index + 1) * s.bucket_seconds,
            verdict=verdict,
            elevated=elevated,
            share=replace(state.share),
            volume=replace(state.volume),
            warm=self.detector.is_warm(state.share),
            model_id=state.model_id,
            model_version=state.model_version,
            expected_voices=judged.expected_voices,
            expected_negatives=None if self.volume_only else judged.expected_negatives,
            topic_terms=self._topic_terms(state, verdict),
        )
        state.surge_incident, alerts = self.surge_lifecycle.step(state.surge_incident, ev)
        return alerts

    def _topic_terms(self, state: BrandState, verdict: Verdict) -> tuple[str, ...]:
        """The unusual terms of the negative posts of a triggering verdict's window."""
        s = self.settings
        if verdict.severity is None or self.volume_only or not s.topic_max_terms:
            return ()
        window = verdict.window
        sketches = [
            (b.terms, b.term_total, b.term_rounds)
            for b in state.buckets.values()
            if window.first <= b.index <= window.last
        ]
        return tuple(t.term for t in rank_terms(merge(sketches), state.topics, s))

    def _learn_topics(self, state: BrandState, index: int) -> None:
        """Learn the normal vocabulary from the bucket leaving the window: a bucket is learned
        window_buckets - 1 buckets after it closed, so the onset of a spike, which triggers
        within a few buckets, is not learned before its incident opens."""
        bucket = state.buckets.get(index)
        if self.volume_only or bucket is None or not bucket.term_total:
            return
        state.topics.learn(
            bucket.terms, bucket.term_total, bucket.term_rounds, index, self.settings
        )

    def _learn_surge(self, state: BrandState, index: int, newest: Window) -> None:
        """Update the seasonal baseline with one bucket outside any incident (a bucket that
        was in an incident of either rule, even its last one, is not learned)."""
        if self.rarity is not None and self.settings.surge_enabled:
            # every bucket, incidents included: the rarity model clips what it learns, so a
            # burst barely moves it while a lasting shift becomes the new normal
            baseline = _rarity_baseline(state)
            self.rarity.remember(baseline, newest, index)
            baseline.voices.learn(newest.voices, index, self.settings)
            if not self.volume_only:
                baseline.negatives.learn(newest.negative_voices, index, self.settings)
            return
        if not self.settings.surge_enabled or state.surge_incident or state.incident:
            return
        surge = state.surge
        elapsed = float(index - surge.learned_at) if surge.learned_at is not None else 0.0
        surge.voices.learn(newest.voices, index, elapsed, self.settings)
        if not self.volume_only:
            surge.negatives.learn(newest.negative_voices, index, elapsed, self.settings)
        surge.learned_at = index

    def _learn(self, state: BrandState, share: float | None, voices: int, ev: Evaluation) -> None:
        """Update the baseline with a full window outside any incident.

        Windows with fewer than min_posts voices are skipped (their share is noise). Once
        warm, the share is clipped to mean ± z_warning·std, so the onset of a spike (before
        it triggers) or a one-off outlier moves the baseline only a little, while a lasting
        level shift is still learned within a few half-lives. A clipped window moves the
        mean but not the spread: learning the clipped distance as variance would widen the
        band (and the overdispersion, and with it the volume guards) on every bucket of a
        slow climb, until the climb could never page (the slow_ramp scenario).
        """
        s = self.settings
        if share is None or voices < s.min_posts:
            return
        clipped = False
        if ev.warm:
            band = s.z_warning * max(state.share.std, s.std_floor)
            low, high = state.share.mean - band, state.share.mean + band
            clipped = not low <= share <= high
            share = min(max(share, low), high)
        elapsed = ev.bucket_end - (state.baseline_at or ev.bucket_end)
        state.share.update(share, elapsed, s.baseline_half_life_seconds, spread=not clipped)
        state.volume.update(float(voices), elapsed, s.baseline_half_life_seconds)
        state.baseline_at = ev.bucket_end

    def _record(
        self, state: BrandState, index: int, verdict: Verdict | None, newest: Window
    ) -> BrandBucket | None:
        bucket = state.buckets.get(index)
        if bucket is None or (bucket.posts == 0 and bucket.unscored == 0):
            return None
        s = self.settings
        start = utc(index * s.bucket_seconds)
        warm = self.detector.is_warm(state.share)
        phase = "incident" if _open_incidents(state) else ("normal" if warm else "warmup")
        window = verdict.window.counts if verdict is not None else newest.counts
        return BrandBucket(
            bucket_id=f"{state.brand}|{start.isoformat()}",
            brand=state.brand,
            bucket_start=start,
            bucket_end=utc((index + 1) * s.bucket_seconds),
            posts=bucket.posts,
            negatives=bucket.negatives,
            neutrals=bucket.neutrals,
            positives=bucket.positives,
            unscored=bucket.unscored,
            window=window,
            baseline_share=state.share.mean if warm else None,
            baseline_std=state.share.std if warm else None,
            z=verdict.z if verdict is not None else None,
            wilson_lower=verdict.wilson_lower if verdict is not None else None,
            state=phase,
            late_events=state.late_events,
        )


def _scored_buckets(state: BrandState) -> list[int]:
    """Indices of the buckets holding scored posts: a bucket of only unscored posts (languages
    no model reads) is no traffic to the rules, so it never makes a window worth judging."""
    return [i for i, bucket in state.buckets.items() if bucket.posts]


def _open_incidents(state: BrandState) -> list[Incident]:
    """The brand's open incidents, of both rule families."""
    return [i for i in (state.incident, state.surge_incident) if i is not None]


def _most_severe(best: Verdict, other: Verdict) -> Verdict:
    """The more severe verdict; on a tie the one with the higher z; else `best`."""

    def rank(verdict: Verdict) -> tuple[int, float]:
        severity = SEVERITY_RANK[verdict.severity] if verdict.severity else -1
        return severity, verdict.z if verdict.z is not None else verdict.wilson_lower

    if other.severity is None:
        return best
    return other if rank(other) > rank(best) else best


def _rarity_baseline(state: BrandState) -> RarityBaseline:
    """The brand's rarity-model memory, created on first use."""
    if state.surge.rarity is None:
        state.surge.rarity = RarityBaseline()
    return state.surge.rarity
