"""Settings of the spike detector, the incident lifecycle and the notifiers.

Nested in brandmon's settings as `alerts`, so every field is an environment variable such as
BRANDMON_ALERTS__BUCKET_SECONDS=60 or BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY=... . The defaults
follow docs/alerts.md; the comments say what each knob trades off.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class AlertSettings(BaseModel):
    """Every knob of the alert path; env vars look like BRANDMON_ALERTS__BUCKET_SECONDS=60."""

    model_config = ConfigDict(frozen=True)

    # --- buckets and windows (event time) -------------------------------------------------
    bucket_seconds: int = Field(60, gt=0, description="Width of an event-time bucket.")
    window_buckets: int = Field(5, gt=0, description="Buckets in the sliding evaluation window.")
    #: Shorter windows (the newest 1 and 2 buckets) are tested too, so a sharp spike is caught
    #: within two buckets instead of waiting for it to fill the whole window. Their z-score
    #: uses the baseline std scaled by sqrt(window_buckets / k) (a k-bucket share is noisier),
    #: and their z thresholds are raised to keep the false-alarm rate per hour (detector.py).
    short_windows: tuple[int, ...] = Field((1, 2), description="Lengths of the short windows.")
    allowed_lateness_seconds: int = Field(
        30, ge=0, description="A bucket closes when the brand's event time passes end + this."
    )
    #: Posts whose event time is this far after the time they were scored carry a broken clock;
    #: they would close every open bucket at once, so they are counted and ignored.
    max_clock_skew_seconds: int = Field(300, ge=0)

    # --- baseline ---------------------------------------------------------------------------
    baseline_half_life_seconds: float = Field(
        3600, gt=0, description="Half-life (event time) of the EW mean/variance of the share."
    )
    #: Effective (decayed) number of buckets the baseline must hold before z-scores are
    #: trusted; until then the static warm-up rule applies. A long gap decays it again.
    warmup_buckets: float = Field(30, ge=0)

    # --- trigger ----------------------------------------------------------------------------
    z_warning: float = Field(3.0, gt=0)
    z_critical: float = Field(5.0, gt=0)
    #: Floor of the baseline's standard deviation (share units), so a very steady brand does
    #: not page on a two-point wobble.
    std_floor: float = Field(0.03, gt=0, le=1)
    wilson_z: float = Field(1.96, gt=0, description="z of the Wilson interval (1.96 = 95%).")
    wilson_margin: float = Field(
        0.10, ge=0, le=1, description="Wilson lower bound must exceed baseline share by this."
    )
    min_negatives: int = Field(20, ge=1, description="Negative voices needed in a window.")
    min_posts: int = Field(50, ge=1, description="Voices needed in a window (and to learn).")
    warmup_share: float = Field(
        0.40, gt=0, lt=1, description="Warm-up rule: Wilson lower bound of the share above this."
    )
    warmup_critical_share: float = Field(0.60, gt=0, lt=1)
    warmup_min_posts: int = Field(50, ge=1)

    # --- lifecycle --------------------------------------------------------------------------
    quiet_seconds: int = Field(
        900, ge=0, description="Event time without an elevated bucket before a resolve."
    )
    #: The newest bucket counts as still elevated while its Wilson lower bound is within this
    #: much of the trigger level (hysteresis: an incident does not resolve on one dip).
    keepalive_slack: float = Field(0.02, ge=0, le=1)
    samples_per_alert: int = Field(5, ge=0, le=50)
    #: Distinct texts remembered per bucket for the duplicate and author guards (~37 bytes
    #: each in the state); beyond this a post still counts (as its own voice unless its text
    #: was already seen). Bounds a brand's state, written to the changelog as one record, to
    #: ~0.65 MB (7 buckets), under Kafka's default 1 MB message limit.
    max_tracked_posts_per_bucket: int = Field(2_500, gt=0)

    # --- notifiers --------------------------------------------------------------------------
    log_notifier: bool = True
    notifier_queue_size: int = Field(1000, gt=0, description="Alerts waiting per channel.")
    notifier_max_attempts: int = Field(6, gt=0)
    notifier_backoff_initial_seconds: float = Field(0.5, gt=0)
    notifier_backoff_max_seconds: float = Field(30.0, gt=0)
    notifier_timeout_seconds: float = Field(10.0, gt=0, description="Per HTTP request.")
    notifier_drain_seconds: float = Field(
        5.0, ge=0, description="On shutdown, time given to queued alerts before they drop."
    )
    pagerduty_url: str = PAGERDUTY_EVENTS_URL
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_source: str = "brandmon"
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlertSettings:
        if self.z_critical < self.z_warning:
            raise ValueError("z_critical must be >= z_warning")
        if any(not 0 < k <= self.window_buckets for k in self.short_windows):
            raise ValueError("every short window must be between 1 and window_buckets")
        if self.warmup_critical_share < self.warmup_share:
            raise ValueError("warmup_critical_share must be >= warmup_share")
        if self.notifier_backoff_max_seconds < self.notifier_backoff_initial_seconds:
            raise ValueError("notifier_backoff_max_seconds must be >= the initial backoff")
        return self
