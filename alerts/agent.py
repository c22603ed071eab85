"""The alert agent: the thin Faust shell around `AlertEngine`, on the shared batch loop.

    posts.scored (raw JSON, key = brand)
      -> parse_scored(value)                  unreadable -> posts.scored.dlq with its reason
      -> AlertEngine.apply(state, post, partition, offset)   per event, in order
      -> AlertEngine.advance(...)             brands gone silent on the partition: their
                                              buckets close on the other brands' progress
      -> BatchLoop: `alerts` and `brand.sentiment` records produced and acknowledged,
         then every changed brand state written to the changelog AND acknowledged,
         then the batch is acked (brandmon/batches.py)

Durability: the input is acked only after the brands' new states are acknowledged on the
table's changelog, so a SIGKILL at any point either replays the batch on the old state (the
same alerts again, with the same `alert_id` and `dedup_key`: consumers dedup) or finds the
new state, which remembers the highest offset it applied per partition and skips the
replay. Notifications are not sent from here: the notifier dispatcher delivers them from the
`alerts` topic with its own committed position (alerts/dispatch.py), so they survive
notifier outages and restarts.

The table's changelog partition is the event's partition, so `posts.scored` must be keyed
by brand (the score agent does that). Memory is bounded: parsed states are cached for at
most `max_tracked_brands` brands (the rest stay in the table), and per-brand metric series
exist for at most `max_brand_series` brands, the least recently updated evicted first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from brandmon.alerts.engine import ApplyResult
from brandmon.alerts.overrides import BrandEngines
from brandmon.alerts.state import BrandState, StateVersionError
from brandmon.batches import BatchLoop, Prepared, Progress, faust_send, topic_exists
from brandmon.contracts.records import RawRecord, RecordRejected, dead_letter, parse_scored
from brandmon.delivery import Deliverer, Output
from brandmon.metrics import Metrics
from brandmon.settings import Settings

log = logging.getLogger(__name__)

TABLE_NAME = "brandmon-alert-state"


def register_alert_agent(app: faust.App, settings: Settings, metrics: Metrics) -> AlertAgent:
    """Declare the topics, the state table and the agent (concurrency 1) on `app`.

    Notifications are not sent from here: they are delivered from the `alerts` topic by
    the notifier dispatcher, with its own committed position (alerts/dispatch.py).
    """
    return AlertAgent(app, settings, metrics)


@dataclass
class BatchOutcome:
    """One batch applied: new states by brand (and the partition of each), what to produce."""

    states: dict[bytes, tuple[int, BrandState]] = field(default_factory=dict)
    results: list[ApplyResult] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    rejected: int = 0


class LruSet:
    """Keys in least-recently-touched order, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def touch(self, key: str) -> str | None:
        """Mark `key` used; returns the key evicted to make room, if any."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return None
        self._keys[key] = None
        if len(self._keys) > self.limit:
            return self._keys.popitem(last=False)[0]
        return None

    def __len__(self) -> int:
        return len(self._keys)


class AlertAgent:
    """Consumes `posts.scored`; see the module docstring for the order of effects."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        # per-brand settings (BRANDMON_ALERTS__OVERRIDES_FILE), checked here at start-up:
        # raises OverridesError naming the brand and field
        self.engines = BrandEngines.load(settings.alerts)
        self.engine = self.engines.default  # event-time fields are the same for every brand
        if self.engines.overridden:
            log.info(
                "alert overrides for %d brand(s), %d distinct settings",
                len(self.engines.overridden),
                self.engines.distinct,
            )
        self.scored = app.topic(settings.topic_scored, partitions=settings.topic_partitions)
        self.topic_alerts = settings.topic_alerts
        self.topic_buckets = settings.topic_brand_sentiment
        self.topic_dlq = settings.topic_scored_dlq
        topics = {
            name: app.topic(name)
            for name in (self.topic_alerts, self.topic_buckets, self.topic_dlq)
        }
        self.table = app.Table(
            TABLE_NAME,
            partitions=settings.topic_partitions,
            # keys: the brand as raw bytes (as on posts.scored; bytes -> "raw" serializer);
            # values: JSON objects (Faust's default table serializer)
            key_type=bytes,
            help="Per-brand alert state (alerts.state.BrandState.to_dict()).",
        )
        # Parsed states by brand, valid while the table still holds the dict we wrote.
        self._cache: OrderedDict[bytes, tuple[object, BrandState]] = OrderedDict()
        # Brands with buckets still to close, by partition, and each partition's stream time
        # (the newest trustworthy event time seen on it): silent brands close on it.
        self._open: dict[int, OrderedDict[bytes, None]] = {}
        self._stream_time: dict[int, float] = {}
        self._swept_at: dict[int, float] = {}
        self._series = LruSet(settings.max_brand_series)
        self.progress = Progress("alerts")
        self.loop = BatchLoop(
            max_batch=settings.max_batch,
            max_wait=settings.max_wait,
            deliverer=Deliverer(
                faust_send(topics),
                metrics,
                topic_settings={
                    self.topic_alerts: "BRANDMON_TOPIC_ALERTS",
                    self.topic_buckets: "BRANDMON_TOPIC_BRAND_SENTIMENT",
                    self.topic_dlq: "BRANDMON_TOPIC_SCORED_DLQ",
                },
                exists=topic_exists(settings),
            ),
            progress=self.progress,
            stop_grace=settings.stop_grace_seconds,
        )
        app.agent(self.scored, name="brandmon.alerts", concurrency=1)(self.run)

    async def run(self, stream: faust.StreamT[Any]) -> None:
        await self.loop.run(stream, self.prepare)

    async def prepare(self, events: Sequence[EventT[Any]]) -> Prepared:
        try:
            outcome = self.apply_all(events)
        except BaseException:
            self._cache.clear()  # states may be ahead of the table: re-read them
            raise
        return Prepared(
            outcome.outputs,
            persist=lambda: self.persist(outcome),
            after_ack=lambda delivered: self.account(outcome),
        )

    # --- pure part: events in, states and outputs out ------------------------------------

    def apply_all(self, events: Sequence[EventT[Any]]) -> BatchOutcome:
        """Apply events in order; then close the buckets of brands gone silent."""
        outcome = BatchOutcome()
        for event in events:
            message = event.message
            self.apply_one(outcome, message.partition, message.offset, message)
        for partition in {event.message.partition for event in events}:
            self.sweep(outcome, partition)
        for result in outcome.results:
            for alert in result.alerts:
                outcome.outputs.append(self._output(self.topic_alerts, alert))
            for record in result.buckets:
                outcome.outputs.append(self._output(self.topic_buckets, record))
        return outcome

    def apply_one(self, outcome: BatchOutcome, partition: int, offset: int, message: Any) -> None:
        raw = RawRecord(
            topic=message.topic,
            partition=partition,
            offset=offset,
            key=message.key,
            value=message.value,
        )
        try:
            post = parse_scored(message.value)
        except RecordRejected as exc:
            self._reject(outcome, raw, exc.reason, exc.detail)
            return
        key = post.brand.encode()
        state = self._state(outcome, key)
        try:
            result = self.engines.for_brand(post.brand).apply(state, post, partition, offset)
        except Exception as exc:  # a bug in the engine must not stop every other brand
            log.exception("alert engine failed on %s; dead-lettering it", raw.source)
            self._cache.pop(key, None)
            self._reject(outcome, raw, "engine_error", f"the alert engine raised: {exc!r}")
            return
        if result.outcome != "duplicate":
            outcome.states[key] = (partition, result.state)
            self._track(partition, key, self.engine.watermark_time(post))
        outcome.results.append(result)

    def _track(self, partition: int, key: bytes, trusted: float | None) -> None:
        """Remember the brand as open on `partition`; move the partition's stream time."""
        if trusted is not None:  # None: a post from the future, which must not move time
            previous = self._stream_time.get(partition, trusted)
            self._stream_time[partition] = max(previous, trusted)
        brands = self._open.setdefault(partition, OrderedDict())
        brands[key] = None
        brands.move_to_end(key)
        while len(brands) > self.settings.max_tracked_brands:
            brands.popitem(last=False)

    def sweep(self, outcome: BatchOutcome, partition: int) -> None:
        """Advance the brands of `partition` that fell behind its stream time (silence).

        Runs at most once per bucket of stream time per partition, so its cost does not grow
        with the batch rate.
        """
        now = self._stream_time.get(partition)
        brands = self._open.get(partition)
        if now is None or not brands:
            return
        step = self.settings.alerts.bucket_seconds
        if now - self._swept_at.get(partition, float("-inf")) < step:
            return
        self._swept_at[partition] = now
        for key in list(brands):
            state = self._state(outcome, key)
            if state is None:
                del brands[key]
                continue
            if state.next_close is None or state.next_close >= self.engine.close_target(now):
                continue  # nothing of this brand's to close yet
            result = self.engines.for_brand(state.brand).advance(state, now)
            if result.outcome == "advanced":
                outcome.states[key] = (partition, result.state)
                outcome.results.append(result)
            if not result.state.buckets and not (
                result.state.incident or result.state.surge_incident
            ):
                del brands[key]

    def _state(self, outcome: BatchOutcome, key: bytes) -> BrandState | None:
        changed = outcome.states.get(key)
        if changed is not None:
            return changed[1]
        stored = self.table.get(key)
        if stored is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] is stored:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            return BrandState.from_dict(stored)
        except StateVersionError:
            raise  # another brandmon version's state: stop rather than overwrite it
        except Exception as exc:  # a damaged state must not stop every brand, forever
            # Policy: start the brand afresh. Crashing instead would restart into the same
            # record (the changelog keeps it), so no brand would be watched at all.
            log.error(
                "the stored alert state of brand key %r cannot be read (%r); starting it "
                "afresh: its baseline is learned again and an open incident is forgotten",
                key[:256],
                exc,
            )
            self.metrics.alert_state_resets.inc()
            self._cache.pop(key, None)
            return None

    def _reject(self, outcome: BatchOutcome, raw: RawRecord, reason: str, detail: str) -> None:
        outcome.rejected += 1
        letter = dead_letter(raw, reason, detail, datetime.now(UTC))
        key = raw.key if raw.key is None or len(raw.key) <= 1024 else None
        value = letter.model_dump_json().encode()
        outcome.outputs.append(Output(self.topic_dlq, key, value, source=raw.source))
        self.metrics.alert_input_invalid.inc()
        log.warning("dead-lettered unreadable record %s (%s)", raw.source, reason)

    @staticmethod
    def _output(topic: str, record: Any) -> Output:
        return Output(topic, record.brand.encode(), record.model_dump_json().encode())

    # --- after delivery: durable state, then metrics -------------------------------------

    async def persist(self, outcome: BatchOutcome) -> None:
        """Write every changed state and wait until the changelog has acknowledged each."""
        writes = []
        for key, (partition, state) in outcome.states.items():
            value = state.to_dict()
            self.table.data[key] = value
            writes.append(self.table.send_changelog(partition, key, value))
            self._cache[key] = (value, state)
            self._cache.move_to_end(key)
        while len(self._cache) > self.settings.max_tracked_brands:
            self._cache.popitem(last=False)
        if writes:
            await asyncio.gather(*writes)

    def account(self, outcome: BatchOutcome) -> None:
        """Metrics for a delivered batch."""
        for result in outcome.results:
            if result.outcome == "late":
                self.metrics.late_events.inc()
            elif result.outcome == "future":
                self.metrics.future_events.inc()
            for record in result.buckets:
                self._brand_gauges(record)
            for alert in result.alerts:
                self.metrics.alerts.labels(severity=alert.severity, action=alert.action).inc()

    def _brand_gauges(self, record: Any) -> None:
        brand = record.brand
        evicted = self._series.touch(brand)
        gauges = (
            self.metrics.negative_share,
            self.metrics.brand_posts_window,
            self.metrics.brand_unscored_window,
            self.metrics.brand_voices_window,
            self.metrics.brand_negative_voices_window,
        )
        if evicted is not None:
            for gauge in gauges:
                with contextlib.suppress(KeyError):
                    gauge.remove(evicted)
            self.metrics.brand_series_evicted.inc()
        share = record.window.share
        self.metrics.negative_share.labels(brand=brand).set(share if share is not None else 0)
        self.metrics.brand_posts_window.labels(brand=brand).set(record.window.posts)
        self.metrics.brand_unscored_window.labels(brand=brand).set(record.window.unscored)
        self.metrics.brand_voices_window.labels(brand=brand).set(record.window.voices)
        self.metrics.brand_negative_voices_window.labels(brand=brand).set(
            record.window.negative_voices
        )
