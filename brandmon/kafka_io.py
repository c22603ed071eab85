"""confluent-kafka clients for the standalone commands: topic admin, a producer that waits for
every delivery report, and a consumer that iterates JSON records.

The Faust worker uses aiokafka (Faust's default transport); these are for producers, analysts
and tests, which want a plain client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from brandmon.settings import Settings


class BrokerUnreachableError(RuntimeError):
    """No broker answered at the configured bootstrap servers."""


def _quiet(conf: dict[str, Any]) -> dict[str, Any]:
    # librdkafka logs connection refusals to stderr every second; we report them ourselves
    return {**conf, "log_level": 2}


def admin(settings: Settings) -> AdminClient:
    return AdminClient(_quiet(settings.confluent_config()))


def check_broker(settings: Settings, timeout: float = 10.0) -> None:
    """Raise BrokerUnreachableError naming the servers when no broker answers in `timeout`."""
    try:
        meta = admin(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"no Kafka broker answered at {settings.bootstrap_servers} within {timeout:.0f} s: "
            "start one with `brandmon kafka start`, or set BRANDMON_BOOTSTRAP_SERVERS"
        ) from exc
    if not meta.brokers:
        raise BrokerUnreachableError(f"no Kafka broker listed at {settings.bootstrap_servers}")


def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    partitions: int | None = None,
    config: dict[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are), with the
    topic `config` given (e.g. {"cleanup.policy": "compact"})."""
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"cannot list topics at {settings.bootstrap_servers}: is the broker running?"
        ) from exc
    wanted = [
        NewTopic(
            name,
            partitions or settings.topic_partitions,
            settings.topic_replication,
            config=config or {},
        )
        for name in dict.fromkeys(names)
        if name not in existing
    ]
    if not wanted:
        return
    for name, future in client.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc


class DeliveryError(RuntimeError):
    """The broker refused or timed out records; `failures` says which and why."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__(f"{len(failures)} record(s) not delivered; first: {failures[0]}")
        self.failures = failures


class JsonProducer:
    """Produces records and, on flush(), raises DeliveryError unless every one was acknowledged."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        conf = {
            **settings.confluent_config(),
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            **overrides,
        }
        self._producer = Producer(_quiet(conf))
        self._failures: list[str] = []
        self.delivered = 0

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err.str()}")
        else:
            self.delivered += 1

    def send(
        self,
        topic: str,
        value: bytes | dict[str, Any],
        key: str | bytes | None = None,
        headers: dict[str, str | bytes | None] | None = None,
        partition: int | None = None,
    ) -> None:
        payload = value if isinstance(value, bytes) else json.dumps(value).encode()
        # librdkafka picks the partition from the key unless one is given (-1: unassigned)
        where = -1 if partition is None else partition
        while True:
            try:
                self._producer.produce(
                    topic,
                    payload,
                    key=key,
                    headers=headers,
                    on_delivery=self._on_delivery,
                    partition=where,
                )
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        remaining = self._producer.flush(timeout)
        if remaining:
            self._failures.append(f"{remaining} record(s) still queued after {timeout:.0f} s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryError(failures)
        return self.delivered


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: dict[str, bytes]

    def json(self) -> Any:
        return json.loads(self.value) if self.value is not None else None


def _record(msg: Any) -> Record:
    headers: dict[str, bytes] = {}
    for name, value in msg.headers() or []:
        headers[name] = value if isinstance(value, bytes) else str(value or "").encode()
    return Record(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value(),
        timestamp_ms=msg.timestamp()[1],
        headers=headers,
    )


def consume(
    settings: Settings,
    topics: list[str],
    *,
    group: str | None = None,
    from_beginning: bool = True,
    idle_timeout: float | None = None,
    max_records: int | None = None,
    timeout: float | None = None,
) -> Iterator[Record]:
    """Yield records from `topics`; stop after `idle_timeout` seconds with nothing new, after
    `max_records`, or after `timeout` seconds in all. Without a group, nothing is committed
    (a read-only look)."""
    conf = {
        **settings.confluent_config(),
        "group.id": group or f"brandmon-reader-{time.time_ns()}",
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "enable.auto.commit": group is not None,
    }
    consumer = Consumer(_quiet(conf))
    consumer.subscribe(topics)
    seen = 0
    last = time.monotonic()
    end = last + timeout if timeout is not None else None
    try:
        while max_records is None or seen < max_records:
            if end is not None and time.monotonic() > end:
                return
            msg = consumer.poll(0.2)
            if msg is None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            last = time.monotonic()
            seen += 1
            yield _record(msg)
    finally:
        consumer.close()
