"""The alert agent: the thin Faust shell around `AlertEngine`.

    posts.scored (raw JSON, key = brand)
      -> AlertEngine.apply(state, post, partition, offset)   per event, in order
      -> `alerts` and `brand.sentiment` records, produced and acknowledged by the broker
      -> the brands' states written to a changelog-backed table (key = brand, JSON value)
      -> alerts handed to the NotifierHub (never waits), events acked

Events are taken in batches (`noack_take`, like the score agent) so each touched brand's
state is written to the table once per batch, not once per post. Delivery is at-least-once:
a crash after the alerts were produced but before the table was written replays them with the
same `alert_id` (consumers dedup by it; PagerDuty by `dedup_key`); a crash after the table
write replays nothing, because the state remembers the highest offset it applied per
partition. The table's changelog partition is the event's partition, so `posts.scored` must
be keyed by brand (the score agent does that).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.streams import _current_event as faust_current_event
from faust.types import EventT
from pydantic import ValidationError

from alerts.engine import AlertEngine, ApplyResult
from alerts.hub import NotifierHub
from alerts.schema import Alert, BrandBucket
from alerts.state import BrandState
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from stream.schema import ScoredPost

log = logging.getLogger(__name__)

TABLE_NAME = "brandmon-alert-state"
#: Produce retries back off from 0.2 s to 5 s and never give up: giving up would mean writing
#: a state (and committing input) whose alerts were never recorded.
RETRY_FIRST, RETRY_MAX = 0.2, 5.0

Send = Callable[[], Awaitable[Any]]


def register_alert_agent(
    app: faust.App, settings: Settings, metrics: Metrics, hub: NotifierHub
) -> None:
    """Declare the topics, the state table and the agent (concurrency 1) on `app`.

    The agent starts the hub when it starts and stops it (draining queued alerts for up to
    notifier_drain_seconds) when it stops; `hub.start()` is idempotent, so a caller that
    prefers to manage the hub itself may start it first.
    """
    AlertAgent(app, settings, metrics, hub)


class AlertAgent:
    """Consumes `posts.scored`; see the module docstring for the order of effects."""

    def __init__(
        self, app: faust.App, settings: Settings, metrics: Metrics, hub: NotifierHub
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.hub = hub
        self.engine = AlertEngine(settings.alerts)
        self.scored = app.topic(settings.topic_scored, partitions=settings.topic_partitions)
        self.alerts = app.topic(settings.topic_alerts)
        self.buckets = app.topic(settings.topic_brand_sentiment)
        self.table = app.Table(
            TABLE_NAME,
            partitions=settings.topic_partitions,
            # keys: the brand as raw bytes (as on posts.scored; bytes -> "raw" serializer);
            # values: JSON objects (Faust's default table serializer)
            key_type=bytes,
            help="Per-brand alert state (alerts.state.BrandState.to_dict()).",
        )
        # Parsed states by brand, valid while the table still holds the dict we wrote.
        self._cache: dict[bytes, tuple[object, BrandState]] = {}
        app.agent(self.scored, name="brandmon.alerts", concurrency=1)(self.run)

    async def run(self, stream: faust.StreamT[Any]) -> None:
        await self.hub.start()
        take = stream.noack_take  # type: ignore[attr-defined]
        try:
            async for events in take(self.settings.max_batch, self.settings.max_wait):
                batch = asyncio.ensure_future(self.process(stream, events))
                try:
                    await asyncio.shield(batch)  # a stop request lets the batch finish
                except asyncio.CancelledError:
                    await batch
                    raise
        finally:
            await self.hub.stop()

    async def process(self, stream: faust.StreamT[Any], events: Sequence[EventT[Any]]) -> None:
        """Apply a batch, deliver its records, then write states, notify and ack."""
        try:
            states, sources, results = self.apply_all(events)
            await self.deliver(results)
        except BaseException:
            self._cache.clear()  # states may be ahead of the table: re-read them
            raise
        for key, state in states.items():
            value = state.to_dict()
            _write_as(sources[key], self.table, key, value)
            self._cache[key] = (value, state)
        for result in results:
            self.account(result)
        for event in events:
            await stream.ack(event)

    def apply_all(
        self, events: Sequence[EventT[Any]]
    ) -> tuple[dict[bytes, BrandState], dict[bytes, EventT[Any]], list[ApplyResult]]:
        """Apply events in order: changed states and the event each came from, by brand."""
        states: dict[bytes, BrandState] = {}
        sources: dict[bytes, EventT[Any]] = {}
        results: list[ApplyResult] = []
        for event in events:
            message = event.message
            post = self.parse(message.value, message.partition, message.offset)
            if post is None:
                continue
            key = post.brand.encode()
            state = states.get(key) or self.load(key)
            result = self.engine.apply(state, post, message.partition, message.offset)
            if result.outcome != "duplicate":
                states[key], sources[key] = result.state, event
            results.append(result)
        return states, sources, results

    def parse(self, value: bytes | None, partition: int, offset: int) -> ScoredPost | None:
        """The scored post, or None (counted, logged with its position) when unreadable."""
        try:
            return ScoredPost.model_validate_json(value or b"")
        except ValidationError as exc:
            self.metrics.alert_input_invalid.inc()
            log.warning(
                "skipping unreadable record %s[%d]@%d: %d validation errors (first: %s)",
                self.settings.topic_scored,
                partition,
                offset,
                exc.error_count(),
                exc.errors()[0]["msg"],
            )
            return None

    def load(self, key: bytes) -> BrandState | None:
        stored = self.table.get(key)
        if stored is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] is stored:
            return cached[1]
        return BrandState.from_dict(stored)

    async def deliver(self, results: list[ApplyResult]) -> None:
        """Produce every alert and bucket record and wait until the broker has them all."""
        sends: list[tuple[str, Send]] = []
        for result in results:
            for alert in result.alerts:
                sends.append((self.settings.topic_alerts, self._sender(self.alerts, alert)))
            for record in result.buckets:
                sends.append(
                    (self.settings.topic_brand_sentiment, self._sender(self.buckets, record))
                )
        await self._send_all(sends)

    def account(self, result: ApplyResult) -> None:
        """Metrics and notifications for one applied post (after delivery)."""
        if result.outcome == "late":
            self.metrics.late_events.inc()
        elif result.outcome == "future":
            self.metrics.future_events.inc()
        for record in result.buckets:
            brand = record.brand
            share = record.window.share
            self.metrics.negative_share.labels(brand=brand).set(share if share is not None else 0)
            self.metrics.brand_posts_window.labels(brand=brand).set(record.window.posts)
            self.metrics.brand_voices_window.labels(brand=brand).set(record.window.voices)
            self.metrics.brand_negative_voices_window.labels(brand=brand).set(
                record.window.negative_voices
            )
        for alert in result.alerts:
            self.metrics.alerts.labels(severity=alert.severity, action=alert.action).inc()
            self.hub.publish(alert)

    @staticmethod
    def _sender(topic: faust.TopicT, record: Alert | BrandBucket) -> Send:
        key = record.brand.encode()
        value = record.model_dump_json().encode()

        async def send() -> Any:
            future = await topic.send(key=key, value=value)
            return await future

        return send

    async def _send_all(self, sends: list[tuple[str, Send]]) -> None:
        delay = RETRY_FIRST
        pending = sends
        while pending:
            outcomes = await asyncio.gather(
                *(send() for _, send in pending), return_exceptions=True
            )
            failed = [
                (item, out)
                for item, out in zip(pending, outcomes, strict=True)
                if isinstance(out, BaseException)
            ]
            if not failed:
                return
            for (topic, _), _ in failed:
                self.metrics.produce_errors.labels(topic=topic).inc()
            log.error(
                "%d of %d alert-stage records not acknowledged (%s); retrying in %.1f s",
                len(failed),
                len(pending),
                type(failed[0][1]).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            pending = [item for item, _ in failed]


def _write_as(event: EventT[Any], table: Any, key: bytes, value: dict[str, Any]) -> None:
    """`table[key] = value` as if while iterating `event`.

    Faust sends a table write to the changelog partition of the *current event*, a context
    variable its stream sets per event; batches run in their own task, so set it there (only
    this task's context changes) to the brand's own event. posts.scored is keyed by brand,
    so the brand's state lands in the partition of its posts.
    """
    token = faust_current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        faust_current_event.reset(token)
