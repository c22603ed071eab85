"""`brandmon worker`: build the Faust app with its agents, health and metrics pages, and run it.

The score worker runs only the score agent. The alert aggregator (`brandmon alerts worker`)
is a separate Faust app and process: measured here, a Faust app that also holds a
changelog-backed table resumed the posts stream after a restart from prefetched offsets
before seeking to the committed ones, so the score agent skipped records (faust issues 216
and 221 describe the same race). Without a table the restart resumes exactly where it left.

Start-up fails fast, with a message that names the problem, when the model folder is missing
or broken, when a GPU provider is asked for and absent, or when no broker answers.
SIGTERM/SIGINT stop the worker cleanly: the batch in hand is finished and committed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import faust

from brandmon.kafka_io import admin, check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.web import add_pages
from stream.agent import ScoreAgent
from stream.app import create_app
from stream.classifier import Classifier, OnnxClassifier, load_classifier

log = logging.getLogger(__name__)

#: How often consumer lag is measured; Prometheus scrapes every 15 s by default.
LAG_INTERVAL = 5.0


@dataclass
class Worker:
    """Everything one worker process runs, built once from the settings."""

    settings: Settings
    metrics: Metrics
    classifier: Classifier
    app: faust.App
    score: ScoreAgent


def build_worker(settings: Settings, classifier: Classifier | None = None) -> Worker:
    """Load the model, check the broker, declare topics and wire agents and pages."""
    metrics = Metrics()
    if classifier is None:
        classifier = load_classifier(
            settings.resolved_model_path,
            variant=settings.model_variant,
            provider=settings.execution_provider,
            threads=settings.ort_threads,
            micro_batch=settings.micro_batch,
        )
    provider = classifier.provider if isinstance(classifier, OnnxClassifier) else "none"
    metrics.model_info.info(
        {"model_id": classifier.model_id, "version": classifier.model_version, "provider": provider}
    )
    check_broker(settings)
    ensure_topics(settings, _topics(settings))
    app = create_app(settings)
    worker = Worker(
        settings, metrics, classifier, app, ScoreAgent(app, settings, metrics, classifier)
    )
    add_pages(app, metrics, {"model": classifier.model_id})
    _add_lag_monitor(worker)
    return worker


def _topics(settings: Settings) -> list[str]:
    return [
        settings.topic_posts,
        settings.topic_scored,
        settings.topic_dlq,
        settings.topic_alerts,
        settings.topic_brand_sentiment,
    ]


def measure_lag(
    settings: Settings, group: str, topic: str, client: Any | None = None
) -> dict[int, int]:
    """End offset minus committed offset for each partition of `topic` in `group`."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    client = client or admin(settings)
    partitions = client.list_topics(topic, timeout=5).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in partitions]
    ends = client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=5)
    request = [ConsumerGroupTopicPartitions(group, tps)]
    committed = client.list_consumer_group_offsets(request, request_timeout=5)[group].result()
    done = {tp.partition: tp.offset for tp in committed.topic_partitions}
    lag: dict[int, int] = {}
    for tp, future in ends.items():
        end = future.result().offset
        start = done.get(tp.partition, -1)
        lag[tp.partition] = end - (start if start >= 0 else 0)
    return lag


def _add_lag_monitor(worker: Worker) -> None:
    settings, gauge = worker.settings, worker.metrics.consumer_lag
    topic = settings.topic_posts

    client = admin(settings)  # one client for the worker's life: no reconnect every 5 s

    @worker.app.timer(LAG_INTERVAL)
    async def lag_monitor() -> None:
        loop = asyncio.get_running_loop()
        try:
            lag = await loop.run_in_executor(
                None, measure_lag, settings, settings.app_id, topic, client
            )
        except Exception as exc:  # a failed measurement leaves the last values; never stops work
            log.warning("could not measure consumer lag: %r", exc)
            return
        for partition, value in lag.items():
            gauge.labels(topic=topic, partition=str(partition)).set(value)


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; raises before starting when the model or broker is missing."""
    worker = build_worker(settings)
    log.info(
        "worker %s: model %s on %s, batches of up to %d within %.3f s",
        settings.app_id,
        worker.classifier.model_id,
        settings.bootstrap_servers,
        settings.max_batch,
        settings.max_wait,
    )
    faust_worker = faust.Worker(
        worker.app, loglevel=settings.log_level.lower(), override_logging=True
    )
    try:
        faust_worker.execute_from_commandline()
    finally:
        worker.score.close()
