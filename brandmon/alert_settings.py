"""Settings of the spike detector, the incident lifecycle and the notifiers.

Nested in brandmon's settings as `alerts`, so every field is an environment variable such as
BRANDMON_ALERTS__BUCKET_SECONDS=60 or BRANDMON_ALERTS__PAGERDUTY_ROUTING_KEY=... . The defaults
are explained in the README (on-call section); the comments say what each knob trades off.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

Sensitivity = Literal["fewer", "balanced", "more"]

#: The thresholds each sensitivity preset sets, for both rules together (share rule, then
#: mention surge). `balanced` is the defaults of the fields themselves. What each costs in
#: missed and extra alerts, measured on the scenario benchmark: docs/alert-tuning.md. A field
#: set explicitly (environment, overrides file) wins over its preset value.
SENSITIVITY_PRESETS: dict[str, dict[str, float | int]] = {
    "fewer": {
        "z_warning": 3.5,
        "wilson_margin": 0.12,
        "min_negatives": 25,
        "min_posts": 60,
        "surge_factor": 2.5,
        "surge_z": 6.0,
        "surge_min_voices": 60,
        "surge_min_negative_voices": 25,
    },
    "balanced": {},
    "more": {
        "z_warning": 2.5,
        "wilson_margin": 0.07,
        "min_negatives": 15,
        "min_posts": 40,
        "surge_factor": 1.7,
        "surge_z": 4.0,
        "surge_min_voices": 40,
        "surge_min_negative_voices": 15,
    },
}
#: The rarity surge model (surge_model = "rarity", alerts/rarity.py): the values of shared
#: surge fields it was measured with (docs/surge.md), where not set explicitly, and what each
#: preset sets for it in place of the daily-rhythm model's surge values above.
RARITY_DEFAULTS: dict[str, float | int] = {
    "surge_z": 4.5,
    "surge_min_voices": 20,
    "surge_min_negative_voices": 10,
    "surge_keepalive_z": 2.0,
    "surge_season_half_life_days": 5,
}
RARITY_PRESETS: dict[str, dict[str, float | int]] = {
    # measured points on the curve of benchmark score against triggers per series-week of
    # real mention counts (`brandmon alerts curve`, docs/alert-tuning.md)
    "fewer": {
        "surge_rarity": 0.9998,
        "surge_z": 6.0,
        "surge_factor": 2.2,
    },
    "balanced": {},
    "more": {
        "surge_rarity": 0.997,
        "surge_z": 3.5,
        "surge_refractory_hours": 24,
        "surge_factor": 1.7,
        "surge_min_voices": 15,
        "surge_min_negative_voices": 8,
    },
}
#: Every field some preset sets.
PRESET_FIELDS = sorted(
    {
        name
        for presets in (SENSITIVITY_PRESETS, RARITY_PRESETS)
        for values in presets.values()
        for name in values
    }
)


class AlertSettings(BaseModel):
    """Every knob of the alert path; env vars look like BRANDMON_ALERTS__BUCKET_SECONDS=60."""

    model_config = ConfigDict(frozen=True)

    # --- sensitivity preset -------------------------------------------------------------------
    #: `fewer` / `balanced` / `more` alerts: sets the thresholds of both rules together
    #: (SENSITIVITY_PRESETS); `balanced` is the defaults below. A threshold set explicitly
    #: (e.g. BRANDMON_ALERTS__Z_WARNING) wins over the preset's value.
    sensitivity: Sensitivity = "balanced"
    #: Per-brand sensitivity and thresholds (a TOML file, alerts/overrides.py); read and
    #: checked when the alert worker or `brandmon alerts backtest` starts.
    overrides_file: Path | None = None

    @model_validator(mode="after")
    def _apply_sensitivity(self) -> AlertSettings:
        """Fill the preset's thresholds that were not set explicitly (runs before the other
        checks, which see the final values). `model_fields_set` stays what was given."""
        values = dict(SENSITIVITY_PRESETS[self.sensitivity])
        if self.surge_model == "rarity":
            values = {k: v for k, v in values.items() if not k.startswith("surge_")}
            values |= RARITY_DEFAULTS | RARITY_PRESETS[self.sensitivity]
        for name, value in values.items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)
        return self

    def explicit_values(self) -> dict[str, Any]:
        """The fields given explicitly (not defaults, not filled in by the preset)."""
        return {name: getattr(self, name) for name in self.model_fields_set}

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
    #: Posts whose event time is more than this after the time they were scored carry a broken
    #: clock: they are counted (`future_events`) and ignored.
    max_clock_skew_seconds: int = Field(300, ge=0)
    #: A post moves its brand's watermark to at most its `scored_at` plus this, while it is
    #: still counted in the bucket of its own (possibly future) event time. An honest post is
    #: scored after it was written, so this only binds on a clock ahead of the score worker's;
    #: without the cap one post dated minutes ahead would close the open buckets early and
    #: turn every on-time post of the next minutes into a late one. It absorbs ordinary clock
    #: drift (NTP keeps hosts within well under a second); keep it well below
    #: allowed_lateness_seconds, since a post ahead still takes this much off the lateness
    #: that on-time posts get.
    watermark_future_tolerance_seconds: int = Field(5, ge=0)

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

    # --- mention surge (volume of voices against the brand's daily rhythm) -----------------
    #: The surge rule (alerts/surge.py): voices (and negative voices) of the newest 1 or 2
    #: buckets far above what is normal for the brand at that hour of the day. Its incidents
    #: have their own rule name (mention_surge) and dedup_key (brandmon/<brand>/surge/<start>).
    surge_enabled: bool = True
    surge_windows: tuple[int, ...] = Field((1, 2), description="Lengths (buckets) judged.")
    #: A surge needs all three: observed >= surge_factor * expected, a z of at least surge_z
    #: on an overdispersed Poisson scale ((observed - expected) / sqrt(phi * expected)) and
    #: at least surge_min_voices voices in the window (surge_min_negative_voices negative
    #: voices for a negative surge).
    surge_factor: float = Field(2.0, gt=1)
    surge_z: float = Field(5.0, gt=0)
    surge_min_voices: int = Field(50, ge=1)
    surge_min_negative_voices: int = Field(20, ge=1)
    #: Half-life, in buckets, of the brand's recent level (the baseline until the hour of day
    #: has enough history) and of its overdispersion phi.
    surge_level_half_life_buckets: float = Field(15, gt=0)
    #: Effective buckets of recent level needed before the rule judges at all.
    surge_warmup_buckets: float = Field(10, ge=0)
    #: Half-life, in days of history, of each hour-of-day level (24 per series).
    surge_season_half_life_days: float = Field(7, gt=0)
    #: Days of history of an hour of the day before its own level replaces the recent one.
    surge_season_warm_days: float = Field(2, ge=0)
    #: Learning clips a bucket to expected ± this many (overdispersed) standard deviations, so
    #: a surge's onset before it triggers, or a one-off burst, barely moves the baseline.
    surge_clip_z: float = Field(3.0, gt=0)
    #: An open surge incident stays alive while the newest bucket holds at least this many
    #: times the expected voices (or negative voices), with a z of at least
    #: surge_keepalive_z (so a Poisson wobble of a quiet series does not hold it open).
    surge_keepalive_factor: float = Field(1.5, ge=1)
    surge_keepalive_z: float = Field(4.0, ge=0)
    #: Which surge model judges: "daily" (the rule above, the default) or "rarity"
    #: (alerts/rarity.py, built on real mention counts: a weekly profile and a level on a
    #: variance-stabilised scale, firing only on what is rare for the brand, one incident per
    #: burst; it takes RARITY_DEFAULTS / RARITY_PRESETS and the fields below).
    surge_model: Literal["daily", "rarity"] = "rarity"
    #: rarity: windows judged, in minutes of event time (at least one bucket each)
    surge_window_minutes: tuple[int, ...] = Field((1, 2, 5, 15, 30, 60, 120))
    #: rarity: a surge's score must reach this quantile of the brand's own past scores (per
    #: 5 minutes of traffic: 0.999 is about 2 buckets a week) and at least surge_z
    surge_rarity: float = Field(0.999, gt=0.9, lt=1)
    #: rarity: half-life of the score history; history needed before it replaces the fixed
    #: surge_provisional_z (a new brand's first days)
    surge_history_half_life_days: float = Field(14, gt=0)
    surge_history_warm_days: float = Field(2, ge=0)
    surge_provisional_z: float = Field(8.0, gt=0)
    #: rarity: one incident per burst: none within surge_refractory_hours of the last one
    #: opened, and until surge_hold_hours only one whose score beats that one's peak
    surge_refractory_hours: float = Field(48, ge=0)
    surge_hold_hours: float = Field(72, ge=0)
    #: rarity: half-life of the brand's level above or below its profile (a lasting shift is
    #: the new normal within a few half-lives)
    surge_level_half_life_hours: float = Field(4, gt=0)
    #: rarity, the second test: a lasting shift of the brand's whole level (a slow rise over
    #: hours that no window sees as sudden) of at least surge_shift_z spreads that is rare for
    #: the brand (the surge_rarity quantile of its own past shifts)
    surge_shift: bool = True
    surge_shift_z: float = Field(2.0, gt=0)
    #: rarity: the 168 hours of the week: half-life and history before one is the profile
    surge_week_half_life_weeks: float = Field(3, gt=0)
    surge_week_warm_weeks: float = Field(2, ge=0)

    # --- lifecycle --------------------------------------------------------------------------
    quiet_seconds: int = Field(
        900, ge=0, description="Event time without an elevated bucket before a resolve."
    )
    #: The newest bucket counts as still elevated while its Wilson lower bound is within this
    #: much of the trigger level (hysteresis: an incident does not resolve on one dip).
    keepalive_slack: float = Field(0.02, ge=0, le=1)
    samples_per_alert: int = Field(5, ge=0, le=50)
    #: Distinct texts remembered per bucket for the duplicate and author guards (at most 45
    #: bytes each in the state); beyond this a post still counts (as its own voice unless its
    #: text was already seen). The main term of a brand's state size: with the defaults a
    #: state holds up to 11 buckets (the window, the allowed lateness and the clock skew
    #: ahead), so 980 keep its worst case (~0.99 MB with the topic terms and the rarity
    #: model's 59 kB) within changelog_max_record_bytes (980 at most; 1,153 with
    #: topic_max_terms=0). It was 1,100 before the rarity model became the default.
    max_tracked_posts_per_bucket: int = Field(980, gt=0)

    # --- topic terms (alerts/topics.py) -----------------------------------------------------
    #: Terms a trigger names ("about: refund, outage, app crash"); 0 names none and counts none.
    topic_max_terms: int = Field(3, ge=0, le=10)
    #: Terms of negative posts kept per bucket (a Misra-Gries sketch: counts never overstate).
    topic_terms_per_bucket: int = Field(32, ge=1, le=256)
    #: Terms of the brand's normal negative vocabulary kept (the smallest weight goes first).
    topic_baseline_terms: int = Field(150, ge=1, le=2_000)
    #: Half-life (event time) of that vocabulary: long, so a weekly-ish complaint is normal.
    topic_baseline_half_life_seconds: float = Field(21_600, gt=0)
    #: A named term is in the negative posts of at least this many voices in the window ...
    topic_min_voices: int = Field(5, ge=1)
    #: ... and its log-odds ratio against the baseline has a z of at least this.
    topic_min_z: float = Field(3.0, ge=0)
    #: Strength (pseudo-counts) of the Dirichlet prior: more needs more evidence for rare terms.
    topic_prior_strength: float = Field(1_000.0, gt=0)
    #: Term occurrences the baseline holds before terms are compared with it; a newer brand
    #: gets its window's most frequent terms.
    topic_min_baseline: float = Field(500.0, ge=0)

    # --- state size -------------------------------------------------------------------------
    #: Largest record the alert state table's changelog topic accepts: its max.message.bytes
    #: (Kafka's default is 1,000,000). A brand's whole state is one record, and a record the
    #: broker refuses stops the alert worker, so the settings are checked at start-up: the
    #: worst-case state (`max_state_record_bytes()`) must fit.
    changelog_max_record_bytes: int = Field(1_000_000, gt=0)

    #: Longest strings a post puts into the state, in characters: the limits of the brand
    #: and the post id in brandmon.contracts.posts.Post, PagerDuty's limit on a dedup key, and
    #: what the engine keeps of a model_id and a model_version (nothing else bounds those).
    MAX_BRAND_CHARS: ClassVar[int] = 256
    MAX_POST_ID_CHARS: ClassVar[int] = 512
    MAX_DEDUP_KEY_CHARS: ClassVar[int] = 255
    MAX_MODEL_FIELD_CHARS: ClassVar[int] = 128
    #: Longest topic term (alerts/topics.py), in characters, all in the BMP (6 bytes escaped).
    MAX_TERM_CHARS: ClassVar[int] = 20
    #: Partitions whose last offset one brand's state may remember: the brand is the key of
    #: posts.scored, so one, and a few more after the topic is repartitioned.
    MAX_OFFSET_PARTITIONS: ClassVar[int] = 256
    #: Worst-case JSON bytes (json.dumps defaults) of the parts of a state (alerts.state):
    #: every number at its widest (24 characters for a float, 20 for an int) and every
    #: character of a post's strings escaped to 12 bytes (an astral one is two \uXXXX).
    #: tests/alerts/test_state_size.py builds that state and checks that these bound it.
    _TOP_BYTES: ClassVar[int] = 545  # keys, numbers and brackets of BrandState.to_dict()
    #: "surge": 2 series of 26 EW stats and "surge_incident" (its key counted in strings).
    _SURGE_BYTES: ClassVar[int] = 4337
    #: "rarity" in "surge" (the rarity model, alerts/rarity.py): per series 744 numbers (3 recent,
    #: 24 x 3 hour of day, 168 x 3 hour of week, level, 3 spread, 2 x 80 history cells, count) and
    #: 3 per newest bucket of the longest window; 3 of the brand's own; at most 27 bytes each
    #: with its separators and brackets, and the keys.
    _RARITY_SERIES_NUMBERS: ClassVar[int] = 744
    _RARITY_NUMBER_BYTES: ClassVar[int] = 27
    _RARITY_KEY_BYTES: ClassVar[int] = 160
    #: {"i": .., "n": [4 ints], "t": {}, "o": [2], "s": [], "u": <int>}, ("u": unscored posts)
    _BUCKET_BYTES: ClassVar[int] = 220
    _TEXT_BYTES: ClassVar[int] = 45  # "<16 hex>": ["<16 hex>", 1],
    _OFFSET_BYTES: ClassVar[int] = 37  # "-2147483648": -9223372036854775808,
    _CHAR_BYTES: ClassVar[int] = 12
    #: Topic terms: "w": [<int>, <int>, "0", {}], in a bucket, and its doorkeeper (1,024 bits
    #: in hex); one sketch entry "<term>": [<int>, <64-bit mask>], ; "topics": {"n": <float>,
    #: "at": <int>, "t": {}}, ; one baseline entry "<term>": <float>,
    _BUCKET_TERMS_BYTES: ClassVar[int] = 62
    _DOOR_BYTES: ClassVar[int] = 256
    _TERM_ENTRY_BYTES: ClassVar[int] = 51 + 6 * MAX_TERM_CHARS
    _TOPICS_BYTES: ClassVar[int] = 76
    _BASELINE_ENTRY_BYTES: ClassVar[int] = 30 + 6 * MAX_TERM_CHARS
    #: A changelog record adds its key (the brand: at most 4 bytes a character in UTF-8) and
    #: its framing in the record batch (under 128 bytes) to the JSON value.
    _RECORD_OVERHEAD_BYTES: ClassVar[int] = 4 * MAX_BRAND_CHARS + 128

    @property
    def max_state_buckets(self) -> int:
        """Most buckets one brand's state holds at once.

        The closed buckets still inside the window (window_buckets - 1), then the open ones:
        from the oldest (allowed lateness behind the watermark) to the newest a post can land
        in (a post dated max_clock_skew_seconds past its scored_at moves the watermark to
        within max_clock_skew_seconds - watermark_future_tolerance_seconds of itself); a span
        of d seconds touches at most ceil(d / bucket_seconds) + 1 buckets.
        """
        ahead = max(0, self.max_clock_skew_seconds - self.watermark_future_tolerance_seconds)
        span = self.allowed_lateness_seconds + ahead
        return self.window_buckets - 1 + math.ceil(span / self.bucket_seconds) + 1

    def _rarity_bytes(self) -> int:
        """Upper bound of the rarity model's memory in the state (0 for the daily model)."""
        if self.surge_model != "rarity":
            return 0
        newest = max(max(1, round(m * 60 / self.bucket_seconds)) for m in self.surge_window_minutes)
        numbers = 2 * (self._RARITY_SERIES_NUMBERS + 3 * newest) + 3
        return numbers * self._RARITY_NUMBER_BYTES + self._RARITY_KEY_BYTES

    def max_state_json_bytes(self, texts_per_bucket: int | None = None) -> int:
        """Upper bound of `len(json.dumps(state.to_dict()).encode())` for one brand's state:
        max_state_buckets buckets, each with max_tracked_posts_per_bucket texts (or
        `texts_per_bucket`) and samples_per_alert sample ids."""
        texts = self.max_tracked_posts_per_bucket if texts_per_bucket is None else texts_per_bucket
        char, quotes, comma = self._CHAR_BYTES, 2, 2
        keys = 2 * self.MAX_DEDUP_KEY_CHARS  # the open incident of each rule
        strings = self.MAX_BRAND_CHARS + keys + 2 * self.MAX_MODEL_FIELD_CHARS
        sample = quotes + char * self.MAX_POST_ID_CHARS + comma
        bucket = self._BUCKET_BYTES + texts * self._TEXT_BYTES + self.samples_per_alert * sample
        bucket += self._BUCKET_TERMS_BYTES
        topics = self._TOPICS_BYTES
        if self.topic_max_terms:  # else no term is ever counted
            bucket += self._DOOR_BYTES + self.topic_terms_per_bucket * self._TERM_ENTRY_BYTES
            topics += self.topic_baseline_terms * self._BASELINE_ENTRY_BYTES
        return (
            self._TOP_BYTES
            + self._SURGE_BYTES
            + self._rarity_bytes()
            + topics
            + char * strings
            + self.MAX_OFFSET_PARTITIONS * self._OFFSET_BYTES
            + self.max_state_buckets * bucket
        )

    def max_state_record_bytes(self, texts_per_bucket: int | None = None) -> int:
        """Worst-case size of one brand's changelog record: JSON value, key and framing."""
        return self.max_state_json_bytes(texts_per_bucket) + self._RECORD_OVERHEAD_BYTES

    @model_validator(mode="after")
    def _state_fits_the_changelog(self) -> AlertSettings:
        worst = self.max_state_record_bytes()
        limit = self.changelog_max_record_bytes
        if worst <= limit:
            return self
        fixed = self.max_state_record_bytes(texts_per_bucket=0)
        per_text = self.max_state_record_bytes(texts_per_bucket=1) - fixed
        fits = (limit - fixed) // per_text
        if fits > 0:
            lower = f"lower max_tracked_posts_per_bucket to at most {fits:,}"
        else:
            lower = "lower samples_per_alert, window_buckets or max_clock_skew_seconds"
        raise ValueError(
            f"one brand's alert state can reach {worst:,} bytes, more than "
            f"changelog_max_record_bytes ({limit:,}, the state changelog topic's "
            f"max.message.bytes): {lower}, or raise the topic's max.message.bytes and "
            "changelog_max_record_bytes with it"
        )

    # --- notifiers --------------------------------------------------------------------------
    # Delivery is driven from the `alerts` topic by the notifier dispatcher (alerts/dispatch.py).
    log_notifier: bool = True
    #: Alerts read from the `alerts` topic that some channel has not finished yet; reading
    #: pauses at this many (a dead channel holds this much in memory, then waits).
    notifier_queue_size: int = Field(1000, gt=0)
    #: Failed sends are retried after initial * 2^(n-1) seconds, at most backoff_max apart,
    #: until delivered or the alert is older than notifier_max_age_seconds.
    notifier_backoff_initial_seconds: float = Field(0.5, gt=0)
    notifier_backoff_max_seconds: float = Field(30.0, gt=0)
    #: How long an alert is worth delivering, from the time it was written to the `alerts`
    #: topic: a channel still failing after this (or seeing it only later, e.g. after a long
    #: stop) dead-letters it to topic_alerts_dlq instead. A page an hour late is a post-mortem.
    notifier_max_age_seconds: float = Field(3600.0, gt=0)
    notifier_timeout_seconds: float = Field(10.0, gt=0, description="Per HTTP request.")
    #: On shutdown, time given to sends in progress; whatever is left is not committed and is
    #: sent again by the next start.
    notifier_drain_seconds: float = Field(5.0, ge=0)
    #: Notifier URLs must be https; plain http only with this set (local tests, a sidecar).
    allow_insecure_http: bool = False
    #: Networks notifier URLs may reach although not public, e.g. ["127.0.0.0/8"] for local
    #: tests or ["10.20.0.0/16"] for a relay inside the company network. Any other loopback,
    #: private or link-local host is refused at start, and a cloud metadata address always
    #: (alerts/destinations.py).
    notifier_allowed_networks: tuple[IPvAnyNetwork, ...] = ()
    pagerduty_url: str = PAGERDUTY_EVENTS_URL
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_source: str = "brandmon"
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None
    #: Lowest severity each channel is sent (info < warning < critical): a trigger goes to a
    #: channel when its severity reaches the channel's minimum, so an incident that escalates
    #: to it opens there at the escalation; a resolve goes where the incident was shown (it
    #: carries the incident's highest severity). Skips are counted in
    #: brandmon_notifier_skipped_total; `brandmon alerts test-notify` tries every channel.
    pagerduty_min_severity: Literal["info", "warning", "critical"] = "warning"
    slack_min_severity: Literal["info", "warning", "critical"] = "info"
    webhook_min_severity: Literal["info", "warning", "critical"] = "info"
    log_min_severity: Literal["info", "warning", "critical"] = "info"

    @field_validator(
        "pagerduty_min_severity",
        "slack_min_severity",
        "webhook_min_severity",
        "log_min_severity",
        mode="before",
    )
    @classmethod
    def _known_severity(cls, value: object, info: ValidationInfo) -> object:
        """One of the three severities, spelled as alerts carry them (never quoted back)."""
        if value in ("info", "warning", "critical"):
            return value
        raise ValueError(
            f"{info.field_name} must be info, warning or critical (the lowest alert severity "
            "that channel is sent)"
        )

    @field_validator("pagerduty_url", "slack_webhook_url", "webhook_url")
    @classmethod
    def _https_only(cls, value: str | SecretStr | None, info: ValidationInfo) -> object:
        """An absolute https URL (http with allow_insecure_http); the URL is never quoted."""
        if value is None:
            return value
        url = value.get_secret_value() if isinstance(value, SecretStr) else value
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            host = None
        if not host or parts.scheme not in ("http", "https"):
            problem = "it is not an absolute http(s) URL with a host: give the full https://... URL"
        elif parts.scheme == "http" and not info.data.get("allow_insecure_http"):
            problem = (
                "it is plain http: use https, or set BRANDMON_ALERTS__ALLOW_INSECURE_HTTP=true "
                "(local tests only)"
            )
        else:
            return value
        raise ValueError(f"{info.field_name} must be an https:// URL, but {problem}")

    @model_validator(mode="after")
    def _consistent(self) -> AlertSettings:
        if self.z_critical < self.z_warning:
            raise ValueError("z_critical must be >= z_warning")
        if any(not 0 < k <= self.window_buckets for k in self.short_windows):
            raise ValueError("every short window must be between 1 and window_buckets")
        if not self.surge_windows or any(
            not 0 < k <= self.window_buckets for k in self.surge_windows
        ):
            raise ValueError("surge_windows must be lengths between 1 and window_buckets")
        if not self.surge_window_minutes or any(m <= 0 for m in self.surge_window_minutes):
            raise ValueError("surge_window_minutes must be positive lengths in minutes")
        if self.surge_hold_hours < self.surge_refractory_hours:
            raise ValueError("surge_hold_hours must be >= surge_refractory_hours")
        if self.surge_keepalive_factor > self.surge_factor:
            raise ValueError("surge_keepalive_factor must be <= surge_factor")
        if self.warmup_critical_share < self.warmup_share:
            raise ValueError("warmup_critical_share must be >= warmup_share")
        if self.notifier_backoff_max_seconds < self.notifier_backoff_initial_seconds:
            raise ValueError("notifier_backoff_max_seconds must be >= the initial backoff")
        return self
