"""BrandBucket and Alert records for the `brandmon top` tests, as the alert stage writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from brandmon.contracts.alerts import Alert, BrandBucket, WindowCounts

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def counts(voices: int, share: float | None) -> WindowCounts:
    negative = round(voices * share) if share is not None else 0
    return WindowCounts(
        posts=voices,
        negatives=negative,
        voices=voices,
        negative_voices=negative,
        share=share,
        distinct_authors=voices,
        duplicate_texts=0,
    )


def bucket(
    brand: str,
    minute: int,
    share: float | None = 0.15,
    *,
    posts: int = 100,
    baseline: float | None = 0.15,
    std: float | None = 0.02,
    z: float | None = 0.0,
    state: str = "normal",
) -> BrandBucket:
    start = T0 + minute * MINUTE
    return BrandBucket(
        bucket_id=f"{brand}|{start.isoformat()}",
        brand=brand,
        bucket_start=start,
        bucket_end=start + MINUTE,
        posts=posts,
        negatives=round(posts * (share or 0)),
        neutrals=0,
        positives=posts - round(posts * (share or 0)),
        window=counts(posts, share),
        baseline_share=baseline,
        baseline_std=std,
        z=z,
        wilson_lower=None,
        state=state,
        late_events=0,
    )


def alert(
    brand: str,
    minute: int,
    action: str = "trigger",
    severity: str = "warning",
    *,
    rule: str = "baseline",
    started: int | None = None,
    kind: str = "",
) -> Alert:
    """An alert event at `minute` of the incident that began at `started` (default: now)."""
    start = T0 + (minute if started is None else started) * MINUTE
    at = T0 + minute * MINUTE
    key = f"brandmon/{brand}/{kind}{start:%Y%m%dT%H%M%SZ}"
    return Alert(
        alert_id=Alert.make_id(key, action, severity, at),
        dedup_key=key,
        brand=brand,
        action=action,
        severity=severity,
        rule=rule,
        summary=f"[{severity.upper()}] {brand}: {action}",
        incident_start=start,
        evaluated_at=at,
        window_start=at - MINUTE,
        window_end=at,
        counts=counts(200, 0.4),
        baseline_share=0.15,
        baseline_std=0.02,
        baseline_voices=200.0,
        z=6.0,
        wilson_lower=0.33,
        threshold=0.25,
        sample_post_ids=[],
        model_id="tiny@1",
        model_version="1",
    )
