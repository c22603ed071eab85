"""Incident lifecycle: one trigger, at most one escalation, one resolve per incident.

`Lifecycle.step()` takes the open incident (or None) and one bucket's evaluation, and returns
the incident after it plus the alert events to emit:
- no incident and the verdict is above -> open one, emit `trigger` (dedup_key = brand + the
  start of the triggering bucket);
- incident open and the verdict is more severe than the incident -> emit `trigger` with the
  same dedup_key and the higher severity (escalation);
- incident open and nothing elevated for `quiet_seconds` of event time -> emit `resolve`.

The engine runs one lifecycle per rule family: the negative-share rule (`kind="share"`,
dedup_key `brandmon/<brand>/<start>`) and the mention-surge rule (`kind="surge"`, dedup_key
`brandmon/<brand>/surge/<start>`), so a brand can have one open incident of each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.detector import Verdict
from brandmon.alerts.state import Incident
from brandmon.alerts.stats import EwStat
from brandmon.contracts.alerts import SEVERITY_RANK, Action, Alert, Rule, Severity

#: PagerDuty accepts dedup keys up to 255 characters.
MAX_DEDUP_KEY = 255


@dataclass(frozen=True)
class Evaluation:
    """One closed bucket's judgement, with the baseline as it stood before the bucket."""

    brand: str
    bucket_start: float
    bucket_end: float
    verdict: Verdict
    elevated: bool
    share: EwStat
    volume: EwStat
    warm: bool
    model_id: str
    model_version: str
    #: mention_surge only: voices and negative voices the baseline expected in the window.
    expected_voices: float | None = None
    expected_negatives: float | None = None
    #: Unusual terms of the window's negative posts (alerts.topics); named by triggers only.
    topic_terms: tuple[str, ...] = ()


#: Which rule family a lifecycle runs: its incidents and dedup keys are its own.
Kind = Literal["share", "surge"]


#: The whole seconds a datetime can hold (years 1 to 9999). Event times come from posts, and
#: a window or quiet period reaches minutes beyond them, so edges are clamped, not raised.
EARLIEST = datetime.min.replace(tzinfo=UTC).timestamp()
LATEST = datetime.max.replace(tzinfo=UTC, microsecond=0).timestamp()


def utc(epoch_seconds: float) -> datetime:
    """The UTC datetime of an event time, clamped to the years 1 to 9999."""
    return datetime.fromtimestamp(min(max(epoch_seconds, EARLIEST), LATEST), tz=UTC)


def compact_stamp(when: datetime) -> str:
    """`20260105T010000Z`, always with four digits of year (strftime drops them on Linux)."""
    return f"{when.year:04d}{when:%m%d}T{when:%H%M%S}Z"


def dedup_key(brand: str, start: float, kind: Kind = "share") -> str:
    """Stable key of an incident: brand, rule family (surge only) and the start of its
    triggering bucket."""
    stamp = compact_stamp(utc(start))
    family = "/surge" if kind == "surge" else ""
    key = f"brandmon/{brand}{family}/{stamp}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(brand.encode()).hexdigest()[:16]
    return f"brandmon/{brand[:200]}~{digest}{family}/{stamp}"


class Lifecycle:
    """Turns evaluations into alert events; see the module docstring."""

    def __init__(self, settings: AlertSettings, kind: Kind = "share") -> None:
        self.settings = settings
        self.kind: Kind = kind

    def step(
        self, incident: Incident | None, ev: Evaluation
    ) -> tuple[Incident | None, list[Alert]]:
        verdict = ev.verdict
        if incident is None:
            if verdict.severity is None:
                return None, []
            opened = Incident(
                dedup_key(ev.brand, ev.bucket_start, self.kind),
                ev.bucket_start,
                verdict.severity,
                ev.bucket_end,
            )
            return opened, [self._alert(ev, opened, "trigger", verdict.severity, verdict.rule)]
        if ev.elevated:
            incident.last_elevated = max(incident.last_elevated, ev.bucket_end)
        if verdict.severity and SEVERITY_RANK[verdict.severity] > SEVERITY_RANK[incident.severity]:
            incident.severity = verdict.severity
            return incident, [self._alert(ev, incident, "trigger", verdict.severity, verdict.rule)]
        # Resolve after the quiet period, and only once the window itself no longer triggers:
        # a window that still holds the spike's buckets would open a new incident at once
        # (a brand gone silent right after a spike used to resolve and re-trigger).
        quiet = ev.bucket_end - incident.last_elevated >= self.settings.quiet_seconds
        if quiet and verdict.severity is None:
            severity: Severity = "info" if incident.severity == "info" else "warning"
            if incident.severity == "critical":
                severity = "critical"
            return None, [self._alert(ev, incident, "resolve", severity, "quiet")]
        return incident, []

    def _alert(
        self, ev: Evaluation, incident: Incident, action: Action, severity: Severity, rule: Rule
    ) -> Alert:
        window = ev.verdict.window
        evaluated_at = utc(ev.bucket_end)
        bucket = self.settings.bucket_seconds
        return Alert(
            alert_id=Alert.make_id(incident.dedup_key, action, severity, evaluated_at),
            dedup_key=incident.dedup_key,
            brand=ev.brand,
            action=action,
            severity=severity,
            rule=rule,
            summary=self._summary(ev, incident, action, severity),
            incident_start=utc(incident.start),
            evaluated_at=evaluated_at,
            window_start=utc(window.first * bucket),
            window_end=utc((window.last + 1) * bucket),
            counts=window.counts,
            baseline_share=ev.share.mean if ev.warm else None,
            baseline_std=ev.share.std if ev.warm else None,
            baseline_voices=ev.volume.mean if ev.volume.weight > 0 else None,
            z=ev.verdict.z,
            wilson_lower=ev.verdict.wilson_lower,
            threshold=ev.verdict.threshold,
            sample_post_ids=list(window.samples) if action == "trigger" else [],
            model_id=ev.model_id,
            model_version=ev.model_version,
            expected_voices=ev.expected_voices,
            expected_negative_voices=ev.expected_negatives,
            topic_terms=list(ev.topic_terms) if action == "trigger" else [],
        )

    def _summary(self, ev: Evaluation, incident: Incident, action: Action, severity: str) -> str:
        counts = ev.verdict.window.counts
        share = f"{counts.share:.0%}" if counts.share is not None else "n/a"
        start = utc(incident.start)
        since = f"{start.year:04d}-{start:%m-%d %H:%M} UTC"
        span = _duration(
            (ev.verdict.window.last - ev.verdict.window.first + 1) * self.settings.bucket_seconds
        )
        if self.kind == "surge":
            return self._surge_summary(ev, action, severity, span, since)
        if action == "resolve":
            return (
                f"[RESOLVED] {ev.brand}: negative share back to {share} over the last "
                f"{span}, nothing elevated for {_duration(self.settings.quiet_seconds)} "
                f"(incident since {since})."
            )
        if ev.warm:
            z = f"{ev.verdict.z:.1f}" if ev.verdict.z is not None else "n/a"
            against = f"baseline {ev.share.mean:.0%} ± {ev.share.std:.0%}, z {z}"
        else:
            against = f"warm-up rule: above {self.settings.warmup_share:.0%} with 95% confidence"
        return (
            f"[{severity.upper()}] {ev.brand}: {share} negative{_about(ev)} "
            f"({counts.negative_voices} of {counts.voices} voices, {counts.posts} posts) "
            f"over {span} ({against}); incident since {since}."
        )

    def _surge_summary(
        self, ev: Evaluation, action: Action, severity: str, span: str, since: str
    ) -> str:
        counts = ev.verdict.window.counts
        expected = ev.expected_voices or 0.0
        if action == "resolve":
            return (
                f"[RESOLVED] {ev.brand}: mention surge over, {counts.voices} voices over the "
                f"last {span} (about {expected:.0f} expected), nothing elevated for "
                f"{_duration(self.settings.quiet_seconds)} (incident since {since})."
            )
        ratio = f"x{counts.voices / expected:.1f}" if expected > 0 else "from nothing"
        z = f"{ev.verdict.z:.1f}" if ev.verdict.z is not None else "n/a"
        if ev.expected_negatives is None:
            sentiment = "sentiment unknown (volume only)"
        else:
            share = f"{counts.share:.0%}" if counts.share is not None else "n/a"
            sentiment = (
                f"{share} negative ({counts.negative_voices} negative voices vs "
                f"{ev.expected_negatives:.0f} expected)"
            )
        return (
            f"[{severity.upper()}] {ev.brand}: mention surge{_about(ev)}, {counts.voices} "
            f"voices over "
            f"{span} vs {expected:.0f} expected at this hour ({ratio}, z {z}); {sentiment}; "
            f"incident since {since}."
        )


def _about(ev: Evaluation) -> str:
    """`, about: refund, outage, app crash` when the window's negative posts name a topic."""
    return f", about: {', '.join(ev.topic_terms)}" if ev.topic_terms else ""


def _duration(seconds: float) -> str:
    """`5 min`, `1.5 min` or `30 s`: how a person reads a window length."""
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{round(seconds / 60, 2):g} min"
