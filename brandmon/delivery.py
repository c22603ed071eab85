"""The one delivery core of both agents: produce a batch's outputs, wait for every broker
acknowledgement, and only then let the caller ack the batch's input.

    outputs = stage.process(batch)            # pure: raw records in, Output records out
    sent = await deliverer.deliver(outputs)   # every output acknowledged, or an exception
    ack(batch)                                # Faust may now commit the input offsets
    count(sent)                               # metrics count what reached the topics

Produce errors are classified (`classify`), because a send that can never succeed must not be
retried forever:

- retriable (broker down, leader change, timeouts): retried with capped exponential backoff
  for as long as it takes. The worker's progress watchdog turns /ready red meanwhile;
- too large (the record exceeds the producer's or the topic's message limit): the stage's
  `shrink` callback returns a bounded replacement (the score stage turns it into a
  `too_large` dead letter with the original's size, sha256 and a prefix), which is sent
  instead, and `deliver` returns it in the original's place; a stage that cannot shrink a
  record gets a `FatalDeliveryError`;
- fatal (authorisation, a topic that does not exist, an invalid topic): `FatalDeliveryError`
  naming the topic and the setting to fix. The agent lets it escape, which stops the worker
  with a non-zero exit and without acking the batch, so nothing is committed past it.

A failed send never leaks into the next batch: `deliver` returns only once every output of
its batch is acknowledged or it has raised.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from brandmon.metrics import Metrics

log = logging.getLogger(__name__)


class Disposition(enum.Enum):
    RETRY = "retry"
    TOO_LARGE = "too_large"
    FATAL = "fatal"


#: Kafka error names (aiokafka's class names and the broker's error codes) by disposition.
#: Names, not classes: the same errors reach us from aiokafka directly or wrapped in Faust's
#: ProducerSendError, and matching on names keeps this module free of transport imports.
TOO_LARGE_ERRORS = frozenset(
    {"MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError"}
)
FATAL_ERRORS = frozenset(
    {
        "TopicAuthorizationFailedError",
        "ClusterAuthorizationFailedError",
        "TransactionalIdAuthorizationFailed",
        "SaslAuthenticationFailedError",
        "InvalidTopicError",
        "UnsupportedVersionError",
        "InvalidRequiredAcksError",
        "UnsupportedForMessageFormatError",
    }
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


#: Raised both for a topic that does not exist and, transiently, while a restarting broker has
#: no metadata yet: fatal only once the topic is confirmed missing (`Deliverer(exists=...)`).
UNKNOWN_TOPIC = "UnknownTopicOrPartitionError"


def classify(exc: BaseException) -> Disposition:
    """What to do about one failed send (the exception or anything in its cause chain)."""
    names = {type(e).__name__ for e in _chain(exc)}
    if names & TOO_LARGE_ERRORS:
        return Disposition.TOO_LARGE
    if names & FATAL_ERRORS:
        return Disposition.FATAL
    return Disposition.RETRY


def is_unknown_topic(exc: BaseException) -> bool:
    return any(type(e).__name__ == UNKNOWN_TOPIC for e in _chain(exc))


@dataclass(frozen=True)
class Output:
    """One record to produce. `source` (for logs) and `origin` (the input it came from, for
    a stage's `shrink`) are never sent."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    source: str = ""
    origin: Any = field(default=None, compare=False, repr=False)


class FatalDeliveryError(RuntimeError):
    """A record that can never be delivered; the worker must stop without acking its batch."""

    def __init__(self, topic: str, why: str, fix: str) -> None:
        super().__init__(f"cannot write to topic {topic!r}: {why}. {fix}")
        self.topic = topic


#: Sends one output and waits for the broker's acknowledgement.
Send = Callable[[Output], Awaitable[Any]]
#: Returns a smaller replacement for a record the broker refused as too large, or None.
Shrink = Callable[[Output], Output | None]
#: Whether a topic exists: True, False, or None when that cannot be told (broker down).
Exists = Callable[[str], Awaitable[bool | None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of retriable sends: first, doubling, capped at maximum (seconds)."""

    first: float = 0.2
    maximum: float = 5.0


class Deliverer:
    """Produces a batch of outputs and returns once every one is acknowledged (see module)."""

    def __init__(
        self,
        send: Send,
        metrics: Metrics,
        *,
        shrink: Shrink | None = None,
        topic_settings: dict[str, str] | None = None,
        exists: Exists | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._send = send
        self._metrics = metrics
        self._shrink = shrink
        self._topic_settings = topic_settings or {}
        self._exists = exists
        self._retry = retry
        self._sleep = sleep

    def _fix(self, topic: str) -> str:
        setting = self._topic_settings.get(topic)
        where = f" (set by {setting})" if setting else ""
        return (
            f"Create the topic{where} or grant this worker's principal Write and Describe on it, "
            "or point the setting at a topic it may write; then restart the worker"
        )

    async def deliver(self, outputs: Sequence[Output]) -> list[Output]:
        """Send all `outputs` and return once all are acknowledged: the records delivered, in
        the order given, each one that was too large replaced by the record sent in its place.
        Raises FatalDeliveryError."""
        delivered = list(outputs)
        pending = list(range(len(delivered)))  # indexes into `delivered`
        delay = self._retry.first
        while pending:
            results = await asyncio.gather(
                *(self._send(delivered[i]) for i in pending), return_exceptions=True
            )
            again: list[int] = []
            retriable = 0
            for i, result in zip(pending, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                if isinstance(result, asyncio.CancelledError):
                    raise result
                out = delivered[i]
                self._metrics.produce_errors.labels(topic=out.topic).inc()
                if classify(result) is Disposition.TOO_LARGE:
                    # the broker refuses a whole producer batch when it is too large, so
                    # records that merely shared a batch with a large one try again alone
                    result = await self._alone(out)
                    if result is None:
                        continue
                delivered[i] = await self._handle(out, result)
                again.append(i)
                retriable += delivered[i] is out
            if retriable:
                log.error(
                    "%d of %d output records not acknowledged; retrying in %.1f s",
                    retriable,
                    len(pending),
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self._retry.maximum)
            pending = again
        return delivered

    async def _alone(self, out: Output) -> BaseException | None:
        """Send one output by itself; None when acknowledged, else the error."""
        try:
            await self._send(out)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return exc
        return None

    async def _handle(self, out: Output, exc: BaseException) -> Output:
        """The output to send next for one failed send (itself when retriable)."""
        kind = classify(exc)
        why = f"{type(exc).__name__}: {str(exc)[:200]}"
        if (
            kind is Disposition.RETRY
            and is_unknown_topic(exc)
            and self._exists is not None
            and await self._exists(out.topic) is False
        ):
            kind = Disposition.FATAL
            why = "the topic does not exist"
        if kind is Disposition.FATAL:
            raise FatalDeliveryError(out.topic, why, self._fix(out.topic)) from exc
        if kind is Disposition.RETRY:
            log.warning("send to %s failed (%s), will retry", out.topic, why)
            return out
        smaller = self._shrink(out) if self._shrink is not None else None
        if smaller is None or len(smaller.value) >= len(out.value):
            raise FatalDeliveryError(
                out.topic,
                f"a record of {len(out.value)} bytes is too large ({why}) and cannot be cut",
                "Raise the topic's max.message.bytes (and the broker's message.max.bytes) "
                "to at least 1 MB",
            ) from exc
        log.warning(
            "record %s of %d bytes too large for %s; sending a %d-byte record to %s instead",
            out.source,
            len(out.value),
            out.topic,
            len(smaller.value),
            smaller.topic,
        )
        return smaller
