"""`brandmon worker`: build the Faust app with its agents, health and metrics pages, and run it.

The score worker runs only the score agent. The alert aggregator (`brandmon alerts worker`)
is a separate Faust app and process: measured here, a Faust app that also holds a
changelog-backed table resumed the posts stream after a restart from prefetched offsets
before seeking to the committed ones, so the score agent skipped records (faust issues 216
and 221 describe the same race). Without a table the restart resumes exactly where it left.

Start-up fails fast, with a message that names the problem, when the model folder is missing
or broken, when a GPU provider is asked for and absent, or when no broker answers.
SIGTERM/SIGINT stop the worker cleanly: the batch in hand gets stop_grace_seconds to be
delivered and committed. A fatal delivery error or a bug ends the process with exit code 70
without committing past the last delivered record (brandmon/batches.py).
"""

from __future__ import annotations

import faulthandler
import logging
from dataclasses import dataclass

import faust

from brandmon.contracts.classifier import Classifier
from brandmon.faust_app import create_app
from brandmon.kafka_io import check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.stream.agent import ScoreAgent
from brandmon.stream.classifier import OnnxClassifier, classifier_for
from brandmon.web import Health, add_health

log = logging.getLogger(__name__)


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
    metrics = Metrics(max_brand_series=settings.max_brand_series)
    if classifier is None:
        classifier = classifier_for(settings)
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
    health = Health(
        app,
        settings,
        metrics,
        group=settings.app_id,
        topic=settings.topic_posts,
        agents=[worker.score.progress],
        about={"model": classifier.model_id},
    )
    add_health(health)
    return worker


def _topics(settings: Settings) -> list[str]:
    return [
        settings.topic_posts,
        settings.topic_scored,
        settings.topic_dlq,
        settings.topic_scored_dlq,
        settings.topic_alerts,
        settings.topic_brand_sentiment,
    ]


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
    # a crash in native code (librdkafka, ONNX Runtime) leaves the Python stacks in the log
    # instead of a silent exit
    faulthandler.enable()
    faust_worker = faust.Worker(
        worker.app, loglevel=settings.log_level.lower(), override_logging=True
    )
    try:
        faust_worker.execute_from_commandline()
    finally:
        worker.score.close()
