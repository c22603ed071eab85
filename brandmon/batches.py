"""The batch loop both agents run, and the progress record that health reads.

    events = take(max_batch, within=max_wait)      # Faust events, not acked
    done = await stage(events)                      # pure work + outputs (never raises on input)
    await deliverer.deliver(done.outputs)           # every output acknowledged by the broker
    await done.persist()                            # e.g. the alert state's changelog write
    ack(events)                                     # only now may Faust commit their offsets

Delivery is at-least-once and in batch order: with `pipelined=True` batch N is delivered
while batch N+1 is prepared, but N+1 is never acked before N.

Crash policy (explicit, never an accident): an exception escaping a batch is a bug or a fatal
delivery error. The worker logs it and exits at once with code 70 (`EXIT_CRASHED`) without
acking the batch and without a final commit, so the group's committed offsets stay at the
last delivered record and a restart replays everything after it. Faust's own agent restart
is never used: it resumes from the consumer's in-memory position, past the records the
crashed batch had taken (issue 8). Bad input never gets here: stages turn it into dead
letters.

A stop request (SIGTERM) lets the batch in hand finish within `stop_grace` seconds; a batch
that cannot be delivered in that time (broker down) is abandoned unacked and replayed later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import EventT, StreamT, TopicT

from brandmon.delivery import Deliverer, Exists, Output, Send
from brandmon.kafka_io import admin
from brandmon.settings import Settings

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped on a bug or a fatal delivery error (BSD EX_SOFTWARE).
EXIT_CRASHED = 70


def _no_persist() -> Awaitable[None]:
    return asyncio.sleep(0)


@dataclass
class Prepared:
    """A batch after the stage's pure work: what to produce, and what to do after delivery."""

    outputs: list[Output]
    persist: Callable[[], Awaitable[None]] = _no_persist
    after_ack: Callable[[], None] = lambda: None


@dataclass
class Progress:
    """When an agent last moved, and whether it crashed: the truth behind /ready."""

    name: str
    clock: Callable[[], float] = time.monotonic
    last_progress: float = field(default=0.0)
    batches: int = 0
    records: int = 0
    crashed: str | None = None

    def __post_init__(self) -> None:
        self.last_progress = self.clock()

    def moved(self, records: int) -> None:
        self.last_progress = self.clock()
        self.batches += 1
        self.records += records

    def idle_seconds(self) -> float:
        return self.clock() - self.last_progress


def crash_exit(progress: Progress, exc: BaseException) -> None:
    """Log `exc` and end the process now, without acking or committing (see module)."""
    progress.crashed = f"{type(exc).__name__}: {str(exc)[:300]}"
    log.critical(
        "agent %s stopped: %s; exiting with code %d so nothing is committed past the "
        "last delivered record (a restart resumes there)",
        progress.name,
        progress.crashed,
        EXIT_CRASHED,
        exc_info=exc,
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_CRASHED)


Stage = Callable[[Sequence[EventT[Any]]], Awaitable[Prepared]]


class BatchLoop:
    """Take, prepare, deliver, persist, ack: one loop for both agents (see module)."""

    def __init__(
        self,
        *,
        max_batch: int,
        max_wait: float,
        deliverer: Deliverer,
        progress: Progress,
        pipelined: bool = False,
        stop_grace: float = 10.0,
        on_crash: Callable[[Progress, BaseException], None] = crash_exit,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.deliverer = deliverer
        self.progress = progress
        self.pipelined = pipelined
        self.stop_grace = stop_grace
        self.on_crash = on_crash
        self._delivery: asyncio.Future[None] | None = None

    async def run(self, stream: StreamT[Any], stage: Stage) -> None:
        try:
            await self._run(stream, stage)
            if self._delivery is not None:
                await self._delivery
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.on_crash(self.progress, exc)
            raise

    async def _run(self, stream: StreamT[Any], stage: Stage) -> None:
        # noack_take is on faust.Stream, not on the StreamT interface
        take = stream.noack_take  # type: ignore[attr-defined]
        async for events in take(self.max_batch, self.max_wait):
            batch = asyncio.ensure_future(self._one(stream, events, stage))
            try:
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                await self._finish_on_stop(batch)
                raise

    async def _finish_on_stop(self, batch: asyncio.Future[None]) -> None:
        """A stop request: give the batch in hand (and the one in delivery) `stop_grace` s."""
        pending = [f for f in (batch, self._delivery) if f is not None]
        done, late = await asyncio.wait(pending, timeout=self.stop_grace)
        for future in late:
            log.warning(
                "stopping: a batch could not be delivered within %.0f s; it stays unacked and "
                "will be processed again after the restart",
                self.stop_grace,
            )
            future.cancel()
        for future in done:
            if not future.cancelled() and future.exception() is not None:
                log.error("batch failed while stopping: %r", future.exception())

    async def _one(self, stream: StreamT[Any], events: Sequence[EventT[Any]], stage: Stage) -> None:
        prepared = await stage(events)
        if self._delivery is not None:
            await self._delivery  # batch N is acked before batch N+1
        self._delivery = asyncio.ensure_future(self._finish(stream, events, prepared))
        self._delivery.add_done_callback(self._check)
        if not self.pipelined:
            await self._delivery

    def _check(self, future: asyncio.Future[None]) -> None:
        """A delivery that failed while nobody awaited it still stops the worker."""
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.on_crash(self.progress, exc)

    async def _finish(
        self, stream: StreamT[Any], events: Sequence[EventT[Any]], prepared: Prepared
    ) -> None:
        await self.deliverer.deliver(prepared.outputs)
        await prepared.persist()
        for event in events:
            await stream.ack(event)
        self.progress.moved(len(events))
        prepared.after_ack()


def faust_send(topics: dict[str, TopicT]) -> Send:
    """A `Send` for the Deliverer: produce one output on its Faust topic, await the ack."""

    async def send(out: Output) -> Any:
        future = await topics[out.topic].send(
            key=out.key, value=out.value, headers=list(out.headers)
        )
        return await future

    return send


def topic_exists(settings: Settings) -> Exists:
    """An `Exists` for the Deliverer: ask the broker (None when it cannot tell)."""

    def ask(topic: str) -> bool | None:
        try:
            metadata = admin(settings).list_topics(topic, timeout=5)
        except Exception:  # the broker cannot be asked: unknown, keep retrying
            return None
        found = metadata.topics.get(topic)
        return found is not None and found.error is None

    async def exists(topic: str) -> bool | None:
        return await asyncio.get_running_loop().run_in_executor(None, ask, topic)

    return exists
