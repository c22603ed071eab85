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

from brandmon.kafka_diagnosis import ConnectionReport, Failure
from brandmon.settings import Settings

#: The isolation level of every brandmon consumer (these, the Faust workers' in
#: brandmon/faust_app.py, the control follower's and the notifier dispatcher's): records a
#: transactional producer aborted, or has not committed yet, are never read, so they are
#: never scored, counted in an alert or exported for labelling. librdkafka reads committed
#: records by default, aiokafka (and so Faust) does not; every consumer says it explicitly.
READ_COMMITTED = "read_committed"


class BrokerUnreachableError(RuntimeError):
    """No broker could be used at the configured bootstrap servers: none answered, or (the
    subclasses) one answered and refused the connection's settings."""


class BrokerAuthenticationError(BrokerUnreachableError):
    """The broker refused the SASL authentication: mechanism, user or password, or a
    listener without SASL."""


class BrokerProtocolError(BrokerUnreachableError):
    """Something answered, but not in the configured security protocol (PLAINTEXT, SSL,
    SASL_*), or its TLS certificate does not verify."""


class KafkaSettingsError(BrokerUnreachableError):
    """librdkafka refused the connection settings before connecting (e.g. a SASL mechanism
    it lacks, a CA file it cannot read)."""


def _quiet(conf: dict[str, Any]) -> dict[str, Any]:
    # librdkafka logs connection refusals to stderr every second; we report them ourselves
    return {**conf, "log_level": 2}


def consumer_config(settings: Settings, conf: dict[str, Any]) -> dict[str, Any]:
    """A confluent-kafka consumer's settings: the broker connection, committed records only,
    librdkafka's own logging quiet, and `conf` (group.id, auto.offset.reset, ...)."""
    return _quiet({**settings.confluent_config(), **conf, "isolation.level": READ_COMMITTED})


def admin(settings: Settings) -> AdminClient:
    return AdminClient(_quiet(settings.confluent_config()))


#: How often check_broker reads librdkafka's reports while it waits: a refusal that a retry
#: cannot change (authentication, TLS) is reported at once, not when the time is up.
CHECK_STEP_SECONDS = 1.0


def check_broker(settings: Settings, timeout: float = 10.0) -> None:
    """Return once a broker answers. Else raise the BrokerUnreachableError that names why:
    a refused authentication or TLS handshake as soon as one is seen; no answer at all, or a
    listener of another protocol, after `timeout` seconds."""
    report = ConnectionReport()
    try:
        client = AdminClient({**settings.confluent_config(), **report.client_config()})
    except KafkaException as exc:
        raise KafkaSettingsError(
            f"the Kafka client refuses the connection settings ({exc.args[0].str()}): check "
            "BRANDMON_SECURITY_PROTOCOL, BRANDMON_SASL_* and BRANDMON_SSL_*"
        ) from exc
    deadline = time.monotonic() + timeout
    while True:
        step = min(CHECK_STEP_SECONDS, max(deadline - time.monotonic(), 0.1))
        try:
            meta = client.list_topics(timeout=step)
            break
        except KafkaException as exc:
            client.poll(0)  # hands librdkafka's reports to `report`
            failure = report.worst()
            if (failure is not None and failure.final) or time.monotonic() >= deadline:
                raise _broker_error(settings, failure, timeout) from exc
    if not meta.brokers:
        raise BrokerUnreachableError(f"no Kafka broker listed at {settings.bootstrap_servers}")


def _broker_error(
    settings: Settings, failure: Failure | None, timeout: float
) -> BrokerUnreachableError:
    servers, protocol = settings.bootstrap_servers, settings.security_protocol
    if failure is None or failure.cause == "unreachable":
        why = f" ({failure.reason})" if failure else ""
        return BrokerUnreachableError(
            f"no Kafka broker answered at {servers} within {timeout:.0f} s{why}: start one "
            "with `brandmon kafka start`, or set BRANDMON_BOOTSTRAP_SERVERS"
        )
    if failure.cause == "authentication":
        return BrokerAuthenticationError(
            f"the Kafka broker at {servers} refused the SASL authentication ({failure.reason}): "
            "check BRANDMON_SASL_MECHANISM, BRANDMON_SASL_USERNAME and BRANDMON_SASL_PASSWORD, "
            f"and that the listener speaks BRANDMON_SECURITY_PROTOCOL={protocol}"
        )
    tls = ", and BRANDMON_SSL_CAFILE" if "SSL" in protocol else ""
    return BrokerProtocolError(
        f"something answered at {servers} but the {protocol} handshake failed "
        f"({failure.reason}): check that BRANDMON_SECURITY_PROTOCOL is the protocol of the "
        f"broker's listener (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL){tls}"
    )


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
        "group.id": group or f"brandmon-reader-{time.time_ns()}",
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "enable.auto.commit": group is not None,
    }
    consumer = Consumer(consumer_config(settings, conf))
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
