"""The worker's own broker questions (brandmon.broker_probe), against a real Kafka broker.

The probe replaced librdkafka's admin client inside workers after that client segfaulted a
worker during a broker restart; these tests pin what /ready and the lag gauge rely on.
"""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition

from brandmon.broker import free_port
from brandmon.broker_probe import BrokerProbe
from brandmon.kafka_io import JsonProducer, ensure_topics
from brandmon.settings import Settings
from brandmon.web import measure_lag

pytestmark = pytest.mark.kafka


def _commit(settings: Settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit `offsets` for `group` as a consumer of that group would."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.commit(
            offsets=[CTopicPartition(topic, p, o) for p, o in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


def test_lag_matches_the_group_commits_and_the_end_offsets(test_settings: Settings) -> None:
    topic = test_settings.topic_posts
    ensure_topics(test_settings, [topic])
    producer = JsonProducer(test_settings)
    for i in range(30):
        producer._producer.produce(topic, b"{}", partition=i % 3)
    producer.flush()
    group = f"{test_settings.app_id}-probe"
    _commit(test_settings, group, topic, {0: 4, 1: 10})  # partition 2: nothing committed

    async def ask() -> dict[int, int]:
        probe = BrokerProbe(test_settings)
        try:
            return await probe.lag(group, topic)
        finally:
            await probe.close()

    lag = asyncio.run(ask())
    assert lag == {0: 6, 1: 0, 2: 10}
    assert lag == measure_lag(test_settings, group, topic)


def test_topic_exists_says_yes_no_and_unknown(test_settings: Settings) -> None:
    ensure_topics(test_settings, [test_settings.topic_scored])

    async def ask(settings: Settings, topic: str) -> bool | None:
        probe = BrokerProbe(settings, timeout=3.0)
        try:
            return await probe.topic_exists(topic)
        finally:
            await probe.close()

    assert asyncio.run(ask(test_settings, test_settings.topic_scored)) is True
    assert asyncio.run(ask(test_settings, f"{test_settings.topic_scored}-missing")) is False
    nobody = test_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    assert asyncio.run(ask(nobody, test_settings.topic_scored)) is None
