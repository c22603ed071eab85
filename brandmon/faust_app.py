"""The Faust application: broker connection, serialisation, commit policy and isolation
level, nothing else.

Each worker process builds its own app with `create_app` and registers its agent on it: the
score worker (`brandmon.stream.worker`) and the alert worker (`brandmon.alerts.worker`).
"""

from __future__ import annotations

import ssl
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from brandmon.kafka_io import READ_COMMITTED
from brandmon.settings import Settings


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with a consumer that reads committed records only.

    Faust asks for read_committed only in its exactly-once mode (`processing_guarantee`),
    which brandmon does not use (its delivery is at-least-once, brandmon/batches.py), and
    has no setting for the isolation level. So the consumer Faust builds gets it here, before
    it starts: aiokafka hands `_isolation_level` to its fetcher in `start()`.
    tests/test_faust_app.py checks that the consumer Faust builds reads committed records.
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = READ_COMMITTED
        return consumer


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ReadCommittedThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, whose consumer reads committed records only."""

    Consumer = _ReadCommittedConsumer


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust credentials for the configured Kafka security protocol (None for PLAINTEXT)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context: ssl.SSLContext | None = None
    if protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
        if settings.ssl_certfile:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
        mechanism=settings.sasl_mechanism or "PLAIN",
        ssl_context=context,
    )


def create_app(
    settings: Settings, app_id: str | None = None, web_port: int | None = None, **overrides: Any
) -> faust.App:
    """A Faust app for brandmon's topics: raw bytes in and out, at-least-once commits, and
    committed records only (a transactional producer's aborted records are never read)."""
    servers = ";".join(f"kafka://{s}" for s in settings.bootstrap_servers.split(","))
    conf: dict[str, Any] = {
        "broker": servers,
        "broker_credentials": broker_credentials(settings),
        # the agents parse and validate JSON themselves, so bad bytes reach the DLQ intact
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        # changelog-backed tables live in memory and are rebuilt from Kafka on start
        "store": "memory://",
        "datadir": str(settings.data_dir),
        "consumer_auto_offset_reset": "earliest",
        # commit acked offsets often: a crash replays at most ~1 s of input
        "broker_commit_interval": 1.0,
        "broker_commit_every": 1000,
        "producer_acks": -1,
        # A rebalance or stop does not wait for taken-but-unacked events (Faust's default
        # waits, which let one stuck batch hold SIGTERM for minutes): their records are not
        # committed, so the partition's next owner replays them (at-least-once).
        "stream_wait_empty": False,
        # A worker that dies without leaving the group (SIGKILL, OOM, lost host) holds its
        # partitions until this runs out; Faust's default is 60 s. Heartbeats every third.
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": settings.session_timeout_seconds / 3,
        "producer_linger_ms": 5,
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_port": settings.web_port if web_port is None else web_port,
        "web_host": settings.web_host,
        "web_in_thread": False,
        "logging_config": None,
    }
    conf.update(overrides)
    # Faust creates only the last level of its data directory
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(app_id or settings.app_id, **conf)
    app.transport = ReadCommittedTransport(app.conf.broker_consumer, app)
    return app
