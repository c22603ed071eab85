"""Every Prometheus metric brandmon exports, created against an injectable registry.

Build one `Metrics(registry)` at start-up and pass it down; tests pass a fresh
`CollectorRegistry()` and read values back with `registry.get_sample_value(...)`.
Names follow Prometheus conventions: counters end in `_total`, durations are in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from brandmon.contracts.posts import ScoredPost
from brandmon.settings import Settings

#: Inference of one batch on 2 CPU cores takes ~20-200 ms; GPUs go lower, long batches higher.
INFERENCE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: Produce-to-scored latency: max_wait (default 0.1 s) plus a few batch times, up to lag storms.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: Batch sizes are bounded by max_batch (default 64).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: One stage of one batch: parsing or serialising a few posts takes ~50 us-5 ms, inference and
#: produce-and-ack 5-300 ms, waiting up to max_wait or a lag storm's seconds.
STAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
)  # fmt: skip
#: The stages of a score batch, in order (the `stage` label of brandmon_batch_stage_seconds).
SCORE_STAGES = ("wait", "parse", "language", "tokenize", "inference", "serialize", "deliver")
#: Top-class probability: at least 1/3 with three classes (1/2 for a binary model), so nothing
#: below 0.4; finer steps near 1, where most predictions of a well-trained model fall. 0.6 is
#: the low-confidence line of the BrandmonLowConfidenceRising rule (deploy/prometheus).
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
#: The `brand` of brandmon_predictions_total for brands beyond max_brand_series.
OTHER_BRANDS = "_other"


class Metrics:
    """The metric families of all stages, registered on `registry`.

    `max_brand_series` bounds the brands of brandmon_predictions_total (BRANDMON_MAX_BRAND_SERIES).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        max_brand_series: int = Settings.model_fields["max_brand_series"].default,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_brand_series = max_brand_series
        self._prediction_brands: set[str] = set()
        r = self.registry
        # --- score stage ---
        self.posts_consumed = Counter(
            "brandmon_posts_consumed_total", "Records read from the posts topic.", registry=r
        )
        self.posts_scored = Counter(
            "brandmon_posts_scored_total",
            "Posts scored and acknowledged on the scored topic, by label.",
            ["label"],
            registry=r,
        )
        self.posts_dlq = Counter(
            "brandmon_posts_dlq_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "brandmon_batch_size",
            "Records per batch taken from the posts topic.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "brandmon_inference_seconds",
            "Seconds spent in the classifier per batch (tokenize + run + softmax).",
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.language_posts = Counter(
            "brandmon_language_posts_total",
            "Posts of each language the score stage found (und: could not tell), by the model "
            "that scored them (model_id) or 'unscored' when none reads the language.",
            ["lang", "model"],
            registry=r,
        )
        self.batch_stage_seconds = Histogram(
            "brandmon_batch_stage_seconds",
            "Seconds one score batch spent in each stage: wait (its oldest record queued in the "
            "worker before the batch went to the model), parse, tokenize, inference (session "
            "runs and softmax), serialize, deliver (produce and broker acks); with a "
            "challenger model also challenger (its whole scoring of the batch).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.inference_retries = Counter(
            "brandmon_inference_retries_total",
            "Batches whose inference raised and was retried or split.",
            registry=r,
        )
        self.latency_seconds = Histogram(
            "brandmon_produce_to_scored_seconds",
            "Seconds from the post's Kafka timestamp to its scored record being acknowledged.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.produce_errors = Counter(
            "brandmon_produce_errors_total",
            "Failed attempts to produce output records (retried until they succeed).",
            ["topic"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "brandmon_consumer_lag",
            "Records not yet committed by the worker's group: end offset minus committed offset.",
            ["topic", "partition"],
            registry=r,
        )
        self.model_info = Gauge(
            "brandmon_model_info",
            "1 for each model the worker scores with, by role: champion (a promotion replaces "
            "the series) and challenger (while one is set), with its execution provider.",
            ["model_id", "model_version", "role", "provider"],
            registry=r,
        )
        self.model_promotions = Counter(
            "brandmon_model_promotions_total",
            "Model promotions and rollbacks asked of the worker, by outcome: promoted, or why "
            "the new model was refused (the old one keeps scoring).",
            ["outcome"],
            registry=r,
        )
        # --- score stage: what the model predicts (drift rules in deploy/prometheus) ---
        self.predictions = Counter(
            "brandmon_predictions_total",
            "Posts scored and acknowledged on the scored topic, by brand, predicted label and "
            f"model version; brands beyond max_brand_series count as brand {OTHER_BRANDS!r}.",
            ["brand", "label", "model_version"],
            registry=r,
        )
        # No brand label: ~12 series per (label, model_version) already; per brand it would be
        # 12 x 3 x max_brand_series. Confidence shifts are a model-wide signal.
        self.prediction_confidence = Histogram(
            "brandmon_prediction_confidence",
            "Top-class probability of each prediction counted in brandmon_predictions_total, by "
            "predicted label and model version (its _count is the brand-free prediction count).",
            ["label", "model_version"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        # --- score stage: a challenger beside the champion (stream/challenger.py) ---
        self.role_predictions = Counter(
            "brandmon_role_predictions_total",
            "Predictions delivered, by the role of the model that made them (champion, "
            "challenger) and predicted label: the scored topic's records, plus the shadow "
            "topic's in shadow mode.",
            ["role", "label"],
            registry=r,
        )
        self.shadow_comparisons = Counter(
            "brandmon_shadow_comparisons_total",
            "Shadow mode: posts scored by both models and delivered, by the champion's label, "
            "the challenger's label, and whether they agree.",
            ["champion_label", "challenger_label", "agreement"],
            registry=r,
        )
        self.challenger_errors = Counter(
            "brandmon_challenger_errors_total",
            "Batches the challenger failed to score, by mode (shadow: the batch has no shadow "
            "records; split: the champion scored the challenger's posts instead).",
            ["mode"],
            registry=r,
        )
        self.challenger_changes = Counter(
            "brandmon_challenger_changes_total",
            "Challenger requests handled at run time (`brandmon model challenger`), by outcome: "
            "set, cleared, or why the folder was refused (the challenger before stays).",
            ["outcome"],
            registry=r,
        )
        # --- both stages: progress (what /ready reports) ---
        self.agent_stalled = Gauge(
            "brandmon_agent_stalled",
            "1 when the agent has acked nothing for stall_seconds while its partitions have "
            "records waiting (then /ready answers 503), else 0.",
            ["agent"],
            registry=r,
        )
        self.agent_idle_seconds = Gauge(
            "brandmon_agent_idle_seconds",
            "Seconds since the agent last delivered and acked a batch.",
            ["agent"],
            registry=r,
        )
        # --- alert stage ---
        self.negative_share = Gauge(
            "brandmon_brand_negative_share",
            "Negative share of the brand's posts over the current evaluation window.",
            ["brand"],
            registry=r,
        )
        self.brand_posts_window = Gauge(
            "brandmon_brand_posts_window",
            "Posts about the brand in the current evaluation window.",
            ["brand"],
            registry=r,
        )
        self.brand_unscored_window = Gauge(
            "brandmon_brand_unscored_window",
            "Posts about the brand in the current evaluation window that no model read "
            "(languages without a model); counted in no alert rule.",
            ["brand"],
            registry=r,
        )
        # The detector's volume guards and Wilson interval count voices, not posts; the
        # Prometheus spike rules (deploy/prometheus) need the same two counts to agree with it.
        self.brand_voices_window = Gauge(
            "brandmon_brand_voices_window",
            "Voices (distinct authors, plus distinct texts without an author) about the brand "
            "in the current evaluation window.",
            ["brand"],
            registry=r,
        )
        self.brand_negative_voices_window = Gauge(
            "brandmon_brand_negative_voices_window",
            "Voices with at least one negative post about the brand in the current evaluation "
            "window (negative_share = this / brandmon_brand_voices_window).",
            ["brand"],
            registry=r,
        )
        self.brand_series_evicted = Counter(
            "brandmon_brand_series_evicted_total",
            "Per-brand series removed to stay within max_brand_series (least recently updated "
            "brand first; its state stays in the table).",
            registry=r,
        )
        self.late_events = Counter(
            "brandmon_late_events_total",
            "Scored posts that arrived after their bucket closed (counted, otherwise ignored).",
            registry=r,
        )
        self.alerts = Counter(
            "brandmon_alerts_total",
            "Alert events emitted, by severity and action.",
            ["severity", "action"],
            registry=r,
        )
        self.notifier_failures = Counter(
            "brandmon_notifier_failures_total",
            "Notification attempts that failed, by channel.",
            ["channel"],
            registry=r,
        )
        self.notifier_dropped = Counter(
            "brandmon_notifier_dropped_total",
            "Alert events dropped by a notifier (queue full or retries exhausted), by channel.",
            ["channel"],
            registry=r,
        )
        self.future_events = Counter(
            "brandmon_future_events_total",
            "Scored posts whose event time is after their scoring time by more than the allowed "
            "clock skew (counted, otherwise ignored by the alert stage).",
            registry=r,
        )
        self.alert_input_invalid = Counter(
            "brandmon_alert_input_invalid_total",
            "Records on the scored topic the alert stage could not read or apply (dead-lettered "
            "to the scored dead-letter topic).",
            registry=r,
        )
        self.alert_state_resets = Counter(
            "brandmon_alert_state_resets_total",
            "Brands whose stored alert state could not be read and were started afresh (their "
            "baseline is learned again; an open incident is forgotten).",
            registry=r,
        )
        # --- notifier dispatcher (alerts topic -> channels; dropped_total counts its dead
        # letters per channel too, so the existing NotifierDropped rule keeps working) ---
        self.notifier_delivered = Counter(
            "brandmon_notifier_delivered_total",
            "Alert events a channel accepted, by channel.",
            ["channel"],
            registry=r,
        )
        self.notifier_dead_letters = Counter(
            "brandmon_notifier_dead_letters_total",
            "Alert events written to the alerts dead-letter topic instead of a channel, by "
            "channel and reason (expired, rejected, error; unreadable with channel 'all').",
            ["channel", "reason"],
            registry=r,
        )
        self.notifier_skipped = Counter(
            "brandmon_notifier_skipped_total",
            "Alert events not sent to a channel by its routing, by channel and reason "
            "(below_min_severity: under the channel's BRANDMON_ALERTS__*_MIN_SEVERITY).",
            ["channel", "reason"],
            registry=r,
        )
        self.notifier_pending = Gauge(
            "brandmon_notifier_pending",
            "Alert events read from the alerts topic that the channel has not finished.",
            ["channel"],
            registry=r,
        )
        self.notifier_oldest_pending_seconds = Gauge(
            "brandmon_notifier_oldest_pending_seconds",
            "Age (since written to the alerts topic) of the oldest alert event the channel has "
            "not finished; 0 when none.",
            ["channel"],
            registry=r,
        )

    def observe_predictions(self, posts: Iterable[ScoredPost]) -> None:
        """Count delivered predictions by brand, label and model version, and their confidence.

        The first `max_brand_series` brands this process sees keep their own series for good;
        later ones are counted as `_other`. Counters are never evicted: a removed and re-created
        counter loses the increments around it, and the sum over brands would drift.
        """
        for post in posts:
            scores = post.scores
            if post.label is None or scores is None:  # unscored: no prediction to count
                continue
            confidence = max(scores.negative, scores.neutral, scores.positive)
            version = post.model_version
            brand = self._prediction_brand(post.brand)
            self.predictions.labels(brand=brand, label=post.label, model_version=version).inc()
            self.prediction_confidence.labels(label=post.label, model_version=version).observe(
                confidence
            )

    def _prediction_brand(self, brand: str) -> str:
        if brand in self._prediction_brands:
            return brand
        if len(self._prediction_brands) < self.max_brand_series:
            self._prediction_brands.add(brand)
            return brand
        return OTHER_BRANDS
