"""The batch loop both agents run, and the progress record that health reads.

    events = take(max_batch, within=max_wait)      # Faust events, not acked
    done = await stage(events)                      # pure work + outputs (never raises on input)
    sent = await deliverer.deliver(done.outputs)    # every output acknowledged by the broker
    await done.persist()                            # e.g. the alert state's changelog write
    ack(events)                                     # only now may Faust commit their offsets
    done.after_ack(sent)                            # e.g. metrics, of what was delivered

Delivery is at-least-once and in batch order: with `pipelined=True` batch N is delivered
while batch N+1 is prepared, but N+1 is never acked before N.

Two ways to form batches:
- fill (the default, the alert agent): Faust's `take` waits until max_batch records are in
  hand or max_wait has passed;
- eager (with a `BatchSizer`, the score agent): a background pump queues records as they
  arrive, and the loop hands the stage whatever is queued as soon as the stage is free, up
  to the sizer's limit: max_batch, and no more records than the stage prepares within
  `max_seconds` at its measured speed. An idle stage never waits for a batch to fill; a
  busy one lets the queue grow, so batches grow with the load and shrink with it.

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

from brandmon.broker_probe import BrokerProbe
from brandmon.delivery import Deliverer, Exists, Output, Send
from brandmon.settings import Settings

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped on a bug or a fatal delivery error (BSD EX_SOFTWARE).
EXIT_CRASHED = 70


#: Eager batching: how often the pump hands Faust's buffered records to the backlog queue when
#: fewer than max_batch arrived; a bound on the latency the pump adds, cheap when idle.
PUMP_TICK_SECONDS = 0.005

#: Observes one stage of one batch: (stage name, seconds).
StageTimer = Callable[[str, float], None]


def _no_persist() -> Awaitable[None]:
    return asyncio.sleep(0)


@dataclass
class Prepared:
    """A batch after the stage's pure work: what to produce, and what to do after delivery.
    `after_ack` gets the records delivered: `outputs`, with any that was too large for its
    topic replaced by what was sent instead (brandmon/delivery.py)."""

    outputs: list[Output]
    persist: Callable[[], Awaitable[None]] = _no_persist
    after_ack: Callable[[Sequence[Output]], None] = lambda delivered: None


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


@dataclass
class BatchSizer:
    """How many records the next eager batch may hold: at most `max_batch`, and at most what
    the stage prepares in `max_seconds` at its measured speed (None: no time cap).

    The speed is a moving average of seconds per record over the batches prepared so far.
    Small batches carry the stage's fixed cost per batch, so the estimate errs towards
    smaller batches; it corrects itself as batches grow.
    """

    max_batch: int
    max_seconds: float | None = None
    #: Weight of the newest batch in the moving average.
    smoothing: float = 0.2
    per_record: float | None = None

    def limit(self) -> int:
        if not self.max_seconds or self.per_record is None or self.per_record <= 0:
            return self.max_batch
        return max(1, min(self.max_batch, int(self.max_seconds / self.per_record)))

    def observe(self, records: int, seconds: float) -> None:
        if records <= 0:
            return
        sample = seconds / records
        if self.per_record is None:
            self.per_record = sample
        else:
            self.per_record += self.smoothing * (sample - self.per_record)


_END = object()


class Backlog:
    """Eager batching's queue: a pump task moves the stream's records (not acked) into a
    bounded queue as they arrive; `take` hands out what is queued (see module).

    The bound (`capacity`) is backpressure: a full queue stops the pump, and Faust stops
    fetching once its own buffers are full.
    """

    def __init__(self, stream: StreamT[Any], capacity: int, tick: float) -> None:
        self._queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue(capacity)
        self._failure: BaseException | None = None
        self._ended = False
        self._task = asyncio.ensure_future(self._pump(stream, capacity, tick))

    async def _pump(self, stream: StreamT[Any], capacity: int, tick: float) -> None:
        # noack_take is on faust.Stream, not on the StreamT interface
        take = stream.noack_take  # type: ignore[attr-defined]
        try:
            async for events in take(capacity, tick):
                arrived = time.monotonic()
                for event in events:
                    await self._queue.put((arrived, event))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the loop raises it, after the records before it
            self._failure = exc
        await self._queue.put((0.0, _END))

    async def take(self, limit: int) -> tuple[list[EventT[Any]], float] | None:
        """Wait for one record, then return it and those queued behind it (up to `limit`) with
        the oldest one's arrival time (time.monotonic); None when the stream has ended."""
        if not self._ended:
            oldest, item = await self._queue.get()
            events: list[EventT[Any]] = []
            while item is not _END:
                events.append(item)
                if len(events) >= limit or self._queue.empty():
                    break
                _, item = self._queue.get_nowait()
            else:
                self._ended = True
            if events:
                return events, oldest
        if self._failure is not None:
            raise self._failure
        return None

    def close(self) -> None:
        self._task.cancel()


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
        sizer: BatchSizer | None = None,
        timer: StageTimer | None = None,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.deliverer = deliverer
        self.progress = progress
        self.pipelined = pipelined
        self.stop_grace = stop_grace
        self.on_crash = on_crash
        self.sizer = sizer
        self.timer = timer
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
        if self.sizer is not None:
            await self._run_eager(stream, stage, self.sizer)
            return
        # noack_take is on faust.Stream, not on the StreamT interface
        take = stream.noack_take  # type: ignore[attr-defined]
        asked = time.monotonic()
        async for events in take(self.max_batch, self.max_wait):
            self._time("wait", time.monotonic() - asked)
            await self._batch(stream, events, stage)
            asked = time.monotonic()

    async def _run_eager(self, stream: StreamT[Any], stage: Stage, sizer: BatchSizer) -> None:
        backlog = Backlog(stream, self.max_batch, PUMP_TICK_SECONDS)
        try:
            while True:
                try:
                    taken = await backlog.take(sizer.limit())
                except asyncio.CancelledError:
                    await self._finish_on_stop(None)
                    await _commit_acked(stream)
                    raise
                if taken is None:
                    return
                events, oldest = taken
                self._time("wait", time.monotonic() - oldest)
                await self._batch(stream, events, stage)
        finally:
            backlog.close()

    async def _batch(
        self, stream: StreamT[Any], events: Sequence[EventT[Any]], stage: Stage
    ) -> None:
        batch = asyncio.ensure_future(self._one(stream, events, stage))
        try:
            await asyncio.shield(batch)
        except asyncio.CancelledError:
            await self._finish_on_stop(batch)
            await _commit_acked(stream)
            raise

    async def _finish_on_stop(self, batch: asyncio.Future[None] | None) -> None:
        """A stop request: give the batch in hand (and the one in delivery) `stop_grace` s.

        A batch in hand that finishes starts its own delivery (pipelined), which is waited
        for too: a batch delivered but not acked would be scored again after the restart."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_grace
        waited: set[asyncio.Future[None]] = set()
        while True:
            pending = [f for f in (batch, self._delivery) if f is not None and f not in waited]
            if not pending:
                return
            done, late = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
            for future in late:
                log.warning(
                    "stopping: a batch could not be delivered within %.0f s; it stays unacked "
                    "and will be processed again after the restart",
                    self.stop_grace,
                )
                future.cancel()
            for future in done:
                if not future.cancelled() and future.exception() is not None:
                    log.error("batch failed while stopping: %r", future.exception())
            if late:
                return
            waited |= done

    async def _one(self, stream: StreamT[Any], events: Sequence[EventT[Any]], stage: Stage) -> None:
        started = time.perf_counter()
        prepared = await stage(events)
        if self.sizer is not None:
            self.sizer.observe(len(events), time.perf_counter() - started)
        if self._delivery is not None:
            await self._delivery  # batch N is acked before batch N+1
        self._delivery = asyncio.ensure_future(self._finish(stream, events, prepared))
        self._delivery.add_done_callback(self._check)
        if not self.pipelined:
            await self._delivery

    def _time(self, stage: str, seconds: float) -> None:
        if self.timer is not None:
            self.timer(stage, seconds)

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
        started = time.perf_counter()
        delivered = await self.deliverer.deliver(prepared.outputs)
        self._time("deliver", time.perf_counter() - started)
        await prepared.persist()
        for event in events:
            await stream.ack(event)
        self.progress.moved(len(events))
        prepared.after_ack(delivered)


def faust_send(topics: dict[str, TopicT]) -> Send:
    """A `Send` for the Deliverer: produce one output on its Faust topic, await the ack."""

    # The Deliverer starts a batch's sends together; Faust's `send` may await (the topic's
    # first use declares it) before it hands the record to the producer, so without this
    # FIFO lock a key's records could be enqueued, and land, out of input order. Only the
    # enqueue is serialised: the acks are still awaited together.
    enqueue = asyncio.Lock()

    async def send(out: Output) -> Any:
        async with enqueue:
            future = await topics[out.topic].send(
                key=out.key, value=out.value, headers=list(out.headers)
            )
        return await future

    return send


def topic_exists(settings: Settings) -> Exists:
    """An `Exists` for the Deliverer: ask the broker (None when it cannot tell)."""
    probe = BrokerProbe(settings)

    async def exists(topic: str) -> bool | None:
        # asked only after a send failed on an unknown topic: rare, so no clients stay open
        try:
            return await probe.topic_exists(topic)
        finally:
            await probe.close()

    return exists


#: Bound on the commit a stopping worker makes itself (see `_commit_acked`).
STOP_COMMIT_SECONDS = 5.0


async def _commit_acked(stream: StreamT[Any]) -> None:
    """Commit the offsets of the batches acked while stopping, before Faust tears down.

    Faust commits acked offsets on its own timer and again while its consumer stops, but a
    batch acked during the stop grace can miss the last of those (seen once: a clean SIGTERM
    whose last batch was replayed after the restart). A replay is allowed (at-least-once), but
    a clean stop should not cause one, so the stopping agent commits once more itself. A
    failure here only means that replay; it is logged, never raised over the stop.
    """
    try:
        consumer = stream.app.consumer
        await asyncio.wait_for(consumer.commit(), STOP_COMMIT_SECONDS)
    except (asyncio.CancelledError, Exception) as exc:
        log.warning(
            "stopping: the final commit did not complete (%r); acked batches since "
            "the last commit will be processed again after the restart",
            exc,
        )
