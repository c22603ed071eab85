"""The shared delivery core (brandmon/delivery.py) and batch loop (brandmon/batches.py):
retry classification, records cut to fit, fatal errors that stop instead of spinning, and
acks that never run ahead of delivery. Fake sends stand in for the broker here; the same
paths run against the real broker in tests/integration/test_reliability_kafka.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from faust.exceptions import ProducerSendError

from brandmon.batches import BatchLoop, Prepared, Progress
from brandmon.delivery import (
    Deliverer,
    Disposition,
    FatalDeliveryError,
    Output,
    RetryPolicy,
    classify,
)
from brandmon.metrics import Metrics


def wrapped(exc: Exception) -> ProducerSendError:
    """As Faust raises it: its own error with the Kafka error as the cause."""
    try:
        raise ProducerSendError("Error while sending") from exc
    except ProducerSendError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KafkaConnectionError(), Disposition.RETRY),
        (NotLeaderForPartitionError(), Disposition.RETRY),
        (UnknownTopicOrPartitionError(), Disposition.RETRY),  # fatal once confirmed missing
        (MessageSizeTooLargeError(), Disposition.TOO_LARGE),
        (wrapped(MessageSizeTooLargeError()), Disposition.TOO_LARGE),
        (TopicAuthorizationFailedError(), Disposition.FATAL),
        (wrapped(TopicAuthorizationFailedError()), Disposition.FATAL),
        (RuntimeError("something else"), Disposition.RETRY),
    ],
)
def test_produce_errors_are_classified(exc: Exception, expected: Disposition) -> None:
    assert classify(exc) is expected


class FakeBroker:
    """Acknowledges sends, except for the failures it was told to give, in order."""

    def __init__(self, failures: dict[bytes, list[Exception]] | None = None, limit: int = 0):
        self.failures = failures or {}
        self.limit = limit  # a topic's max.message.bytes; 0 = none
        self.acked: list[Output] = []
        self.sleeps: list[float] = []

    async def send(self, out: Output) -> Any:
        queued = self.failures.get(out.value)
        if queued:
            raise queued.pop(0)
        if self.limit and len(out.value) > self.limit:
            raise MessageSizeTooLargeError()
        self.acked.append(out)
        return out

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def deliverer(broker: FakeBroker, **kw: Any) -> Deliverer:
    return Deliverer(broker.send, Metrics(), retry=RetryPolicy(0.2, 1.0), sleep=broker.sleep, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_retriable_failures_are_retried_with_capped_backoff_until_acknowledged() -> None:
    flaky = [KafkaConnectionError() for _ in range(5)]
    broker = FakeBroker({b"b": flaky})
    outputs = [Output("t", None, b"a"), Output("t", None, b"b")]
    run(deliverer(broker).deliver(outputs))
    assert sorted(o.value for o in broker.acked) == [b"a", b"b"]
    assert broker.sleeps == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_authorization_errors_stop_with_the_topic_and_the_setting_named() -> None:
    broker = FakeBroker({b"a": [wrapped(TopicAuthorizationFailedError())]})
    with pytest.raises(FatalDeliveryError) as raised:
        run(
            deliverer(broker, topic_settings={"scored": "BRANDMON_TOPIC_SCORED"}).deliver(
                [Output("scored", None, b"a")]
            )
        )
    message = str(raised.value)
    assert "'scored'" in message and "BRANDMON_TOPIC_SCORED" in message
    assert broker.sleeps == []  # not retried


def test_a_missing_topic_is_fatal_only_once_the_broker_confirms_it() -> None:
    async def missing(topic: str) -> bool | None:
        return False

    async def unknown(topic: str) -> bool | None:
        return None  # broker down: cannot tell

    broker = FakeBroker({b"a": [UnknownTopicOrPartitionError()]})
    with pytest.raises(FatalDeliveryError, match="does not exist"):
        run(deliverer(broker, exists=missing).deliver([Output("gone", None, b"a")]))

    broker = FakeBroker({b"a": [UnknownTopicOrPartitionError()]})
    run(deliverer(broker, exists=unknown).deliver([Output("gone", None, b"a")]))
    assert [o.value for o in broker.acked] == [b"a"]


def test_a_record_too_large_for_its_topic_is_replaced_by_the_stage_shrink() -> None:
    broker = FakeBroker(limit=10)

    def shrink(out: Output) -> Output:
        return Output("dlq", None, b"cut", origin=out.origin)

    big = Output("scored", None, b"x" * 100, origin="posts/0/7")
    delivered = run(deliverer(broker, shrink=shrink).deliver([Output("scored", None, b"ok"), big]))
    assert sorted((o.topic, o.value) for o in broker.acked) == [("dlq", b"cut"), ("scored", b"ok")]
    # what was delivered, in the order given: the cut record in the place of the large one
    assert [(o.topic, o.value) for o in delivered] == [("scored", b"ok"), ("dlq", b"cut")]


def test_records_that_only_shared_a_batch_with_a_large_one_are_sent_again_alone() -> None:
    broker = FakeBroker({b"small": [MessageSizeTooLargeError()]})

    def shrink(out: Output) -> Output:
        raise AssertionError("a record that fits alone must not be cut")

    run(deliverer(broker, shrink=shrink).deliver([Output("t", None, b"small")]))
    assert [o.value for o in broker.acked] == [b"small"]


def test_a_record_that_cannot_be_cut_stops_instead_of_retrying_forever() -> None:
    broker = FakeBroker(limit=1)
    with pytest.raises(FatalDeliveryError, match=r"max\.message\.bytes"):
        run(deliverer(broker).deliver([Output("alerts", None, b"too big")]))


class FakeStream:
    """What BatchLoop needs of a Faust stream: noack_take and ack."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.acked: list[int] = []

    async def noack_take(self, max_: int, within: float) -> Any:
        for batch in self.batches:
            yield [FakeEvent(i) for i in batch]

    async def ack(self, event: FakeEvent) -> bool:
        self.acked.append(event.offset)
        return True


class FakeEvent:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def loop(broker: FakeBroker, crashes: list[BaseException], pipelined: bool = True) -> BatchLoop:
    return BatchLoop(
        max_batch=10,
        max_wait=0.1,
        deliverer=deliverer(broker),
        progress=Progress("test"),
        pipelined=pipelined,
        on_crash=lambda progress, exc: crashes.append(exc),
    )


def test_batches_are_acked_in_order_only_after_their_outputs_are_acknowledged() -> None:
    broker = FakeBroker({b"1": [KafkaConnectionError(), KafkaConnectionError()]})
    stream = FakeStream([[1, 2], [3], [4, 5]])
    crashes: list[BaseException] = []

    async def stage(events: list[FakeEvent]) -> Prepared:
        return Prepared([Output("t", None, str(e.offset).encode()) for e in events])

    batch_loop = loop(broker, crashes)
    run(batch_loop.run(stream, stage))  # type: ignore[arg-type]
    assert stream.acked == [1, 2, 3, 4, 5]
    assert {o.value for o in broker.acked} == {b"1", b"2", b"3", b"4", b"5"}
    assert crashes == [] and batch_loop.progress.records == 5


def test_a_fatal_delivery_stops_the_loop_without_acking_that_batch_or_any_after() -> None:
    broker = FakeBroker({b"3": [TopicAuthorizationFailedError()]})
    stream = FakeStream([[1, 2], [3], [4, 5]])
    crashes: list[BaseException] = []

    async def stage(events: list[FakeEvent]) -> Prepared:
        return Prepared([Output("t", None, str(e.offset).encode()) for e in events])

    with pytest.raises(FatalDeliveryError):
        run(loop(broker, crashes).run(stream, stage))  # type: ignore[arg-type]
    assert stream.acked == [1, 2]
    assert crashes and isinstance(crashes[0], FatalDeliveryError)


def test_state_is_persisted_after_delivery_and_before_the_ack() -> None:
    order: list[str] = []
    broker = FakeBroker()
    stream = FakeStream([[1]])

    async def send(out: Output) -> Any:
        order.append("delivered")
        return await broker.send(out)

    async def persist() -> None:
        order.append("persisted")

    async def ack(event: FakeEvent) -> bool:
        order.append("acked")
        return True

    stream.ack = ack  # type: ignore[method-assign]

    async def stage(events: list[FakeEvent]) -> Prepared:
        return Prepared([Output("t", None, b"x")], persist=persist)

    batch_loop = BatchLoop(
        max_batch=10,
        max_wait=0.1,
        deliverer=Deliverer(send, Metrics()),
        progress=Progress("test"),
    )
    run(batch_loop.run(stream, stage))  # type: ignore[arg-type]
    assert order == ["delivered", "persisted", "acked"]
