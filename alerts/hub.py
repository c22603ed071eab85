"""NotifierHub: delivers alerts to every channel off the stream's path.

One bounded asyncio queue and one task per channel. `publish()` never waits: it puts the
alert on each channel's queue and, when a queue is full, drops it for that channel and counts
it (`brandmon_notifier_dropped_total`). A channel's task retries failed deliveries with
exponential backoff up to a cap, counting each failed attempt
(`brandmon_notifier_failures_total`); a dead PagerDuty therefore delays only PagerDuty.

    hub = NotifierHub.from_settings(settings.alerts, metrics)
    await hub.start()
    hub.publish(alert)          # after the alert is acknowledged on the `alerts` topic
    await hub.stop()            # drains for up to notifier_drain_seconds, then cancels
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import httpx

from alerts.config import AlertSettings
from alerts.notifiers import (
    DeliveryError,
    LogNotifier,
    Notifier,
    RedactSecrets,
    http_channels,
    install_redaction,
    remove_redaction,
    secrets_of,
)
from alerts.schema import Alert
from brandmon.metrics import Metrics

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
#: Queue-full drops are logged once per this many (they are all counted in the metric).
FULL_LOG_EVERY = 100


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and exponential backoff (initial * 2^(attempt-1), capped)."""

    max_attempts: int
    initial: float
    maximum: float

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> RetryPolicy:
        return cls(
            settings.notifier_max_attempts,
            settings.notifier_backoff_initial_seconds,
            settings.notifier_backoff_max_seconds,
        )

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum, self.initial * 2 ** (attempt - 1)))


async def deliver(
    notifier: Notifier,
    alert: Alert,
    policy: RetryPolicy,
    metrics: Metrics,
    sleep: Sleep = asyncio.sleep,
) -> bool:
    """Send `alert` with retries; False (and counted as dropped) when it finally failed."""
    channel = notifier.channel
    for attempt in range(1, policy.max_attempts + 1):
        try:
            await notifier.send(alert)
            return True
        except DeliveryError as err:
            metrics.notifier_failures.labels(channel=channel).inc()
            log.warning(
                "%s: %s of alert %s failed (attempt %d/%d): %s",
                channel,
                alert.action,
                alert.alert_id,
                attempt,
                policy.max_attempts,
                err.reason,
            )
            if not err.retryable or attempt == policy.max_attempts:
                break
            await sleep(policy.delay(attempt))
    metrics.notifier_dropped.labels(channel=channel).inc()
    log.error(
        "%s: gave up on %s of alert %s (dedup_key %s)",
        channel,
        alert.action,
        alert.alert_id,
        alert.dedup_key,
    )
    return False


class NotifierHub:
    """Fan-out of alerts to channels, each behind its own bounded queue and task."""

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        settings: AlertSettings,
        metrics: Metrics,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.notifiers = list(notifiers)
        self._settings = settings
        self._metrics = metrics
        self._policy = RetryPolicy.from_settings(settings)
        self._client: httpx.AsyncClient | None = None
        self._sleep = sleep
        self._queues: dict[str, asyncio.Queue[Alert]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._redaction: RedactSecrets | None = None
        self._full_drops: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: AlertSettings, metrics: Metrics) -> NotifierHub:
        """Every configured channel (plus the log unless disabled), on the hub's HTTP client."""
        hub = cls([], settings, metrics)
        hub.notifiers = http_channels(settings, hub.http_client)
        if settings.log_notifier:
            hub.notifiers.append(LogNotifier())
        return hub

    def http_client(self) -> httpx.AsyncClient:
        """The HTTP client of the running hub (created by start(), closed by stop())."""
        if self._client is None or self._client.is_closed:
            raise RuntimeError("the NotifierHub is not running")
        return self._client

    @property
    def channels(self) -> list[str]:
        return [n.channel for n in self.notifiers]

    async def start(self) -> None:
        """Create the queues and start one task per channel (on the running loop)."""
        if self._tasks:
            return
        self._client = httpx.AsyncClient(timeout=self._settings.notifier_timeout_seconds)
        self._redaction = install_redaction(secrets_of(self._settings))
        for notifier in self.notifiers:
            queue: asyncio.Queue[Alert] = asyncio.Queue(self._settings.notifier_queue_size)
            self._queues[notifier.channel] = queue
            self._tasks.append(
                asyncio.create_task(self._run(notifier, queue), name=f"notify-{notifier.channel}")
            )

    def publish(self, alert: Alert) -> None:
        """Queue `alert` for every channel without waiting; full queues drop and count."""
        if not self._tasks and self.notifiers:
            raise RuntimeError("NotifierHub.publish() before start()")
        for channel, queue in self._queues.items():
            try:
                queue.put_nowait(alert)
            except asyncio.QueueFull:
                self._metrics.notifier_dropped.labels(channel=channel).inc()
                self._full_drops[channel] = drops = self._full_drops.get(channel, 0) + 1
                if drops % FULL_LOG_EVERY == 1:  # the first, then one line per 100: no flood
                    log.error(
                        "%s: queue full, dropped %s of alert %s (%d dropped so far)",
                        channel,
                        alert.action,
                        alert.alert_id,
                        drops,
                    )

    async def stop(self) -> None:
        """Give queued alerts up to notifier_drain_seconds, then cancel the tasks.

        The hub can be started again afterwards (the agent does, if Faust restarts it).
        """
        if self._queues:
            joins = [asyncio.ensure_future(q.join()) for q in self._queues.values()]
            _, pending = await asyncio.wait(joins, timeout=self._settings.notifier_drain_seconds)
            for join in pending:
                join.cancel()
            for channel, queue in self._queues.items():
                if queue.qsize():
                    self._metrics.notifier_dropped.labels(channel=channel).inc(queue.qsize())
                    log.error("%s: stopping with %d alerts undelivered", channel, queue.qsize())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._redaction is not None:
            remove_redaction(self._redaction)
            self._redaction = None

    async def __aenter__(self) -> NotifierHub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self, notifier: Notifier, queue: asyncio.Queue[Alert]) -> None:
        while True:
            alert = await queue.get()
            try:
                await deliver(notifier, alert, self._policy, self._metrics, self._sleep)
            except Exception as exc:  # a bug in a channel must not end its task
                # Counted and logged by type only: an exception's text may quote a URL.
                self._metrics.notifier_failures.labels(channel=notifier.channel).inc()
                self._metrics.notifier_dropped.labels(channel=notifier.channel).inc()
                log.error(
                    "%s: unexpected %s delivering alert %s; dropped",
                    notifier.channel,
                    type(exc).__name__,
                    alert.alert_id,
                )
            finally:
                queue.task_done()
