"""Eager batching in the shared batch loop: no waiting while the stage is idle and records are
queued, batches capped by the stage's measured speed, acks still in order after delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from brandmon.batches import Backlog, BatchLoop, BatchSizer, Prepared, Progress
from brandmon.delivery import Deliverer, Output
from brandmon.metrics import Metrics


class FakeEvent:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class ScriptedStream:
    """A Faust stream stand-in whose records arrive when the test says so (`arrive`)."""

    def __init__(self) -> None:
        self.arrivals: asyncio.Queue[list[int] | BaseException | None] = asyncio.Queue()
        self.acked: list[int] = []

    def arrive(self, *offsets: int) -> None:
        self.arrivals.put_nowait(list(offsets))

    def end(self, failure: BaseException | None = None) -> None:
        self.arrivals.put_nowait(failure)

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        while True:
            item = await self.arrivals.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield [FakeEvent(i) for i in item]

    async def ack(self, event: FakeEvent) -> bool:
        self.acked.append(event.offset)
        return True


class Acks:
    """A broker stand-in that acknowledges every output at once, recording the order."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, out: Output) -> Any:
        self.sent.append(out.value)
        return None


def eager_loop(
    acks: Acks, crashes: list[BaseException], sizer: BatchSizer, timed: list[str] | None = None
) -> BatchLoop:
    return BatchLoop(
        max_batch=sizer.max_batch,
        max_wait=10.0,  # must never be waited for
        deliverer=Deliverer(acks.send, Metrics()),
        progress=Progress("test"),
        pipelined=True,
        on_crash=lambda progress, exc: crashes.append(exc),
        sizer=sizer,
        timer=(lambda stage, seconds: timed.append(stage)) if timed is not None else None,
    )


def outputs(events: Any) -> Prepared:
    return Prepared([Output("t", None, str(e.offset).encode()) for e in events])


async def _eventually(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def test_an_idle_stage_gets_the_first_record_at_once_and_a_busy_one_gets_the_queue() -> None:
    async def scenario() -> tuple[list[list[int]], list[int]]:
        stream = ScriptedStream()
        acks, crashes = Acks(), []
        seen: list[list[int]] = []
        release = asyncio.Event()

        async def stage(events: Any) -> Prepared:
            seen.append([e.offset for e in events])
            if len(seen) == 1:
                await release.wait()  # the model is busy with the first batch
            return outputs(events)

        task = asyncio.ensure_future(eager_loop(acks, crashes, BatchSizer(3)).run(stream, stage))  # type: ignore[arg-type]
        stream.arrive(1)
        await _eventually(lambda: seen == [[1]])  # no waiting for max_wait or a full batch
        stream.arrive(2, 3)
        stream.arrive(4, 5)
        await _eventually(lambda: stream.arrivals.empty())
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()  # the model is free: it takes what is queued, up to max_batch (3)
        await _eventually(lambda: len(seen) == 3)
        stream.end()
        await task
        assert crashes == []
        return seen, stream.acked

    seen, acked = asyncio.run(scenario())
    assert seen == [[1], [2, 3, 4], [5]]
    assert acked == [1, 2, 3, 4, 5]


def test_batches_are_capped_by_what_the_stage_prepares_in_max_seconds() -> None:
    sizer = BatchSizer(64, max_seconds=0.1)
    assert sizer.limit() == 64  # nothing measured yet
    sizer.observe(10, 0.05)  # 5 ms per record
    assert sizer.limit() == 20
    sizer.observe(20, 0.2)  # 10 ms per record: the average moves a fifth of the way
    assert sizer.per_record == pytest.approx(0.006)
    assert sizer.limit() == 16
    sizer.observe(1, 5.0)  # a very slow batch still leaves room for one record
    sizer.observe(1, 5.0)
    assert sizer.limit() >= 1
    assert BatchSizer(64, max_seconds=None, per_record=1.0).limit() == 64


def test_the_loop_takes_no_more_than_the_sizer_allows() -> None:
    async def scenario() -> list[list[int]]:
        stream = ScriptedStream()
        acks, crashes = Acks(), []
        seen: list[list[int]] = []
        gate = asyncio.Event()

        async def stage(events: Any) -> Prepared:
            seen.append([e.offset for e in events])
            await gate.wait()
            return outputs(events)

        sizer = BatchSizer(10, max_seconds=1.0, per_record=0.5)  # 2 records per batch
        sizer.smoothing = 0.0  # keep the estimate fixed for the test
        task = asyncio.ensure_future(eager_loop(acks, crashes, sizer).run(stream, stage))  # type: ignore[arg-type]
        stream.arrive(1)
        await _eventually(lambda: len(seen) == 1)
        stream.arrive(2, 3, 4, 5, 6)
        await _eventually(lambda: stream.arrivals.empty())
        for _ in range(10):
            await asyncio.sleep(0)
        gate.set()
        await _eventually(lambda: len(stream.acked) == 6)
        stream.end()
        await task
        assert stream.acked == [1, 2, 3, 4, 5, 6] and crashes == []
        return seen

    assert asyncio.run(scenario()) == [[1], [2, 3], [4, 5], [6]]


def test_eager_batches_are_acked_in_order_after_delivery_and_every_stage_is_timed() -> None:
    async def scenario() -> tuple[ScriptedStream, Acks, list[str]]:
        stream = ScriptedStream()
        acks, crashes, timed = Acks(), [], []
        for i in range(1, 8):
            stream.arrive(i)
        stream.end()

        async def stage(events: Any) -> Prepared:
            await asyncio.sleep(0)
            return outputs(events)

        await eager_loop(acks, crashes, BatchSizer(3), timed).run(stream, stage)  # type: ignore[arg-type]
        assert crashes == []
        return stream, acks, timed

    stream, acks, timed = asyncio.run(scenario())
    assert stream.acked == list(range(1, 8))
    assert acks.sent == [str(i).encode() for i in range(1, 8)]
    assert timed.count("wait") == timed.count("deliver") >= 3


def test_a_failing_stream_stops_the_loop_through_the_crash_policy() -> None:
    # the records before the failure are prepared; whether their delivery finished before the
    # crash or not, nothing after it is acked (the worker exits and replays from the commit)
    async def scenario() -> tuple[ScriptedStream, list[BaseException]]:
        stream = ScriptedStream()
        acks, crashes = Acks(), []
        stream.arrive(1, 2)
        stream.end(RuntimeError("consumer broke"))

        async def stage(events: Any) -> Prepared:
            return outputs(events)

        with pytest.raises(RuntimeError, match="consumer broke"):
            await eager_loop(acks, crashes, BatchSizer(5)).run(stream, stage)  # type: ignore[arg-type]
        return stream, crashes

    stream, crashes = asyncio.run(scenario())
    assert stream.acked in ([], [1, 2])
    assert len(crashes) == 1 and "consumer broke" in str(crashes[0])


def test_the_backlog_hands_out_what_is_queued_with_the_oldest_arrival() -> None:
    async def scenario() -> None:
        stream = ScriptedStream()
        backlog = Backlog(stream, capacity=4, tick=0.0)  # type: ignore[arg-type]
        stream.arrive(1, 2)
        stream.arrive(3)
        await _eventually(lambda: stream.arrivals.empty())
        for _ in range(10):
            await asyncio.sleep(0)
        taken = await backlog.take(2)
        assert taken is not None
        events, oldest = taken
        assert [e.offset for e in events] == [1, 2] and oldest > 0
        taken = await backlog.take(2)
        assert taken is not None and [e.offset for e in taken[0]] == [3]
        stream.end()
        assert await backlog.take(2) is None
        backlog.close()

    asyncio.run(scenario())


def test_a_stop_while_a_batch_is_scored_delivers_and_acks_it_before_returning() -> None:
    # the batch in hand starts its own delivery when it finishes (pipelined): the stop must
    # wait for that too, or the batch is delivered but never acked and scored twice
    async def scenario() -> ScriptedStream:
        stream = ScriptedStream()
        acks, crashes = Acks(), []
        scoring = asyncio.Event()

        async def stage(events: Any) -> Prepared:
            scoring.set()
            await asyncio.sleep(0.01)
            return outputs(events)

        task = asyncio.ensure_future(eager_loop(acks, crashes, BatchSizer(4)).run(stream, stage))  # type: ignore[arg-type]
        stream.arrive(1, 2)
        await scoring.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert crashes == []
        return stream

    assert asyncio.run(scenario()).acked == [1, 2]
