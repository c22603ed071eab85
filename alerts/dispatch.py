"""The notifier dispatcher: every alert on the `alerts` topic reaches every channel its severity
is routed to, or the alerts dead-letter topic, across a channel's outage and across restarts of
the worker.

    alerts (key = brand, value = Alert JSON)   read in its own consumer group (notifier_group)
      -> InFlight(partition, offset, record timestamp, alert), owed by every channel whose
         minimum severity it reaches (Routing); the others skip it, counted in
         brandmon_notifier_skipped_total{channel,reason="below_min_severity"}
      -> one queue and task per channel (PagerDuty, Slack, webhook, log), in the order read
      -> send; after a retryable failure (timeout, network, 429, 5xx) wait initial * 2^(n-1)
         seconds, capped at backoff_max, and send again, until the channel accepts it or the
         next attempt would come after notifier_max_age_seconds (age = now - the record's
         timestamp on `alerts`, i.e. since the alert worker wrote it); an alert already that
         old when its turn comes (after a long stop, behind a stuck one) is not sent at all
      -> expired, rejected (another 4xx, a bad URL) or error (a bug building the request):
         a DeadLetter on topic_alerts_dlq (channel, reason, detail, source position, the
         alert), counted in brandmon_notifier_dead_letters_total{channel,reason}
      -> a partition's offset is committed once every channel routed to is done (delivered
         or dead-lettered) with that record and with every record before it

Delivery is at least once. After a restart, a crash or a rebalance, every record after the
committed position is sent again to every channel routed to it, including channels that had
already accepted it; and a request that timed out may have been accepted all the same.
Receivers deduplicate: PagerDuty by `dedup_key` (a repeated trigger or resolve of an incident
changes nothing), a generic webhook receiver by `alert_id` (unique per alert event, stable
across replays). Slack cannot deduplicate, so a restart during an outage may post a message
twice.

Routing (`Routing`, settings BRANDMON_ALERTS__<CHANNEL>_MIN_SEVERITY; PagerDuty `warning`, the
others `info`) compares each alert event's severity with the channel's minimum, and needs no
memory, so it holds across restarts and replays:
- a trigger goes to the channels whose minimum it reaches. An escalation is a trigger too: an
  incident that opened below PagerDuty's minimum and escalates to reach it opens there at the
  escalation, with the incident's dedup_key;
- a resolve carries the incident's highest severity (alerts.lifecycle), so it goes to exactly
  the channels that were sent a trigger of the incident: an info-only incident never sends
  PagerDuty a resolve for an incident it never had, nor Slack a "resolved" it never showed.
  (Routing changed between a trigger and its resolve, by a restart with other settings, breaks
  this: a channel whose minimum was raised above the incident misses its resolve.)

Channels do not wait for each other: a dead PagerDuty holds back only PagerDuty's queue (and
the committed position, so a restart re-sends what the others had delivered), while Slack and
the webhook go on with later alerts. Within a channel alerts go out one at a time, in the
order read, so a resolve never overtakes its trigger (alerts are keyed by brand: an incident
lives on one partition); the price is that an alert failing on its own holds its channel back
until it expires. Reading pauses while notifier_queue_size records are unfinished.

On SIGTERM the Faust worker cancels `run()`: sends in progress get notifier_drain_seconds,
the finished prefix of each partition is committed, and the rest is sent by the next start.
A dead-letter topic that cannot be written stops the loop (rather than lose alerts), and
`healthy()` turns false.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import ValidationError

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.notifiers import (
    DeliveryError,
    Notifier,
    configured_channels,
    min_severities,
)
from brandmon.broker_probe import aiokafka_config
from brandmon.contracts.alerts import SEVERITY_RANK, Alert, Severity
from brandmon.kafka_io import READ_COMMITTED
from brandmon.metrics import Metrics
from brandmon.redaction import log_safe
from brandmon.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Longest wait for new records in one poll; positions are committed and gauges set this often.
POLL_SECONDS = 0.5
#: A dead-letter write that failed for a retriable reason is retried from 0.2 s up to 5 s apart.
DLQ_RETRY_FIRST, DLQ_RETRY_MAX = 0.2, 5.0
#: After the first, one failed attempt in this many is logged (every one is counted).
LOG_EVERY_ATTEMPTS = 10
#: The channel label of a record no channel could read (dead-lettered once, for all).
ALL_CHANNELS = "all"
#: Characters of an unreadable record's value kept in its dead letter.
UNREADABLE_PREFIX = 10_000


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff initial * 2^(attempt-1), capped at `maximum`, while younger than `max_age`."""

    initial: float
    maximum: float
    max_age: float

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> RetryPolicy:
        return cls(
            settings.notifier_backoff_initial_seconds,
            settings.notifier_backoff_max_seconds,
            settings.notifier_max_age_seconds,
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.maximum, self.initial * 2.0 ** min(attempt - 1, 64)))


#: Why routing kept an alert event from a channel (the `reason` of brandmon_notifier_skipped_total).
SkipReason = Literal["below_min_severity"]


@dataclass(frozen=True)
class Routing:
    """Which alert events each channel gets: those whose severity reaches its minimum.

    The same rule serves triggers, escalations and resolves, because a resolve carries the
    highest severity of its incident: see the module docstring. A channel with no minimum
    configured gets everything.
    """

    minimum: Mapping[str, Severity] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> Routing:
        return cls(min_severities(settings))

    def min_severity(self, channel: str) -> Severity:
        return self.minimum.get(channel, "info")

    def skip_reason(self, channel: str, alert: Alert) -> SkipReason | None:
        """None when `channel` is sent `alert`, else why not."""
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity(channel)]:
            return "below_min_severity"
        return None

    def describe(self, channel: str) -> str:
        """`pagerduty (warning and up)`, or just `slack` for a channel that gets everything."""
        minimum = self.min_severity(channel)
        return channel if minimum == "info" else f"{channel} ({minimum} and up)"


@dataclass(eq=False)
class InFlight:
    """One record of the alerts topic, until every channel is done with it."""

    topic: str
    partition: int
    offset: int
    #: When the record was written to the alerts topic (its timestamp), seconds since the epoch.
    timestamp: float
    key: bytes | None
    value: bytes | None
    #: None when the record is not a readable Alert.
    alert: Alert | None
    #: Channels that have not finished with it (delivered or dead-lettered).
    owed: set[str] = field(default_factory=set)
    #: Its partition went to another consumer, which sends it again: nobody here finishes it.
    revoked: bool = False

    def age(self, now: float) -> float:
        return now - self.timestamp

    def describe(self) -> str:
        """For a log line: the alert id and key (escaped), and where the record is."""
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        if self.alert is None:
            return f"record {where}"
        return (
            f"{self.alert.action} {log_safe(self.alert.alert_id)} "
            f"(dedup_key {log_safe(self.alert.dedup_key)}, {where})"
        )


@dataclass(frozen=True)
class DeadLetter:
    """An alert a channel gave up on (or a record nobody could read), as written to the DLQ."""

    entry: InFlight
    channel: str
    #: expired | rejected | error | unreadable
    reason: str
    #: What failed last: an HTTP status, an error type; never a URL or a key.
    detail: str
    attempts: int
    at: float

    def to_json(self) -> bytes:
        entry = self.entry
        alert = entry.alert
        record: dict[str, Any] = {
            "reason": self.reason,
            "channel": self.channel,
            "detail": self.detail,
            "attempts": self.attempts,
            "dead_lettered_at": _iso(self.at),
            "alert_id": alert.alert_id if alert is not None else None,
            "dedup_key": alert.dedup_key if alert is not None else None,
            "source": {
                "topic": entry.topic,
                "partition": entry.partition,
                "offset": entry.offset,
                "timestamp": _iso(entry.timestamp),
            },
            "alert": alert.model_dump(mode="json") if alert is not None else None,
        }
        if alert is None and entry.value is not None:
            record["value"] = entry.value.decode("utf-8", "replace")[:UNREADABLE_PREFIX]
        return json.dumps(record).encode()


DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class Positions:
    """Commit positions of the partitions being read.

    Per partition, the records in flight in the order read; a partition may be committed up
    to its first unfinished record, whatever the channels did with the records after it.
    """

    def __init__(self) -> None:
        self._flight: dict[int, deque[InFlight]] = {}
        self._finished_to: dict[int, int] = {}
        self._committed: dict[int, int] = {}

    def add(self, entry: InFlight) -> None:
        self._flight.setdefault(entry.partition, deque()).append(entry)

    def in_flight(self) -> int:
        return sum(len(queue) for queue in self._flight.values())

    def ready(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        """partition -> offset to commit, for partitions whose finished prefix moved."""
        for partition, queue in self._flight.items():
            while queue and not queue[0].owed:
                self._finished_to[partition] = queue.popleft().offset + 1
        wanted = None if partitions is None else set(partitions)
        return {
            partition: offset
            for partition, offset in self._finished_to.items()
            if self._committed.get(partition) != offset and (wanted is None or partition in wanted)
        }

    def committed(self, offsets: dict[int, int]) -> None:
        self._committed.update(offsets)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget partitions given to another consumer; their unfinished records are skipped."""
        for partition in partitions:
            for entry in self._flight.pop(partition, ()):
                entry.revoked = True
            self._finished_to.pop(partition, None)
            self._committed.pop(partition, None)


class ChannelWorker:
    """Delivers to one channel, one alert at a time in the order given, retrying until the
    channel accepts it or it expires; then it is dead-lettered."""

    def __init__(
        self,
        notifier: Notifier,
        policy: RetryPolicy,
        metrics: Metrics,
        dead_letter: DeadLetterSink,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.notifier = notifier
        self.channel = notifier.channel
        self._policy = policy
        self._metrics = metrics
        self._dead_letter = dead_letter
        self._clock = clock
        self._sleep = sleep
        self._waiting: deque[InFlight] = deque()
        self._wake = asyncio.Event()
        self.current: InFlight | None = None
        #: True while a request or a dead-letter write is in progress (shutdown waits for it).
        self.busy = False
        self.stopping = False

    def put(self, entry: InFlight) -> None:
        """Queue `entry`, which must already owe this channel."""
        self._waiting.append(entry)
        self._wake.set()

    def pending(self) -> int:
        return len(self._waiting) + (self.current is not None)

    def oldest(self) -> InFlight | None:
        return self.current or (self._waiting[0] if self._waiting else None)

    def stop_soon(self) -> None:
        """Take no new alert and make no new attempt; a send in progress completes."""
        self.stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver queued alerts until stop_soon() or cancellation."""
        while not self.stopping:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            entry = self._waiting.popleft()
            self.current = entry
            try:
                if await self.handle(entry):
                    entry.owed.discard(self.channel)
            finally:
                self.current = None

    async def handle(self, entry: InFlight) -> bool:
        """Deliver or dead-letter `entry`: True when done, False when left for the next
        owner or start (revoked, stopping)."""
        assert entry.alert is not None, "unreadable records are dead-lettered before fan-out"
        attempt, last = 0, "older than the max age before its first attempt"
        while not (entry.revoked or self.stopping):
            if entry.age(self._clock()) > self._policy.max_age:
                await self._give_up(entry, "expired", last, attempt)
                return True
            attempt += 1
            try:
                self.busy = True
                await self.notifier.send(entry.alert)
            except DeliveryError as err:
                self._metrics.notifier_failures.labels(channel=self.channel).inc()
                last = err.reason
                self._log_failure(entry, err.reason, attempt)
                if not err.retryable:
                    await self._give_up(entry, "rejected", err.reason, attempt)
                    return True
            except Exception as exc:  # a bug building the request: it would fail again
                self._metrics.notifier_failures.labels(channel=self.channel).inc()
                # the type only: an exception's text may quote a URL
                log.error(
                    "%s: unexpected %s sending %s",
                    self.channel,
                    type(exc).__name__,
                    entry.describe(),
                )
                await self._give_up(entry, "error", type(exc).__name__, attempt)
                return True
            else:
                self._metrics.notifier_delivered.labels(channel=self.channel).inc()
                if attempt > 1:
                    log.info(
                        "%s: delivered %s at attempt %d", self.channel, entry.describe(), attempt
                    )
                return True
            finally:
                self.busy = False
            delay = self._policy.delay(attempt)
            if entry.age(self._clock()) + delay > self._policy.max_age:
                await self._give_up(entry, "expired", last, attempt)
                return True
            await self._sleep(delay)
        return False

    async def _give_up(self, entry: InFlight, reason: str, detail: str, attempts: int) -> None:
        letter = DeadLetter(entry, self.channel, reason, detail, attempts, self._clock())
        self.busy = True
        try:
            await self._dead_letter(letter)
        finally:
            self.busy = False
        self._metrics.notifier_dead_letters.labels(channel=self.channel, reason=reason).inc()
        self._metrics.notifier_dropped.labels(channel=self.channel).inc()
        log.error(
            "%s: dead-lettered %s (%s after %d attempts: %s)",
            self.channel,
            entry.describe(),
            reason,
            attempts,
            detail,
        )

    def _log_failure(self, entry: InFlight, reason: str, attempt: int) -> None:
        if attempt == 1 or attempt % LOG_EVERY_ATTEMPTS == 0:
            log.warning(
                "%s: sending %s failed (attempt %d, %.0f s old): %s",
                self.channel,
                entry.describe(),
                attempt,
                entry.age(self._clock()),
                reason,
            )


class DeadLetterTopicError(RuntimeError):
    """The alerts dead-letter topic cannot be written (missing, not authorized, ...)."""


class NotifierDispatcher:
    """The Kafka shell around the channel workers: reads, fans out, dead-letters, commits.

    Runs inside the alert worker as a Faust task (`app.task(dispatcher.run)`); see the module
    docstring for the guarantees.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._policy = RetryPolicy.from_settings(settings.alerts)
        self._client: httpx.AsyncClient | None = None
        self._producer: Any = None
        self.notifiers: list[Notifier] = configured_channels(settings.alerts, self._http_client)
        self.routing = Routing.from_settings(settings.alerts)
        self.positions = Positions()
        self._workers: list[ChannelWorker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "not started"
        self._failure = ""

    @property
    def channels(self) -> list[str]:
        return [n.channel for n in self.notifiers]

    def healthy(self) -> tuple[bool, str]:
        """(ok, detail) for /ready: false before run() has started and after its loop ended."""
        if self._state == "running":
            return True, (
                f"notifier dispatcher delivering to {', '.join(self.channels)}; "
                f"{self.positions.in_flight()} alert events in flight"
            )
        if self._state == "idle":
            return True, "no notification channel configured"
        if self._state == "failed":
            return False, f"notifier dispatcher stopped: {self._failure}; see the log"
        return False, f"notifier dispatcher {self._state}"

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the notifier dispatcher is not running")
        return self._client

    async def run(self) -> None:
        """Deliver until cancelled (SIGTERM). A failure ends the loop, is logged, and turns
        healthy() false; only cancellation is raised."""
        if not self.notifiers:
            self._state = "idle"
            log.info("no notification channel configured: alerts are only on the alerts topic")
            return
        self._state = "starting"
        try:
            async with contextlib.AsyncExitStack() as stack:
                consumer = await self._start(stack)
                self._state = "running"
                log.info(
                    "notifier dispatcher: %s -> %s (group %s)",
                    self._settings.topic_alerts,
                    ", ".join(self.routing.describe(channel) for channel in self.channels),
                    self._settings.notifier_group,
                )
                await self._consume(consumer)
        except asyncio.CancelledError:
            self._state = "stopped"
            raise
        except Exception as exc:
            self._state = "failed"
            self._failure = type(exc).__name__
            log.exception("notifier dispatcher stopped: alerts are no longer delivered")

    async def _start(self, stack: contextlib.AsyncExitStack) -> Any:
        settings = self._settings
        self._client = httpx.AsyncClient(timeout=settings.alerts.notifier_timeout_seconds)
        stack.push_async_callback(self._close_client)
        kafka = aiokafka_config(settings)
        self._producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
        await self._producer.start()
        stack.push_async_callback(self._producer.stop)
        consumer = AIOKafkaConsumer(
            **kafka,
            group_id=settings.notifier_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level=READ_COMMITTED,
        )
        consumer.subscribe([settings.topic_alerts], listener=_Rebalance(self, consumer))
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        self._workers = self._new_workers()
        self._tasks = [
            asyncio.create_task(worker.run(), name=f"notify-{worker.channel}")
            for worker in self._workers
        ]
        stack.push_async_callback(self._shutdown, consumer)
        return consumer

    def _new_workers(self) -> list[ChannelWorker]:
        return [
            ChannelWorker(
                notifier,
                self._policy,
                self._metrics,
                self._write_dead_letter,
                clock=self._clock,
                sleep=self._sleep,
            )
            for notifier in self.notifiers
        ]

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _consume(self, consumer: Any) -> None:
        limit = self._settings.alerts.notifier_queue_size
        while True:
            room = limit - self.positions.in_flight()
            if room <= 0:
                consumer.pause(*consumer.assignment())
            elif consumer.paused():
                consumer.resume(*consumer.paused())
            batch = await consumer.getmany(
                timeout_ms=int(POLL_SECONDS * 1000), max_records=max(room, 1)
            )
            for records in batch.values():
                for record in records:
                    await self._take(record)
            await self.commit(consumer)
            self._check_workers()
            self._set_gauges()

    async def _take(self, record: Any) -> None:
        """Track one record and hand it to every channel routed to it (or dead-letter it:
        unreadable)."""
        timestamp = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None
        entry = InFlight(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=timestamp if timestamp is not None else self._clock(),
            key=record.key,
            value=record.value,
            alert=self._parse(record),
        )
        self.positions.add(entry)
        if entry.alert is None:
            letter = DeadLetter(entry, ALL_CHANNELS, "unreadable", "not an alert", 0, self._clock())
            await self._write_dead_letter(letter)
            self._metrics.notifier_dead_letters.labels(
                channel=ALL_CHANNELS, reason="unreadable"
            ).inc()
            log.error("dead-lettered unreadable %s", entry.describe())
            return
        self._fan_out(entry, entry.alert)

    def _fan_out(self, entry: InFlight, alert: Alert) -> None:
        """Queue `entry` on the channels its severity is routed to; count the others. A record
        no channel takes owes nothing and is committed with its neighbours."""
        taking = []
        for worker in self._workers:
            reason = self.routing.skip_reason(worker.channel, alert)
            if reason is None:
                taking.append(worker)
                continue
            self._metrics.notifier_skipped.labels(channel=worker.channel, reason=reason).inc()
            log.debug(
                "%s: skipped %s %s (%s, minimum %s)",
                worker.channel,
                alert.severity,
                entry.describe(),
                reason,
                self.routing.min_severity(worker.channel),
            )
        entry.owed = {worker.channel for worker in taking}
        for worker in taking:
            worker.put(entry)

    def _parse(self, record: Any) -> Alert | None:
        try:
            return Alert.model_validate_json(record.value or b"")
        except ValidationError:
            return None

    async def commit(self, consumer: Any, partitions: Iterable[int] | None = None) -> None:
        """Commit the finished prefix of each partition (of `partitions`, default all)."""
        offsets = self.positions.ready(partitions)
        if not offsets:
            return
        topic = self._settings.topic_alerts
        try:
            await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
        except KafkaError as exc:
            # a rebalance under way: the next owner of the partition re-sends (at least once)
            log.warning("could not commit notifier positions (%s); will retry", type(exc).__name__)
            return
        self.positions.committed(offsets)

    def _check_workers(self) -> None:
        """Raise when a channel's task ended (only a dead-letter write that cannot succeed
        ends one): carrying on would leave its alerts unsent and uncommitted for ever."""
        for worker, task in zip(self._workers, self._tasks, strict=True):
            if task.done():
                exc = None if task.cancelled() else task.exception()
                raise RuntimeError(f"the {worker.channel} channel stopped") from exc

    def _set_gauges(self) -> None:
        now = self._clock()
        for worker in self._workers:
            oldest = worker.oldest()
            self._metrics.notifier_pending.labels(channel=worker.channel).set(worker.pending())
            self._metrics.notifier_oldest_pending_seconds.labels(channel=worker.channel).set(
                max(0.0, oldest.age(now)) if oldest is not None else 0.0
            )

    async def _write_dead_letter(self, letter: DeadLetter) -> None:
        """Produce `letter` and wait for the broker's ack; retriable errors are retried."""
        topic = self._settings.topic_alerts_dlq
        delay = DLQ_RETRY_FIRST
        while True:
            try:
                await self._producer.send_and_wait(topic, letter.to_json(), key=letter.entry.key)
                return
            except KafkaError as exc:
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    raise DeadLetterTopicError(
                        f"cannot write to the alerts dead-letter topic {topic} "
                        f"({type(exc).__name__}): check BRANDMON_TOPIC_ALERTS_DLQ, that the "
                        "topic exists and that this worker may write to it"
                    ) from exc
                log.warning(
                    "dead letter to %s not acknowledged (%s); retrying in %.1f s",
                    topic,
                    type(exc).__name__,
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, DLQ_RETRY_MAX)

    async def _shutdown(self, consumer: Any) -> None:
        """Let sends in progress finish (up to notifier_drain_seconds), cancel the rest, and
        commit what every channel finished."""
        tasks = self._tasks
        for worker, task in zip(self._workers, tasks, strict=True):
            worker.stop_soon()
            if not worker.busy:
                task.cancel()
        drain = self._settings.alerts.notifier_drain_seconds
        _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.commit(consumer)
        unfinished = self.positions.in_flight()
        if unfinished:
            log.info(
                "notifier dispatcher stopped; %d alert events left for the next start", unfinished
            )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what is finished before partitions go, and forgets the rest (re-sent there)."""

    def __init__(self, dispatcher: NotifierDispatcher, consumer: Any) -> None:
        self._dispatcher = dispatcher
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        await self._dispatcher.commit(self._consumer, partitions)
        self._dispatcher.positions.revoke(partitions)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None
