"""Questions a running worker asks the broker (consumer lag, does a topic exist), in aiokafka.

Worker processes ask with aiokafka, the client Faust itself runs, on the worker's own event
loop, and never with confluent-kafka: librdkafka 2.16's admin client segfaulted the score
worker (`rdk:main ... segfault at 58 in librdkafka`) when the broker restarted while a lag
measurement was in flight, a silent death with nothing in the log (issue 8's broker-restart
test caught it under load). The command-line tools and tests keep `brandmon.web.measure_lag`,
which uses confluent-kafka from short-lived processes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from brandmon.settings import Settings

log = logging.getLogger(__name__)

#: Kafka's error code for a topic the broker does not know (UNKNOWN_TOPIC_OR_PARTITION).
UNKNOWN_TOPIC = 3

#: Longest one question may take: the lag monitor asks every few seconds and must not pile up.
ASK_TIMEOUT_SECONDS = 5.0


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """aiokafka connection settings (servers, TLS, SASL) from brandmon's settings."""
    protocol = settings.security_protocol
    conf: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        conf["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile, certfile=settings.ssl_certfile, keyfile=settings.ssl_keyfile
        )
    if protocol.startswith("SASL_"):
        password = settings.sasl_password
        conf["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        conf["sasl_plain_username"] = settings.sasl_username
        conf["sasl_plain_password"] = password.get_secret_value() if password else None
    return conf


class BrokerProbe:
    """An admin client and a group-less consumer, started on first use and rebuilt after a
    failure (a failed question raises; the next one starts afresh)."""

    def __init__(self, settings: Settings, timeout: float = ASK_TIMEOUT_SECONDS) -> None:
        self._conf = aiokafka_config(settings)
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def lag(self, group: str, topic: str) -> dict[int, int]:
        """End offset minus `group`'s committed offset for each partition of `topic`."""
        return await self._ask(self._lag(group, topic))

    async def topic_exists(self, topic: str) -> bool | None:
        """True or False as the broker says; None when it cannot be asked."""
        try:
            return await self._ask(self._exists(topic))
        except Exception as exc:  # unknown: the caller keeps retrying
            log.info("could not ask the broker whether %s exists: %r", topic, exc)
            return None

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        for client in (consumer, admin):
            if client is None:
                continue
            try:
                await asyncio.wait_for(_stop(client), self._timeout)
            except Exception as exc:  # closing a broken client must not hide the first error
                log.debug("closing a broker probe client failed: %r", exc)

    async def _ask(self, question: Any) -> Any:
        try:
            return await asyncio.wait_for(question, self._timeout)
        except BaseException:
            await self.close()
            raise

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._conf)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**self._conf, enable_auto_commit=False)
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def _partitions(self, topic: str) -> list[int] | None:
        admin, _ = await self._clients()
        for found in await admin.describe_topics([topic]):
            if found["topic"] == topic:
                if found["error_code"] == UNKNOWN_TOPIC:
                    return None
                if found["error_code"]:
                    raise RuntimeError(f"metadata of {topic}: error code {found['error_code']}")
                return sorted(p["partition"] for p in found["partitions"])
        return None

    async def _exists(self, topic: str) -> bool:
        return await self._partitions(topic) is not None

    async def _lag(self, group: str, topic: str) -> dict[int, int]:
        partitions = await self._partitions(topic)
        if partitions is None:
            raise RuntimeError(f"topic {topic} does not exist")
        admin, consumer = await self._clients()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        lag: dict[int, int] = {}
        for tp in tps:
            done = committed.get(tp)
            start = done.offset if done is not None and done.offset >= 0 else 0
            lag[tp.partition] = ends[tp] - start
        return lag


async def _stop(client: AIOKafkaAdminClient | AIOKafkaConsumer) -> None:
    if isinstance(client, AIOKafkaAdminClient):
        await client.close()
    else:
        await client.stop()
