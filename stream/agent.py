"""The score agent: the thin Faust shell around `BatchScorer`.

Delivery is at-least-once. The agent takes events with `noack_take`, so nothing is acked by
Faust behind our back (plain `take()` acks in a `finally`, even when the body failed). Only
after every scored and dead-letter record of a batch has been acknowledged by the broker are
the batch's input events acked, which lets Faust commit their offsets. A worker that dies
mid-batch therefore replays the batch: consumers deduplicate on the post `id`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.types import EventT

from brandmon.metrics import Metrics
from brandmon.settings import Settings
from stream.classifier import Classifier
from stream.scoring import BatchResult, BatchScorer, RawRecord

log = logging.getLogger(__name__)

#: Produce retries back off from 0.2 s to 5 s; they never give up, because giving up would
#: mean committing input whose output was lost.
RETRY_FIRST, RETRY_MAX = 0.2, 5.0


def to_raw(event: EventT[Any]) -> RawRecord:
    message = event.message
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=message.timestamp,
    )


def _out_key(record: RawRecord, brand: str | None) -> bytes | None:
    return brand.encode() if brand is not None else record.key


def _source_headers(record: RawRecord) -> list[tuple[str, bytes]]:
    return [("brandmon-source", record.source.encode())]


class ScoreAgent:
    """Consumes `posts`, scores batches off the event loop, delivers and only then acks."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        metrics: Metrics,
        classifier: Classifier,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.scorer = BatchScorer(classifier, metrics)
        self.posts = app.topic(settings.topic_posts, partitions=settings.topic_partitions)
        self.scored = app.topic(settings.topic_scored)
        self.dlq = app.topic(settings.topic_dlq)
        # one thread: the model already uses every core, and batches must stay in order
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brandmon-infer")
        self.batches = 0
        self._delivery: asyncio.Future[None] | None = None
        app.agent(self.posts, name="brandmon.score", concurrency=1)(self.run)

    async def run(self, stream: faust.StreamT[Any]) -> None:
        """Score batch N+1 while batch N's records are being delivered.

        At most one batch is in delivery at a time, and a batch's input events are acked only
        after all its output records are acknowledged, in batch order. A stop request
        (SIGTERM) lets the batch in hand and the one in delivery finish, so the final commit
        covers exactly what was delivered.
        """
        try:
            await self._run(stream)
        finally:
            if self._delivery is not None:
                await self._delivery

    async def _run(self, stream: faust.StreamT[Any]) -> None:
        # noack_take is on faust.Stream, not on the StreamT interface
        take = stream.noack_take  # type: ignore[attr-defined]
        async for events in take(self.settings.max_batch, self.settings.max_wait):
            batch = asyncio.ensure_future(self.process(stream, events))
            try:
                # a stop request (SIGTERM) cancels this agent: the batch in hand still finishes,
                # is delivered and acked, so the final commit covers it
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                await batch
                raise

    async def process(self, stream: faust.StreamT[Any], events: Sequence[EventT[Any]]) -> None:
        records = [to_raw(event) for event in events]
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self.scorer.score, records)
        if self._delivery is not None:
            await self._delivery
        self._delivery = asyncio.ensure_future(self._deliver_and_ack(stream, events, result))

    async def _deliver_and_ack(
        self, stream: faust.StreamT[Any], events: Sequence[EventT[Any]], result: BatchResult
    ) -> None:
        await self.deliver(result)
        for event in events:
            await stream.ack(event)
        self.batches += 1

    async def deliver(self, result: BatchResult) -> None:
        """Send every output record and wait for the broker to acknowledge all of them."""
        sends: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        for record, post in result.scored:
            value = post.model_dump_json().encode()
            sends.append(
                (
                    self.settings.topic_scored,
                    self._sender(
                        self.scored, _out_key(record, post.brand), value, _source_headers(record)
                    ),
                )
            )
        for record, letter in result.dead:
            value = letter.model_dump_json().encode()
            sends.append(
                (
                    self.settings.topic_dlq,
                    self._sender(self.dlq, record.key, value, _source_headers(record)),
                )
            )
        await self._send_all(sends)
        now = time.time()
        for record, post in result.scored:
            self.metrics.posts_scored.labels(label=post.label).inc()
            if record.timestamp:
                self.metrics.latency_seconds.observe(max(0.0, now - record.timestamp))

    @staticmethod
    def _sender(
        topic: faust.TopicT, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Callable[[], Awaitable[Any]]:
        async def send() -> Any:
            future = await topic.send(key=key, value=value, headers=headers)
            return await future

        return send

    async def _send_all(self, sends: list[tuple[str, Callable[[], Awaitable[Any]]]]) -> None:
        delay = RETRY_FIRST
        pending = sends
        while pending:
            outcomes = await asyncio.gather(
                *(send() for _, send in pending), return_exceptions=True
            )
            failed = [
                item
                for item, out in zip(pending, outcomes, strict=True)
                if isinstance(out, BaseException)
            ]
            if not failed:
                return
            for (topic, _), out in zip(pending, outcomes, strict=True):
                if isinstance(out, BaseException):
                    self.metrics.produce_errors.labels(topic=topic).inc()
            first = next(o for o in outcomes if isinstance(o, BaseException))
            log.error(
                "%d of %d output records not acknowledged (%r); retrying in %.1f s",
                len(failed),
                len(pending),
                first,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            pending = failed

    def close(self) -> None:
        self._executor.shutdown(wait=True)
